"""Gradients of a class score with numpy alone: saliency, gradient×input, SmoothGrad, Grad-CAM.

The dashboard never imports TensorFlow (see lite.py), so the explanations differentiate the
`LiteModel` itself: the forward pass is lite's (the same functions, in the same order), and each
supported layer kind has one small backward rule that maps d score / d output to
d score / d input. Everything is vectorized over the batch, so SmoothGrad's 16–32 noisy copies
cost one pass. Tests check every rule against `tf.GradientTape` on every preset and a zoo.

The score is the target class's logit: the pre-activation of the model's last layer, which must
be Dense (cnnkit's output layer). The final softmax is never differentiated: its gradient fades
as the prediction saturates, and explanations of a confident prediction would vanish with it.

Max pooling sends a window's gradient to its maximum; when several positions tie, the first one
in the window's row-major order takes it all, as TensorFlow's CPU kernel does. Overlapping
windows (strides < pool size) add up what each sends to a shared position.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnkit.model.lite import (
    LiteLayer,
    LiteModel,
    UnsupportedModel,
    _bn_weights,
    _pad_same,
    _same_padding,
    _shifted,
    _single,
    activation,
    conv2d,
)
from cnnkit.model.outputs import softmax

_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772, 1.0507009873554805


@dataclass(frozen=True, repr=False)
class Gradients:
    """d logit[target] / d input for a batch, with the logits; and, when a layer was named, that
    layer's output (`activations`) and d logit[target] / d that output (`layer_gradient`)."""

    input: np.ndarray              # like x: (N, H, W, C)
    logits: np.ndarray             # (N, classes), the last Dense layer before its softmax
    probabilities: np.ndarray      # softmax(logits)
    target: np.ndarray             # (N,) class indices
    layer: str | None = None
    activations: np.ndarray | None = None
    layer_gradient: np.ndarray | None = None

    def __repr__(self) -> str:
        at = f", layer={self.layer} {self.activations.shape[1:]}" if self.layer else ""
        return f"Gradients({len(self.input)} images, input {self.input.shape[1:]}{at})"


# ---------------------------------------------------------------------------
# Window geometry: the padded grid a layer's window slides over, and how to crop back


def _window(layer: LiteLayer) -> tuple[int, int]:
    c = layer.config
    if layer.class_name == "Conv2D":
        return layer.weights[0].shape[0], _single(c["strides"])
    return _single(c["pool_size"]), _single(c.get("strides") or c["pool_size"])


def _slices(out_h: int, out_w: int, k: int, s: int):
    """(i, j, index) for each window offset: `padded[index]` is that offset's strided view."""
    for i in range(k):
        for j in range(k):
            yield i, j, (slice(None), slice(i, i + (out_h - 1) * s + 1, s),
                         slice(j, j + (out_w - 1) * s + 1, s))


def _crop(grad_padded: np.ndarray, x_shape: tuple[int, ...], k: int, s: int, padding: str):
    if padding != "same":
        return grad_padded
    top, left = _same_padding(x_shape[1], k, s)[0], _same_padding(x_shape[2], k, s)[0]
    return grad_padded[:, top:top + x_shape[1], left:left + x_shape[2]]


def _padded_shape(x_shape, k: int, s: int, padding: str) -> tuple[int, ...]:
    if padding != "same":
        return tuple(x_shape)
    rows, cols = sum(_same_padding(x_shape[1], k, s)), sum(_same_padding(x_shape[2], k, s))
    return (x_shape[0], x_shape[1] + rows, x_shape[2] + cols, x_shape[3])


# ---------------------------------------------------------------------------
# Activation derivatives: d output / d pre-activation, times the incoming gradient


def _through_activation(g: np.ndarray, z: np.ndarray, y: np.ndarray, name: str | None):
    if name in ("linear", None):
        return g
    if name == "relu":
        return np.where(z > 0, g, np.float32(0.0))
    if name == "sigmoid":
        return g * y * (1 - y)
    if name == "tanh":
        return g * (1 - y * y)
    if name == "elu":
        return g * np.where(z > 0, np.float32(1.0), np.exp(np.minimum(z, 0.0)))
    if name == "selu":
        slope = np.where(z > 0, np.float32(1.0), np.float32(_SELU_ALPHA) * np.exp(np.minimum(z, 0.0)))
        return g * (np.float32(_SELU_SCALE) * slope)
    if name == "softmax":  # a hidden softmax: y * (g - <g, y>)
        return y * (g - (g * y).sum(axis=-1, keepdims=True))
    raise UnsupportedModel(f"activation {name!r}")


# ---------------------------------------------------------------------------
# Backward rules: (layer, its input x, its pre-activation z or None, its output y, d/d y) → d/d x


def _back_identity(layer, x, z, y, g):
    return g


def _back_rescaling(layer, x, z, y, g):
    return g * np.float32(layer.config.get("scale", 1.0))


def _back_normalization(layer, x, z, y, g):
    variance = np.asarray(layer.config["variance"], np.float32).reshape(x.shape[1:])
    return g / np.maximum(np.sqrt(variance), np.float32(1e-7))


def _back_batchnorm(layer, x, z, y, g):
    gamma, _, _, variance = _bn_weights(layer.config, layer.weights)
    return g * (gamma / np.sqrt(variance + np.float32(layer.config.get("epsilon", 1e-3))))


def _back_flatten(layer, x, z, y, g):
    return g.reshape(x.shape)


def _back_global_average(layer, x, z, y, g):
    return np.broadcast_to(g[:, None, None, :] / np.float32(x.shape[1] * x.shape[2]), x.shape)


def _transposed(kernel: np.ndarray) -> np.ndarray:
    # a contiguous copy: g @ kernel.T as a strided view is slower in OpenBLAS for these sizes
    return np.ascontiguousarray(kernel.T)


def _back_dense(layer, x, z, y, g):
    return _through_activation(g, z, y, layer.config.get("activation")) @ _transposed(layer.weights[0])


def _back_conv(layer, x, z, y, g):
    """Each output pixel's gradient spreads over its window: per kernel offset, one
    (pixels × filters) @ (filters × c_in) product added into the padded grid, then cropped.
    Stacked small products, as lite.conv2d: one big product would go to threaded BLAS, which
    is several times slower for these sizes when the cores are busy (a training process)."""
    g = _through_activation(g, z, y, layer.config.get("activation"))
    kernel_t = np.ascontiguousarray(layer.weights[0].transpose(0, 1, 3, 2))  # (k, k, filters, c_in)
    (k, s), padding = _window(layer), layer.config["padding"]
    grid = np.zeros(_padded_shape(x.shape, k, s, padding), np.float32)
    for i, j, index in _slices(g.shape[1], g.shape[2], k, s):
        grid[index] += g @ kernel_t[i, j]
    return _crop(grid, x.shape, k, s, padding)


def _back_max_pool(layer, x, z, y, g):
    (k, s), padding = _window(layer), layer.config["padding"]
    padded = _pad_same(x, k, s, -np.inf) if padding == "same" else x
    grid = np.zeros(padded.shape, np.float32)
    taken = np.zeros(y.shape, bool)  # a window whose max already got the gradient (ties)
    for _, _, index in _slices(y.shape[1], y.shape[2], k, s):
        hit = (padded[index] == y) & ~taken
        taken |= hit
        grid[index] += np.where(hit, g, np.float32(0.0))
    return _crop(grid, x.shape, k, s, padding)


def _back_average_pool(layer, x, z, y, g):
    (k, s), padding = _window(layer), layer.config["padding"]
    if padding == "same":  # TF leaves the padding out of each window's count, as lite.pool2d
        ones = _pad_same(np.ones((1, *x.shape[1:3], 1), np.float32), k, s, 0.0)
        g = g / np.add.reduce(list(_shifted(ones, k, s)))
    else:
        g = g / np.float32(k * k)
    grid = np.zeros(_padded_shape(x.shape, k, s, padding), np.float32)
    for _, _, index in _slices(y.shape[1], y.shape[2], k, s):
        grid[index] += g
    return _crop(grid, x.shape, k, s, padding)


