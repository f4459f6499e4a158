#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine, then runs it.
# Usage: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

# The browser tests drive Debian's Chromium with Playwright (never `playwright install`).
if [ ! -x /usr/bin/chromium ]; then
  echo "== installing chromium (apt)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

echo "== installing Python packages"
python3 -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt

echo "== ruff"
python3 -m ruff check .

echo "== pytest"
python3 -m pytest "$@"
