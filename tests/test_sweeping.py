"""Sweeps end to end: `cnnkit sweep` on the local queue and on Ray gives the same accuracies, the
summary is the hand computation over the runs on disk, Ctrl-C stops every trial, a sweep counts
as one job, and nothing starts when one trial's spec is invalid.

The trials are tiny (200 training images of the bundled sample, 1 epoch, a 4-filter conv)."""

import importlib.util
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cnnkit.errors import RunError, SpecError
from cnnkit.runs import jobs, sweeping
from cnnkit.runs.store import RunStore, pid_alive
from cnnkit.runs.sweeps import SweepSpec
from tests.test_cli import REPO_ROOT, cli_env, last_json_line

TINY = {"dataset": {"name": "mnist", "train_limit": 200, "test_limit": 100, "validation_split": 0.1},
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
                   {"type": "flatten"}, {"type": "dense", "units": 10}],
        "training": {"epochs": 1, "batch_size": 50, "seed": 7}, "name": "tiny"}
WITH_DROPOUT = [*TINY["layers"][:3], {"type": "dropout", "rate": 0.5}, TINY["layers"][3]]
AB = {"name": "dropout or not", "base": TINY, "seeds": 2,
      "variants": [{"name": "A", "changes": {}}, {"name": "B", "changes": {"layers": WITH_DROPOUT}}]}


def run_sweep_cli(tmp_path, document: dict, *extra, env_extra=None) -> subprocess.CompletedProcess:
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(document))
    env = cli_env(tmp_path / "keras", **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "cnnkit", "sweep", str(path), "--json", *map(str, extra)],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600)


def by_trial(result: dict) -> dict:
    return {(json.dumps(t["config"], sort_keys=True), t["seed"]): t["test_accuracy"] for t in result["trials"]}


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sweep_local")
    # Two slots: two trials train at once, as on the Ray node below (2 CPUs, 1 a trial), so the
    # four worker processes' TensorFlow start-ups overlap; every check here is about the results.
    completed = run_sweep_cli(folder, AB, "--engine", "local", "--runs-dir", folder / "runs",
                              env_extra={"CNNKIT_MAX_JOBS": "2"})
    assert completed.returncode == 0, completed.stderr
    return folder / "runs", last_json_line(completed.stdout), completed


def test_the_json_result_has_the_specified_shape(local_sweep):
    runs, result, completed = local_sweep
    assert set(result) >= {"sweep_id", "engine", "trials", "summary", "comparison"}
    assert result["engine"] == "local"
    assert [(t["config"], t["seed"]) for t in result["trials"]] == [
        ({"variant": "A"}, 7), ({"variant": "A"}, 8), ({"variant": "B"}, 7), ({"variant": "B"}, 8)]
    assert {t["status"] for t in result["trials"]} == {"finished"}
    assert set(result["trials"][0]) == {"run_id", "config", "seed", "status", "test_accuracy"}
    assert set(result["summary"][0]) >= {"config", "n", "mean", "std", "ci95"}
    # A progress line per trial on stderr, and its end
    assert completed.stderr.count("finished: test accuracy") == 4


def test_every_trial_is_a_normal_run_tagged_with_the_sweep(local_sweep):
    runs, result, _ = local_sweep
    store = RunStore(runs)
    for index, trial in enumerate(result["trials"]):
        record = store.get(trial["run_id"])
        assert record.status == "finished" and record.has_model("cnn")
        assert record.meta["sweep_id"] == result["sweep_id"] and record.meta["sweep_trial"] == index
        assert record.test_accuracy == trial["test_accuracy"]
        assert record.spec.training.seed == trial["seed"]
    assert len(store.get(result["trials"][2]["run_id"]).spec.layers) == 5  # B has the dropout layer


def test_the_summary_is_the_hand_computation_over_the_runs_on_disk(local_sweep):
    runs, result, _ = local_sweep
    store = RunStore(runs)
    accuracy = {(t["config"]["variant"], t["seed"]): store.get(t["run_id"]).test_accuracy for t in result["trials"]}
    t_975_df1 = 12.7062  # Student t, two-sided 95%, 1 degree of freedom (a table)
    for summary, label in zip(result["summary"], "AB", strict=True):
        values = np.array([accuracy[(label, 7)], accuracy[(label, 8)]])
        assert summary["n"] == 2
        assert summary["mean"] == pytest.approx(values.mean())
        assert summary["std"] == pytest.approx(values.std(ddof=1))
        half = t_975_df1 * values.std(ddof=1) / math.sqrt(2)
        assert summary["ci95"] == pytest.approx([values.mean() - half, values.mean() + half], abs=1e-6)
    differences = np.array([accuracy[("B", s)] - accuracy[("A", s)] for s in (7, 8)])
    comparison = result["comparison"]
    assert comparison["n"] == 2
    assert comparison["mean_difference"] == pytest.approx(differences.mean())
    assert comparison["verdict"]


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is an optional extra "
                    "(pip install -r requirements-ray.txt); .ci/run installs it")
