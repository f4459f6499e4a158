"""Screenshots of the dashboard's pages, taken with Debian's Chromium through Playwright.

    python tools/screenshots.py                      # a fresh runs folder with two small trained runs
    python tools/screenshots.py --runs-dir runs      # your own runs
    python tools/screenshots.py --pages home build   # only some pages

Writes docs/screenshots/<page>.png at 1440×900 (a laptop screen). The helpers (`free_port`,
`start_app`, `launch_browser`, `wait_idle`) are shared with the browser tests.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1440, "height": 900}
TALL = {"width": 1440, "height": 2600}  # Streamlit scrolls inside its own container: full_page can't
# page name → (URL path, what to wait for once it has painted, what to click before the shot)
PAGES = {
    "home": ("", "text=Quick start", None),
    "data": ("Data", "text=Sample images", None),
    "build": ("Build", "text=Shapes and costs", "text=3 · Conv2D"),  # show one layer's editor
    "compare": ("Compare", "text=Accuracy against cost", None),
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.2)
    raise TimeoutError(f"the app did not listen on port {port} within {timeout:.0f} s")


def start_app(runs_dir: str | Path, port: int, env: dict | None = None) -> subprocess.Popen:
    """`streamlit run app.py` on 127.0.0.1:port, offline, with its own runs folder."""
    full_env = {**os.environ, "CNNKIT_RUNS_DIR": str(runs_dir), "CNNKIT_OFFLINE": "1", **(env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port)
    except TimeoutError:
        process.kill()
        raise
    return process


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wait_idle(page, timeout_ms: int = 30_000) -> None:
    """Until the script run is over and every plotly chart has drawn.

    Streamlit shows its "Running…" widget only while a script runs, and not at once, and a chart
    is a skeleton until plotly's code has loaded: so the page counts as idle after neither was
    there (and every chart had its SVG) for a whole second.
    """
    quiet_since = None
    deadline = time.monotonic() + timeout_ms / 1000
    while time.monotonic() < deadline:
        busy = page.locator('[data-testid="stStatusWidget"], [data-testid="stSkeleton"]').count() > 0 or page.evaluate(
            "() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
            ".some(c => !c.querySelector('.main-svg'))")
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= 1.0:
            return
        page.wait_for_timeout(150)
    raise TimeoutError("the page did not settle (still running or charts not drawn)")


def train_demo_runs(runs_dir: Path) -> None:
    """Two finished runs (CNN + dense baseline; ~1 min on 2 cores), so Compare has something to show.
    Enough images and epochs that the CNN's lead over the baseline is visible, as it is on real data."""
    for preset in ("chollet-cnn", "west-fashion"):
        subprocess.run([sys.executable, "-m", "cnnkit", "train", "--preset", preset, "--train-limit", "2500",
                        "--epochs", "3", "--validation-split", "0.1", "--baseline", "dense-128",
                        "--runs-dir", str(runs_dir)], cwd=ROOT, check=True, env={**os.environ, "CNNKIT_OFFLINE": "1"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def shoot(names: list[str], runs_dir: Path, full_page: bool = False) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    port = free_port()
    app = start_app(runs_dir, port)
    written = []
    try:
        with sync_playwright() as p:
            browser = launch_browser(p)
            page = browser.new_page(viewport=TALL if full_page else VIEWPORT)
            for name in names:
                path, ready, click = PAGES[name]
                page.goto(f"http://127.0.0.1:{port}/{path}")
                page.wait_for_selector(ready, timeout=60_000)
                wait_idle(page)
                if click:
                    page.locator(click).first.click()
                    wait_idle(page)
                target = OUT / f"{name}{'-full' if full_page else ''}.png"
                page.screenshot(path=str(target))
                written.append(target)
            browser.close()
    finally:
        stop_app(app)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", help="runs folder to show (default: a fresh one with two small runs)")
    parser.add_argument("--pages", nargs="*", choices=list(PAGES), default=list(PAGES))
    parser.add_argument("--full-page", action="store_true", help="a 2600 px tall window (to review the whole page), saved as <page>-full.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnkit-shots-") as tmp:
        runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tmp) / "runs"
        if not args.runs_dir:
            train_demo_runs(runs_dir)
        for path in shoot(args.pages, runs_dir, args.full_page):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
