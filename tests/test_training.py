"""The training job on the bundled sample: determinism, stop, divergence, what a run folder holds.

Every training here is tiny (a few hundred images, 1–2 epochs). One module-scoped run with a
baseline is shared by the tests that only look at a finished run folder.
"""

import math
import time

import numpy as np
import pytest

from cnnkit.presets import PRESETS, baseline_layers, get_preset
from cnnkit.runs.control import events
from cnnkit.runs.store import RunStore
from cnnkit.shapes import summarize
from cnnkit.specs import ExperimentSpec, TrainingSpec
from cnnkit.views.analysis import load_predictions

TINY_LAYERS = [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
               {"type": "flatten"}, {"type": "dense", "units": 16}]
HISTORY_KEYS = {"model", "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds",
                "images_per_second", "learning_rate"}


def tiny_spec(train_limit=200, validation_split=0.0, baseline=None, **training) -> ExperimentSpec:
    return ExperimentSpec.from_dict({
        "layers": TINY_LAYERS, "baseline": baseline,
        "dataset": {"name": "mnist", "train_limit": train_limit, "validation_split": validation_split},
        "training": {"epochs": 1, "batch_size": 32, "seed": 7, **training}})


@pytest.fixture(scope="module")
def training():
    from cnnkit.model import training

    return training


@pytest.fixture(scope="module")
def levers():
    from cnnkit.model import levers

    return levers


@pytest.fixture(scope="module")
def callbacks():
    from cnnkit.model import callbacks

    return callbacks


@pytest.fixture(scope="module")
def shared_run(tmp_path_factory, training):
    """A finished 2-epoch run with a matched baseline, a validation split and a step schedule."""
    with pytest.MonkeyPatch.context() as mp:  # the autouse offline fixture is per test, not per module
        mp.setenv("CNNKIT_OFFLINE", "1")
        mp.delenv("CNNKIT_DATA_DIR", raising=False)
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
        store = RunStore(tmp_path_factory.mktemp("runs"))
        spec = tiny_spec(validation_split=0.1, baseline="matched", epochs=2, schedule="step",
                         decay_rate=0.5, decay_epochs=1)
        run_id = store.create(spec).run_id
        events = []
        meta = training.run_job(store, run_id, hook=events.append)
        prepared = training.prepare_data(spec)
    return {"store": store, "run_id": run_id, "meta": meta, "events": events, "spec": spec,
            "prepared": prepared, "record": store.get(run_id)}


def weights_of(model) -> list[np.ndarray]:
    return [np.asarray(w) for w in model.get_weights()]


# ---------------------------------------------------------------------------
# Determinism and the saved model


def test_same_seed_gives_bit_identical_weights_and_a_different_seed_does_not(training, runs_dir):
    from cnnkit.model.models import load_model
    from cnnkit.runs.store import RunWriter

    store = RunStore(runs_dir)
    spec = tiny_spec()
    layers = spec.layers
    prepared = training.prepare_data(spec)
    run_id = store.create(spec).run_id
    first = training.train_one("cnn", layers, spec, prepared, RunWriter(store, run_id))
    second = training.train_one("cnn", layers, spec, prepared, None)
    a, b = weights_of(first.model), weights_of(second.model)
    assert len(a) == len(b) == 6  # conv kernel+bias, dense kernel+bias, output kernel+bias
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert first.test_accuracy == second.test_accuracy

    other_spec = spec.updated({"training.seed": 8})
    third = training.train_one("cnn", layers, other_spec, training.prepare_data(other_spec), None)
    assert not all(np.array_equal(x, y) for x, y in zip(a, weights_of(third.model), strict=True))

    # The checkpoint written after the epoch is the final model: it predicts bit-identically.
    reloaded = load_model(store.path(run_id) / "model.keras")
    x = np.asarray(prepared.x_test[:256], dtype=np.float32)
    assert np.array_equal(np.asarray(first.model(x, training=False)), np.asarray(reloaded(x, training=False)))


