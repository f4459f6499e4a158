"""Draw in Chromium: a fresh tab → its first prediction, and a stroke → its prediction.

One small CNN (with its dense baseline) is trained once; each app shows it on Draw. A new tab of
a warm browser (as at a demo: the browser has opened the app before) opens Draw; "fresh tab →
first prediction" is the time until the canvas is on screen plus the time from the end of the
first stroke to `Prediction: <digit>` (the stroke itself, which Playwright plays one mouse step
per round trip, is left out, as in tests/test_browser_e2e.py). Then Clear and draw again, a few
times: stroke → prediction.

With `--against REV` the same model is shown by this checkout and by REV, taking turns; the
canvas of either (components/draw_canvas.js, or streamlit-drawable-canvas before 2026-12-05) is
found by its selector.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import tempfile
import time
from pathlib import Path

from cnnkit.lab.bench.common import (
    Options,
    Section,
    browser_skip,
    checkouts,
    make_finished_run,
    median,
    table,
)
from cnnkit.lab.browser import ONE_STROKE, StreamlitServer, canvas_stroke, launch_browser, wait_idle
from cnnkit.sysinfo import load_average

CANVASES = "canvas.ink, canvas.upper-canvas"  # this canvas, or streamlit-drawable-canvas's drawing layer
OLD_CANVAS_SETTLES_MS = 300  # streamlit-drawable-canvas dropped strokes made before its tool had loaded
PREDICTION = "() => /Prediction: \\d/.test(document.body.innerText)"
EMPTY = "() => document.body.innerText.includes('Nothing drawn yet') && !/Prediction: \\d/.test(document.body.innerText)"
TABS, STROKES = 5, 5


def _first_prediction(context, url: str) -> dict:
    """A new tab: Draw → canvas on screen → one stroke → its prediction; then Clear and stroke again."""
    page = context.new_page()
    try:
        opened = time.perf_counter()
        page.goto(f"{url}/Draw")
        canvas = page.locator(CANVASES).first
        canvas.wait_for(state="visible", timeout=120_000)
        canvas_ready = time.perf_counter() - opened
        if "upper-canvas" in (canvas.get_attribute("class") or ""):
            page.wait_for_timeout(OLD_CANVAS_SETTLES_MS)  # not counted: a person takes longer to start
        canvas_stroke(page, ONE_STROKE, CANVASES)
        ended = time.perf_counter()
        page.wait_for_function(PREDICTION, timeout=30_000, polling="raf")
        first = time.perf_counter() - ended
        strokes = []
        for _ in range(STROKES):
            page.get_by_role("button", name=re.compile("Clear")).click()
            page.wait_for_function(EMPTY, timeout=30_000, polling="raf")
            with contextlib.suppress(TimeoutError):
                wait_idle(page, quiet_s=0.3, timeout_s=5)
            canvas_stroke(page, ONE_STROKE, CANVASES)
            ended = time.perf_counter()
            page.wait_for_function(PREDICTION, timeout=30_000, polling="raf")
            strokes.append(time.perf_counter() - ended)
        return {"canvas": canvas_ready, "first_stroke": first, "to_prediction": canvas_ready + first,
                "strokes": strokes}
    finally:
        page.close()


def bench_draw(opts: Options) -> Section:
    section = Section("13. Draw: a fresh tab → its first prediction, a stroke → its prediction")
    if skip := browser_skip():
        section.lines.append(skip)
        return section
    from playwright.sync_api import sync_playwright

    tabs = 1 if opts.quick else TABS
    results: dict[str, list[dict]] = {}
    loads = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-draw-") as scratch, checkouts(opts.against) as apps, \
            sync_playwright() as pw, contextlib.ExitStack() as stack:
        model_runs = Path(scratch) / "model"
        make_finished_run(str(model_runs), opts.data_dir)
        browser = launch_browser(pw)
        stack.callback(browser.close)
        servers = {}
        for i, (name, app) in enumerate(apps.items()):
            runs = Path(scratch) / f"runs-{i}"
            shutil.copytree(model_runs, runs)
            servers[name] = stack.enter_context(StreamlitServer(runs, app_dir=app, env={"CNNKIT_WARM_WORKER": "off"}))
        contexts = {name: browser.new_context(viewport={"width": 1440, "height": 900}) for name in apps}
        for name, server in servers.items():  # each browser context has opened its app once: a warm cache
            results[name] = []
            _first_prediction(contexts[name], server.url)
        for _ in range(tabs):  # A B A B …
            for name, server in servers.items():
                loads.append(load_average())
                results[name].append(_first_prediction(contexts[name], server.url))
    rows = [[name, len(runs), f"{median(r['canvas'] for r in runs):.2f}", f"{median(r['first_stroke'] for r in runs):.3f}",
             f"**{median(r['to_prediction'] for r in runs):.2f}**",
             f"{1000 * median(s for r in runs for s in r['strokes']):.0f}",
             ", ".join(f"{r['to_prediction']:.2f}" for r in runs)] for name, runs in results.items()]
    section.data["draw"] = results
    section.lines += table(["app", "tabs", "canvas on screen (s)", "first stroke → prediction (s)",
                            "fresh tab → first prediction (s)", "stroke → prediction (ms, median)",
                            "every tab (s)"], rows)
    section.lines += ["", f"chollet-cnn (2,000 images, 1 epoch) with its dense baseline; Chromium headless at "
                      f"1440×900, a new tab of a warm browser each time; medians over {tabs} tabs and "
                      f"{tabs * STROKES} strokes; the sides take turns. Load averages: "
                      f"{', '.join(f'{v:.1f}' for v in loads)}. Goal: fresh tab → first prediction ≤ 1.5 s."]
    return section
