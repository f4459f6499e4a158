"""Steering a run: commands, pause/resume, a live learning rate, stops at every moment, the test
result of a stopped run, continuing from a checkpoint, and one active run per visitor.

Tiny trainings on the bundled sample, in this process (run_job with a hook), so each moment a
command arrives at is known exactly, whatever the machine's speed.
"""

import json
import threading
import time

import numpy as np
import pytest

from cnnkit.errors import RunError, SpecError
from cnnkit.runs import control, jobs
from cnnkit.runs.store import RunStore, this_process
from tests.test_training import tiny_spec


@pytest.fixture(scope="module")
def training():
    from cnnkit.model import training

    return training


def running(store, spec):
    """A run that says "running" in this (live) process, as the job marks it."""
    run_id = store.create(spec).run_id
    store.update(run_id, status="running", **this_process())
    return run_id


# ---------------------------------------------------------------------------
# Commands


def test_command_checks_name_the_field():
    assert control.Command.from_dict({"action": "lr", "value": 0.01}).value == 0.01
    for bad, field in [({"action": "jump"}, "action"), ({"action": "lr", "value": -1}, "learning_rate"),
                       ({"action": "lr", "value": "fast"}, "learning_rate"), ([1], "command")]:
        with pytest.raises(SpecError) as caught:
            control.Command.from_dict(bad)
        assert caught.value.field == field


def test_send_refuses_what_the_run_cannot_do(runs_dir):
    store = RunStore(runs_dir)
    queued = store.create(tiny_spec()).run_id
    with pytest.raises(RunError, match="still queued: it can only be stopped"):
        control.send(store, queued, "pause")
    control.send(store, queued, "stop")  # a queued run can be cancelled
    assert (store.path(queued) / "STOP").exists()
    store.update(queued, status="finished")
    with pytest.raises(RunError, match="nothing to stop"):
        control.send(store, queued, "stop")


def test_the_reader_sees_each_complete_command_once(runs_dir):
    store = RunStore(runs_dir)
    run_id = running(store, tiny_spec())
    control.send(store, run_id, "pause")  # sent before the job's reader exists: not for this job
    reader = control.CommandReader(store.path(run_id))
    assert reader.poll() == []
    control.send(store, run_id, "lr", 0.25)
    with open(store.path(run_id) / control.CONTROL_FILE, "a") as handle:
        handle.write('{"action": "resume"}\n{"action": "bogus"}\nnot json\n{"action": "pa')  # junk, torn
    assert [(c.action, c.value) for c in reader.poll()] == [("lr", 0.25), ("resume", None)]
    assert reader.poll() == []
    with open(store.path(run_id) / control.CONTROL_FILE, "a") as handle:
        handle.write('use"}\n')  # the torn line completed
    assert [c.action for c in reader.poll()] == ["pause"]


# ---------------------------------------------------------------------------
# Pause, learning rate, resume: in a real (tiny) training


@pytest.mark.parametrize("steps_per_call", [16, 1])  # 16: what this tiny CNN runs; 1: kruse-conv-nopool
def test_pause_lr_resume_land_in_the_history_and_the_events(training, runs_dir, monkeypatch, steps_per_call):
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16, epochs=3)).run_id  # 25 batches an epoch
    batches_while_paused = []

    def steer():
        # Paused: no batch runs (the batch log stops growing), then a new rate, then resume.
        deadline = time.monotonic() + 30
        while not control.is_paused(store, run_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        before = len(store.batches(run_id))
        time.sleep(1.0)
        batches_while_paused.append(len(store.batches(run_id)) - before)
        control.send(store, run_id, "lr", 0.0003)
        control.send(store, run_id, "resume")

    def hook(progress):
        if progress.get("phase") == "epoch_end" and progress["epoch"] == 1:
            control.send(store, run_id, "pause")  # read after epoch 2's first call into TensorFlow
            threading.Thread(target=steer, daemon=True).start()

    meta = training.run_job(store, run_id, hook=hook, steps_per_execution=steps_per_call)
    assert meta["status"] == "finished"
    assert batches_while_paused == [0]
    events = control.events(store, run_id)
    assert [e["event"] for e in events] == ["pause", "lr", "resume"]
    pause, lr, resume = events
    assert (pause["epoch"], pause["batch"], pause["step"]) == (2, steps_per_call, 25 + steps_per_call)
    assert lr["from"] == pytest.approx(0.001) and lr["to"] == pytest.approx(0.0003)
    assert resume["paused_seconds"] >= 1.0
    rates = [h["learning_rate"] for h in store.history(run_id)]
    assert rates == pytest.approx([0.001, 0.0003, 0.0003])  # from the next batch on, and it stays
    epoch_two = store.history(run_id)[1]
    assert epoch_two["seconds"] < resume["paused_seconds"]  # the pause is not the epoch's time


def test_a_live_rate_replaces_the_schedule(training, runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(epochs=3, schedule="step", decay_epochs=1, decay_rate=0.5)).run_id

    def hook(progress):
        if progress.get("phase") == "epoch_end" and progress["epoch"] == 1:
            control.send(store, run_id, "lr", 0.002)

    training.run_job(store, run_id, hook=hook)
    # without the change: 0.001, 0.0005, 0.00025; the change takes over from epoch 2's first batch
    assert [h["learning_rate"] for h in store.history(run_id)] == pytest.approx([0.001, 0.002, 0.002])


def test_stop_while_paused_ends_the_job(training, runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16, epochs=2)).run_id

    def hook(progress):
        if progress.get("phase") == "epoch_end" and progress["epoch"] == 1:
            control.send(store, run_id, "pause")
            threading.Thread(target=stop_once_paused, daemon=True).start()

    def stop_once_paused():
        deadline = time.monotonic() + 30
        while not control.is_paused(store, run_id) and time.monotonic() < deadline:
            time.sleep(0.02)
        store.request_stop(run_id)

    meta = training.run_job(store, run_id, hook=hook)
    assert meta["status"] == "stopped"
    assert [e["event"] for e in control.events(store, run_id)] == ["pause", "stop"]
    assert [h["epoch"] for h in store.history(run_id)] == [1]