# ---------------------------------------------------------------------------
# Stop and divergence


def test_release_drops_every_reference_to_the_trained_model(training):
    # run_job releases each model before the next is built, so clear_session can free it
    import gc
    import weakref

    spec = tiny_spec(train_limit=64)
    outcome = training.train_one("cnn", spec.layers, spec, training.prepare_data(spec), None)
    saved, trained = weakref.ref(outcome.model), weakref.ref(outcome.report.model)
    outcome.release()
    gc.collect()
    assert outcome.model is None and saved() is None and trained() is None


def test_stop_request_ends_the_run_within_one_batch(training, runs_dir, monkeypatch):
    # One step a call (as kruse-conv-nopool trains), every batch reported to the hook (normally
    # throttled to two a second), so it can count them.
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16)).run_id  # 25 batches an epoch
    batches = []

    def hook(progress):
        if progress.get("phase") == "training":
            batches.append(progress["batch"])
            if progress["batch"] == 3:
                store.request_stop(run_id)

    meta = training.run_job(store, run_id, hook=hook, steps_per_execution=1)
    assert meta["status"] == "stopped" and meta["reason"] == "Stopped on request."
    assert batches[:3] == [1, 2, 3]
    assert max(batches) <= 4, batches  # the batch running when STOP appeared may finish, no more
    record = store.get(run_id)
    assert record.status == "stopped"
    assert record.model_result("cnn")["status"] == "stopped"
    assert record.epochs_completed == 0
    assert store.history(run_id) == []  # a partial epoch is not a finished one
    assert not (record.path / "predictions_cnn.npz").exists()
    assert store.progress(run_id)["phase"] == "done"


def test_the_hold_hook_waits_at_its_batch_until_a_stop(training, runs_dir, monkeypatch):
    # CNNKIT_TEST_HOLD_AT=1:5 holds after batch 5 of epoch 1: nothing after it runs until STOP.
    monkeypatch.setenv("CNNKIT_TEST_HOLD_AT", "1:5")
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16)).run_id  # 25 batches an epoch
    seen = []

    def hook(progress):
        if progress.get("held"):
            assert progress.items() <= store.progress(run_id).items()  # in the run folder before it waits
            store.request_stop(run_id)
        seen.append((progress.get("batch"), bool(progress.get("held"))))

    meta = training.run_job(store, run_id, hook=hook)
    batches = [batch for batch, held in seen if batch and not held]
    assert meta["status"] == "stopped" and batches == [1, 2, 3, 4, 5]
    assert (5, True) in seen


@pytest.mark.parametrize("value, expected", [("2:40", (2, 40)), ("", None), ("2", None), ("a:b", None),
                                             ("-1:3", None), ("2:40:1", None)])
def test_hold_point_reads_epoch_and_batch(training, monkeypatch, value, expected, callbacks):
    monkeypatch.setenv("CNNKIT_TEST_HOLD_AT", value)
    assert callbacks.hold_point() == expected


def test_the_servers_time_limit_stops_a_job_within_one_batch(training, runs_dir, monkeypatch):
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    monkeypatch.setenv("CNNKIT_MAX_JOB_MINUTES", "30")
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(train_limit=400, batch_size=16, baseline="dense-128")).run_id
    batches = []

    def hook(progress):
        if progress.get("phase") == "training":
            batches.append(progress["batch"])
            if progress["batch"] == 3:  # half an hour passes in an instant
                monkeypatch.setattr("cnnkit.model.callbacks.clock", lambda: time.monotonic() + 3600)

    meta = training.run_job(store, run_id, hook=hook, steps_per_execution=1)  # else it is checked once a call
    assert meta["status"] == "stopped"
    assert meta["reason"].startswith("Stopped at this server's time limit of 30 minutes per training")
    assert "CNNKIT_MAX_JOB_MINUTES" in meta["suggestion"]
    assert max(batches) <= 4, batches
    assert list(meta["models"]) == ["cnn"]  # the baseline never started


