"""Crashes and interruptions lose nothing (issue 5).

- A training process killed with SIGKILL in the middle of an epoch (a real subprocess, a real
  kill) leaves a run that lists as interrupted, with every finished epoch in its history and a
  model.keras that loads and is the model of the last finished epoch: its validation loss is the
  one the history recorded for that epoch.
- Stop at any moment (while the model is built, mid-epoch, during the test evaluation) ends the
  job within one batch and leaves a consistent "stopped" run.
- Divergence (learning rate 1000) stops the run by itself with a reason and a suggestion.
- Corrupt or half-written run folders (hand-made and fuzzed run.json) list as damaged with the
  reason, never break listing or reading, and can be deleted without touching other runs.

Outcomes are printed as RELIABILITY_TALLY runs {...} (pytest -s) for docs/RELIABILITY.md.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnnkit.errors import RunError
from cnnkit.presets import PRESETS
from cnnkit.runs import jobs
from cnnkit.runs.store import STATUSES, RunStore, pid_alive
from cnnkit.specs import ExperimentSpec

TALLY: Counter = Counter()
HISTORY_KEYS = {"model", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                "images_per_second", "learning_rate"}
LAYERS = [{"type": "conv2d", "filters": 16, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
          {"type": "flatten"}, {"type": "dense", "units": 32}]


@pytest.fixture(scope="module", autouse=True)
def _report_tally():
    yield
    print(f"\nRELIABILITY_TALLY runs {dict(sorted(TALLY.items()))}")


def spec_for(train_limit=600, epochs=2, batch_size=32, **training) -> ExperimentSpec:
    return ExperimentSpec.from_dict({
        "layers": LAYERS, "dataset": {"name": "mnist", "train_limit": train_limit, "validation_split": 0.1},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": 3, **training}})


@pytest.fixture(scope="module")
def training():
    from cnnkit.model import training

    return training


@pytest.fixture
def store(runs_dir):
    return RunStore(runs_dir)


# ---------------------------------------------------------------------------
# The consistency oracle for a run that ended early


def check_history(store: RunStore, run_id: str) -> list[dict]:
    """Complete records only, epochs 1..n in order, and run.json agrees on n."""
    history = [h for h in store.history(run_id) if h["model"] == "cnn"]
    for record in history:
        assert HISTORY_KEYS <= set(record), record
        assert all(math.isfinite(record[key]) for key in ("loss", "val_loss", "accuracy"))
    assert [h["epoch"] for h in history] == list(range(1, len(history) + 1))
    assert store.get(run_id).epochs_completed == len(history)
    return history


def check_checkpoint(store: RunStore, run_id: str, history: list[dict], spec: ExperimentSpec) -> None:
    """model.keras exists iff an epoch finished, loads, and is the last finished epoch's model:
    on the run's own validation split it reproduces the val_loss the history recorded."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.models import load_model
    from cnnkit.model.tf_import import keras

    path = store.path(run_id) / "model.keras"
    assert path.is_file() == bool(history)
    if not history:
        return
    model = load_model(path)
    prepared = prepare_data(spec)
    probs = np.asarray(model.predict(prepared.x_val.astype("float32"), verbose=0, batch_size=1000))
    assert probs.shape == (len(prepared.y_val), 10) and np.isfinite(probs).all()
    loss = float(keras.losses.SparseCategoricalCrossentropy()(prepared.y_val, probs))
    # 1 %: training may compute in bfloat16 (3 significant digits); one epoch moves val_loss far more.
    assert loss == pytest.approx(history[-1]["val_loss"], rel=1e-2), (loss, history[-1])
    # ... and not an earlier epoch's: closer to the last epoch's val_loss than to any earlier one
    # that this oracle can tell apart (a plateau can give two epochs the same val_loss within 2%)
    last = history[-1]["val_loss"]
    for earlier in history[:-1]:
        if abs(earlier["val_loss"] - last) > 0.02 * last:
            assert abs(loss - last) < abs(loss - earlier["val_loss"]), (loss, earlier, history[-1])
    leftovers = [p.name for p in store.path(run_id).iterdir() if ".tmp" in p.name]
    assert not leftovers, leftovers


