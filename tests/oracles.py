"""Helpers shared by the tests that check cnnkit against Keras itself (the oracle).

Importing this module is cheap: TensorFlow loads on the first call, as in the tests' fixtures.
The browser tests' server and Chromium are here too.
"""

import contextlib
import json


def spec_layers(model) -> list:
    """The model's layers that correspond to shape-calculator rows (input and preprocessing left out)."""
    from cnnkit.model.models import PREPROCESS_LAYER
    from cnnkit.model.tf_import import keras

    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and layer.name != PREPROCESS_LAYER]


def trained_run(folder, spec_dict: dict):
    """A finished run of `spec_dict` in `folder`, trained in this process on the bundled sample
    (module fixtures run before conftest hides the real data, so this hides it itself)."""
    import pytest

    from cnnkit.model.training import run_job
    from cnnkit.runs.store import RunStore
    from cnnkit.specs import ExperimentSpec

    store = RunStore(folder)
    record = store.create(ExperimentSpec.from_dict(spec_dict))
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        run_job(store, record.run_id)
    return store.get(record.run_id)


def require_browser() -> None:
    """Skip the test, saying why, where Playwright or Chromium is missing."""
    import pytest

    from cnnkit.lab.browser import browser_available

    why_not = browser_available()
    if why_not:
        pytest.skip(f"{why_not}: needed for the browser test")


@contextlib.contextmanager
def app_serving(folder, runs: list[dict]):
    """`streamlit run app.py` on a fresh runs folder in `folder` holding these tiny trained runs
    (their spec dicts), offline; the test is skipped where Chromium is missing."""
    from cnnkit.lab.browser import StreamlitServer

    require_browser()
    for spec_dict in runs:
        trained_run(folder / "runs", spec_dict)
    with StreamlitServer(folder / "runs", slots_dir=folder / "slots", log=folder / "streamlit.log",
                         env={"KERAS_HOME": str(folder / "keras")}) as running:
        yield running


@contextlib.contextmanager
def chromium():
    """Debian's Chromium through Playwright, closed afterwards."""
    from playwright.sync_api import sync_playwright

    from cnnkit.lab.browser import launch_browser

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        try:
            yield browser
        finally:
            browser.close()


def wait_until(check, what: str, timeout: float = 120.0, poll: float = 0.05):
    """check()'s first truthy value, polled; AssertionError naming `what` after `timeout` s."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out waiting for {what}")


def wait_reaped(pid: int) -> None:
    """Until the server has reaped the worker and run what follows its end (runs/jobs.watch_child).
    A run reads "finished" a moment before its worker lets go of its slot, prints its last line
    and ends."""
    import threading

    from cnnkit.runs import jobs

    assert any(child.pid == pid for child in jobs._children), f"{pid} is no worker this process started"
    name = jobs.reaper_name(pid)
    wait_until(lambda: not any(thread.name == name for thread in threading.enumerate()),
               f"the server reaping worker {pid}", timeout=60)


@contextlib.contextmanager
def ray_cluster():
    """A two-node Ray cluster on this machine: a head that trains nothing (0 CPUs) and a worker
    node with 2 CPUs; yields (cluster, worker node). The nodes train on the bundled sample."""
    import pytest
    import ray
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as env:
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        env.setenv("CNNKIT_OFFLINE", "1")
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
        worker = cluster.add_node(num_cpus=2)
        cluster.wait_for_nodes()
        try:
            yield cluster, worker
        finally:
            ray.shutdown()
            cluster.shutdown()


def live_views(at) -> list[dict]:
    """The data of every live monitor on an AppTest's page (ui.live_monitor: a components.v2
    element, which AppTest keeps as JSON): {"status": …} and {"curves": …} dicts, in page order."""
    return [json.loads(e.proto.json) for e in at.get("bidi_component") if e.proto.component_name == "cnnkit_live_monitor"]


def live_texts(at) -> list[str]:
    """What the live monitors say in words: the status caption, sentence and speed, the steering
    events and the notes under the curves."""
    found = []
    for view in live_views(at):
        status, curves = view.get("status") or {}, view.get("curves") or {}
        found += [status.get("caption"), status.get("text"), status.get("details"), *curves.get("empty", []),
                  *curves.get("events", []), curves.get("note")]
    return [line for line in found if line]
