"""Training health. Oracles: a layer made dead by hand (bias −1000) reads 100% dead and one that
cannot die reads 0%; the activation statistics equal numpy's on the layer's own output; the
gradient norms equal an independent tf.GradientTape computation; the warnings fire exactly at
their thresholds; a real training writes one record per epoch, and the Train page shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs.store import HEALTH_FILE, RunStore, append_jsonl
from cnnkit.views import health

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras():
    from cnnkit.model.tf_import import keras

    return keras


def test_dead_units_activations_and_gradient_norms_against_hand_and_tape(keras):
    from cnnkit.model.health import layer_health
    from cnnkit.model.tf_import import tf

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    flat = keras.layers.Flatten()(conv)
    dead = keras.layers.Dense(6, activation="relu", name="dead")(flat)
    out = keras.layers.Dense(3, activation="softmax", name="out")(keras.layers.Concatenate()([flat, dead]))
    model = keras.Model(inputs, out)
    kernel, bias = model.get_layer("dead").get_weights()
    model.get_layer("dead").set_weights([kernel, np.full_like(bias, -1000.0)])  # never fires
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 1)).astype(np.float32)
    y = np.arange(32) % 3
    rows = {row["name"]: row for row in layer_health(model, x, y, from_logits=False)}

    assert rows["dead"]["dead"] == 1.0 and rows["out"]["dead"] is None  # softmax: no ReLU units
    conv_out = keras.Model(inputs, conv)(x).numpy()
    assert rows["conv"]["mean"] == pytest.approx(conv_out.mean(), rel=1e-5)
    assert rows["conv"]["std"] == pytest.approx(conv_out.std(), rel=1e-5)
    assert rows["conv"]["dead"] == pytest.approx(np.mean(np.all(conv_out.reshape(-1, 4) <= 0, axis=0)))
    with tf.GradientTape() as tape:
        loss = keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=False))
    grads = tape.gradient(loss, [model.get_layer(n).kernel for n in ("conv", "dead", "out")])
    for name, grad in zip(("conv", "dead", "out"), grads, strict=True):
        assert rows[name]["grad_norm"] == pytest.approx(float(np.linalg.norm(grad.numpy())), rel=1e-4)
    assert rows["dead"]["grad_norm"] == 0.0  # no unit fires: nothing flows back into its kernel


def _record(grad: float, dead: float | None) -> dict:
    return {"model": "cnn", "epoch": 3, "seconds": 0.1,
            "layers": [{"name": "conv2d_1", "type": "Conv2D", "mean": 0.5, "std": 1.0, "dead": dead, "grad_norm": grad}]}


@pytest.mark.parametrize(("grad", "dead", "words"), [
    (0.5, 0.1, []), (9e-6, 0.1, ["vanishing"]), (1e-5, 0.1, []), (10.5, 0.1, ["exploding"]),
    (0.5, 0.51, ["dead"]), (0.5, 0.5, []), (20.0, 0.9, ["exploding", "dead"]), (0.5, None, []),
])
def test_warnings_fire_at_their_thresholds(grad, dead, words):
    found = health.warnings_for(_record(grad, dead))
    kinds = [kind for w in found for kind in ("vanishing", "exploding", "dead") if kind in w.problem]
    assert kinds == words
    assert all(w.suggestion and w.layer == "conv2d_1" for w in found)


@pytest.mark.slow
def test_a_training_writes_a_record_per_epoch_and_the_train_page_shows_it(monkeypatch, tmp_path):
    from tests.oracles import trained_run

    record = trained_run(tmp_path / "runs", {
        "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"}, {"type": "flatten"},
                   {"type": "dense", "units": 16}],
        "dataset": {"train_limit": 500}, "training": {"epochs": 2, "batch_size": 64}, "baseline": "dense-128"})
    records = health.health_records(record.path, "cnn")
    assert [r["epoch"] for r in records] == [1, 2]
    assert [row["name"] for row in records[0]["layers"]] == ["conv2d_1", "dense_4", "output"]
    assert [r["epoch"] for r in health.health_records(record.path, "baseline")] == [1, 2]
    share = health.overhead(records, RunStore(record.path.parent).history(record.run_id))
    assert share is not None and 0 < share < 1

    # a bad epoch appended by hand: the panel must say so, with what to try
    append_jsonl(record.path / HEALTH_FILE, {**_record(50.0, 0.9), "epoch": 3})
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(record.path.parent))
    monkeypatch.setenv("CNNKIT_SLOTS_DIR", str(tmp_path / "slots"))
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
    at.query_params["run"] = record.run_id
    at.run()
    assert not at.exception
    assert any(e.label.startswith("🩺 Health after epoch 3: 2 warning(s)") for e in at.expander)
    texts = [w.value for w in at.warning]
    assert any("exploding gradient" in t and "lower the learning rate" in t for t in texts)
    assert any("90% of its ReLU units are dead" in t for t in texts)