def test_a_job_already_past_its_time_limit_trains_nothing(training, runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_JOB_MINUTES", "0.000001")  # 60 µs: gone while the data loads
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec()).run_id
    meta = training.run_job(store, run_id)
    assert meta["status"] == "stopped" and "time limit of 1e-06 minutes" in meta["reason"]
    assert meta["models"] == {}


def test_the_data_ends_at_the_first_batch_after_the_stop_file_appears(training, tmp_path, levers):
    stop = tmp_path / "STOP"
    ds = levers.stop_when_file_exists(levers.tf.data.Dataset.range(10), stop)
    assert int(ds.cardinality()) == 10  # the length stays known (it decides Keras' shuffled order)
    assert [int(v) for v in ds] == list(range(10))
    seen = []
    with pytest.raises(levers.tf.errors.FailedPreconditionError, match="contain 10 elements but contained only 3") as ended:
        for value in ds:
            seen.append(int(value))
            if len(seen) == 3:
                stop.touch()
    assert seen == [0, 1, 2]
    assert levers.ended_by_stop_file(ended.value, stop)
    assert not levers.ended_by_stop_file(ended.value, tmp_path / "other" / "STOP")
    assert not levers.ended_by_stop_file(ValueError("no"), stop)
    # a dataset of unknown length just ends
    unknown = levers.tf.data.Dataset.range(10).filter(lambda v: v >= 0)
    assert [int(v) for v in levers.stop_when_file_exists(unknown, stop)] == []
    # a path TensorFlow would read as a glob pattern is left unchecked, not misread
    odd = tmp_path / "run[1]" / "STOP"
    assert len(list(levers.stop_when_file_exists(levers.tf.data.Dataset.range(4), odd))) == 4


@pytest.mark.parametrize("preset, expected", [("chollet-cnn", 16), ("moroney-cnn", 16), ("kruse-conv", 5),
                                              ("kruse-conv-nopool", 1), ("dense-128", 16)])
def test_steps_per_execution_follow_the_multiply_adds_of_a_step(levers, preset, expected):
    # By hand, kruse-conv: 4.12 M multiply-adds an image × 128 images = 527 M a step; 3 G / 527 M = 5.
    spec = get_preset(preset).experiment()
    macs = summarize(spec.layers, (28, 28, 1), 10).total_macs * spec.training.batch_size
    assert levers.MACS_PER_EXECUTION // macs == expected or (expected == 16 and levers.MACS_PER_EXECUTION // macs > 16)
    assert levers.steps_per_execution_for(spec.layers, (28, 28, 1), 10, spec.training.batch_size) == expected


def test_the_hold_hook_runs_one_step_a_call(levers, monkeypatch):
    monkeypatch.setenv("CNNKIT_TEST_HOLD_AT", "1:5")  # it holds after one exact batch
    assert levers.steps_per_execution_for(tuple(tiny_spec().layers), (28, 28, 1), 10, 32) == 1


@pytest.mark.parametrize("layers", [TINY_LAYERS, [{"type": "flatten"}, {"type": "dense", "units": 8}]],
                         ids=["cnn", "dense"])
def test_a_network_stops_within_one_batch_despite_many_steps_per_execution(training, runs_dir, levers, layers):
    spec = tiny_spec(train_limit=800, batch_size=16).updated({"layers": layers})  # 50 batches an epoch
    assert levers.steps_per_execution_for(spec.layers, (28, 28, 1), 10, 16) == 16
    store = RunStore(runs_dir)
    run_id = store.create(spec).run_id
    batches = []

    def hook(progress):
        if progress.get("phase") == "training":
            batches.append(progress["batch"])
            if progress["batch"] == 16:  # the first callback: the end of the first 16-step chunk
                store.request_stop(run_id)

    meta = training.run_job(store, run_id, hook=hook)
    assert meta["status"] == "stopped" and meta["reason"] == "Stopped on request."
    assert batches == [16]  # the next chunk found the STOP before its first batch: none ran
    assert store.get(run_id).epochs_completed == 0 and store.history(run_id) == []
    assert [e["event"] for e in events(store, run_id)] == ["stop"]


