"""The numpy runner against Keras itself: same outputs and feature maps for every preset and
for random specs (including batchnorm, avg pooling, strides and "same" padding)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from cnnkit.model.lite import LiteModel, LitePredictor, UnsupportedModel
from cnnkit.model.predictor import load_predictor
from cnnkit.presets import PRESETS
from cnnkit.specs import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
)

models = pytest.importorskip("cnnkit.model.models")
keras = models.keras


def _save(model, tmp_path, name="m"):
    path = tmp_path / f"{name}.keras"
    model.save(path)
    return path


def _trained_like(model, seed=0):
    """Give BatchNorm non-trivial moving statistics, so the test sees them used."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, channels).astype("float32"))
    return model


def _pixels(shape, n=3, seed=1):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape)).astype("float32")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_match_keras(name, tmp_path):
    preset = PRESETS[name]
    shape = (28, 28, 1)
    mean = np.full(shape, 33.0, np.float32) if preset.dataset.normalization == "standardize" else None
    std = np.full(shape, 78.0, np.float32) if mean is not None else None
    model = models.build_model(preset.layers, shape, 10, output=preset.output,
                               normalization=preset.dataset.normalization, mean=mean, std=std)
    x = _pixels(shape)
    lite = LitePredictor.from_file(_save(model, tmp_path), preset.output)
    expected = np.asarray(model(x, training=False))
    if preset.output == "logits":
        expected = np.exp(expected - expected.max(1, keepdims=True))
        expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(lite.probabilities(x), expected, rtol=1e-4, atol=1e-5)


def _random_layers(rng: random.Random):
    layers, side = [], 28
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["conv", "conv", "max", "avg", "bn", "drop"])
        padding = rng.choice(["valid", "same"])
        if kind == "conv":
            k, s = rng.choice([1, 2, 3, 5]), rng.choice([1, 1, 2])
            if padding == "valid" and side < k:
                continue
            layers.append(Conv2D(rng.choice([2, 4, 8]), k, s, padding, rng.choice(["relu", "tanh", "elu", "selu", "sigmoid", "linear"])))
            side = -(-side // s) if padding == "same" else (side - k) // s + 1
        elif kind in ("max", "avg"):
            k, s = rng.choice([2, 3]), rng.choice([None, 1, 2])
            if padding == "valid" and side < k:
                continue
            cls = MaxPool2D if kind == "max" else AvgPool2D
            layers.append(cls(k, s, padding))
            stride = s or k
            side = -(-side // stride) if padding == "same" else (side - k) // stride + 1
        elif kind == "bn":
            layers.append(BatchNorm())
        else:
            layers.append(Dropout(0.3))
    layers.append(rng.choice([Flatten(), GlobalAvgPool()]))
    layers.append(Dense(rng.choice([5, 16]), rng.choice(["relu", "sigmoid"])))
    if rng.random() < 0.5:
        layers.append(BatchNorm())
    return tuple(layers)


@pytest.mark.parametrize("seed", range(12))
def test_random_specs_match_keras_with_feature_maps(seed, tmp_path):
    rng = random.Random(seed)
    shape = rng.choice([(28, 28, 1), (32, 32, 3)])
    layers = _random_layers(rng)
    model = _trained_like(models.build_model(layers, shape, 10, normalization="scale"), seed)
    lite = LitePredictor.from_file(_save(model, tmp_path))
    x = _pixels(shape, n=2, seed=seed)
    np.testing.assert_allclose(lite.probabilities(x), np.asarray(model(x, training=False)), rtol=1e-4, atol=1e-5)

    names = lite.map_layer_names
    assert names == [layer.name for layer in model.layers if isinstance(
        layer, (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D))]
    if names:
        probe = keras.Model(model.input, [model.get_layer(n).output for n in names])
        outputs = probe(x[:1], training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        for (name, got), want in zip(lite.feature_maps(x[0]), outputs, strict=True):
            np.testing.assert_allclose(got, np.asarray(want)[0], rtol=1e-4, atol=1e-4, err_msg=name)


def test_filters_are_the_kernel(tmp_path):
    model = models.build_model((Conv2D(6, 5), Flatten()), (28, 28, 1), 10)
    name, kernel = LitePredictor.from_file(_save(model, tmp_path)).filters()
    assert name == "conv2d_1"
    np.testing.assert_array_equal(kernel, np.asarray(model.get_layer("conv2d_1").kernel))


def test_unsupported_layer_falls_back_to_keras(tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(2, 3, name="c")(inputs)
    x = keras.layers.LayerNormalization(name="ln")(x)
    outputs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    path = _save(keras.Model(inputs, outputs), tmp_path)
    with pytest.raises(UnsupportedModel, match="LayerNormalization"):
        LiteModel.from_file(path)
    predictor = load_predictor(path)
    assert type(predictor).__name__ == "Predictor"
    assert predictor.probabilities(np.zeros((28, 28))).shape == (1, 10)


def test_damaged_file_is_a_clear_error(tmp_path):
    from cnnkit.errors import RunError

    model = models.build_model((Flatten(), Dense(4)), (28, 28, 1), 10)
    good = _save(model, tmp_path).read_bytes()
    for name, data in (("truncated", good[: len(good) // 2]), ("text", b"not a zip at all")):
        path = tmp_path / f"{name}.keras"
        path.write_bytes(data)
        with pytest.raises(RunError, match="cannot be used: (the .keras file is truncated or damaged|this is not a .keras model)"):
            load_predictor(path)
