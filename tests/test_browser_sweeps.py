"""An A/B sweep in a real browser (Chromium + Playwright, `streamlit run app.py`, offline).

Open Build from an experiment link of a tiny network, keep it as A, widen its first convolution
and save that as B, go to Sweeps, choose A/B over 2 seeds (4 tiny trials), launch, and wait for
the verdict. The oracle is the run folder: the verdict on the page is the one computed from the
four runs on disk (sweeping.results), and every trial is a finished run tagged with the sweep.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from cnnkit import settings
from cnnkit.lab.browser import VIEWPORT, wait_rendered
from cnnkit.runs import sweeping
from cnnkit.runs.store import RunStore
from cnnkit.specs import ExperimentSpec
from cnnkit.views.links import link_value
from tests.oracles import app_serving, chromium, wait_until

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
PHONE = {"width": 390, "height": 844}
TINY = {"name": "tiny ab", "baseline": None,
        "dataset": {"name": "mnist", "train_limit": 200, "test_limit": 100, "validation_split": 0.1},
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
                   {"type": "flatten"}],
        "training": {"epochs": 1, "batch_size": 50, "seed": 7}}
BODY_HAS = "text => document.body.innerText.includes(text)"


def wait_text(page, text: str, timeout: float = 60.0) -> None:
    page.wait_for_function(BODY_HAS, arg=text, timeout=timeout * 1000)


def shoot(page, name: str, at: str, settle: float = 0.0) -> None:
    """With CNNKIT_SCREENSHOTS_DIR set: after `settle` s, the page scrolled to the text `at`, at laptop
    and at phone width (NAME.png, NAME-phone.png). Streamlit scrolls inside its own container: no
    full-page shot."""
    folder = settings.get().screenshots_dir
    if not folder:
        return
    time.sleep(settle)
    target = ROOT / folder
    target.mkdir(parents=True, exist_ok=True)
    for size, suffix in ((VIEWPORT, ""), (PHONE, "-phone")):
        page.set_viewport_size(size)
        time.sleep(1.5)  # the layout settles
        page.get_by_text(at, exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
        time.sleep(0.5)
        page.screenshot(path=str(target / f"{name}{suffix}.png"))
    page.set_viewport_size(VIEWPORT)


def test_ab_from_build_to_a_verdict(tmp_path):
    with app_serving(tmp_path, []) as server, chromium() as browser:
        store = RunStore(tmp_path / "runs")
        try:
            page = browser.new_context(viewport=VIEWPORT).new_page()
            page.goto(f"{server.url}/Build?exp={link_value(ExperimentSpec.from_dict(TINY))}")
            wait_rendered(page, "Build")
            wait_text(page, "Opened the linked experiment")

            # A: the link's network; B: its first convolution with 8 filters instead of 4
            page.get_by_role("button", name="Keep as A").click()
            wait_text(page, "Kept as variant A")
            page.get_by_text("Conv2D 4 × 3×3").first.click()  # the layer's box opens
            filters = page.get_by_role("spinbutton", name="filters").first
            filters.fill("8")
            filters.press("Enter")
            wait_text(page, "Conv2D 8 × 3×3")
            page.get_by_role("button", name="Save as variant B").click()
            wait_text(page, "Kept as variant B")

            # Sweeps (in the same session: the variants live in it), A/B over 2 seeds
            page.get_by_role("link", name="Compare A and B over several seeds on Sweeps").click()
            wait_rendered(page, "Sweeps")
            page.get_by_text("A/B (from Build)").click()
            wait_text(page, "6 trials")  # 2 variants × the default 3 seeds
            seeds = page.get_by_role("spinbutton", name="Seeds")
            seeds.fill("2")
            seeds.press("Enter")
            wait_text(page, "4 trials")
            shoot(page, "sweeps-define", "1 · Define")
            page.get_by_role("button", name="Launch").click()

            (record,) = wait_until(lambda: sweeping.list_sweeps(store), "the sweep record")
            wait_until(lambda: not any(store.get(run_id).is_active for run_id in record.run_ids),
                       "the four trials", timeout=300)
            result = sweeping.results(store, record.sweep_id)
            assert [(t["config"], t["seed"], t["status"]) for t in result["trials"]] == [
                ({"variant": "A"}, 7, "finished"), ({"variant": "A"}, 8, "finished"),
                ({"variant": "B"}, 7, "finished"), ({"variant": "B"}, 8, "finished")]
            assert [store.get(t["run_id"]).spec.layers[0].filters for t in result["trials"]] == [4, 4, 8, 8]
            assert all(store.get(run_id).meta["sweep_id"] == record.sweep_id for run_id in record.run_ids)
            verdict = result["comparison"]["verdict"]
            wait_text(page, verdict)  # the page's polling noticed the end and drew the results
            assert "4 of 4 trials finished" in page.inner_text("body")
            page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1", timeout=30_000)
            shoot(page, "sweeps-read", "3 · Read", settle=1.0)  # the charts finish drawing (for the shot only)
        finally:
            for record in store.list():  # a failed check must not leave trials training behind
                if record.is_active:
                    store.request_stop(record.run_id)
