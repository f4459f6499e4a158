"""Spec → `keras.Model` (TensorFlow, like everything in cnnkit/model/).

The model takes raw pixel values (float, 0–255) and normalizes inside the graph, so a saved
`model.keras` is self-contained: the Draw page and the CLI feed it pixels, nothing else.
Layer names match the shape calculator's (`conv2d_1`, …, `output`), which is how tests compare
the two layer by layer.
"""

from __future__ import annotations

import os
import zipfile

import numpy as np

from cnnkit.model.tf_import import keras  # TensorFlow, imported quietly
from cnnkit.shapes import layer_name, summarize
from cnnkit.specs import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    TrainingSpec,
)

PREPROCESS_LAYER = "preprocess"


def preprocessing_layer(normalization: str, mean: np.ndarray | None = None,
                        std: np.ndarray | None = None) -> keras.layers.Layer:
    """0–255 pixels → the network's input scale, with no trainable weights."""
    if normalization == "scale":
        return keras.layers.Rescaling(1.0 / 255.0, name=PREPROCESS_LAYER)
    if normalization == "standardize":
        if mean is None or std is None:
            raise ValueError("standardize needs the training split's per-pixel mean and std")
        axes = tuple(range(1, mean.ndim + 1))
        return keras.layers.Normalization(axis=axes, mean=mean, variance=np.square(std),
                                          name=PREPROCESS_LAYER)
    return keras.layers.Rescaling(1.0, name=PREPROCESS_LAYER)  # "none": raw 0–255 values


def keras_layer(index: int, layer: Layer, weight_decay: float = 0.0) -> keras.layers.Layer:
    name = layer_name(index, layer)
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    if isinstance(layer, Conv2D):
        return keras.layers.Conv2D(layer.filters, layer.kernel_size, strides=layer.strides,
                                   padding=layer.padding, activation=layer.activation,
                                   kernel_regularizer=regularizer, name=name)
    if isinstance(layer, MaxPool2D):
        return keras.layers.MaxPooling2D(layer.pool_size, strides=layer.effective_strides,
                                         padding=layer.padding, name=name)
    if isinstance(layer, AvgPool2D):
        return keras.layers.AveragePooling2D(layer.pool_size, strides=layer.effective_strides,
                                             padding=layer.padding, name=name)
    if isinstance(layer, Dropout):
        return keras.layers.Dropout(layer.rate, name=name)
    if isinstance(layer, BatchNorm):
        return keras.layers.BatchNormalization(name=name)
    if isinstance(layer, Flatten):
        return keras.layers.Flatten(name=name)
    if isinstance(layer, GlobalAvgPool):
        return keras.layers.GlobalAveragePooling2D(name=name)
    if isinstance(layer, Dense):
        return keras.layers.Dense(layer.units, activation=layer.activation,
                                  kernel_regularizer=regularizer, name=name)
    raise TypeError(f"no Keras layer for {layer!r}")


def build_model(layers: tuple[Layer, ...], input_shape: tuple[int, ...], num_classes: int, *,
                output: str = "softmax", normalization: str = "scale", mean: np.ndarray | None = None,
                std: np.ndarray | None = None, weight_decay: float = 0.0, name: str = "cnn") -> keras.Model:
    """Build the functional model. The shape calculator runs first, so impossible networks
    fail with its message (naming the layer) before Keras sees them."""
    summarize(layers, input_shape, num_classes)
    inputs = keras.Input(shape=input_shape, name="pixels")
    x = preprocessing_layer(normalization, mean, std)(inputs)
    for index, layer in enumerate(layers, start=1):
        x = keras_layer(index, layer, weight_decay)(x)
    regularizer = keras.regularizers.L2(weight_decay) if weight_decay > 0 else None
    # float32 output whatever the dtype policy: mixed-precision training (training.py) keeps
    # its softmax and loss exact; under the default policy this changes nothing.
    outputs = keras.layers.Dense(num_classes, activation="softmax" if output == "softmax" else None,
                                 kernel_regularizer=regularizer, name="output", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=name)


def make_optimizer(training: TrainingSpec) -> keras.optimizers.Optimizer:
    lr = training.learning_rate_at(0)
    if training.optimizer == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if training.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate=lr)
    if training.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=training.momentum,
                                    nesterov=training.nesterov)
    if training.optimizer == "adagrad":
        return keras.optimizers.Adagrad(learning_rate=lr)
    raise ValueError(f"unknown optimizer {training.optimizer!r}")


def compile_model(model: keras.Model, training: TrainingSpec, output: str = "softmax",
                  steps_per_execution: int = 1, loss_scale: bool = False) -> keras.Model:
    """`loss_scale`: float16 compute needs the loss scaled so small gradients do not flush to
    zero. Keras scales on its own only when the model's own policy is mixed_float16; ours sets
    the policy layer by layer (see levers._build), so it is asked for here."""
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=output == "logits")
    optimizer = make_optimizer(training)
    if loss_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], steps_per_execution=steps_per_execution)
    return model


def load_model(path: str | os.PathLike) -> keras.Model:
    """Load a `.keras` file with safe_mode on: no Lambda layers, no arbitrary code.
    A damaged file raises ValueError, like Keras' own refusals (a bad zip CRC would not)."""
    try:
        return keras.saving.load_model(path, compile=False, safe_mode=True)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{os.path.basename(path)} is damaged ({exc})") from None
