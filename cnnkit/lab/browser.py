"""The one harness for the app in a real browser: `streamlit run app.py` and Debian's Chromium.

The benchmarks (cnnkit.lab.bench: dashboard, startup), tools/screenshots.py and
tests/test_browser_e2e.py all start the server and the browser through here, so they cannot
drift apart. Chromium is the distribution's (/usr/bin/chromium: `apt-get install chromium`),
driven by Playwright (python); never `playwright install`, which would fetch a browser of its
own. The callers open Playwright themselves (`sync_playwright()`): importing this module
imports neither Playwright nor Streamlit.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from cnnkit import settings

CHROMIUM = "/usr/bin/chromium"
# The new headless mode renders as a visible window does (screenshots look like the real
# thing); no sandbox, since containers run as root; and nothing that goes to the network or
# updates itself in the background while a page is timed or shot.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# Local only, no telemetry, and no file watcher: nothing edits the code meanwhile, and watching
# would cost the server CPU that the dashboard benchmark counts as the dashboard's.
STREAMLIT_FLAGS = ["--server.headless", "true", "--server.address", "127.0.0.1",
                   "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
VIEWPORT = {"width": 1440, "height": 900}  # a laptop screen: the size of every screenshot
STOP_TIMEOUT = 20.0

# Streamlit's own signals: the app root's script state, its "Running…" widget and the
# skeletons it shows until an element arrives; a plotly chart has drawn once it has its SVG.
RENDERED = '[data-testid="stApp"][data-test-script-state="notRunning"] h1'
BUSY = '[data-testid="stStatusWidget"], [data-testid="stSkeleton"]'
CHARTS_UNDRAWN = ("() => [...document.querySelectorAll('[data-testid=\"stPlotlyChart\"]')]"
                  ".some(c => !c.querySelector('.main-svg'))")


# What a browser tells a page whose tab it hides or shows again (`page.evaluate(SET_VISIBILITY, True)`):
# headless Chromium never hides a tab itself.
SET_VISIBILITY = """hidden => {
    for (const [name, value] of [["hidden", hidden], ["visibilityState", hidden ? "hidden" : "visible"]])
        Object.defineProperty(document, name, {configurable: true, get: () => value});
    document.dispatchEvent(new Event("visibilitychange"));
}"""


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def browser_available() -> str | None:
    """None when Playwright and Chromium are there, else why not (a test's skip reason)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright (python) is not installed"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}: install Debian's chromium (scripts/test.sh does)"
    return None


def launch_browser(playwright, **options):
    """Debian's Chromium, headless, from a `sync_playwright()` context."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, **options)


class StreamlitServer:
    """`streamlit run app.py` on a free port of 127.0.0.1 with its own runs folder; stopped by pid.

    The server sees only what it is given: its runs and slots folders, shared workspaces (every
    run in the folder is shown), CNNKIT_DATA_DIR only when `data_dir` is given (a developer's
    real data must not leak into a test), and, unless `offline=False` (then this process's
    setting holds), CNNKIT_OFFLINE=1. `env` adds or overrides variables. Without `log` the
    server's output is thrown away.
    """

    def __init__(self, runs_dir: str | Path, *, data_dir: str | Path | None = None,
                 slots_dir: str | Path | None = None, offline: bool = True, env: dict | None = None,
                 log: str | Path | None = None, app_dir: str | Path | None = None):
        self.runs_dir = str(runs_dir)
        self.slots_dir = str(slots_dir or Path(runs_dir) / ".slots")
        self.data_dir = str(data_dir) if data_dir else None
        self.offline = offline
        self.extra_env = dict(env or {})
        self.log = Path(log) if log else None
        self.app_dir = Path(app_dir or settings.REPO_ROOT)
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.started = 0.0  # perf_counter() when `streamlit run` was started
        self._log_file = None

    def __repr__(self) -> str:
        return f"StreamlitServer(port={self.port}, pid={self.proc.pid if self.proc else None})"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "CNNKIT_DATA_DIR"}
        env.update(CNNKIT_RUNS_DIR=self.runs_dir, CNNKIT_SLOTS_DIR=self.slots_dir, CNNKIT_WORKSPACES="shared")
        if self.data_dir:
            env["CNNKIT_DATA_DIR"] = self.data_dir
        if self.offline:
            env["CNNKIT_OFFLINE"] = "1"
        env.update(self.extra_env)
        return env

    def start(self) -> StreamlitServer:
        """Start the server and return at once (the start-up benchmark times what follows)."""
        output = subprocess.DEVNULL
        if self.log:
            self._log_file = output = open(self.log, "wb")  # noqa: SIM115 - closed by stop()
        self.started = time.perf_counter()
        # A session of its own: a Ctrl-C in the terminal reaches the caller, which stops it.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(self.port),
             *STREAMLIT_FLAGS],
            cwd=str(self.app_dir), env=self.environment(), stdout=output,
            stderr=subprocess.STDOUT if self.log else subprocess.DEVNULL, start_new_session=True)
        return self

    def wait_listening(self, timeout: float = 60.0) -> None:
        """Until the server accepts connections; an error if it exits or takes too long."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                where = f" (its output: {self.log})" if self.log else ""
                raise RuntimeError(f"streamlit exited with {self.proc.returncode}{where}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return
            time.sleep(0.2)
        raise TimeoutError(f"the app did not listen on port {self.port} within {timeout:.0f} s")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log_file:
            self._log_file.close()
            self._log_file = None

    def __enter__(self) -> StreamlitServer:
        self.start()
        try:
            self.wait_listening()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def has_tensorflow(self) -> bool:
        """Whether the server process has TensorFlow's library mapped (i.e. imported it)."""
        try:
            return "libtensorflow" in Path(f"/proc/{self.proc.pid}/maps").read_text()
        except OSError:
            return False


# -- waiting for a page -------------------------------------------------------------------------


def goto_when_up(page, url: str, deadline: float) -> None:
    """Open `url` as soon as the server answers (the browser retries, as a person would);
    `deadline` is a time.perf_counter() value."""
    while True:
        try:
            page.goto(url, wait_until="domcontentloaded", timeout=10_000)
            return
        except Exception:
            if time.perf_counter() > deadline:
                raise
            time.sleep(0.05)


def wait_rendered(page, title: str = "", timeout_s: float = 120.0) -> None:
    """The script has run to the end: Streamlit's app root says `notRunning` and shows the page's
    title (`title`: text the h1 must contain, so the previous page's title does not count)."""
    page.wait_for_selector(f'{RENDERED}:has-text("{title}")' if title else RENDERED, timeout=timeout_s * 1000)


def wait_idle(page, quiet_s: float = 1.0, timeout_s: float = 30.0) -> None:
    """Until no script runs and every plotly chart has drawn, for `quiet_s` seconds in a row.

    Streamlit shows its "Running…" widget only while a script runs, and not at once, and a
    chart is a skeleton until plotly's code has loaded: so one quiet look is not enough.
    TimeoutError if the page has not settled within `timeout_s`.
    """
    quiet_since = None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        busy = page.locator(BUSY).count() > 0 or page.evaluate(CHARTS_UNDRAWN)
        now = time.monotonic()
        if busy:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= quiet_s:
            return
        page.wait_for_timeout(150)
    raise TimeoutError("the page did not settle (still running or charts not drawn)")


# -- drawing on the Draw page's canvas ----------------------------------------------------------

CANVAS = "canvas.ink"  # components/draw_canvas.js (in its shadow root: Playwright's locators go in)


def canvas_stroke(page, points: list[tuple[float, float]], selector: str = CANVAS) -> None:
    """One mouse stroke on the Draw page's canvas through `points` in 0–1 canvas coordinates."""
    canvas = page.locator(selector).first
    canvas.wait_for(state="visible", timeout=120_000)
    box = canvas.bounding_box()
    xy = [(box["x"] + px * box["width"], box["y"] + py * box["height"]) for px, py in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=4)
    page.mouse.up()


ONE_STROKE = [(0.5, 0.15 + 0.07 * i) for i in range(11)]  # a "1": top to bottom, through the middle
