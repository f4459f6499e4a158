"""A live run's page in a hidden tab (Chromium + Playwright, `streamlit run app.py`, offline).

A simulated run (the live benchmark's: it writes a run folder at a real run's pace, without
TensorFlow) is shown on the Train page. While the browser says the tab is hidden, the polling
fragment reads nothing and draws one line instead of the status, the controls and the curves;
shown again, it draws the run as it is by then. Headless Chromium never hides a tab itself, so
the test tells the page what a hidden tab's browser tells it: `document.hidden` and a
`visibilitychange` event.
"""

from __future__ import annotations

import re
import threading

import pytest

from cnnkit.lab.browser import (
    SET_VISIBILITY,
    VIEWPORT,
    StreamlitServer,
    browser_available,
    launch_browser,
    wait_rendered,
)
from tests.oracles import wait_until

pytestmark = pytest.mark.slow
HIDDEN_LINE = "Not updated while this tab is hidden"


def shown_batch(page) -> int | None:
    """The batch the live status line shows ('… batch 123/469 …'), None while it is not there."""
    boxes = page.locator(".status-box")
    if not boxes.count():
        return None
    found = re.search(r"batch (\d+)", boxes.first.inner_text())
    return int(found.group(1)) if found else None


def test_a_hidden_tab_reads_and_draws_nothing_until_it_is_shown_again(tmp_path):
    from playwright.sync_api import sync_playwright

    from cnnkit.lab.bench.common import run_child
    from cnnkit.presets import get_preset
    from cnnkit.runs.jobs import mark_active
    from cnnkit.runs.store import RunStore, this_process

    why_not = browser_available()
    if why_not:
        pytest.skip(f"{why_not}: needed for the browser test")
    runs = tmp_path / "runs"
    runs.mkdir()
    store = RunStore(runs)
    run_id = store.create(get_preset("chollet-cnn").experiment(), name="hidden tab").run_id
    store.update(run_id, status="running", **this_process())  # as jobs.start leaves it
    mark_active(store, run_id)
    simulation = threading.Thread(target=run_child, args=("live_sim", {
        "runs_dir": str(runs), "run_id": run_id, "seconds": 45.0, "epoch_seconds": 20.0}), daemon=True)
    with StreamlitServer(runs, slots_dir=tmp_path / "slots", log=tmp_path / "streamlit.log") as server, \
            sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{server.url}/Train?run={run_id}")
            wait_rendered(page, "Train")
            simulation.start()
            first = wait_until(lambda: shown_batch(page), "the live status line", 60)
            wait_until(lambda: (shown_batch(page) or 0) > first, "a poll that shows a later batch", 30)

            page.evaluate(SET_VISIBILITY, True)
            page.get_by_text(HIDDEN_LINE).wait_for(timeout=30_000)
            hidden_at = store.progress(run_id)["batch"]
            # two more polls (every 2 s) while hidden: still one line, no status, no Stop, no curves
            page.wait_for_timeout(4_500)
            assert page.get_by_text(HIDDEN_LINE).count() == 1
            assert page.locator(".status-box").count() == 0 and page.locator("figure.chart").count() == 0
            assert page.get_by_role("button", name="Stop").count() == 0
            assert store.progress(run_id)["batch"] > hidden_at  # the run went on meanwhile

            page.evaluate(SET_VISIBILITY, False)
            caught_up = wait_until(lambda: shown_batch(page), "the status line again", 30)
            assert caught_up > hidden_at  # the run as it is now, not as it was when the tab was hidden
            assert page.get_by_text(HIDDEN_LINE).count() == 0
            wait_until(lambda: page.locator("figure.chart").count() >= 2, "the live curves again", 30)
            assert page.get_by_role("button", name="Stop").count() == 1
        finally:
            browser.close()
        simulation.join(timeout=60)