def check_stopped(store: RunStore, run_id: str, spec: ExperimentSpec) -> list[dict]:
    record = store.get(run_id)
    assert record.status == "stopped" and record.meta["reason"] == "Stopped on request."
    assert not record.is_active and record.meta.get("finished")
    assert store.progress(run_id)["phase"] == "done"
    history = check_history(store, run_id)
    # Tested with its last finished epoch's model (issue 9), unless none finished or the stop
    # came during that model's own test.
    tested = record.model_result("cnn").get("tested_epoch")
    assert (record.path / "predictions_cnn.npz").exists() == (tested is not None)
    assert (record.test_accuracy is not None) == (tested is not None)
    if tested is not None:
        assert tested == record.epochs_completed == len([h for h in history if h["model"] == "cnn"])
    check_checkpoint(store, run_id, history, spec)
    assert record.run_id in [r.run_id for r in store.list()]
    return history


# ---------------------------------------------------------------------------
# SIGKILL in the middle of an epoch: a real worker process, a real kill


@pytest.mark.slow
def test_sigkill_mid_epoch_keeps_every_finished_epoch_and_a_loadable_model(store, monkeypatch):
    # 3,600 training images at batch 32: 113 batches an epoch. The worker holds after batch 40 of
    # epoch 2 (a test hook), so the kill lands mid-epoch however fast or slow the machine is.
    monkeypatch.setenv("CNNKIT_TEST_HOLD_AT", "2:40")
    spec = spec_for(train_limit=4000, epochs=3)
    record = jobs.start(store, spec)
    run_id, pid = record.run_id, record.meta["pid"]
    deadline = time.monotonic() + 240
    while not (store.progress(run_id) or {}).get("held"):
        assert store.get(run_id).status in ("queued", "running"), store.log_tail(run_id)
        assert time.monotonic() < deadline, f"never reached the hold point: {store.progress(run_id)}"
        time.sleep(0.05)
    killed_at = dict(store.progress(run_id))
    assert (killed_at["epoch"], killed_at["batch"], killed_at["batches"]) == (2, 40, 113)
    os.kill(pid, signal.SIGKILL)
    while pid_alive(pid):
        time.sleep(0.05)

    record = store.get(run_id)
    assert record.status == "interrupted" and "killed or crashed" in record.problem
    assert [r.status for r in store.list()] == ["interrupted"]
    history = check_history(store, run_id)
    # Killed inside epoch 2: epoch 1 is kept, and the half-done epoch 2 is not recorded.
    assert len(history) == 1
    check_checkpoint(store, run_id, history, spec)
    # The kernel released the training slot with the process: the next job can start.
    slot = jobs.try_acquire(jobs.slots_dir(store), jobs.max_jobs())
    assert slot is not None
    slot.release()
    store.delete(run_id)
    assert store.list() == []
    TALLY["SIGKILL mid-epoch → interrupted, epochs kept"] += 1
    TALLY[f"  killed in epoch {killed_at['epoch']} at batch {killed_at['batch']}/{killed_at['batches']}, "
          f"{len(history)} finished epoch(s) kept"] += 1


# ---------------------------------------------------------------------------
# Stop at any moment


def test_stop_while_the_model_is_built_runs_at_most_one_batch(training, store, monkeypatch):
    # The click lands after the data loaded, while Keras builds the model: fit's first check sees it.
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    spec = spec_for()
    run_id = store.create(spec).run_id
    from cnnkit.model.models import build_model as build

    def build_then_click(*args, **kwargs):
        model = build(*args, **kwargs)
        store.request_stop(run_id)
        return model

    monkeypatch.setattr("cnnkit.model.levers.build_model", build_then_click)
    batches = []
    training.run_job(store, run_id, hook=lambda p: p.get("phase") == "training" and batches.append(p["batch"]))
    assert len(batches) <= 1, batches
    assert check_stopped(store, run_id, spec) == []
    TALLY["stop before the first batch → stopped"] += 1


def test_stop_mid_epoch_two_keeps_epoch_one(training, store, monkeypatch):
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    spec = spec_for(epochs=3)
    run_id = store.create(spec).run_id
    seen = []

    def hook(progress):
        if progress.get("phase") == "training":
            seen.append((progress["epoch"], progress["batch"]))
            if progress["epoch"] == 2 and not stopped_at:  # the first report of epoch 2 (a call of many steps)
                stopped_at.append(seen[-1])
                store.request_stop(run_id)

    stopped_at: list[tuple[int, int]] = []
    training.run_job(store, run_id, hook=hook)
    after = seen[seen.index(stopped_at[0]) + 1:]
    assert len(after) <= 1, after  # the batch running when STOP appeared may finish, no more
    history = check_stopped(store, run_id, spec)
    assert [h["epoch"] for h in history] == [1]
    assert store.get(run_id).model_result("cnn")["tested_epoch"] == 1  # epoch 1's model, tested
    TALLY["stop mid-epoch → stopped, finished epochs kept"] += 1


