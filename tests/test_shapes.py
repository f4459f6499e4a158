"""The shape calculator against hand counts and against Keras itself.

Keras is the oracle for output shapes and parameter counts (models are built, never trained);
a gradient is the oracle for the receptive field.
"""

import random

import numpy as np
import pytest

from cnnkit.errors import ArchitectureError, SpecError
from cnnkit.presets import PRESETS
from cnnkit.shapes import layer_name, summarize, summarize_spec
from cnnkit.specs import (
    ACTIVATIONS,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
)
from tests import oracles

MNIST_SHAPE = (28, 28, 1)
CIFAR_SHAPE = (32, 32, 3)


@pytest.fixture(scope="module")
def models():
    """cnnkit.models, imported once for the module (it brings TensorFlow, ~3 s)."""
    from cnnkit.model import models

    return models


# ---------------------------------------------------------------------------
# Hand counts


def test_dense_128_params_by_hand():
    summary = summarize_spec(PRESETS["dense-128"].experiment())
    flatten, dense, output = summary.layers
    assert flatten.output_shape == (784,)            # 28 * 28 * 1
    assert dense.params == 784 * 128 + 128 == 100_480
    assert output.params == 128 * 10 + 10 == 1_290
    assert summary.total_params == 100_480 + 1_290 == 101_770


def test_chollet_cnn_params_shapes_and_receptive_fields_by_hand():
    summary = summarize_spec(PRESETS["chollet-cnn"].experiment())
    rows = {row.name: row for row in summary.layers}
    # 28 -conv3-> 26 -pool2-> 13 -conv3-> 11 -pool2-> 5 -conv3-> 3 -flatten-> 3*3*64 = 576
    assert [row.output_shape for row in summary.layers] == [
        (26, 26, 32), (13, 13, 32), (11, 11, 64), (5, 5, 64), (3, 3, 64), (576,), (70,), (10,)]
    assert rows["conv2d_1"].params == 3 * 3 * 1 * 32 + 32 == 320
    assert rows["conv2d_3"].params == 3 * 3 * 32 * 64 + 64 == 18_496
    assert rows["conv2d_5"].params == 3 * 3 * 64 * 64 + 64 == 36_928
    assert rows["dense_7"].params == 576 * 70 + 70 == 40_390
    assert rows["output"].params == 70 * 10 + 10 == 710
    assert summary.total_params == 320 + 18_496 + 36_928 + 40_390 + 710 == 96_844
    # r_out = r_in + (k - 1) * jump: 1+2=3; 3+1*1=4 (jump→2); 4+2*2=8; 8+1*2=10 (jump→4); 10+2*4=18
    assert [row.receptive_field for row in summary.layers[:5]] == [3, 4, 8, 10, 18]
    assert [row.rf_stride for row in summary.layers[:5]] == [1, 2, 2, 4, 4]
    assert rows["flatten_6"].receptive_field is None  # flat units see the whole image
    # multiply-adds of the first conv: 26*26 positions * 3*3*1 inputs * 32 filters
    assert rows["conv2d_1"].macs == 26 * 26 * 9 * 32


def test_kruse_conv_params_by_hand():
    summary = summarize_spec(PRESETS["kruse-conv"].experiment())
    # 'same' convs keep 28; pools halve: 28 → 14 → 7; flatten 7*7*32 = 1568
    expected = [
        3 * 3 * 1 * 64 + 64,     # conv2d_1: 640
        0,                       # maxpool2d_2
        3 * 3 * 64 * 32 + 32,    # conv2d_3: 18,464
        0,                       # maxpool2d_4
        0,                       # flatten_5 (1568 values)
        1568 * 32 + 32,          # dense_6: 50,208
        32 * 32 + 32,            # dense_7: 1,056
        32 * 10 + 10,            # output: 330
    ]
    assert [row.params for row in summary.layers] == expected
    assert summary.total_params == 640 + 18_464 + 50_208 + 1_056 + 330 == 70_698


def test_batchnorm_counts_four_per_channel_two_trainable():
    summary = summarize([Conv2D(8, 3), BatchNorm(), GlobalAvgPool()], MNIST_SHAPE, 10)
    bn = summary.layers[1]
    assert (bn.params, bn.trainable_params) == (4 * 8, 2 * 8)
    assert summary.total_params - summary.trainable_params == 2 * 8  # moving mean and variance


def test_stride_two_receptive_field_by_hand():
    layers = [Conv2D(4, 5, strides=2), Conv2D(4, 3), MaxPool2D(3, 2), Conv2D(4, 3)]
    summary = summarize(layers + [Flatten()], MNIST_SHAPE, 10)
    # conv5/2: r=5, j=2; conv3: 5+2*2=9; pool3/2: 9+2*2=13, j=4; conv3: 13+2*4=21
    assert [row.receptive_field for row in summary.layers[:4]] == [5, 9, 13, 21]
    assert [row.rf_stride for row in summary.layers[:4]] == [2, 2, 4, 4]
    # sizes: (28-5)//2+1 = 12; 10; (10-3)//2+1 = 4; 2
    assert [row.output_shape[0] for row in summary.layers[:4]] == [12, 10, 4, 2]