# ---------------------------------------------------------------------------
# Stops at the epoch's end, and the test result of a stopped run


def test_stop_during_validation_ends_it_and_keeps_the_trained_epoch(training, runs_dir, monkeypatch):
    store = RunStore(runs_dir)
    # 1,200 validation images: 5 batches of 256
    run_id = store.create(tiny_spec(train_limit=4000, validation_split=0.3, epochs=2, batch_size=64)).run_id
    seen = []

    def hook(progress):
        seen.append(progress.get("phase"))
        if progress.get("phase") == "validating" and progress["epoch"] == 1:
            store.request_stop(run_id)

    meta = training.run_job(store, run_id, hook=hook)
    assert meta["status"] == "stopped"
    history = store.history(run_id)
    assert [h["epoch"] for h in history] == [1]
    assert "val_loss" not in history[0] and "loss" in history[0]  # an interrupted validation is no figure
    assert "saving the checkpoint" in seen and "testing" in seen
    record = store.get(run_id)
    result = record.model_result("cnn")
    assert result["tested_epoch"] == 1 and result["test_accuracy"] is not None


def test_a_stopped_run_is_tested_with_its_last_finished_epoch(training, runs_dir, monkeypatch):
    from cnnkit.model.predictor import evaluate

    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16, epochs=3, baseline="dense-128")).run_id

    def hook(progress):
        if progress.get("phase") == "training" and progress.get("epoch") == 2 and progress.get("batch", 0) >= 3:
            store.request_stop(run_id)

    meta = training.run_job(store, run_id, hook=hook)
    assert meta["status"] == "stopped"
    record = store.get(run_id)
    result = record.model_result("cnn")
    assert result["epochs_completed"] == 1 and result["tested_epoch"] == 1
    # the stored figure is the checkpoint's, computed again independently from the files
    from cnnkit.data.prepare import prepare_data

    probs, accuracy, _ = evaluate(record, "cnn", prepare_data(record.spec))
    assert result["test_accuracy"] == pytest.approx(accuracy)
    with np.load(record.path / "predictions_cnn.npz") as stored:
        assert np.allclose(stored["probs"], probs, atol=1e-6)
    assert "baseline" not in record.models  # it never started: nothing to test


# ---------------------------------------------------------------------------
# Continuing a run