def test_stop_during_evaluation_ends_within_one_batch(training, store, monkeypatch):
    monkeypatch.setattr(training, "EVAL_BATCH_SIZE", 100)  # 1,000 test images: 10 predict batches
    predicted = []

    class CountingStop(training.StopEvaluation):
        def on_predict_batch_end(self, batch, logs=None):
            predicted.append(batch)
            super().on_predict_batch_end(batch, logs)

    monkeypatch.setattr(training, "StopEvaluation", CountingStop)
    spec = spec_for(epochs=1)
    run_id = store.create(spec).run_id

    def hook(progress):
        if progress.get("phase") == "evaluating":
            store.request_stop(run_id)

    training.run_job(store, run_id, hook=hook)
    assert predicted == [0], predicted
    history = check_stopped(store, run_id, spec)
    assert [h["epoch"] for h in history] == [1]  # training finished; only the evaluation was cut
    assert store.get(run_id).test_accuracy is None  # the person stopped that very test
    TALLY["stop during evaluation → stopped after 1 of 10 batches"] += 1


def test_stop_after_the_end_changes_nothing(training, store):
    spec = spec_for(epochs=1, train_limit=200)
    run_id = store.create(spec).run_id
    training.run_job(store, run_id)
    store.request_stop(run_id)
    record = store.get(run_id)
    assert record.status == "finished" and record.test_accuracy is not None
    TALLY["stop after the end → still finished"] += 1


# ---------------------------------------------------------------------------
# Divergence


def test_learning_rate_1000_stops_by_itself_with_a_reason_and_a_suggestion(training, store, monkeypatch):
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    healthy = store.create(spec_for(epochs=1, train_limit=200)).run_id
    training.run_job(store, healthy)
    spec = spec_for(epochs=3, learning_rate=1000.0)  # Adam, as typed on the Build page
    run_id = store.create(spec).run_id
    batches = []
    meta = training.run_job(store, run_id, hook=lambda p: p.get("phase") == "training" and batches.append(p))
    assert meta["status"] == "failed"
    assert "diverged" in meta["reason"] and "loss" in meta["reason"]
    assert "Lower the learning rate (it is 1000; try 100)" in meta["suggestion"]
    assert len(batches) < batches[0]["batches"]  # stopped itself inside the first epoch
    record = store.get(run_id)
    assert record.status == "failed" and record.meta["reason"] == meta["reason"]
    assert store.progress(run_id)["phase"] == "done"
    # Nothing else broke: the healthy run still lists as finished next to it.
    assert {r.run_id: r.status for r in store.list()} == {healthy: "finished", run_id: "failed"}
    TALLY[f"lr 1000 → failed after {len(batches)} batches with a suggestion"] += 1


# ---------------------------------------------------------------------------
# Damaged folders: hand-made cases, then fuzzed run.json contents


def _healthy(store: RunStore) -> str:
    run_id = store.create(PRESETS["dense-128"].experiment()).run_id
    store.update(run_id, status="stopped")
    return run_id


def _read_everything(store: RunStore, run_id: str) -> None:
    """What the pages do with a run; none of it may raise."""
    record = store.get(run_id)
    assert record.status in STATUSES
    record.to_dict()
    repr(record)
    (record.name, record.created, record.dataset, record.models, record.test_accuracy,
     record.epochs_completed, record.has_baseline, record.has_model(), record.is_active)
    store.history(run_id)
    store.batches(run_id)
    store.progress(run_id)
    store.log_tail(run_id)


DAMAGE = {
    "run.json is not JSON": lambda d: (d / "run.json").write_text('{"status": "runn'),
    "run.json is empty": lambda d: (d / "run.json").write_text(""),
    "run.json is a list": lambda d: (d / "run.json").write_text("[1, 2]"),
    "run.json is missing": lambda d: (d / "run.json").unlink(),
    "run.json is binary": lambda d: (d / "run.json").write_bytes(os.urandom(300)),
    "run.json is a folder": lambda d: ((d / "run.json").unlink(), (d / "run.json").mkdir()),
    "finished without model.keras": lambda d: _edit(d, status="finished"),
    "unknown status": lambda d: _edit(d, status="exploded"),
    "spec is invalid": lambda d: _edit(d, spec={"layers": "many"}),
    "models is a string": lambda d: _edit(d, models="lots"),
    "created is text": lambda d: _edit(d, created="yesterday"),
    "pid is text": lambda d: _edit(d, status="running", pid="1234"),
    "history.json is garbage": lambda d: (d / "history.json").write_text("[{]"),
    "progress.json is garbage": lambda d: (d / "progress.json").write_text("\x00\x01"),
    "batches.jsonl torn": lambda d: (d / "batches.jsonl").write_text('{"batch": 1}\n{"bat'),
    "model.keras is garbage": lambda d: (_edit(d, status="finished"), (d / "model.keras").write_text("no")),
}


