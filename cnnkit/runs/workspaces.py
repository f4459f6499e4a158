"""Who sees which runs: the workspace policy. Plain Python, no Streamlit.

Two modes, chosen by the deployment with `CNNKIT_WORKSPACES`:

- "shared" (the default, for a laptop or a trusted classroom server): one ledger, the runs
  directory itself. Everyone using the server sees, compares and may delete every run.
- "session" (for a public server such as Streamlit Community Cloud): every browser session
  gets its own workspace, `<runs_dir>/.sessions/<key>`, where the key is a random 192-bit
  token made on the server. A session sees, stops and deletes only the runs in its own
  workspace; knowing the key is the only way in, so keys are never derived from anything a
  visitor sends unless it passes the strict pattern below (it then names *its* folder only).

The workspaces live under a hidden folder: `RunStore.list()` skips hidden folders and
`RunStore.path()` refuses run ids starting with ".", so the shared ledger can neither list
nor delete them, and no run id can reach from one workspace into another. The training slots
(`CNNKIT_MAX_JOBS`) stay global: `server_root()` maps any workspace back to the server's runs
directory, where `jobs.slots_dir` keeps them.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

from cnnkit import settings
from cnnkit.errors import WorkspaceError
from cnnkit.runs.store import RunStore

SESSIONS_DIR = ".sessions"
# token_urlsafe(24) gives 32 characters of [A-Za-z0-9_-]; accept 22–64 of them, nothing else:
# no dots, no slashes, so a key can never climb out of the sessions folder.
SESSION_KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,64}")  # always .fullmatch: "$" lets a "\n" through


def workspace_mode(value: str | None = None) -> str:
    """The mode in force: `value`, else CNNKIT_WORKSPACES, else "shared"."""
    if value is None:
        return settings.get().workspaces  # validated there: a typo is refused, never "shared"
    return settings.workspace_mode(value)


def new_session_key() -> str:
    return secrets.token_urlsafe(24)


def check_session_key(key: object) -> str:
    if not isinstance(key, str) or not SESSION_KEY_PATTERN.fullmatch(key):
        raise WorkspaceError("invalid workspace key: expected 22 to 64 letters, digits, '-' or '_'")
    return key


def workspace_root(runs_dir: str | os.PathLike, mode: str, session_key: str | None = None) -> Path:
    """The folder whose runs this session sees."""
    runs_dir = Path(runs_dir)
    if workspace_mode(mode) == "shared":
        return runs_dir
    return runs_dir / SESSIONS_DIR / check_session_key(session_key)


def open_workspace(runs_dir: str | os.PathLike, mode: str, session_key: str | None = None) -> RunStore:
    """The RunStore of this session's workspace (created on first use)."""
    root = workspace_root(runs_dir, mode, session_key)
    root.mkdir(parents=True, exist_ok=True)
    return RunStore(root)


def server_root(path: str | os.PathLike) -> Path:
    """The server's runs directory for any workspace root (itself in shared mode)."""
    path = Path(path)
    if path.parent.name == SESSIONS_DIR and SESSION_KEY_PATTERN.fullmatch(path.name):
        return path.parent.parent
    return path


# ---------------------------------------------------------------------------
# Housekeeping on a public server: session workspaces are abandoned when tabs close.


def session_folders(runs_dir: str | os.PathLike) -> list[Path]:
    """The session workspaces of a server's runs folder (folders whose names are keys)."""
    sessions = Path(runs_dir) / SESSIONS_DIR
    if not sessions.is_dir():
        return []
    return [folder for folder in sorted(sessions.iterdir())
            if folder.is_dir() and SESSION_KEY_PATTERN.fullmatch(folder.name)]


def _last_activity(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for entry in folder.rglob("*"):
        try:
            newest = max(newest, entry.stat().st_mtime)
        except OSError:
            continue  # removed while we looked
    return newest


def prune_sessions(runs_dir: str | os.PathLike, max_age_seconds: float, *, now: float | None = None) -> list[str]:
    """Delete session workspaces untouched for max_age_seconds that have no active run.
    Returns the keys removed. Folders whose names are not keys are left alone."""
    now = time.time() if now is None else now
    removed = []
    for folder in session_folders(runs_dir):
        if now - _last_activity(folder) < max_age_seconds:
            continue
        if any(record.is_active for record in RunStore(folder).list()):
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed
