"""The Ray engine's mirroring, its steering and its failures (test_ray_cluster.py covers a finished
run, a STOP and CNNKIT_ENGINE=ray; test_sweeping.py the same accuracies as the local engine).

The first tests need no Ray: a node's folder and the driver's, side by side in tmp_path, with the
deltas handed across by hand. The rest share one two-node Cluster (nothing trains on the head):
pause, a new learning rate and Ctrl-C reach a remote run through Ray, each exactly once; and a
node that dies mid-run leaves the run "failed", saying so, with nothing left training.
"""

import _thread
import json
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from cnnkit.runs import control
from cnnkit.runs.ray_engine import (
    CtrlC,
    FolderTail,
    RemoteTrial,
    apply_delta,
    folder_files,
    forward_commands,
)
from cnnkit.runs.store import RunStore, append_jsonl, atomic_write_json, pid_alive, read_json
from cnnkit.specs import ExperimentSpec
from tests.oracles import ray_cluster, wait_until
from tests.test_sweeping import TINY

# Long enough that a command sent once it trains arrives while it still trains (it is stopped
# long before the end): 2,000 images in batches of 10, 30 epochs.
LONG = {**TINY, "dataset": {**TINY["dataset"], "train_limit": 2000}, "training": {**TINY["training"],
        "epochs": 30, "batch_size": 10}}
TIMEOUT = 120  # each trial's worker imports TensorFlow (~3-5 s) on a shared 2-core machine


class FakeMailbox:
    """The actor's interface (`put.remote(run_id, line)`), in this process."""

    def __init__(self):
        self.lines: list[str] = []
        self.put = self  # mailbox.put.remote(...)

    def __repr__(self) -> str:
        return f"FakeMailbox({len(self.lines)})"

    def remote(self, run_id: str, line: str) -> None:
        self.lines.append(line)


def driver_and_node(tmp_path) -> tuple[RunStore, str, Path]:
    """A queued run in the driver's store, and its copy as the task recreates it on a node."""
    store = RunStore(tmp_path / "driver")
    run_id = store.create(ExperimentSpec.from_dict(TINY)).run_id
    node_dir = tmp_path / "node" / run_id
    node_dir.mkdir(parents=True)
    for name, data in folder_files(store.path(run_id)).items():
        (node_dir / name).write_bytes(data)
    return store, run_id, node_dir


def test_what_the_driver_sent_is_not_sent_back_and_logs_travel_by_their_new_bytes(tmp_path):
    store, run_id, node_dir = driver_and_node(tmp_path)
    tail = FolderTail(node_dir)
    assert tail.changes() == {}  # run.json and spec.json came from the driver
    append_jsonl(node_dir / "batches.jsonl", {"batch": 1})
    first = tail.changes()
    append_jsonl(node_dir / "batches.jsonl", {"batch": 2})
    second = tail.changes()
    assert first["append"] == {"batches.jsonl": b'{"batch": 1}\n'}
    assert second["append"] == {"batches.jsonl": b'{"batch": 2}\n'}  # only what is new
    trial = RemoteTrial(run_id, stream=None)
    for delta in (first, second):
        apply_delta(store, trial, delta)
    assert store.batches(run_id) == [{"batch": 1}, {"batch": 2}]


def test_the_last_word_and_the_model_travel_together_at_the_end(tmp_path):
    store, run_id, node_dir = driver_and_node(tmp_path)
    tail = FolderTail(node_dir)
    meta = read_json(node_dir / "run.json")
    atomic_write_json(node_dir / "run.json", {**meta, "status": "running", "pid": 1})
    atomic_write_json(node_dir / "progress.json", {"phase": "training"})
    (node_dir / "model.keras").write_bytes(b"checkpoint of epoch 1")
    live = tail.changes()
    assert set(live["json"]) == {"run.json", "progress.json"} and live["files"] == {}  # no checkpoint yet
    atomic_write_json(node_dir / "run.json", {**meta, "status": "finished", "pid": 1})
    assert tail.changes() == {}  # "finished" waits for the model file
    final = tail.changes(final=True)
    assert final["files"] == {"model.keras": b"checkpoint of epoch 1"}
    assert json.loads(final["json"]["run.json"])["status"] == "finished"
    trial = RemoteTrial(run_id, stream=None, node="node-b")
    apply_delta(store, trial, live)
    mirrored = apply_delta(store, trial, final)
    assert mirrored["status"] == "finished" and mirrored["pid"] == os.getpid()  # the driver answers for it
    assert mirrored["engine"] == "ray" and mirrored["ray_node"] == "node-b"
    assert store.get(run_id).status == "finished" and store.get(run_id).has_model("cnn")