def _edit(run_dir, **changes):
    meta = json.loads((run_dir / "run.json").read_text())
    meta.update(changes)
    (run_dir / "run.json").write_text(json.dumps(meta))


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_run_is_listed_with_a_reason_and_deletable(store, damage):
    keep = _healthy(store)
    victim = _healthy(store)
    DAMAGE[damage](store.path(victim))
    records = {r.run_id: r for r in store.list()}
    assert set(records) == {keep, victim}
    assert records[keep].status == "stopped"
    _read_everything(store, victim)
    if records[victim].status == "damaged":
        assert records[victim].problem
    TALLY[f"damaged folder → {records[victim].status}"] += 1
    if records[victim].status not in ("queued", "running"):
        store.delete(victim)
        assert [r.run_id for r in store.list()] == [keep]


def test_a_copied_in_folder_and_stray_files_never_break_the_ledger(store):
    keep = _healthy(store)
    (store.root / "holiday-photos").mkdir()
    (store.root / "holiday-photos" / "img.jpg").write_bytes(b"\xff\xd8")
    (store.root / "notes.txt").write_text("hello")
    (store.root / ".DS_Store").write_text("x")
    records = {r.run_id: r for r in store.list()}
    assert set(records) == {keep, "holiday-photos"}
    assert records["holiday-photos"].status == "damaged"
    assert records["holiday-photos"].problem == "run.json is missing"
    store.delete("holiday-photos")
    assert [r.run_id for r in store.list()] == [keep]
    with pytest.raises(RunError):
        store.delete("notes.txt")
    assert (store.root / "notes.txt").exists()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=10)
