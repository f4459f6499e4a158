"""Importing a model trained elsewhere: trained here the source articles' way (x / 255, a
Sequential with input_shape= or keras.Input, softmax or logits), imported, and its test accuracy
compared with Keras' own `evaluate` on the same images (the oracle, to 0.1 point)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.prepare import prepare_data
from cnnkit.errors import CnnkitError, UploadError
from cnnkit.runs.imported import IMPORTED_DIR, imported_runs
from cnnkit.runs.store import RunStore
from cnnkit.shapes import summarize_spec
from cnnkit.specs import Conv2D, Dense, Dropout, Flatten, MaxPool2D


@pytest.fixture(scope="module")
def keras():
    from cnnkit.model.tf_import import keras

    return keras


@pytest.fixture(scope="module")
def mnist():
    from cnnkit.data.sources import load_raw

    with pytest.MonkeyPatch.context() as env:  # module fixtures run before conftest hides the real data
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        return load_raw("mnist")  # the bundled sample: tests never read ../shared


def _article_model(keras, style: str):
    """What the tutorials write; `style` picks input_shape=, keras.Input or a logits head."""
    L = keras.layers
    first = (L.Conv2D(8, 3, activation="relu", input_shape=(28, 28, 1)) if style == "input_shape"
             else L.Conv2D(8, 3, activation="relu"))
    layers = [first, L.MaxPooling2D(2), L.Flatten(), L.Dropout(0.25), L.Dense(32, activation="relu"),
              L.Dense(10, activation=None if style == "logits" else "softmax")]
    if style != "input_shape":
        layers.insert(0, keras.Input(shape=(28, 28, 1)))
    return keras.Sequential(layers)


def _train_and_save(keras, mnist, style, path):
    keras.utils.set_random_seed(1)
    model = _article_model(keras, style)
    x_train = mnist.x_train.astype("float32")[..., None] / 255.0
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=style == "logits"))
    model.fit(x_train, mnist.y_train, epochs=1, batch_size=64, verbose=0)
    model.save(path)
    return model


@pytest.mark.parametrize("style", ["keras_input", "input_shape", "logits"])
def test_imported_accuracy_equals_keras_evaluate(keras, mnist, style, tmp_path):
    from cnnkit.model.importing import import_model

    path = tmp_path / "article.keras"
    model = _train_and_save(keras, mnist, style, path)
    store = RunStore(tmp_path / "runs")
    record = import_model(path, "mnist", store=store, filename=path.name)

    prepared = prepare_data(record.spec)
    _, keras_accuracy = model.evaluate(prepared.x_test.astype("float32") / 255.0, prepared.y_test, verbose=0)
    result = record.model_result("cnn")
    assert record.status == "finished" and record.kind == "imported"
    assert abs(result["test_accuracy"] - keras_accuracy) <= 0.001, (result["test_accuracy"], keras_accuracy)
    assert result["test_accuracy"] > 0.7  # it learned: the scaling was applied once, not twice or never
    assert result["params"] == model.count_params()

    # Rebuildable: the mapped spec is the same architecture, counted by cnnkit's own calculator.
    assert record.rebuildable
    assert record.spec.layers == (Conv2D(8, 3), MaxPool2D(2), Flatten(), Dropout(0.25), Dense(32))
    assert record.spec.output == ("logits" if style == "logits" else "softmax")
    assert summarize_spec(record.spec).total_params == model.count_params()

    # Stored predictions agree with the accuracy, as for trained runs (the confusion matrix reads them).
    stored = np.load(record.path / "predictions_cnn.npz")
    assert np.mean(stored["probs"].argmax(1) == stored["y_true"]) == pytest.approx(result["test_accuracy"])
    np.testing.assert_allclose(stored["probs"].sum(1), 1.0, atol=1e-4)


def test_raw_input_models_and_models_that_scale_themselves(keras, mnist, tmp_path):
    from cnnkit.model.importing import import_model

    keras.utils.set_random_seed(2)
    L = keras.layers
    model = keras.Sequential([keras.Input((28, 28, 1)), L.Rescaling(1 / 255), L.Flatten(),
                              L.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(mnist.x_train.astype("float32")[..., None], mnist.y_train, epochs=2, verbose=0)
    model.save(tmp_path / "raw.keras")
    store = RunStore(tmp_path / "runs")
    record = import_model(tmp_path / "raw.keras", "mnist", input_scale="raw", store=store)
    prepared = prepare_data(record.spec)
    _, keras_accuracy = model.evaluate(prepared.x_test.astype("float32"), prepared.y_test, verbose=0)
    assert abs(record.test_accuracy - keras_accuracy) <= 0.001
    assert record.rebuildable and record.spec.dataset.normalization == "scale"
    # Said to expect 0–1 inputs although it divides by 255 itself: it imports, but cannot be rebuilt.
    twice = import_model(tmp_path / "raw.keras", "mnist", input_scale="unit", store=store)
    assert not twice.rebuildable and "divides by 255 itself" in twice.imported["why_not_rebuildable"]


def test_a_branching_model_imports_but_is_not_rebuildable(keras, tmp_path):
    from cnnkit.model.importing import import_model

    L = keras.layers
    inputs = keras.Input((28, 28, 1))
    a, b = L.Conv2D(4, 3, padding="same")(inputs), L.Conv2D(4, 1)(inputs)
    outputs = L.Dense(10, activation="softmax")(L.Flatten()(L.Add()([a, b])))
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "branch.keras")
    record = import_model(tmp_path / "branch.keras", "mnist", store=RunStore(tmp_path / "runs"))
    assert record.status == "finished" and not record.rebuildable
    rows = {row["keras"]: row["cnnkit"] for row in record.imported["layers"]}
    assert rows["Add"] == "imported (not rebuildable)"
    assert record.model_result("cnn")["params"] == model.count_params()


def test_a_refused_import_leaves_no_run_behind(keras, tmp_path):
    from cnnkit.lab import hostile
    from cnnkit.model.importing import import_model

    model = _article_model(keras, "keras_input")
    model.save(tmp_path / "m.keras")
    raw = hostile.huge_dense((tmp_path / "m.keras").read_bytes())
    store = RunStore(tmp_path / "runs")
    with pytest.raises(UploadError, match="CNNKIT_MAX_PARAMS"):
        import_model(raw, "mnist", store=store)
    with pytest.raises(CnnkitError, match="Fashion-MNIST|classes|shape"):
        import_model(tmp_path / "m.keras", "cifar10", store=store)
    with pytest.raises(CnnkitError, match="name"):
        import_model(tmp_path / "m.keras", "mnist", store=store, name="bad\nname")
    assert store.list() == [] and imported_runs(store) == []


def _cli(*args, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "CNNKIT_OFFLINE": "1", "KERAS_HOME": str(tmp_path / "kh"),
           "PYTHONPATH": str(__import__("pathlib").Path(__file__).resolve().parent.parent)}
    return subprocess.run([sys.executable, "-m", "cnnkit", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_cnnkit_import_prints_the_json_line_and_refuses_in_one_line(keras, mnist, tmp_path):
    from cnnkit.lab import hostile

    path = tmp_path / "article.keras"
    model = _train_and_save(keras, mnist, "keras_input", path)
    runs = tmp_path / "runs"
    done = _cli("import", str(path), "--dataset", "mnist", "--runs-dir", str(runs), "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(line) == {"run_id", "test_accuracy", "test_loss", "params"}
    assert line["params"] == model.count_params()
    assert RunStore(runs).get(line["run_id"]).status == "finished"

    (tmp_path / "bomb.keras").write_bytes(hostile.shape_bomb(path.read_bytes()))
    refused = _cli("import", str(tmp_path / "bomb.keras"), "--dataset", "mnist", "--runs-dir", str(runs),
                   tmp_path=tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert len(refused.stderr.strip().splitlines()) == 1 and "declares more than" in refused.stderr
    assert len(RunStore(runs).list()) == 1


def test_an_imported_run_is_listed_like_a_trained_one(keras, tmp_path):
    from cnnkit.model.importing import import_model
    from cnnkit.views.ledger import ledger_row

    model = _article_model(keras, "keras_input")
    model.save(tmp_path / "m.keras")
    store = RunStore(tmp_path / "runs")
    record = import_model(tmp_path / "m.keras", "mnist", store=store, filename="m.keras")
    assert (store.root / IMPORTED_DIR / record.run_id).is_file()  # in the index the Models page reads
    assert [r.run_id for r in imported_runs(store)] == [record.run_id]
    row = ledger_row(record)
    assert row["architecture"].startswith("imported") and row["params"] == model.count_params()
    assert row["name"] == "imported m.keras" and row["dataset"] == "mnist"
    assert get_dataset_info(row["dataset"]).num_classes == 10


def test_a_cnnkit_model_brought_back_is_rebuildable_with_its_normalization(tmp_path):
    from cnnkit.model.importing import import_model
    from cnnkit.model.models import build_model
    from cnnkit.presets import get_preset

    preset = get_preset("chollet-cnn")
    assert preset.experiment().dataset.normalization == "standardize"
    model = build_model(preset.layers, (28, 28, 1), 10, normalization="standardize",
                        mean=np.full((28, 28, 1), 33.0), std=np.full((28, 28, 1), 78.0))
    model.save(tmp_path / "chollet.keras")  # a run's model.keras takes raw pixels
    record = import_model(tmp_path / "chollet.keras", "mnist", input_scale="raw", store=RunStore(tmp_path / "r"))
    assert record.rebuildable, record.imported["why_not_rebuildable"]
    assert record.spec.layers == preset.layers and record.spec.dataset.normalization == "standardize"
    assert summarize_spec(record.spec).total_params == model.count_params()


def test_a_functional_model_written_as_a_stack_is_rebuildable(keras, tmp_path):
    from cnnkit.model.importing import import_model

    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3, activation="relu")(inputs))
    keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x)).save(tmp_path / "chain.keras")
    record = import_model(tmp_path / "chain.keras", "mnist", store=RunStore(tmp_path / "runs"))
    assert record.rebuildable and record.spec.layers == (Conv2D(4, 3), Flatten())