BACKWARD = {
    "InputLayer": _back_identity, "Dropout": _back_identity, "Rescaling": _back_rescaling,
    "Normalization": _back_normalization, "BatchNormalization": _back_batchnorm,
    "Flatten": _back_flatten, "GlobalAveragePooling2D": _back_global_average,
    "Dense": _back_dense, "Conv2D": _back_conv, "MaxPooling2D": _back_max_pool,
    "AveragePooling2D": _back_average_pool,
}


# ---------------------------------------------------------------------------


def _check(layer: LiteLayer) -> None:
    c = layer.config
    if layer.class_name not in BACKWARD:
        raise UnsupportedModel(f"no gradient for layer {layer.name} of type {layer.class_name}")
    if c.get("data_format") == "channels_first":
        raise UnsupportedModel(f"layer {layer.name}: channels_first")
    if layer.class_name == "Conv2D" and (_single(c.get("dilation_rate", 1)) != 1 or c.get("groups", 1) != 1):
        raise UnsupportedModel(f"layer {layer.name}: dilated or grouped convolution")
    if layer.class_name == "BatchNormalization" and c.get("axis", -1) not in (-1, 3, [-1], [3]):
        raise UnsupportedModel(f"layer {layer.name}: batch normalization over axis {c['axis']}")


def _forward(layer: LiteLayer, x: np.ndarray, last: bool):
    """(pre-activation or None, output), exactly as LiteLayer computes them; the last layer's
    output is its pre-activation (the logits)."""
    c = layer.config
    if layer.class_name == "Conv2D":
        z = conv2d(x, layer.weights[0], layer.weights[1] if c.get("use_bias", True) else None,
                   _single(c["strides"]), c["padding"])
    elif layer.class_name == "Dense":
        z = x @ layer.weights[0]
        z = z + layer.weights[1] if c.get("use_bias", True) else z
    else:
        return None, layer(x).astype(np.float32, copy=False)
    z = z.astype(np.float32, copy=False)
    return z, z if last else activation(z, c.get("activation")).astype(np.float32, copy=False)


def _targets(target, n: int, classes: int) -> np.ndarray:
    t = np.broadcast_to(np.asarray(target), (n,)) if np.ndim(target) == 0 else np.asarray(target)
    if t.shape != (n,) or not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= classes:
        raise ValueError(f"target must be a class index in [0, {classes}) or {n} of them, got {target!r}")
    return t.astype(np.int64)


def class_score_gradients(model: LiteModel, x: np.ndarray, target: np.ndarray | int,
                          layer: str | None = None) -> Gradients:
    """d logit[target] / d x for float32 pixels x (N, H, W, C), 0–255 as the model takes them.

    `target`: one class for every image, or one per image (N,). `layer`: a layer's name, to also
    get its output and the logit's gradient with respect to it (Grad-CAM); naming the output
    layer gives the logits and a one-hot gradient. Raises UnsupportedModel for a model whose
    last layer is not Dense or that holds a layer without a backward rule here."""
    layers = model.layers
    if not layers or layers[-1].class_name != "Dense":
        raise UnsupportedModel("the class score needs a Dense output layer")
    names = [lay.name for lay in layers]
    if layer is not None and layer not in names:
        raise ValueError(f"no layer named {layer!r}; the layers are: {', '.join(names)}")
    for lay in layers:
        _check(lay)
    x = np.asarray(x, dtype=np.float32)
    inputs, cache = [], []
    h = x
    for index, lay in enumerate(layers):
        inputs.append(h)
        z, h = _forward(lay, h, last=index == len(layers) - 1)
        cache.append((z, h))
    logits = h
    targets = _targets(target, len(x), logits.shape[1])
    g = np.zeros_like(logits)
    g[np.arange(len(x)), targets] = 1.0
    activations = layer_gradient = None
    for index in range(len(layers) - 1, -1, -1):
        lay = layers[index]
        if lay.name == layer:
            activations, layer_gradient = cache[index][1], g
        if index == len(layers) - 1:  # the logit is the pre-activation: skip the softmax
            g = g @ _transposed(lay.weights[0])
        else:
            g = BACKWARD[lay.class_name](lay, inputs[index], *cache[index], g)
    return Gradients(input=np.ascontiguousarray(g, dtype=np.float32), logits=logits,
                     probabilities=softmax(logits), target=targets, layer=layer,
                     activations=activations, layer_gradient=layer_gradient)