def test_restored_model_trains_on_exactly_as_the_one_in_memory(training, tmp_path):
    # The oracle: one more epoch from the checkpoint + saved optimizer state gives the same
    # weights as one more epoch of the model that never left memory (same data, no shuffle).
    from cnnkit.model import levers
    from cnnkit.model.callbacks import save_model_atomic
    from cnnkit.model.resume import restore, save_optimizer_state
    from cnnkit.model.training import Float32Export

    spec = tiny_spec(train_limit=256, batch_size=32)
    prepared = training.prepare_data(spec)
    data = levers.make_dataset(prepared.x_train, prepared.y_train, 32, shuffle=False, seed=0)
    levers.configure_determinism(3)
    model = levers.build_compiled("cnn", spec.layers, spec, prepared)
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    save_model_atomic(Float32Export("cnn", spec.layers, spec, prepared)(model), str(tmp_path / "m.keras"))
    save_optimizer_state(model, tmp_path / "o.npz")
    copy = levers.build_compiled("cnn", spec.layers, spec, prepared)
    restore(copy, tmp_path / "m.keras", tmp_path / "o.npz")
    assert int(copy.optimizer.iterations.numpy()) == 8
    model.fit(data, epochs=1, verbose=0, shuffle=False)
    copy.fit(data, epochs=1, verbose=0, shuffle=False)
    for mine, theirs in zip(model.get_weights(), copy.get_weights(), strict=True):
        assert np.array_equal(np.asarray(mine, np.float32), np.asarray(theirs, np.float32))


def test_continue_extends_history_and_results(training, runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(epochs=2, baseline="dense-128")).run_id
    training.run_job(store, run_id)
    first = store.get(run_id)
    steps = len(store.batches(run_id))
    assert first.epochs_completed == 2
    queue_again(store, run_id, 1)  # jobs.extend, with the job run here instead of in a process
    meta = training.run_job(store, run_id)
    assert meta["status"] == "finished" and meta["continue_epochs"] is None
    record = store.get(run_id)
    assert [(h["model"], h["epoch"]) for h in store.history(run_id)] == [
        ("cnn", 1), ("cnn", 2), ("baseline", 1), ("baseline", 2), ("cnn", 3), ("baseline", 3)]
    assert record.spec.training.epochs == 3 and record.meta["extensions"][0]["from_epoch"] == 2
    for key in ("cnn", "baseline"):
        result = record.model_result(key)
        assert result["epochs_completed"] == 3 and result["tested_epoch"] == 3
        assert len(result["seconds_per_epoch"]) == 3
    assert [e["event"] for e in control.events(store, run_id)] == ["continue", "continue"]
    with np.load(record.path / "optimizer_cnn.npz") as state:
        iterations = [state[name] for name in sorted(state.files)][0]
    assert int(iterations) == 3 * 7  # 200 images, batch 32: 7 steps an epoch, counted on
    assert len(store.batches(run_id)) > steps


def queue_again(store, run_id, epochs):
    """jobs.extend without its process: the same checks and run.json changes."""
    launched = []
    original = jobs.launch
    jobs.launch = lambda store, run_id, data_dir=None: launched.append(run_id)
    try:
        jobs.extend(store, run_id, epochs)
    finally:
        jobs.launch = original
    assert launched == [run_id]
    assert store.get(run_id).status == "queued"  # not "interrupted" in the moment before its process


def test_what_cannot_continue_says_why(runs_dir):
    store = RunStore(runs_dir)
    fresh = store.create(tiny_spec()).run_id
    store.update(fresh, status="stopped")
    with pytest.raises(RunError, match="no epoch finished"):
        jobs.extend(store, fresh, 1)
    store.update(fresh, status="finished", kind="imported", imported={"rebuildable": False})
    with pytest.raises(RunError, match="imported model"):
        jobs.extend(store, fresh, 1)


# ---------------------------------------------------------------------------
# One active run per visitor, on the server


def test_the_active_index_lists_only_active_runs_and_forgets_ended_ones(runs_dir, monkeypatch):
    store = RunStore(runs_dir)
    monkeypatch.setattr(jobs, "launch", lambda store, run_id, data_dir=None: None)
    first = jobs.start(store, tiny_spec()).run_id
    second = jobs.start(store, tiny_spec()).run_id
    for run_id in (first, second):
        store.update(run_id, status="running", **this_process())
    never_started = store.create(tiny_spec()).run_id  # not started by jobs: not in the index
    store.update(never_started, status="running", **this_process())
    assert [r.run_id for r in jobs.active_runs(store)] == [second, first]  # newest first
    store.update(first, status="finished")
    (runs_dir / jobs.ACTIVE_DIR / "not a run").touch()  # junk in the index is dropped, not a crash
    assert [r.run_id for r in jobs.active_runs(store)] == [second]
    assert sorted(p.name for p in (runs_dir / jobs.ACTIVE_DIR).iterdir()) == [second]


def test_a_second_start_is_refused_unless_queued_on_purpose(runs_dir, monkeypatch):
    store = RunStore(runs_dir)
    first = running(store, tiny_spec())
    monkeypatch.setattr(jobs, "launch", lambda store, run_id, data_dir=None: None)
    with pytest.raises(jobs.ActiveRunError) as caught:
        jobs.start(store, tiny_spec(), queue_another=False)
    assert [record.run_id for record in caught.value.active] == [first]
    assert len(store.list()) == 1  # nothing was created
    second = jobs.start(store, tiny_spec(), queue_another=True)
    assert len(store.list()) == 2 and second.run_id != first
    assert json.loads((store.path(first) / "run.json").read_text())["status"] == "running"


