"""Screenshots of the dashboard's pages, taken with Debian's Chromium through Playwright.

    python tools/screenshots.py                      # a fresh runs folder with two small trained runs
    python tools/screenshots.py --runs-dir runs      # your own runs
    python tools/screenshots.py --pages home build   # only some pages

Writes docs/screenshots/<page>.png at 1440×900 (a laptop screen), or <page>-phone.png at 390×844. The server and the browser
are started by cnnkit.lab.browser, the same harness as the browser test and the benchmarks.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere
from cnnkit import settings  # noqa: E402
from cnnkit.lab.browser import VIEWPORT, StreamlitServer, launch_browser, wait_idle  # noqa: E402
from cnnkit.presets import PRESETS  # noqa: E402
from cnnkit.views.links import link_value  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TALL = {"width": 1440, "height": 2600}  # Streamlit scrolls inside its own container: full_page can't
LESSON_LINK = link_value(PRESETS["kruse-conv"].experiment().updated({"name": "Lesson 3: two conv blocks"}))
# page name → (URL path, what to wait for once it has painted, what to click before the shot[, what
# the click brings, to wait for])
PAGES = {
    "home": ("", "text=Quick start", None),
    "data": ("Data", "text=Sample images", None),
    "build": ("Build", "text=Shapes and costs", "text=3 · Conv2D"),  # show one layer's editor
    "compare": ("Compare", "text=Accuracy against cost", None),
    # a teacher's link opened: the experiment loaded, and its own link to copy
    "share": (f"Build?exp={LESSON_LINK}", "text=Opened the linked experiment", "text=Share this experiment"),
    # an imported model: its accuracy, its layers as cnnkit reads them, and the export buttons
    "models": ("Models", "text=Take a model away", None),
    # the lab measured on the newest run (about 10 s), then its four charts
    # the settings with augmentation open, the learning-rate finder, a finished run's results and health
    "train-settings": ("Train", "text=Start training", "text=Data augmentation"),
    "draw-canvas": ("Draw", "text=Draw a digit", None),
    "inspect-why": ("Inspect", "text=Why? One of these images", None),  # the galleries and their 🔍
    # the newest sweep of the runs folder, read (an A/B test's verdict); take it with --full-page
    "sweeps": ("Sweeps", "text=3 · Read", None),
    "robustness": ("Robustness", "text=Robustness lab", "text=Run the robustness lab", "text=Moved by 4 px"),
}
PHONE = {"width": 390, "height": 844}


def train_demo_runs(runs_dir: Path) -> None:
    """Two finished runs (CNN + dense baseline; ~1 min on 2 cores), so Compare has something to show.
    Enough images and epochs that the CNN's lead over the baseline is visible, as it is on real data."""
    for preset in ("chollet-cnn", "west-fashion"):
        subprocess.run([sys.executable, "-m", "cnnkit", "train", "--preset", preset, "--train-limit", "2500",
                        "--epochs", "3", "--validation-split", "0.1", "--baseline", "dense-128",
                        "--runs-dir", str(runs_dir)], cwd=ROOT, check=True, env={**os.environ, "CNNKIT_OFFLINE": "1"},
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # A model "from elsewhere" for the Models page: the first run's own file, which takes raw pixels.
    first = sorted(p for p in runs_dir.iterdir() if (p / "model.keras").is_file())[0]
    subprocess.run([sys.executable, "-m", "cnnkit", "import", str(first / "model.keras"), "--dataset", "mnist",
                    "--input", "raw", "--name", "a notebook's CNN", "--runs-dir", str(runs_dir)], cwd=ROOT,
                   check=True, env={**os.environ, "CNNKIT_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def shoot(names: list[str], runs_dir: Path, full_page: bool = False, phone: bool = False) -> list[Path]:
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    written = []
    # The data folder this process was given (the pages show real data when there is some).
    with StreamlitServer(runs_dir, data_dir=settings.get().data_dir) as server, sync_playwright() as p:
        browser = launch_browser(p)
        page = browser.new_page(viewport=PHONE if phone else TALL if full_page else VIEWPORT)
        for name in names:
            path, ready, click, *after = PAGES[name]
            page.goto(f"{server.url}/{path}")
            page.wait_for_selector(ready, timeout=60_000)
            wait_idle(page)
            if click:
                page.locator(click).first.click()
                if after:  # the click starts work (the robustness lab: ~10 s): until its result shows
                    page.wait_for_selector(after[0], timeout=180_000)
                wait_idle(page)
            target = OUT / f"{name}{'-full' if full_page else ''}{'-phone' if phone else ''}.png"
            page.screenshot(path=str(target))
            written.append(target)
        browser.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs-dir", help="runs folder to show (default: a fresh one with two small runs)")
    parser.add_argument("--pages", nargs="*", choices=list(PAGES), default=list(PAGES))
    parser.add_argument("--full-page", action="store_true", help="a 2600 px tall window (to review the whole page), saved as <page>-full.png")
    parser.add_argument("--phone", action="store_true", help="a 390×844 phone screen, saved as <page>-phone.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cnnkit-shots-") as tmp:
        runs_dir = Path(args.runs_dir) if args.runs_dir else Path(tmp) / "runs"
        if not args.runs_dir:
            train_demo_runs(runs_dir)
        for path in shoot(args.pages, runs_dir, args.full_page, args.phone):
            print(path.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