def test_same_padding_rounds_up():
    summary = summarize([Conv2D(2, 3, strides=3, padding="same"), MaxPool2D(2, padding="same"), Flatten()],
                        MNIST_SHAPE, 10)
    assert summary.layers[0].output_shape == (10, 10, 2)  # ceil(28 / 3)
    assert summary.layers[1].output_shape == (5, 5, 2)    # ceil(10 / 2)


# ---------------------------------------------------------------------------
# Impossible networks: one ArchitectureError naming the layer number and the reason


def assert_refused(layers, field, *fragments, input_shape=MNIST_SHAPE):
    with pytest.raises(ArchitectureError) as err:
        summarize(layers, input_shape, 10)
    assert isinstance(err.value, SpecError)
    assert err.value.field == field
    for fragment in fragments:
        assert fragment in str(err.value), str(err.value)
    return str(err.value)


def test_valid_conv_on_a_too_small_map():
    # pool 14 turns 28×28 into 2×2; a 3×3 'valid' window does not fit
    assert_refused([MaxPool2D(14), Conv2D(8, 3), Flatten()], "layers[1]",
                   "layer 2 (Conv2D 8 × 3×3", "3×3 window", "only 2×2", "padding 'same'")


def test_pooling_below_one_pixel():
    # 28 → 14 → 7 → 3 → 1, then a fifth 2×2 pool has nothing to pool
    message = assert_refused([MaxPool2D(2)] * 5 + [Flatten()], "layers[4]", "layer 5 (MaxPool 2×2",
                             "only 1×1")
    assert "layer 4" not in message


def test_dense_on_an_image_shaped_tensor():
    assert_refused([Conv2D(32, 3), Dense(128), Flatten()], "layers[1]", "layer 2 (Dense 128",
                   "26×26×32 map", "Flatten")


def test_conv_after_flatten():
    assert_refused([Flatten(), Conv2D(8, 3)], "layers[1]", "layer 2 (Conv2D", "flat vector of 784")


def test_globalavgpool_after_flatten():
    assert_refused([Flatten(), GlobalAvgPool()], "layers[1]", "layer 2 (GlobalAvgPool)", "flat vector")


def test_network_ending_on_an_image_shaped_map():
    assert_refused([Conv2D(32, 3)], "layers", "layer 1 (Conv2D 32", "26×26×32 map",
                   "Flatten or GlobalAvgPool")
    assert_refused([], "layers", "28×28×1 map")


def test_impossible_network_fails_in_build_model_before_keras(models):
    # The same message as the calculator's, not a Keras shape error.
    with pytest.raises(ArchitectureError, match="layer 2 "):
        models.build_model((MaxPool2D(14), Conv2D(8, 3), Flatten()), MNIST_SHAPE, 10)


# ---------------------------------------------------------------------------
# Against Keras: every preset and ~30 random valid specs


def random_layer(rng: random.Random, flat: bool):
    if flat:
        kind = rng.choice(["dense", "dense", "dropout", "batchnorm"])
    else:
        kind = rng.choice(["conv2d", "conv2d", "conv2d", "maxpool2d", "avgpool2d", "batchnorm", "dropout"])
    if kind == "conv2d":
        return Conv2D(filters=rng.choice([1, 3, 4, 8, 16]), kernel_size=rng.choice([1, 2, 3, 5]),
                      strides=rng.choice([1, 1, 2, 3]), padding=rng.choice(["valid", "same"]),
                      activation=rng.choice(ACTIVATIONS))
    if kind in ("maxpool2d", "avgpool2d"):
        cls = MaxPool2D if kind == "maxpool2d" else AvgPool2D
        return cls(pool_size=rng.choice([1, 2, 3]), strides=rng.choice([None, 1, 2, 3]),
                   padding=rng.choice(["valid", "same"]))
    if kind == "dense":
        return Dense(units=rng.choice([1, 7, 16, 33]), activation=rng.choice(ACTIVATIONS))
    return Dropout(rng.choice([0.0, 0.3])) if kind == "dropout" else BatchNorm()


def random_spec_layers(rng: random.Random, input_shape) -> list:
    """A random valid stack: image layers, Flatten or GlobalAvgPool, then flat layers.
    A candidate layer that would make the stack impossible is drawn again."""
    layers = []
    for flat, count, ending in ((False, rng.randint(1, 6), [Flatten()]), (True, rng.randint(0, 3), [])):
        if flat:
            layers.append(rng.choice([Flatten(), GlobalAvgPool()]))
        for _ in range(count):
            for _attempt in range(20):
                candidate = random_layer(rng, flat)
                try:
                    summarize(layers + [candidate] + ending, input_shape, 10)
                except ArchitectureError:
                    continue
                layers.append(candidate)
                break
    return layers


