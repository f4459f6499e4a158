"""A live run's page in a hidden tab (Chromium + Playwright, `streamlit run app.py`, offline).

A simulated run (the live benchmark's: it writes a run folder at a real run's pace, without
TensorFlow) is shown on the Train page. While the browser says the tab is hidden, the page does
not poll at all: the browser sends the server nothing (its websocket frames are counted). Shown
again, the page draws the run as it is by then and polls again. Headless Chromium never hides a
tab itself, so the test tells the page what a hidden tab's browser tells it: `document.hidden`
and a `visibilitychange` event.
"""

from __future__ import annotations

import re
import threading
import time

import pytest

from cnnkit.lab.browser import (
    SET_VISIBILITY,
    VIEWPORT,
    StreamlitServer,
    launch_browser,
    wait_rendered,
)
from cnnkit.runs.store import RunStore
from tests.oracles import require_browser, wait_until

pytestmark = pytest.mark.slow


def shown_batch(page) -> int | None:
    """How far the live status line says the run is ('epoch 2/3, batch 123/469' → batches since
    the start), None while it is not there."""
    boxes = page.locator(".status-box")
    if not boxes.count():
        return None
    found = re.search(r"epoch (\d+)/\d+, batch (\d+)/(\d+)", boxes.first.inner_text())
    return (int(found.group(1)) - 1) * int(found.group(3)) + int(found.group(2)) if found else None


def run_batch(progress: dict) -> int:
    return (progress["epoch"] - 1) * progress["batches"] + progress["batch"]


def test_a_hidden_tab_polls_nothing_until_it_is_shown_again(tmp_path):
    from playwright.sync_api import sync_playwright

    from cnnkit.lab.bench.common import run_child
    from cnnkit.lab.bench.livepage import active_run

    require_browser()
    runs = tmp_path / "runs"
    runs.mkdir()
    store = RunStore(runs)
    run_id = active_run(runs, "hidden tab")
    simulation = threading.Thread(target=run_child, args=("live_sim", {
        "runs_dir": str(runs), "run_id": run_id, "seconds": 45.0, "epoch_seconds": 20.0}), daemon=True)
    sent: list[float] = []  # the times of the browser's messages to the server (a poll is one)
    with StreamlitServer(runs, slots_dir=tmp_path / "slots", log=tmp_path / "streamlit.log") as server, \
            sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.on("websocket", lambda socket: socket.on("framesent", lambda _: sent.append(time.monotonic())))
            page.goto(f"{server.url}/Train?run={run_id}")
            wait_rendered(page, "Train")
            simulation.start()
            first = wait_until(lambda: shown_batch(page), "the live status line", 60)
            wait_until(lambda: (shown_batch(page) or 0) > first, "a poll that shows a later batch", 30)

            page.evaluate(SET_VISIBILITY, True)
            page.wait_for_timeout(2_000)  # the page's rerun that turns the polling off
            hidden_at, quiet_from = shown_batch(page), time.monotonic()
            page.wait_for_timeout(6_000)  # three polls' worth
            assert [t for t in sent if t > quiet_from] == []  # not one message: no poll
            assert shown_batch(page) == hidden_at  # the last view stays, unchanged
            assert run_batch(store.progress(run_id)) > hidden_at  # while the run went on

            page.evaluate(SET_VISIBILITY, False)
            caught_up = wait_until(lambda: (shown_batch(page) or 0) > hidden_at and shown_batch(page), "a fresh view", 20)
            shown_again = time.monotonic()
            wait_until(lambda: (shown_batch(page) or 0) > caught_up, "polling again", 30)
            assert len([t for t in sent if t > shown_again]) >= 1
        finally:
            browser.close()
        simulation.join(timeout=60)