def test_many_steps_per_execution_train_the_same_weights_as_one(training, runs_dir):
    # The stop check keeps the dataset's length known: the shuffled order a seed gives, and so the
    # weights, are the same whatever the steps per call (unknown length shifted the order).
    from cnnkit.model.models import load_model

    spec = tiny_spec(train_limit=400, batch_size=16, epochs=2)  # 25 batches an epoch: 16 + 9
    store = RunStore(runs_dir)
    weights = {}
    for steps in (1, 16):
        run_id = store.create(spec).run_id
        assert training.run_job(store, run_id, steps_per_execution=steps)["status"] == "finished"
        weights[steps] = load_model(store.get(run_id).model_path("cnn")).get_weights()
        assert [h["epoch"] for h in store.history(run_id)] == [1, 2]
    assert all(np.array_equal(a, b) for a, b in zip(weights[1], weights[16], strict=True))


def test_multi_step_epochs_report_every_batch_exactly(training, runs_dir, monkeypatch):
    monkeypatch.setattr("cnnkit.model.callbacks.PROGRESS_SECONDS", 0.0)
    spec = tiny_spec(train_limit=800, batch_size=16, epochs=2).updated(
        {"layers": [{"type": "flatten"}, {"type": "dense", "units": 8}]})  # 50 batches = 16+16+16+2
    store = RunStore(runs_dir)
    run_id = store.create(spec).run_id
    batches = []
    training.run_job(store, run_id, hook=lambda p: p.get("phase") == "training" and batches.append(
        (p["epoch"], p["batch"])))
    assert batches == [(e, b) for e in (1, 2) for b in (16, 32, 48, 50)]
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2]


def test_stop_before_start_never_trains(training, runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec()).run_id
    store.request_stop(run_id)
    events = []
    meta = training.run_job(store, run_id, hook=events.append)
    assert meta["status"] == "stopped"
    assert [e["phase"] for e in events] == ["done"]
    assert meta["models"] == {}


def test_divergence_fails_with_a_reason_and_a_suggestion(training, runs_dir):
    learning_rate = 1e4
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(optimizer="sgd", learning_rate=learning_rate)).run_id
    meta = training.run_job(store, run_id)
    assert meta["status"] == "failed"
    assert "loss" in meta["reason"] and "diverged" in meta["reason"]
    assert "Lower the learning rate" in meta["suggestion"]
    assert f"{learning_rate / 10:g}" in meta["suggestion"]  # a concrete value to try
    assert store.history(run_id) == []
    assert store.get(run_id).model_result("cnn")["status"] == "failed"


def test_divergence_rule():
    spec = TrainingSpec(learning_rate=0.5)
    assert divergence(2.3, spec) is None
    assert "NaN" in divergence(float("nan"), spec).reason
    assert "NaN/infinite" in divergence(float("inf"), spec).reason
    assert "exploded to 1e+05" in divergence(1e5, spec).reason
    assert "try 0.05" in divergence(1e5, spec).suggestion
    assert divergence(1e5, spec).suggestion == ("Lower the learning rate (it is 0.5; try 0.05), scale the pixels "
                                                "(normalization 'scale') or add batch normalization.")


def test_divergence_hint_leaves_out_what_the_run_already_does():
    from cnnkit.model.callbacks import divergence_for

    spec = TrainingSpec(learning_rate=0.5)
    scaled = divergence_for(1e5, spec, normalization="scale").suggestion
    assert "'scale'" not in scaled and scaled.endswith("or add batch normalization.")
    both = divergence_for(1e5, spec, normalization="standardize", batch_norm=True).suggestion
    assert both == "Lower the learning rate (it is 0.5; try 0.05)."