RANDOM_SPECS = [(seed, shape) for seed in range(15) for shape in (MNIST_SHAPE, CIFAR_SHAPE)]


def assert_matches_keras(models, layers, input_shape, num_classes, output="softmax"):
    summary = summarize(layers, input_shape, num_classes)
    model = models.build_model(tuple(layers), input_shape, num_classes, output=output)
    keras_layers = oracles.spec_layers(model)
    assert [layer.name for layer in keras_layers] == [row.name for row in summary.layers]
    for layer, row in zip(keras_layers, summary.layers, strict=True):
        assert tuple(layer.output.shape[1:]) == row.output_shape, row
        assert layer.count_params() == row.params, row
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        assert trainable == row.trainable_params, row
    assert model.count_params() == summary.total_params
    return summary


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_matches_keras(models, name):
    spec = PRESETS[name].experiment()
    from cnnkit.data.catalog import get_dataset_info

    info = get_dataset_info(spec.dataset.name)
    summary = assert_matches_keras(models, spec.layers, info.input_shape, info.num_classes, spec.output)
    assert summary.total_params == summarize_spec(spec).total_params


@pytest.mark.parametrize("seed, input_shape", RANDOM_SPECS)
def test_random_specs_match_keras(models, seed, input_shape):
    layers = random_spec_layers(random.Random(seed), input_shape)
    assert_matches_keras(models, layers, input_shape, 10)


def test_random_specs_cover_every_layer_type_padding_and_stride():
    """The generator above really exercises everything it claims to."""
    seen = set()
    for seed, input_shape in RANDOM_SPECS:
        for layer in random_spec_layers(random.Random(seed), input_shape):
            seen.add(layer.type)
            if hasattr(layer, "padding"):
                seen.add((layer.type, layer.padding))
            if isinstance(layer, Conv2D) and layer.strides > 1:
                seen.add(("conv2d", "strided"))
            if isinstance(layer, (MaxPool2D, AvgPool2D)) and layer.effective_strides != layer.pool_size:
                seen.add(("pool", "own stride"))
    expected = {"conv2d", "maxpool2d", "avgpool2d", "batchnorm", "dropout", "flatten", "globalavgpool",
                "dense", ("conv2d", "valid"), ("conv2d", "same"), ("maxpool2d", "valid"),
                ("maxpool2d", "same"), ("avgpool2d", "valid"), ("avgpool2d", "same"),
                ("conv2d", "strided"), ("pool", "own stride")}
    assert expected <= seen, expected - seen


# ---------------------------------------------------------------------------
# Receptive field by gradient: the input pixels that can change one output unit


def gradient_footprint(models, layers, input_shape=MNIST_SHAPE) -> tuple[int, int]:
    """Height and width of the input region with a nonzero gradient of the centre unit of the
    last image-shaped layer. Linear activations and average pooling, so no unit is switched off
    (ReLU) or skipped (max pooling): the footprint is the whole receptive field."""
    from cnnkit.model.tf_import import keras, tf

    keras.utils.set_random_seed(0)
    model = models.build_model(tuple(layers) + (Flatten(),), input_shape, 10)
    probe = keras.Model(model.input, model.get_layer(layer_name(len(layers), layers[-1])).output)
    x = tf.Variable(np.random.default_rng(0).uniform(1, 255, (1, *input_shape)).astype("float32"))
    with tf.GradientTape() as tape:
        out = probe(x)
        h, w = out.shape[1] // 2, out.shape[2] // 2
        unit = out[0, h, w, 0]
    grad = np.abs(tape.gradient(unit, x).numpy()[0]).sum(axis=-1)
    rows, cols = np.nonzero(grad)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


@pytest.mark.parametrize("layers", [
    [Conv2D(4, 3, activation="linear"), AvgPool2D(2), Conv2D(4, 3, activation="linear"), AvgPool2D(2),
     Conv2D(4, 3, activation="linear")],                                 # chollet-cnn's geometry: 18
    [Conv2D(4, 5, strides=2, activation="linear"), Conv2D(4, 3, activation="linear"),
     AvgPool2D(3, 2), Conv2D(4, 3, activation="linear")],                # the stride-2 example: 21
    [Conv2D(2, 3, padding="same", activation="linear"), AvgPool2D(3, 1, padding="same"),
     Conv2D(2, 2, strides=2, activation="linear")],                      # 'same' padding, stride 1 pool
], ids=["chollet-geometry", "stride-2", "same-padding"])
def test_receptive_field_equals_the_gradient_footprint(models, layers):
    expected = summarize(layers + [Flatten()], MNIST_SHAPE, 10).layers[len(layers) - 1].receptive_field
    assert gradient_footprint(models, layers) == (expected, expected)
