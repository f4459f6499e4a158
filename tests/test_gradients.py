"""The numpy gradients against tf.GradientTape: d logit / d pixels on every preset and on a zoo of
layers and options (strides, "same" padding, overlapping pools, every activation, batchnorm,
each normalization, logits output), and Grad-CAM's layer output and gradient."""

from __future__ import annotations

import time

import numpy as np
import pytest

from cnnkit.model.gradients import BACKWARD, Gradients, class_score_gradients
from cnnkit.model.lite import LiteModel, UnsupportedModel
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
tf = pytest.importorskip("tensorflow")

TARGETS = np.array([0, 3, 7])


def _build(layers, shape=(28, 28, 1), normalization="scale", output="softmax", seed=0):
    """A model with non-trivial weights: random biases, rescaled kernels, batchnorm statistics."""
    mean = std = None
    if normalization == "standardize":
        rng = np.random.default_rng(seed + 100)
        mean = rng.uniform(20, 60, shape).astype("float32")
        std = rng.uniform(40, 100, shape).astype("float32")
    model = models.build_model(layers, shape, 10, output=output, normalization=normalization,
                               mean=mean, std=std)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.5, channels).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, channels).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.2, channels).astype("float32"))
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            layer.kernel.assign(np.asarray(layer.kernel) * rng.uniform(0.8, 1.5))
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape).astype("float32"))
    return model


def _lite(model, tmp_path) -> LiteModel:
    path = tmp_path / "m.keras"
    model.save(path)
    return LiteModel.from_file(path)


def _pixels(shape, n=3, seed=1):
    return np.random.default_rng(seed).uniform(0, 255, size=(n, *shape)).astype("float32")


def _kinks(model):
    """(layer, its input layer) for the layers whose derivative jumps: relu/selu at 0, and max
    pooling where a window's max changes hands."""
    pairs = zip(model.layers, model.layers[1:], strict=False)
    return [(layer.name, prev.name) for prev, layer in pairs
            if isinstance(layer, keras.layers.MaxPooling2D)
            or layer.get_config().get("activation") in ("relu", "selu")]


def _branches(lite, maps, kinks):
    layers = {layer.name: layer for layer in lite.layers}
    for name, prev in kinks:
        if layers[name].class_name != "MaxPooling2D":
            yield maps[name] > 0
        else:  # where each window sends its gradient (the rule under test, as a pattern maker)
            ones = np.ones_like(maps[name])
            yield BACKWARD["MaxPooling2D"](layers[name], maps[prev], None, maps[name], ones)


def _tf_gradients(model, x, targets, layer=None, maps=()):
    """By GradientTape, from one forward pass: [d logit / d x (, d logit / d layer's output)],
    the logits, and the outputs of `layer` and `maps` by name."""
    head = model.get_layer("output")
    names = ([layer] if layer else []) + [name for name in maps if name != layer]
    probe = keras.Model(model.input, [model.get_layer(name).output for name in names] + [head.input])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        results = probe(xt, training=False)
        *outputs, hidden = results if isinstance(results, (list, tuple)) else [results]
        logits = tf.matmul(hidden, head.kernel)  # the pre-softmax score
        logits = logits + head.bias if head.use_bias else logits
        score = tf.reduce_sum(logits * tf.one_hot(targets, logits.shape[1]))
    grads = tape.gradient(score, [xt, *outputs[:1]] if layer else [xt])
    outputs = {name: np.asarray(out) for name, out in zip(names, outputs, strict=True)}
    return [g.numpy() for g in grads], logits.numpy(), outputs


def _oracle(model, lite, shape, targets=TARGETS, seed=1, layer=None):
    """A batch and TF's gradients on it, drawn so that TF and numpy take the same side of every
    kink in that very run. A pre-activation within rounding of 0 can fall on opposite sides
    (seen about one run in ten on raw 0-255 pixels; TF's rounding varies between runs) and the
    gradients then rightly differ there: a float32 oracle can only check the smooth parts."""
    kinks = _kinks(model)
    names = sorted({name for pair in kinks for name in pair})
    for attempt in range(20):
        x = _pixels(shape, len(targets), seed + 1000 * attempt)
        grads, logits, theirs = _tf_gradients(model, x, targets, layer, names)
        ours = lite(x, collect=tuple(names))[1]
        if all(np.array_equal(a, b) for a, b in zip(_branches(lite, theirs, kinks),
                                                    _branches(lite, ours, kinks), strict=True)):
            return x, grads, logits, theirs
    raise AssertionError("no batch away from the kinks in 20 draws")