def divergence(loss, spec):
    from cnnkit.model.callbacks import divergence_for

    return divergence_for(loss, spec)


def test_test_metrics_by_hand():
    from cnnkit.model.outputs import probabilities, test_metrics

    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.5, 0.4, 0.1], [0.0, 1.0, 0.0]])
    y = np.array([0, 2, 1, 0])
    accuracy, loss = test_metrics(probs, y)
    assert accuracy == 0.5  # rows 0 and 1 right
    # the last row's true-class probability 0 is clipped to 1e-7, as Keras does
    assert loss == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.4) + math.log(1e-7)) / 4)
    logits = np.array([[0.0, math.log(3.0)], [1000.0, 1000.0]])
    assert np.allclose(probabilities(logits, "logits"), [[0.25, 0.75], [0.5, 0.5]])
    assert probabilities(probs, "softmax") is probs


# ---------------------------------------------------------------------------
# The shared finished run


def test_run_finishes_with_results_for_both_models(shared_run):
    record = shared_run["record"]
    assert record.status == "finished" and shared_run["meta"]["reason"] == ""
    for key in ("cnn", "baseline"):
        result = record.model_result(key)
        assert result["status"] == "finished"
        assert result["epochs_completed"] == 2
        assert 0.0 <= result["test_accuracy"] <= 1.0 and result["test_loss"] > 0
        assert len(result["seconds_per_epoch"]) == len(result["images_per_second"]) == 2
        assert record.has_model(key)
    assert shared_run["meta"]["data_source"]["kind"] == "sample"
    # 200 images, 10% held out for validation; the sample's whole 1,000-image test split
    assert shared_run["meta"]["data_summary"] == {"train": 180, "validation": 20, "test": 1000}


def test_history_has_one_complete_record_per_finished_epoch(shared_run):
    history = shared_run["store"].history(shared_run["run_id"])
    assert [(h["model"], h["epoch"]) for h in history] == [
        ("cnn", 1), ("cnn", 2), ("baseline", 1), ("baseline", 2)]
    spec = shared_run["spec"].training
    for entry in history:
        assert HISTORY_KEYS <= set(entry)
        assert all(math.isfinite(entry[k]) for k in HISTORY_KEYS - {"model", "epoch"})
        # step schedule: 0.001 halved every epoch
        assert entry["learning_rate"] == pytest.approx(spec.learning_rate_at(entry["epoch"] - 1))
    assert [h["learning_rate"] for h in history[:2]] == pytest.approx([0.001, 0.0005])


def test_hook_sees_the_phases_in_order(shared_run):
    phases = [e["phase"] for e in shared_run["events"]]
    assert phases[0] == "loading data" and phases[-1] == "done"
    assert phases.count("epoch_end") == 4 and phases.count("evaluating") == 2
    epoch_ends = [e for e in shared_run["events"] if e["phase"] == "epoch_end"]
    assert [(e["model"], e["epoch"]) for e in epoch_ends] == [("cnn", 1), ("cnn", 2), ("baseline", 1),
                                                              ("baseline", 2)]
    # the last training report of an epoch is always sent (batch == batches), not throttled away
    steps = math.ceil(180 / 32)
    last = [e for e in shared_run["events"] if e["phase"] == "training" and e["batch"] == steps]
    assert [(e["model"], e["epoch"]) for e in last] == [("cnn", 1), ("cnn", 2), ("baseline", 1),
                                                        ("baseline", 2)]
    assert shared_run["store"].progress(shared_run["run_id"])["phase"] == "done"


def test_batch_records(shared_run):
    records = shared_run["store"].batches(shared_run["run_id"])
    assert records, "at least the first batch of each model is recorded"
    steps = math.ceil(180 / 32)
    for r in records:
        assert set(r) == {"model", "epoch", "batch", "step", "loss", "accuracy", "time"}
        assert r["step"] == (r["epoch"] - 1) * steps + r["batch"]
        assert 1 <= r["batch"] <= steps and 0.0 <= r["accuracy"] <= 1.0