def test_ray_runs_the_same_sweep_to_the_same_accuracies(local_sweep, tmp_path):
    _, local, _ = local_sweep
    completed = run_sweep_cli(tmp_path, AB, "--engine", "ray", "--runs-dir", tmp_path / "runs")
    assert completed.returncode == 0, completed.stderr
    remote = last_json_line(completed.stdout)
    assert remote["engine"] == "ray"
    assert by_trial(remote) == by_trial(local)  # identical configurations and seeds, identical accuracies
    timeless = [{k: v for k, v in row.items() if k != "seconds"} for row in remote["summary"]]
    assert timeless == [{k: v for k, v in row.items() if k != "seconds"} for row in local["summary"]]
    assert remote["comparison"] == local["comparison"]
    store = RunStore(tmp_path / "runs")
    for trial in remote["trials"]:
        record = store.get(trial["run_id"])
        assert record.meta["engine"] == "ray" and record.has_model("cnn")
        assert (record.path / "predictions_cnn.npz").is_file() and store.history(trial["run_id"])


def test_ctrl_c_stops_every_trial(tmp_path):
    document = {"base": TINY, "seeds": 3}
    path = tmp_path / "sweep.json"
    path.write_text(json.dumps(document))
    # The first trial holds after batch 2 of epoch 1 until it is stopped: Ctrl-C lands mid-training.
    env = cli_env(tmp_path / "keras", CNNKIT_TEST_HOLD_AT="1:2")
    child = subprocess.Popen([sys.executable, "-m", "cnnkit", "sweep", str(path), "--json", "--runs-dir",
                              str(tmp_path / "runs")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=env, cwd=REPO_ROOT)
    store = RunStore(tmp_path / "runs")
    deadline = time.monotonic() + 120
    while not any((store.progress(r.run_id) or {}).get("batch", 0) >= 2 for r in store.list()):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the first trial never reached its hold"
        time.sleep(0.2)
    pids = [r.meta.get("pid") for r in store.list()]
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=180)
    assert child.returncode == 130, err
    result = last_json_line(out)
    assert [t["status"] for t in result["trials"]] == ["stopped"] * 3
    assert all(not store.get(t["run_id"]).is_active for t in result["trials"])
    deadline = time.monotonic() + 30  # a worker writes "stopped", then exits
    while [pid for pid in pids if pid and pid_alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in pids if pid and pid_alive(pid)]  # no worker left behind


def test_a_sweep_counts_as_one_job_toward_the_visitor_cap(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOBS_PER_WORKSPACE", "1")
    store = RunStore(tmp_path / "runs")
    record = sweeping.create_sweep(store, SweepSpec.from_dict({"base": TINY, "seeds": 4}), engine="local")
    assert len(record.trials) == 4 and jobs.job_count(store.list()) == 1  # 4 queued trials, one job
    with pytest.raises(RunError, match="CNNKIT_MAX_JOBS_PER_WORKSPACE"):
        sweeping.create_sweep(store, SweepSpec.from_dict({"base": TINY, "seeds": 2}), engine="local")
    assert sweeping.stop_sweep(store, record.sweep_id) == 4


def test_an_invalid_trial_stops_the_sweep_before_anything_is_created(tmp_path):
    store = RunStore(tmp_path / "runs")
    document = {"base": TINY, "grid": {"layers[0].filters": [4, 0]}, "seeds": 1}
    with pytest.raises(SpecError) as caught:
        sweeping.create_sweep(store, SweepSpec.from_dict(document), engine="local")
    assert "layers[0].filters" in str(caught.value)
    assert store.list() == [] and sweeping.list_sweeps(store) == []


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "sweep-1", "", None, "sweep-20260101-000000-zzzz"])
def test_a_sweep_id_from_a_url_cannot_name_another_file(tmp_path, hostile):
    with pytest.raises(RunError, match="not a sweep id"):
        sweeping.load_sweep(RunStore(tmp_path), hostile)


def test_each_ray_task_asks_for_the_resources_the_settings_give(tmp_path, monkeypatch):
    from cnnkit.runs import ray_engine

    asked = []

    class FakeRay:  # stands in for the ray module: records what each remote() asks for
        def remote(self, **resources):
            asked.append(resources)
            if len(asked) == 2:
                raise StopIteration  # the task is declared: nothing needs to run
            return lambda cls: type("Handle", (), {"remote": staticmethod(lambda: None)})

    monkeypatch.setattr(ray_engine, "connect", lambda address: FakeRay())
    monkeypatch.setenv("CNNKIT_RAY_CPUS_PER_TRIAL", "2")
    monkeypatch.setenv("CNNKIT_RAY_GPUS_PER_TRIAL", "0.5")
    store = RunStore(tmp_path / "runs")
    record = store.create(SweepSpec.from_dict({"base": TINY}).base)
    with pytest.raises(StopIteration):
        ray_engine.run_trials(store, [record.run_id])
    assert asked == [{"num_cpus": 0}, {"num_cpus": 2.0, "num_gpus": 0.5, "max_retries": 0}]  # the mailbox, the task