def test_a_command_reaches_the_node_once_and_does_not_come_back(tmp_path):
    store, run_id, node_dir = driver_and_node(tmp_path)
    tail, mailbox, delivered = FolderTail(node_dir), FakeMailbox(), 0
    trial = RemoteTrial(run_id, stream=None)
    append_jsonl(store.path(run_id) / "control.jsonl", {"action": "pause", "time": 1.0})
    for _ in range(3):  # three rounds of the driver's loop and the task's
        forward_commands(store, trial, mailbox)
        with open(node_dir / "control.jsonl", "a", encoding="utf-8") as handle:  # the task's side
            handle.writelines(mailbox.lines[delivered:])
        delivered = len(mailbox.lines)
        delta = tail.changes()
        if delta:
            apply_delta(store, trial, delta)
    assert mailbox.lines == ['{"action": "pause", "time": 1.0}\n']  # once: an echo would pause it again
    assert (node_dir / "control.jsonl").read_text().count("pause") == 1
    assert store.path(run_id).joinpath("control.jsonl").read_text().count("pause") == 1


def test_ctrl_c_waits_for_the_loop_and_the_handler_is_put_back():
    before = signal.getsignal(signal.SIGINT)
    with CtrlC() as ctrl_c:
        _thread.interrupt_main()  # as Ctrl-C: noted, not raised in the middle of writing a delta
        time.sleep(0.05)
        with pytest.raises(KeyboardInterrupt):
            ctrl_c.check()  # raised where the driver's loop looks
        ctrl_c.check()  # once per press
    assert signal.getsignal(signal.SIGINT) is before


# ---------------------------------------------------------------------------
# On a real two-node cluster


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray", reason="Ray is an optional extra (pip install -r requirements-ray.txt); "
                                      ".ci/run installs it")
    with ray_cluster() as running:
        yield running


def events_named(store: RunStore, run_id: str, name: str) -> list[dict]:
    return [event for event in control.events(store, run_id) if event.get("event") == name]


def training(store: RunStore, run_id: str) -> bool:
    progress = store.progress(run_id) or {}
    return store.get(run_id).status == "running" and progress.get("phase") == "training" \
        and progress.get("batch", 0) >= 1


def still_running_tasks(address: str) -> list:
    from ray.util.state import list_tasks

    return [t for t in list_tasks(address=address, filters=[("name", "=", "train_remotely")])
            if t.state not in ("FINISHED", "FAILED")]


def test_pause_a_new_rate_and_ctrl_c_reach_the_remote_run_once(cluster, tmp_path):
    from cnnkit.runs.ray_engine import run_trials

    head, _ = cluster
    store = RunStore(tmp_path / "driver_runs")
    run_id = store.create(ExperimentSpec.from_dict(LONG)).run_id
    steps = []

    def steer():  # as the Train page would, through the driver's run folder only
        try:
            wait_until(lambda: training(store, run_id), "the remote run trains, mirrored here")
            control.send(store, run_id, "pause")
            wait_until(lambda: events_named(store, run_id, "pause"), "the job paused")
            control.send(store, run_id, "lr", 0.0123)
            wait_until(lambda: events_named(store, run_id, "lr"), "the job took the new rate")
            time.sleep(2.0)  # several rounds of both polls: an echoed command would show up again
            steps.append([(e["event"], e.get("to")) for e in control.events(store, run_id)])
        finally:
            _thread.interrupt_main()  # Ctrl-C in the driver

    helper = threading.Thread(target=steer, daemon=True)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        run_trials(store, [run_id], address=head.address, poll_seconds=0.2)
    helper.join(timeout=10)
    assert steps == [[("pause", None), ("lr", 0.0123)]]  # each once, and in order
    final = store.get(run_id)
    assert final.status == "stopped", final.meta.get("reason")  # the job itself ended it, within the wait
    assert [e["event"] for e in control.events(store, run_id)][-1] == "stop"
    wait_until(lambda: not still_running_tasks(head.address), "nothing left on the cluster", timeout=30)


def test_a_node_that_dies_mid_run_leaves_the_run_failed_saying_so(cluster, tmp_path):
    # Last in this module: it takes the cluster's only worker node away.
    from cnnkit.runs.ray_engine import run_trials

    head, worker = cluster
    store = RunStore(tmp_path / "driver_runs")
    run_id = store.create(ExperimentSpec.from_dict(LONG)).run_id
    killer = threading.Thread(target=lambda: (wait_until(lambda: training(store, run_id), "the remote run trains"),
                                              head.remove_node(worker, allow_graceful=False)), daemon=True)
    killer.start()
    [meta] = run_trials(store, [run_id], address=head.address, poll_seconds=0.2)
    killer.join(timeout=30)
    try:
        assert meta["status"] == "failed" and store.get(run_id).status == "failed"
        assert meta["reason"].startswith(f"The Ray node {meta['ray_node']} died or became unreachable"), \
            meta["reason"]
        assert meta["pid"] == os.getpid()  # the driver still answers for the run
        pid = meta.get("ray_worker_pid")
        assert pid, "the node's training process was recorded"
        # Its Ray worker died with the node, and took the training process with it (a SIGTERM,
        # which cnnkit.worker turns into a clean stop): nothing trains on unwatched.
        wait_until(lambda: not pid_alive(pid), "the dead node's training process ends", timeout=30)
    finally:
        # The dead node could not clean up after itself.
        shutil.rmtree(meta.get("ray_folder") or tmp_path / "none", ignore_errors=True)