@pytest.mark.parametrize("key", ["cnn", "baseline"])
def test_stored_predictions_match_the_reported_metrics(shared_run, key):
    from cnnkit.model.outputs import test_metrics

    record, prepared = shared_run["record"], shared_run["prepared"]
    predictions = load_predictions(record.path, key)
    assert predictions.probs.shape == (1000, 10)
    assert np.array_equal(predictions.y_true, prepared.y_test)
    assert np.array_equal(predictions.test_indices, np.arange(1000))  # no test_limit: all, in order
    assert np.allclose(predictions.probs.sum(axis=1), 1.0, atol=1e-5)
    result = record.model_result(key)
    assert predictions.accuracy == result["test_accuracy"]
    accuracy, loss = test_metrics(predictions.probs.astype(np.float64), predictions.y_true)
    assert (accuracy, loss) == (result["test_accuracy"], result["test_loss"])


@pytest.mark.parametrize("key", ["cnn", "baseline"])
def test_saved_model_reproduces_the_stored_predictions(shared_run, training, key, levers):
    from cnnkit.model.models import load_model

    record, prepared = shared_run["record"], shared_run["prepared"]
    model = load_model(record.model_path(key))
    dataset = levers.make_dataset(prepared.x_test, prepared.y_test, training.EVAL_BATCH_SIZE,
                                    shuffle=False, seed=0)
    probs = np.asarray(model.predict(dataset, verbose=0), dtype=np.float32)
    assert np.array_equal(probs, load_predictions(record.path, key).probs)


def test_matched_baseline_in_the_run_has_about_the_cnns_params(shared_run):
    record = shared_run["record"]
    cnn, base = record.model_result("cnn")["params"], record.model_result("baseline")["params"]
    # conv 3*3*8+8 = 80; 13*13*8 = 1352 → dense 16: 1352*16+16 = 21,648; output 16*10+10 = 170
    assert cnn == 80 + 21_648 + 170 == 21_898
    # one hidden Dense(u) baseline: 784*u + u + 10*u + 10 = 795*u + 10; u = round(21,888 / 795) = 28
    assert record.model_result("baseline")["layers"] == [{"type": "flatten"},
                                                         {"type": "dense", "units": 28, "activation": "relu"}]
    assert base == 795 * 28 + 10 == 22_270
    assert abs(base - cnn) <= 784 + 1 + 10


# ---------------------------------------------------------------------------
# Baselines, without training


def baseline_params(kind, target, input_shape=(28, 28, 1), num_classes=10):
    layers = baseline_layers(kind, target, input_shape, num_classes)
    return summarize(layers, input_shape, num_classes).total_params


def test_dense_128_baseline_by_hand():
    assert baseline_params("dense-128", None) == 784 * 128 + 128 + 128 * 10 + 10 == 101_770
    # on 32×32×3: 3072*128 + 128 + 1290
    assert baseline_params("dense-128", None, (32, 32, 3)) == 3072 * 128 + 128 + 1290


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.is_cnn])
@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32, 3)])
def test_matched_baseline_has_the_cnns_params(name, input_shape):
    from cnnkit.errors import ArchitectureError

    try:
        cnn = summarize(PRESETS[name].layers, input_shape, 10).total_params
    except ArchitectureError:
        pytest.skip("preset does not fit this input")
    matched = baseline_params("matched", cnn, input_shape)
    n_in = math.prod(input_shape)
    # one unit more or less changes params by n_in + 1 + classes: that is the best possible match
    assert abs(matched - cnn) <= max(0.01 * cnn, (n_in + 1 + 10) / 2)


def test_matched_baseline_never_has_zero_units():
    assert baseline_layers("matched", 5, (28, 28, 1), 10)[1].units == 1
