"""Predictor: the compiled probabilities equal the model's own output; feature maps and filters
have the shapes the calculator says."""

import numpy as np
import pytest

from cnnkit.shapes import summarize
from cnnkit.specs import AvgPool2D, BatchNorm, Conv2D, Dense, Dropout, Flatten, MaxPool2D

LAYERS = (Conv2D(4, 5, padding="same"), BatchNorm(), MaxPool2D(2), Conv2D(6, 3, strides=2), Dropout(0.2),
          AvgPool2D(2, 1, padding="same"), Flatten(), Dense(12))


@pytest.fixture(scope="module")
def tf_modules():
    from cnnkit.model import inspection, models

    return models, inspection


def pixels(n, shape=(28, 28, 1), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *shape)).astype("float32")


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("output", ["softmax", "logits"])
def test_probabilities_equal_the_models_output(tf_modules, output):
    models, inspection = tf_modules
    model = models.build_model(LAYERS, (28, 28, 1), 10, output=output)
    predictor = inspection.Predictor(model, output)
    x = pixels(5)
    raw = np.asarray(model(x, training=False), dtype=np.float64)
    expected = raw if output == "softmax" else softmax(raw)
    got = predictor.probabilities(x)
    assert got.shape == (5, 10)
    assert np.allclose(got, expected, rtol=1e-5, atol=1e-7)
    assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)
    if output == "logits":
        assert not np.allclose(raw.sum(axis=1), 1.0, atol=1e-3)  # softmax really was applied


def test_one_image_in_any_layout(tf_modules):
    models, inspection = tf_modules
    predictor = inspection.Predictor(models.build_model(LAYERS, (28, 28, 1), 10))
    x = pixels(3)
    batch = predictor.probabilities(x)
    assert np.allclose(predictor.probabilities(x[0]), batch[:1], atol=1e-6)            # (28, 28, 1)
    assert np.allclose(predictor.probabilities(x[0, ..., 0]), batch[:1], atol=1e-6)    # (28, 28)
    assert np.allclose(predictor.probabilities(x[..., 0]), batch, atol=1e-6)           # (N, 28, 28)
    with pytest.raises(ValueError, match="do not fit"):
        predictor.probabilities(np.zeros((32, 32, 3)))


def test_feature_map_shapes_equal_the_calculators(tf_modules):
    models, inspection = tf_modules
    for input_shape in ((28, 28, 1), (32, 32, 3)):
        predictor = inspection.Predictor(models.build_model(LAYERS, input_shape, 10))
        maps = predictor.feature_maps(pixels(1, input_shape)[0])
        rows = summarize(LAYERS, input_shape, 10).layers
        expected = [(row.name, row.output_shape) for row in rows
                    if row.type in ("conv2d", "maxpool2d", "avgpool2d")]
        assert [(name, values.shape) for name, values in maps] == expected
        assert [name for name, _ in expected] == ["conv2d_1", "maxpool2d_3", "conv2d_4", "avgpool2d_6"]


def test_feature_maps_of_the_first_conv_are_its_output(tf_modules):
    models, inspection = tf_modules
    from cnnkit.model.tf_import import keras

    model = models.build_model(LAYERS, (28, 28, 1), 10)
    x = pixels(1)
    name, values = inspection.Predictor(model).feature_maps(x[0])[0]
    direct = keras.Model(model.input, model.get_layer(name).output)(x)
    assert np.allclose(values, np.asarray(direct)[0], atol=1e-6)


def test_no_feature_maps_without_conv_or_pool(tf_modules):
    models, inspection = tf_modules
    predictor = inspection.Predictor(models.build_model((Flatten(), Dense(4)), (28, 28, 1), 10))
    assert predictor.feature_maps(pixels(1)[0]) == []
    with pytest.raises(ValueError, match="no convolution layers"):
        predictor.filters()


def test_filters_shape_is_k_k_cin_f(tf_modules):
    models, inspection = tf_modules
    predictor = inspection.Predictor(models.build_model(LAYERS, (32, 32, 3), 10))
    name, kernel = predictor.filters()
    assert (name, kernel.shape) == ("conv2d_1", (5, 5, 3, 4))
    name, kernel = predictor.filters("conv2d_4")
    assert (name, kernel.shape) == ("conv2d_4", (3, 3, 4, 6))
    assert np.array_equal(kernel, np.asarray(predictor.model.get_layer("conv2d_4").kernel))


def test_predictor_from_a_saved_file(tf_modules, tmp_path):
    models, inspection = tf_modules
    model = models.build_model(LAYERS, (28, 28, 1), 10, output="logits")
    model.save(tmp_path / "model.keras")
    x = pixels(4)
    in_memory = inspection.Predictor(model, "logits").probabilities(x)
    from_file = inspection.Predictor.from_file(tmp_path / "model.keras", "logits")
    assert np.array_equal(from_file.probabilities(x), in_memory)
    assert "logits" in repr(from_file)
