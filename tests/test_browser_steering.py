"""Steering a run in a real browser (Chromium + Playwright, `streamlit run app.py`, offline).

Start a small CNN on the Train page, pause it, set a new learning rate, resume, stop it at the
end of an epoch, then continue it one more epoch. The oracles are the run folder's own records:
the commands' events in order, the learning rate of each epoch in the history, no batch after
the stop, epochs 1…4 without a gap on the page's curve, and the test result shown. The epoch
boundary is made exact by CNNKIT_TEST_HOLD_AT (the job holds after the epoch's last batch until
a stop). The stop latency is printed, never asserted (the machine is shared).
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from cnnkit import settings
from cnnkit.lab.browser import (
    VIEWPORT,
    StreamlitServer,
    launch_browser,
    wait_rendered,
)
from cnnkit.runs.store import RunStore
from cnnkit.specs import ExperimentSpec
from tests.oracles import require_browser, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844}

EPOCHS, BATCH = 3, 16
STEPS = 3600 // BATCH  # the bundled sample's 4,000 training images, 10% held out for validation
DRAFT = {"name": "steered", "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3},
                                       {"type": "maxpool2d", "pool_size": 2}, {"type": "flatten"},
                                       {"type": "dense", "units": 16}],
         "baseline": None, "dataset": {"name": "mnist"},
         "training": {"epochs": EPOCHS, "batch_size": BATCH, "learning_rate": 0.001, "seed": 3}}
PLOT_TRACES = "() => [...document.querySelectorAll('.js-plotly-plot')].map(p => (p.data || []).map(t => [t.name, t.x]))"
PLOT_LABELS = ("() => [...document.querySelectorAll('.js-plotly-plot')]"
               ".map(p => ((p.layout || {}).annotations || []).map(a => a.text))")


def events(run_dir: Path) -> list[dict]:
    path = run_dir / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def kinds(run_dir: Path) -> list[str]:
    return [event["event"] for event in events(run_dir)]


def shoot(page, name: str) -> None:
    """With CNNKIT_SCREENSHOTS_DIR set: the page at laptop and at phone width (NAME.png, NAME-phone.png)."""
    folder = settings.get().screenshots_dir
    if not folder:
        return
    target = ROOT / folder
    target.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target / f"{name}.png"))
    page.set_viewport_size(PHONE)
    time.sleep(1.5)  # the layout settles
    page.screenshot(path=str(target / f"{name}-phone.png"))
    page.set_viewport_size(VIEWPORT)


def test_pause_lr_resume_stop_at_epoch_end_then_continue(tmp_path):
    from playwright.sync_api import sync_playwright

    require_browser()
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "draft.json").write_text(json.dumps(ExperimentSpec.from_dict(DRAFT).to_dict()))
    store = RunStore(runs)
    env = {"KERAS_HOME": str(tmp_path / "keras"), "CNNKIT_TEST_HOLD_AT": f"{EPOCHS}:{STEPS}"}
    with StreamlitServer(runs, slots_dir=tmp_path / "slots", env=env, log=tmp_path / "streamlit.log") as server, \
            sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{server.url}/Train")
            wait_rendered(page, "Train")
            page.get_by_role("button", name="Start training").click()
            run_dir = wait_until(lambda: next((r.path for r in store.list()), None), "the run folder")

            # Pause as soon as it trains; the page says so, and its caption is no longer "queued".
            wait_until(lambda: (store.progress(run_dir.name) or {}).get("phase") == "training", "training")
            page.get_by_role("button", name="Pause").click()
            wait_until(lambda: "pause" in kinds(run_dir), "the pause event")
            # the live monitor's words are in its shadow root: Playwright's locators go in, innerText does not
            page.get_by_text(re.compile("Paused: the CNN waits")).wait_for(timeout=30_000)
            status = page.locator(".status-box").first.inner_text()
            assert "running · run" in status and "queued · run" not in status
            paused_batches = len(store.batches(run_dir.name))

            # the fragment redraws every second: type and click Set at once (the blur sends the value with it)
            page.get_by_role("spinbutton", name="New learning rate").first.fill("0.0003")
            page.get_by_role("button", name="Set", exact=True).first.click()
            wait_until(lambda: "lr" in kinds(run_dir), "the learning-rate event")
            assert len(store.batches(run_dir.name)) == paused_batches  # nothing trained while paused
            resume = page.get_by_role("button", name="Resume")
            resume.wait_for(timeout=30_000)  # the live fragment has redrawn: paused, with its Resume
            # the live monitor's two charts (in its shadow root: Playwright's locators go in), now with
            # the pause and the new rate marked at one place
            charts = page.locator("figure.chart")
            wait_until(lambda: charts.count() >= 2 and all(
                "⏸ paused · lr → 0.0003" in (charts.nth(i).get_attribute("data-marks") or "") for i in range(2)),
                "the marked live curves", 30)
            # and in words for a screen reader: the newest value of each line
            assert charts.nth(0).locator("canvas").get_attribute("aria-label").startswith("Loss: CNN train, per batch ")
            shoot(page, "train-live")  # paused: the controls, the marked curves, Active runs in the sidebar
            resume.click()
            wait_until(lambda: "resume" in kinds(run_dir), "the resume event")

            # Held after the last batch of the last epoch: Stop at the epoch boundary.
            wait_until(lambda: (store.progress(run_dir.name) or {}).get("held"), "the epoch's end", 300)
            batches_before_stop = len(store.batches(run_dir.name))
            clicked = time.time()
            page.get_by_role("button", name="Stop").first.click()
            wait_until(lambda: "stop" in kinds(run_dir), "the stop event", 60)
            stop_latency = next(e["time"] for e in events(run_dir) if e["event"] == "stop") - clicked
            wait_until(lambda: not store.get(run_dir.name).is_active, "the final status")
            page.wait_for_function("() => document.body.innerText.includes('tested on the test split')",
                                   timeout=60_000)
            record = store.get(run_dir.name)
            assert record.status == "stopped" and record.epochs_completed == EPOCHS
            assert record.model_result("cnn")["tested_epoch"] == EPOCHS
            assert len(store.batches(run_dir.name)) <= batches_before_stop + 1
            assert kinds(run_dir) == ["pause", "lr", "resume", "stop"]
            # The click lands in epoch 1 on a quiet machine (an epoch takes about a second here); under
            # load it has landed in epoch 2. Either way the pause, the new rate and the history agree:
            pause_event, lr_event = events(run_dir)[:2]
            steered_epoch = lr_event["epoch"]
            assert lr_event["to"] == pytest.approx(0.0003) and 1 <= steered_epoch == pause_event["epoch"] <= EPOCHS
            # an epoch's record holds the rate it ended with: from the steered epoch on, the new one
            rates = [h["learning_rate"] for h in store.history(run_dir.name)]
            assert rates == pytest.approx([0.001] * (steered_epoch - 1) + [0.0003] * (EPOCHS - steered_epoch + 1))

            # Continue one more epoch: the same run, its curve goes on, a test result.
            page.get_by_role("button", name="Continue training for 1 more epoch").click()
            wait_until(lambda: store.get(run_dir.name).status == "finished", "the continued run", 300)
            page.wait_for_function("() => document.body.innerText.includes('CNN test accuracy')", timeout=60_000)
            record = store.get(run_dir.name)
            assert [h["epoch"] for h in store.history(run_dir.name)] == [1, 2, 3, 4]
            assert record.model_result("cnn")["tested_epoch"] == 4 and record.test_accuracy > 0.5
            assert record.meta["extensions"][0]["from_epoch"] == EPOCHS
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 2", timeout=60_000)
            traces = [t for plot in page.evaluate(PLOT_TRACES) for t in plot]
            assert ["CNN train", [1, 2, 3, 4]] in traces  # continuous across the continuation
            labels = {text for plot in page.evaluate(PLOT_LABELS) for text in plot}
            assert labels == {"⏸ paused · lr → 0.0003", "▶ continued"}  # pause and rate at one place
            print(f"\nstop at the epoch boundary: {stop_latency:.2f} s from the click to the end of training")
        finally:
            browser.close()
            for record in store.list():  # a failed check must not leave a held worker behind
                if record.is_active:
                    store.request_stop(record.run_id)