def _close(got, want, rtol=1e-3):
    scale = float(np.abs(want).max()) or 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=1e-4 * scale)


def _check_against_tf(model, tmp_path, shape=(28, 28, 1), seed=1):
    lite = _lite(model, tmp_path)
    x, (want,), logits, _ = _oracle(model, lite, shape, seed=seed)
    grads = class_score_gradients(lite, x, TARGETS)
    assert grads.input.shape == x.shape and grads.input.dtype == np.float32
    assert np.abs(want).max() > 0, "a degenerate oracle: the gradient is zero everywhere"
    _close(grads.input, want)
    np.testing.assert_allclose(grads.logits, logits, rtol=1e-4, atol=1e-4 * np.abs(logits).max())
    probabilities = lite(x)[0]
    if lite.layers[-1].config.get("activation") != "softmax":  # a logits model
        probabilities = np.exp(probabilities - probabilities.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
    np.testing.assert_allclose(grads.probabilities, probabilities, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_match_gradient_tape(name, tmp_path):
    preset = PRESETS[name]
    model = _build(preset.layers, normalization=preset.dataset.normalization, output=preset.output)
    _check_against_tf(model, tmp_path)


ZOO = {
    "conv-same-stride2-tanh": ((Conv2D(4, 3, 2, "same", "tanh"), Flatten(), Dense(8, "sigmoid")),
                               (28, 28, 1), "scale"),
    "conv-same-even-kernel-odd-input": ((Conv2D(3, 4, 2, "same", "elu"), Conv2D(5, 2, 1, "same", "selu"),
                                         Flatten(), Dense(6, "linear")), (15, 15, 2), "standardize"),
    "conv-valid-stride-leftover": ((Conv2D(4, 3, 2, "valid", "relu"), Conv2D(3, 5, 3, "valid", "linear"),
                                    Flatten(), Dense(8, "relu")), (28, 28, 1), "none"),
    "maxpool-overlap-valid": ((Conv2D(4, 3, 1, "valid", "sigmoid"), MaxPool2D(3, 2, "valid"),
                               Flatten(), Dense(8, "elu")), (28, 28, 1), "scale"),
    "maxpool-overlap-same": ((Conv2D(4, 3, 1, "same", "selu"), MaxPool2D(3, 2, "same"),
                              Flatten(), Dense(8, "selu")), (27, 27, 1), "scale"),
    "maxpool-relu-ties": ((Conv2D(6, 3, 1, "valid", "relu"), MaxPool2D(2), MaxPool2D(2, 1, "same"),
                           Flatten(), Dense(16, "relu")), (28, 28, 1), "standardize"),
    "avgpool-same-and-valid": ((Conv2D(4, 3, 1, "same", "linear"), AvgPool2D(3, 2, "same"),
                                AvgPool2D(2, None, "valid"), AvgPool2D(2, 1, "same"),
                                Flatten(), Dense(8, "tanh")), (29, 29, 3), "scale"),
    "batchnorm-gap": ((Conv2D(8, 3, 1, "same", "relu"), BatchNorm(), Dropout(0.5), Conv2D(8, 3, 2, "valid", "elu"),
                       GlobalAvgPool(), Dense(12, "sigmoid"), BatchNorm()), (32, 32, 3), "standardize"),
    "dense-only-every-activation": ((Flatten(), Dense(12, "relu"), Dense(12, "sigmoid"), Dense(12, "tanh"),
                                     Dense(12, "elu"), Dense(12, "selu"), Dense(12, "linear")),
                                    (12, 12, 1), "scale"),
}


@pytest.mark.parametrize("output", ["softmax", "logits"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_matches_gradient_tape(name, output, tmp_path):
    layers, shape, normalization = ZOO[name]
    model = _build(layers, shape, normalization, output, seed=len(name))
    _check_against_tf(model, tmp_path, shape, seed=len(name))


@pytest.mark.parametrize("preset,name", [("chollet-cnn", "conv2d_1"), ("chollet-cnn", "conv2d_5"),
                                         ("chollet-cnn", "maxpool2d_4"), ("kruse-conv", "conv2d_3"),
                                         ("tf-tutorial-cnn", "conv2d_5"), ("west-fashion", "dropout_3")])
def test_layer_option_gives_activations_and_their_gradient(preset, name, tmp_path):
    spec = PRESETS[preset]
    model = _build(spec.layers, normalization=spec.dataset.normalization, output=spec.output)
    lite = _lite(model, tmp_path)
    x, (want_input, want), _, outputs = _oracle(model, lite, (28, 28, 1), layer=name)
    grads = class_score_gradients(lite, x, TARGETS, layer=name)
    maps = outputs[name]
    assert grads.layer == name and grads.activations.shape == maps.shape
    np.testing.assert_allclose(grads.activations, maps, rtol=1e-4, atol=1e-4 * np.abs(maps).max())
    _close(grads.layer_gradient, want)
    _close(grads.input, want_input)


def test_layer_option_at_the_ends_and_one_target_for_all(tmp_path):
    model = _build(PRESETS["west-fashion"].layers)
    lite = _lite(model, tmp_path)
    x, (want,), _, _ = _oracle(model, lite, (28, 28, 1), targets=np.full(4, 5))
    first = class_score_gradients(lite, x, 5, layer=lite.layers[0].name)
    np.testing.assert_array_equal(first.activations, x)
    np.testing.assert_array_equal(first.layer_gradient, first.input)
    np.testing.assert_array_equal(first.target, [5, 5, 5, 5])
    _close(first.input, want)
    last = class_score_gradients(lite, x, 5, layer="output")
    np.testing.assert_array_equal(last.activations, last.logits)
    np.testing.assert_array_equal(last.layer_gradient, np.eye(10, dtype="float32")[[5] * 4])
    assert isinstance(first, Gradients) and "4 images" in repr(first)
    with pytest.raises(AttributeError):
        first.input = None  # frozen


def test_options_only_hand_built_models_have(tmp_path):
    """No bias, batchnorm without center or scale, a hidden softmax, a bias-free output."""
    inputs = keras.Input((14, 14, 2), name="pixels")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False, activation="tanh")(x)
    x = keras.layers.BatchNormalization(center=False)(x)
    x = keras.layers.BatchNormalization(scale=False)(x)
    x = keras.layers.BatchNormalization(center=False, scale=False)(x)
    x = keras.layers.Dense(6, activation="softmax")(keras.layers.Flatten()(x))
    outputs = keras.layers.Dense(10, use_bias=False, activation="softmax", name="output")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(3)
    model.set_weights([w + rng.normal(0, 0.3, w.shape).astype("float32") ** 2 for w in model.get_weights()])
    lite = _lite(model, tmp_path)
    x, (want,), logits, _ = _oracle(model, lite, (14, 14, 2))
    grads = class_score_gradients(lite, x, TARGETS)
    _close(grads.input, want)
    np.testing.assert_allclose(grads.probabilities, lite(x)[0], atol=1e-5)


def test_bad_arguments_and_unsupported_models(tmp_path):
    lite = _lite(_build((Flatten(), Dense(4))), tmp_path)
    x = _pixels((28, 28, 1), n=2)
    for target in (10, -1, [1, 2, 3], 1.5):
        with pytest.raises(ValueError, match="target"):
            class_score_gradients(lite, x, target)
    with pytest.raises(ValueError, match="no layer named"):
        class_score_gradients(lite, x, 1, layer="nope")
    inputs = keras.Input((28, 28, 1))
    outputs = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    path = tmp_path / "no_dense.keras"
    keras.Model(inputs, outputs).save(path)
    with pytest.raises(UnsupportedModel, match="Dense output"):
        class_score_gradients(LiteModel.from_file(path), x, 1)


def test_speed_on_chollet_cnn(tmp_path, capsys):
    spec = PRESETS["chollet-cnn"]
    lite = _lite(_build(spec.layers, normalization="standardize"), tmp_path)
    one, batch = _pixels((28, 28, 1), n=1), _pixels((28, 28, 1), n=32)
    timings = []
    for x, repeats in ((one, 50), (batch, 10)):
        class_score_gradients(lite, x, 3, layer="conv2d_5")  # warm up
        start = time.perf_counter()
        for _ in range(repeats):
            class_score_gradients(lite, x, 3, layer="conv2d_5")
        timings.append((time.perf_counter() - start) / repeats * 1000)
    with capsys.disabled():
        print(f"\nchollet-cnn forward+backward: {timings[0]:.2f} ms for 1 image, "
              f"{timings[1]:.1f} ms for a batch of 32")
