"""Spec → Keras model: names, in-graph preprocessing, output head, regularization, optimizers, loading."""

import subprocess
import sys

import numpy as np
import pytest

from cnnkit.settings import REPO_ROOT
from cnnkit.specs import (
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
    TrainingSpec,
)
from tests import oracles

LAYERS = (Conv2D(4, 3, padding="same"), BatchNorm(), MaxPool2D(2), Dropout(0.5), Conv2D(6, 3, strides=2),
          GlobalAvgPool(), Dense(8))


@pytest.fixture(scope="module")
def models():
    from cnnkit.model import models

    return models


@pytest.fixture(scope="module")
def keras(models):
    from cnnkit.model.tf_import import keras

    return keras


def pixels(n=3, shape=(28, 28, 1), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype("float32")


def test_layer_names_follow_the_calculator(models):
    model = models.build_model(LAYERS, (28, 28, 1), 10)
    assert [layer.name for layer in model.layers] == [
        "pixels", "preprocess", "conv2d_1", "batchnorm_2", "maxpool2d_3", "dropout_4", "conv2d_5",
        "globalavgpool_6", "dense_7", "output"]
    assert [layer.name for layer in oracles.spec_layers(model)] == [
        "conv2d_1", "batchnorm_2", "maxpool2d_3", "dropout_4", "conv2d_5", "globalavgpool_6", "dense_7", "output"]


@pytest.mark.parametrize("normalization", ["none", "scale", "standardize"])
def test_preprocessing_inside_the_model(models, keras, normalization):
    x = pixels()
    mean = x.mean(axis=0) * 0.9 + 3.0  # any per-pixel statistics, not zero and not one
    std = x.std(axis=0) + 1.0
    model = models.build_model((Flatten(),), (28, 28, 1), 10, normalization=normalization, mean=mean, std=std)
    preprocess = keras.Model(model.input, model.get_layer("preprocess").output)
    got = np.asarray(preprocess(x))
    expected = {"none": x, "scale": x / 255.0, "standardize": (x - mean) / std}[normalization]
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-5)
    # no weights of its own: the parameter count is the calculator's
    assert model.count_params() == 784 * 10 + 10


def test_standardize_needs_statistics(models):
    with pytest.raises(ValueError, match="mean and std"):
        models.build_model((Flatten(),), (28, 28, 1), 10, normalization="standardize")


def test_softmax_and_logits_heads(models):
    x = pixels()
    softmax = models.build_model((Flatten(), Dense(8)), (28, 28, 1), 10, output="softmax")
    logits = models.build_model((Flatten(), Dense(8)), (28, 28, 1), 10, output="logits")
    assert softmax.get_layer("output").activation.__name__ == "softmax"
    assert logits.get_layer("output").activation.__name__ == "linear"
    assert np.allclose(np.asarray(softmax(x)).sum(axis=1), 1.0, atol=1e-6)
    assert not np.allclose(np.asarray(logits(x)).sum(axis=1), 1.0, atol=1e-3)


def test_weight_decay_is_l2_on_every_kernel(models):
    model = models.build_model((Conv2D(2, 3), Flatten(), Dense(4)), (28, 28, 1), 10, weight_decay=0.01)
    kernels = [model.get_layer(name).kernel for name in ("conv2d_1", "dense_3", "output")]
    expected = sum(0.01 * float(np.sum(np.square(np.asarray(k)))) for k in kernels)
    model(pixels(1))
    assert len(model.losses) == 3
    assert float(sum(np.asarray(loss) for loss in model.losses)) == pytest.approx(expected, rel=1e-5)
    plain = models.build_model((Conv2D(2, 3), Flatten(), Dense(4)), (28, 28, 1), 10)
    plain(pixels(1))
    assert plain.losses == []


@pytest.mark.parametrize("name, cls", [("adam", "Adam"), ("rmsprop", "RMSprop"), ("sgd", "SGD"),
                                       ("adagrad", "Adagrad")])
def test_optimizers(models, name, cls):
    training = TrainingSpec(optimizer=name, learning_rate=0.02, momentum=0.9, nesterov=True, schedule="step",
                            decay_rate=0.5, decay_epochs=1)
    optimizer = models.make_optimizer(training)
    assert type(optimizer).__name__ == cls
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.02)  # the rate of epoch 0
    if name == "sgd":
        assert optimizer.momentum == pytest.approx(0.9) and optimizer.nesterov is True


@pytest.mark.parametrize("output", ["softmax", "logits"])
def test_compile_sets_from_logits(models, output):
    model = models.build_model((Flatten(),), (28, 28, 1), 10, output=output)
    models.compile_model(model, TrainingSpec(), output)
    assert model.loss.get_config()["from_logits"] is (output == "logits")


def test_save_and_load_round_trip(models, tmp_path):
    model = models.build_model(LAYERS, (32, 32, 3), 10)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = models.load_model(path)
    x = pixels(4, (32, 32, 3))
    assert np.array_equal(np.asarray(model(x, training=False)), np.asarray(loaded(x, training=False)))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_load_model_refuses_code_in_the_file(models, keras, tmp_path):
    # A .keras file can carry a Lambda layer's Python bytecode; safe mode must not run it.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda t: t * 2)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(ValueError, match="(?i)unsafe|safe_mode|lambda"):
        models.load_model(path)


@pytest.mark.parametrize("collecting", [True, False])
def test_tensorflow_is_imported_without_the_collector_then_frozen(collecting):
    # A fresh interpreter: the import's objects are frozen (out of every later collection), and
    # the collector is on again afterwards exactly when it was on before.
    code = ("import gc, sys\n"
            f"{'' if collecting else 'gc.disable()'}\n"
            "before = gc.get_freeze_count()\n"
            "from cnnkit.model.tf_import import tf\n"
            "print(before, gc.get_freeze_count(), gc.isenabled(), 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    before, frozen, enabled, loaded = done.stdout.split()
    assert int(before) == 0 and int(frozen) > 100_000  # TensorFlow and Keras make a few hundred thousand
    assert enabled == str(collecting) and loaded == "True"


@pytest.mark.parametrize("first, keras_has_pandas", [("", False), ("import pandas", True), ("import streamlit", True)])
def test_keras_is_imported_without_pandas_unless_the_process_has_it(first, keras_has_pandas):
    # A fresh interpreter: Keras' optional pandas is skipped (the module Keras would take
    # DataFrames with is None), unless pandas was there first, or this is the Streamlit server
    # (where hiding it would hide it from every session's thread); it imports afterwards.
    code = ("import sys\n"
            f"{first}\n"
            "from cnnkit.model.tf_import import tf\n"
            "from keras.src.trainers.data_adapters import array_slicing\n"
            "print(array_slicing.pandas is not None)\n"
            "import pandas\n"
            "print(array_slicing.pandas is pandas, pandas.DataFrame({'a': [1, 2]}).a.sum())")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    first_line, second = done.stdout.splitlines()
    assert first_line == str(keras_has_pandas)
    assert second == f"{keras_has_pandas} 3"


def test_hidden_modules_fail_to_import_within_and_import_after():
    from cnnkit.model.tf_import import hidden

    sys.modules.pop("colorsys", None)
    with hidden(("colorsys", "json")):
        with pytest.raises(ImportError):
            import colorsys  # noqa: F401
        import json  # already loaded: left as it was

        assert json.dumps([1]) == "[1]"
    import colorsys

    assert colorsys.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