# ---------------------------------------------------------------------------
# The command line: cnnkit control, cnnkit train --continue


def test_cli_control_sends_and_refuses_with_a_reason(runs_dir, capsys):
    from cnnkit.cli import main

    store = RunStore(runs_dir)
    run_id = running(store, tiny_spec())
    assert main(["control", "--run", run_id, "lr", "0.0005", "--runs-dir", str(runs_dir)]) == 0
    assert "learning rate is 0.0005 from its next call (at most 16 batches on)" in capsys.readouterr().out
    assert main(["control", "--run", run_id, "lr", "--runs-dir", str(runs_dir)]) == 2
    assert "lr needs the new learning rate" in capsys.readouterr().err
    assert main(["control", "--run", run_id, "pause", "--runs-dir", str(runs_dir)]) == 0
    sent = [json.loads(line) for line in (store.path(run_id) / control.CONTROL_FILE).read_text().splitlines()]
    assert [(c["action"], c.get("value")) for c in sent] == [("lr", 0.0005), ("pause", None)]
    store.update(run_id, status="stopped")
    assert main(["control", "--run", run_id, "resume", "--runs-dir", str(runs_dir)]) == 2
    assert "is stopped, so it cannot resume now" in capsys.readouterr().err


def test_cli_train_continue_trains_more_epochs_of_the_same_run(training, runs_dir, capsys):
    from cnnkit.cli import main

    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(epochs=1)).run_id
    training.run_job(store, run_id)
    assert main(["train", "--continue", run_id, "--epochs", "2", "--runs-dir", str(runs_dir)]) == 0
    out = capsys.readouterr().out
    assert f"run: {run_id}" in out and "status: finished" in out
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2, 3]
    assert store.get(run_id).model_result("cnn")["tested_epoch"] == 3
    assert main(["train", "--continue", run_id, "--epochs", "1", "--seed", "3", "--runs-dir", str(runs_dir)]) == 2
    assert "only --epochs (how many more) applies, not --seed" in capsys.readouterr().err
    assert main(["train", "--continue", run_id, "--runs-dir", str(runs_dir)]) == 2
    assert "--continue needs --epochs N" in capsys.readouterr().err


def test_a_stopped_runs_test_ends_only_on_a_newer_stop(runs_dir):
    import os

    from cnnkit.runs.store import RunWriter

    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec()).run_id
    writer = RunWriter(store, run_id)
    assert not writer.stop_requested() and not writer.stop_requested(after=0.0)
    store.request_stop(run_id)
    stop_file = store.path(run_id) / "STOP"
    os.utime(stop_file, (1000.0, 1000.0))
    assert writer.stop_requested() and not writer.stop_requested(after=2000.0)  # the stop that began it
    store.request_stop(run_id)  # a second click touches it again
    assert writer.stop_requested(after=2000.0)


# ---------------------------------------------------------------------------
# The GPU's precision, forced on this CPU (no GPU here): float16 compute, float32 weights,
# the loss scaled, a float32 model saved, and a run that continues with its loss scale


def test_mixed_float16_trains_saves_float32_and_continues(training, runs_dir, monkeypatch):
    from cnnkit.model import levers
    from cnnkit.model.models import load_model
    from cnnkit.model.predictor import evaluate
    from cnnkit.model.tf_import import keras

    monkeypatch.setenv("CNNKIT_PRECISION", "mixed_float16")
    spec = tiny_spec(train_limit=400, epochs=2)
    prepared = training.prepare_data(spec)
    model = levers.build_compiled("cnn", spec.layers, spec, prepared)
    conv = next(layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D))
    assert (conv.compute_dtype, conv.variable_dtype) == ("float16", "float32")
    assert model.layers[-1].compute_dtype == "float32"  # the softmax stays in float32
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)

    store = RunStore(runs_dir)
    run_id = store.create(spec).run_id
    assert training.run_job(store, run_id)["status"] == "finished"
    record = store.get(run_id)
    saved = load_model(record.model_path("cnn"))
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    _, accuracy, _ = evaluate(record, "cnn", prepared)
    assert record.test_accuracy == pytest.approx(accuracy, abs=0.002) and accuracy > 0.3  # chance: 0.1
    queue_again(store, run_id, 1)
    assert training.run_job(store, run_id)["status"] == "finished"
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2, 3]