RUN_KEYS = ["status", "pid", "created", "updated", "name", "models", "spec", "reason", "finished",
            "queue_position", "data_source"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzzed_run_json_never_breaks_listing_or_reading(store, data):
    shutil.rmtree(store.root, ignore_errors=True)  # one tmp folder serves every example
    run_id = _healthy(store)
    path = store.path(run_id) / "run.json"
    meta = json.loads(path.read_text())
    for _ in range(data.draw(st.integers(1, 3))):
        key = data.draw(st.sampled_from(RUN_KEYS))
        if key == "models":
            value = data.draw(JSON | st.fixed_dictionaries({"cnn": JSON}))
        else:
            value = data.draw(JSON)
        meta[key] = value
    if data.draw(st.integers(0, 9)) == 0:
        meta = data.draw(JSON)
    path.write_text(json.dumps(meta))  # not atomic_write_json: a foreign file may hold NaN/Infinity
    records = store.list()
    assert [r.run_id for r in records] == [run_id]
    _read_everything(store, run_id)
    TALLY[f"fuzzed run.json → {records[0].status}"] += 1
    if records[0].is_active:  # e.g. "running" with this test's own pid: refused, as it should be
        with pytest.raises(RunError, match="stop it before deleting"):
            store.delete(run_id)
    else:
        store.delete(run_id)
        assert store.list() == []


def test_a_damaged_checkpoint_raises_value_error_naming_the_file(store, tmp_path):
    # The store cannot tell a damaged model.keras without TensorFlow: loading must fail with a
    # ValueError (what the Inspect page catches), never a zipfile.BadZipFile.
    import zipfile

    from cnnkit.model.models import build_model, load_model
    from cnnkit.specs import Dense, Flatten

    path = tmp_path / "model.keras"
    build_model((Flatten(), Dense(4)), (28, 28, 1), 10).save(path)
    raw = bytearray(path.read_bytes())
    info = zipfile.ZipFile(path).getinfo("model.weights.h5")
    raw[info.header_offset + 30 + len(info.filename) + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="model.keras is damaged"):
        load_model(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError):
        load_model(path)
    TALLY["damaged model.keras → ValueError with the file name"] += 1


# ---------------------------------------------------------------------------
# Several sessions at once on a public server: one global slot, private workspaces


def _rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
            line = next(line for line in handle if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0.0
    return int(line.split()[1]) / 1024


@pytest.mark.slow
def test_three_sessions_start_at_once_share_one_slot_and_release_their_memory(runs_dir, monkeypatch):
    from concurrent.futures import ThreadPoolExecutor

    from cnnkit.runs.workspaces import new_session_key, open_workspace

    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    monkeypatch.delenv("CNNKIT_SLOTS_DIR")  # the default: <runs>/.slots, shared by every workspace
    parent_before = _rss_mb(os.getpid())
    stores = [open_workspace(runs_dir, "session", new_session_key()) for _ in range(3)]
    spec = ExperimentSpec.from_dict({
        "layers": [{"type": "conv2d", "filters": 4}, {"type": "maxpool2d"}, {"type": "flatten"}],
        "dataset": {"name": "mnist", "train_limit": 200, "validation_split": 0.0},
        "training": {"epochs": 1, "batch_size": 64}})
    with ThreadPoolExecutor(3) as pool:  # three people press Start in the same instant
        records = list(pool.map(lambda store: jobs.start(store, spec), stores))
    runs = [(store, record.run_id) for store, record in zip(stores, records, strict=True)]
    pids = {record.meta["pid"] for record in records}
    cancelled, positions, worker_peak, most_running = None, set(), 0.0, 0
    deadline = time.monotonic() + 240
    while True:
        current = [store.get(run_id) for store, run_id in runs]
        running = [r for r in current if r.status == "running"]
        most_running = max(most_running, len(running))
        for record in running:
            worker_peak = max(worker_peak, _rss_mb(record.meta["pid"]))
        for (store, run_id), record in zip(runs, current, strict=True):
            if record.status == "queued" and record.meta.get("queue_position"):
                positions.add(record.meta["queue_position"])
                if cancelled is None and record.meta["queue_position"] == 2:
                    cancelled = run_id  # the last in line changes their mind
                    jobs.stop(store, run_id)
        if not any(r.is_active for r in current):
            break
        assert time.monotonic() < deadline, [r.status for r in current]
        time.sleep(0.1)

    assert most_running == 1, "two trainings ran at once with CNNKIT_MAX_JOBS=1"
    assert {1, 2} <= positions and cancelled
    outcomes = {run_id: store.get(run_id) for store, run_id in runs}
    assert outcomes[cancelled].status == "stopped"
    assert outcomes[cancelled].meta["reason"] == "Cancelled while waiting in the queue."
    assert sorted(r.status for r in outcomes.values()) == ["finished", "finished", "stopped"]
    for store, run_id in runs:  # each session sees its own run, and only it
        assert [r.run_id for r in store.list()] == [run_id]
    assert RunStore(runs_dir).list() == []  # the shared ledger sees no session's runs
    # Memory: training lives in the workers, and they are gone. The server never held TF's memory.
    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(pid_alive(pid) for pid in pids)
    parent_after = _rss_mb(os.getpid())
    assert parent_after - parent_before < 100, (parent_before, parent_after)
    TALLY["3 sessions at once, 1 slot → 2 finished, 1 cancelled in the queue"] += 1
    TALLY[f"  memory: test process {parent_before:.0f} → {parent_after:.0f} MB RSS; worker peak "
          f"{worker_peak:.0f} MB, 0 workers left"] += 1


# ---------------------------------------------------------------------------
# A full disk (issue 12, item 7): a real small filesystem


@pytest.fixture
def small_disk(tmp_path):
    """A 300 KB tmpfs: room for a run's JSON files, not for its checkpoint (~350 KB)."""
    import subprocess

    mount = tmp_path / "small"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({result.stderr.strip() or 'not root'}): "
                    "the disk-full check is skipped")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


@pytest.mark.slow
def test_a_full_disk_fails_the_run_plainly_and_frees_its_half_written_files(training, small_disk):
    import subprocess
    import sys

    store = RunStore(small_disk / "runs")
    run_id = store.create(spec_for(train_limit=300, epochs=2)).run_id
    meta = training.run_job(store, run_id)
    assert meta["status"] == "failed", meta  # was "interrupted": the job died writing run.json
    assert meta["reason"] == "The disk is full: the checkpoint or the results could not be written."
    assert "Free some disk space" in meta["suggestion"]
    assert store.get(run_id).status == "failed"
    assert not [p.name for p in store.path(run_id).iterdir() if ".tmp" in p.name]
    assert "Traceback" not in store.log_tail(run_id)
    # The CLI: one line, exit 2, no traceback
    result = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--spec", str(store.path(run_id) / "spec.json"),
                             "--runs-dir", str(small_disk / "cli")], capture_output=True, text=True, timeout=300,
                            cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "CNNKIT_OFFLINE": "1"})
    assert result.returncode == 2, result.stderr
    assert "status: failed: The disk is full" in result.stdout  # the result on stdout (issue 9)
    assert "Traceback" not in result.stdout + result.stderr
    TALLY["full disk (300 KB tmpfs) → failed 'disk is full', temporary files removed, CLI exit 2"] += 1
