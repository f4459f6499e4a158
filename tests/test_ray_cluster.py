"""The Ray engine on a two-node cluster on this machine (ray.cluster_utils.Cluster): the trials
run on the worker node in folders of their own, and everything reaches the driver's runs folder
through Ray; a STOP in the driver's folder ends a remote run "stopped" and leaves nothing running."""

import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (pip install -r requirements-ray.txt); "
                                        ".ci/run installs it")

from cnnkit.runs.ray_engine import run_trials  # noqa: E402
from cnnkit.runs.store import RunStore  # noqa: E402
from cnnkit.specs import ExperimentSpec  # noqa: E402
from tests.oracles import ray_cluster  # noqa: E402
from tests.test_sweeping import TINY  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with ray_cluster() as running:
        yield running


def test_results_travel_through_ray_not_the_filesystem(cluster, tmp_path):
    head, worker = cluster
    store = RunStore(tmp_path / "driver_runs")
    record = store.create(ExperimentSpec.from_dict(TINY))
    [meta] = run_trials(store, [record.run_id], address=head.address)
    assert meta["status"] == "finished", meta.get("reason")
    assert meta["ray_node_id"] == worker.node_id  # the worker node trained it, not the head
    remote_folder = Path(meta["ray_folder"])
    assert store.root.resolve() not in remote_folder.resolve().parents
    assert not remote_folder.exists()  # the node's copy is gone: the files below came through Ray
    finished = store.get(record.run_id)
    assert finished.status == "finished" and finished.has_model("cnn")
    assert (finished.path / "predictions_cnn.npz").is_file() and store.history(record.run_id)
    assert 0.0 < finished.test_accuracy <= 1.0
    assert "run " in (finished.path / "log.txt").read_text()  # the node's worker log, streamed back


def test_a_stop_in_the_driver_folder_stops_the_remote_run(cluster, tmp_path):
    head, _ = cluster
    store = RunStore(tmp_path / "driver_runs")
    record = store.create(ExperimentSpec.from_dict(TINY))
    finals = []
    driver = threading.Thread(target=lambda: finals.extend(run_trials(
        store, [record.run_id], address=head.address, env={"CNNKIT_TEST_HOLD_AT": "1:2"})))
    driver.start()
    deadline = time.monotonic() + 120
    while (store.progress(record.run_id) or {}).get("batch", 0) < 2:  # it trains, mirrored live
        assert driver.is_alive() and time.monotonic() < deadline, "the remote run never reached its hold"
        time.sleep(0.2)
    store.request_stop(record.run_id)
    driver.join(timeout=120)
    assert not driver.is_alive()
    assert finals[0]["status"] == "stopped"
    from ray.util.state import list_tasks

    def still_running():
        return [t for t in list_tasks(address=head.address, filters=[("name", "=", "train_remotely")])
                if t.state not in ("FINISHED", "FAILED")]

    deadline = time.monotonic() + 30  # the state API hears of a task's end a moment later
    while still_running() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not still_running()  # nothing left on the cluster


def test_cnnkit_engine_ray_sends_an_ordinary_run_to_the_cluster(cluster, tmp_path, monkeypatch):
    # A Train page Start (jobs.start) under CNNKIT_ENGINE=ray: its worker process is the driver.
    from cnnkit.runs import jobs

    head, worker = cluster
    monkeypatch.setenv("CNNKIT_ENGINE", "ray")
    monkeypatch.setenv("CNNKIT_RAY_ADDRESS", head.address)
    store = RunStore(tmp_path / "runs")
    record = jobs.start(store, ExperimentSpec.from_dict(TINY))
    finished = jobs.wait(store, record.run_id, timeout=180)
    assert finished.status == "finished", finished.problem or finished.meta.get("reason")
    assert finished.meta["engine"] == "ray" and finished.meta["ray_node_id"] == worker.node_id
    assert finished.has_model("cnn")
