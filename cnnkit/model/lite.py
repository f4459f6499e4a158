"""Run a saved cnnkit model with numpy alone: predictions and feature maps without TensorFlow.

Why: the dashboard process should never import TensorFlow. It costs ~3 s (the Draw page's
first prediction would wait for it) and ~400 MB of memory (Streamlit Community Cloud gives
about 1 GB, and a training process needs most of it). The models cnnkit builds are small
stacks of a handful of layer types, and a `.keras` file is a zip of `config.json` and
`model.weights.h5`, so a numpy forward pass reads the file directly. Tests check it against
Keras on every preset and on random specs.

Layer weights are stored in the h5 file under a path named after the layer's class, in
snake case, numbered per class in model order: `layers/conv2d`, `layers/conv2d_1`, …
(Keras' saving code names them this way, not by the layers' own names).
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass, field

import numpy as np

from cnnkit.errors import RunError, UploadError
from cnnkit.model.keras_config import history_names
from cnnkit.model.keras_file import read_model_file
from cnnkit.model.outputs import as_batch, probabilities, softmax

SUPPORTED = ("InputLayer", "Rescaling", "Normalization", "Conv2D", "MaxPooling2D", "AveragePooling2D",
             "Dropout", "BatchNormalization", "Flatten", "GlobalAveragePooling2D", "Dense")
MAP_LAYERS = ("Conv2D", "MaxPooling2D", "AveragePooling2D")


class UnsupportedModel(ValueError):
    """The file holds a layer or option this numpy runner does not implement (use Keras)."""


def _snake_case(name: str) -> str:
    # Keras' naming.to_snake_case
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    name = re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()
    return name


# ---------------------------------------------------------------------------
# The operations, on float32 arrays of shape (N, H, W, C) or (N, features)


def activation(x: np.ndarray, name: str) -> np.ndarray:
    if name in ("linear", None):
        return x
    if name == "relu":
        return np.maximum(x, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-x))
    if name == "tanh":
        return np.tanh(x)
    if name == "elu":
        return np.where(x > 0, x, np.expm1(np.minimum(x, 0.0)))
    if name == "selu":
        alpha, scale = 1.6732632423543772, 1.0507009873554805
        return scale * np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    if name == "softmax":
        return softmax(x)
    raise UnsupportedModel(f"activation {name!r}")


def _same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's "same": output ceil(n/s), the extra pixel of an odd total pad goes after."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def _pad_same(x: np.ndarray, k: int, s: int, pad_value: float) -> np.ndarray:
    top, bottom = _same_padding(x.shape[1], k, s)
    left, right = _same_padding(x.shape[2], k, s)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=pad_value)


def conv2d(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: int, padding: str) -> np.ndarray:
    """Shift-and-multiply: one (pixels × c_in) @ (c_in × filters) product per kernel offset.
    For these small kernels that beats building im2col windows by ~10×."""
    k, s = kernel.shape[0], strides
    if padding == "same":
        x = _pad_same(x, k, s, 0.0)
    out_h, out_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[3]), dtype=np.float32)
    for i in range(k):
        for j in range(k):
            patch = x[:, i:i + (out_h - 1) * s + 1:s, j:j + (out_w - 1) * s + 1:s, :]
            out += patch @ kernel[i, j]
    return out + bias if bias is not None else out


def _shifted(x: np.ndarray, k: int, s: int):
    """The k*k strided slices whose elementwise max/sum is the pooled map."""
    out_h, out_w = (x.shape[1] - k) // s + 1, (x.shape[2] - k) // s + 1
    for i in range(k):
        for j in range(k):
            yield x[:, i:i + (out_h - 1) * s + 1:s, j:j + (out_w - 1) * s + 1:s, :]


def pool2d(x: np.ndarray, k: int, strides: int, padding: str, kind: str) -> np.ndarray:
    if kind == "max":
        padded = _pad_same(x, k, strides, -np.inf) if padding == "same" else x
        return np.maximum.reduce(list(_shifted(padded, k, strides)))
    if padding == "valid":
        return np.add.reduce(list(_shifted(x, k, strides))) / np.float32(k * k)
    # TF's "same" average leaves the padding out of the count
    total = np.add.reduce(list(_shifted(_pad_same(x, k, strides, 0.0), k, strides)))
    ones = _pad_same(np.ones((1, *x.shape[1:3], 1), np.float32), k, strides, 0.0)
    count = np.add.reduce(list(_shifted(ones, k, strides)))
    return total / count


# ---------------------------------------------------------------------------


@dataclass(repr=False)
class LiteLayer:
    name: str
    class_name: str
    config: dict
    weights: list[np.ndarray] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"LiteLayer({self.name}: {self.class_name})"

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c, w = self.config, self.weights
        kind = self.class_name
        if kind in ("InputLayer", "Dropout"):
            return x
        if kind == "Rescaling":
            return x * np.float32(c.get("scale", 1.0)) + np.float32(c.get("offset", 0.0))
        if kind == "Normalization":
            mean = np.asarray(c["mean"], np.float32).reshape(x.shape[1:])
            variance = np.asarray(c["variance"], np.float32).reshape(x.shape[1:])
            return (x - mean) / np.maximum(np.sqrt(variance), np.float32(1e-7))
        if kind == "Conv2D":
            strides = _single(c["strides"])
            out = conv2d(x, w[0], w[1] if c.get("use_bias", True) else None, strides, c["padding"])
            return activation(out, c.get("activation"))
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            k = _single(c["pool_size"])
            strides = _single(c.get("strides") or c["pool_size"])
            return pool2d(x, k, strides, c["padding"], "max" if kind == "MaxPooling2D" else "avg")
        if kind == "BatchNormalization":
            gamma, beta, mean, variance = _bn_weights(c, w)
            return (x - mean) / np.sqrt(variance + np.float32(c.get("epsilon", 1e-3))) * gamma + beta
        if kind == "Flatten":
            return x.reshape(len(x), -1)
        if kind == "GlobalAveragePooling2D":
            return x.mean(axis=(1, 2))
        if kind == "Dense":
            out = x @ w[0]
            if c.get("use_bias", True):
                out = out + w[1]
            return activation(out, c.get("activation"))
        raise UnsupportedModel(f"layer {self.name} of type {kind}")


def _single(value) -> int:
    values = value if isinstance(value, (list, tuple)) else [value]
    if len(set(values)) != 1:
        raise UnsupportedModel(f"non-square window {value}")
    return int(values[0])


def _bn_weights(config: dict, weights: list[np.ndarray]) -> tuple[np.ndarray, ...]:
    # Stored in creation order: gamma (if scale), beta (if center), moving mean, moving variance.
    weights = list(weights)
    gamma = weights.pop(0) if config.get("scale", True) else np.float32(1.0)
    beta = weights.pop(0) if config.get("center", True) else np.float32(0.0)
    mean, variance = weights
    return gamma, beta, mean, variance


class LiteModel:
    """A saved model's layers, run in order with numpy (a plain stack: one input, one output)."""

    def __init__(self, name: str, layers: list[LiteLayer], input_shape: tuple[int, ...]):
        self.name = name
        self.layers = layers
        self.input_shape = input_shape

    def __repr__(self) -> str:
        return f"LiteModel({self.name}, {len(self.layers)} layers, input={self.input_shape})"

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> LiteModel:
        """A model file from a runs folder, through the same checks as an upload: the folder
        may be an unpacked zip someone shared."""
        try:
            checked = read_model_file(path)
        except UploadError as exc:
            raise RunError(f"{os.path.basename(path)} cannot be used: {exc}") from None
        try:
            return cls.from_parts(checked.config, checked.weights)
        except (KeyError, ValueError, TypeError, IndexError) as exc:
            if isinstance(exc, UnsupportedModel):
                raise
            raise RunError(f"{os.path.basename(path)} is damaged or not a Keras model file ({exc})") from None

    @classmethod
    def from_parts(cls, config: dict, weights_bytes: bytes) -> LiteModel:
        import h5py  # comes with TensorFlow/Keras; imported here so listing runs never needs it

        if config.get("class_name") not in ("Functional", "Sequential"):
            raise UnsupportedModel(f"model class {config.get('class_name')}")
        layer_configs = config["config"]["layers"]
        _check_linear(layer_configs)
        counts: dict[str, int] = {}
        layers = []
        with h5py.File(io.BytesIO(weights_bytes), "r") as h5:
            for entry in layer_configs:
                kind = entry["class_name"]
                if kind not in SUPPORTED:
                    raise UnsupportedModel(f"layer {entry['config'].get('name')} of type {kind}")
                base = _snake_case(kind)
                index = counts.get(base, 0)
                counts[base] = index + 1
                path = f"layers/{base}" if index == 0 else f"layers/{base}_{index}"
                group = h5.get(f"{path}/vars")
                weights = []
                if group is not None:
                    weights = [np.asarray(group[str(i)], dtype=np.float32) for i in range(len(group))]
                layers.append(LiteLayer(entry["config"]["name"], kind, entry["config"], weights))
        input_config = layer_configs[0]["config"]
        shape = input_config.get("batch_shape") or input_config.get("batch_input_shape")
        return cls(config["config"].get("name", "model"), layers, tuple(int(s) for s in shape[1:]))

    def __call__(self, x: np.ndarray, collect: tuple[str, ...] = ()) -> tuple[np.ndarray, dict]:
        """Forward pass on float32 (N, *input_shape); also returns the outputs of `collect` layers."""
        maps = {}
        x = np.asarray(x, dtype=np.float32)
        for layer in self.layers:
            x = layer(x).astype(np.float32, copy=False)
            if layer.name in collect:
                maps[layer.name] = x
        return x, maps


def _check_linear(layer_configs: list[dict]) -> None:
    """Each layer must take the previous one's output: no branches, no merges."""
    for previous, entry in zip(layer_configs, layer_configs[1:], strict=False):
        nodes = entry.get("inbound_nodes")
        if nodes is None:
            continue  # Sequential configs have no explicit wiring
        sources = [source for source, _ in history_names(nodes[0])] if len(nodes) == 1 else []
        if sources != [previous["config"]["name"]]:
            raise UnsupportedModel(f"layer {entry['config'].get('name')} is not a plain stack")


class LitePredictor:
    """The same interface as cnnkit.model.inspection.Predictor, without TensorFlow."""

    def __init__(self, model: LiteModel, output: str = "softmax"):
        self.model = model
        self.output = output
        self.input_shape = model.input_shape

    def __repr__(self) -> str:
        return f"LitePredictor({self.model.name}, input={self.input_shape}, output={self.output})"

    @classmethod
    def from_file(cls, path: str | os.PathLike, output: str = "softmax") -> LitePredictor:
        return cls(LiteModel.from_file(path), output)

    def probabilities(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Pixels 0–255, one image or a batch → (N, num_classes); in chunks to bound memory."""
        x = as_batch(images, self.input_shape)
        out = np.concatenate([self.model(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])
        return probabilities(out, self.output)

    @property
    def map_layer_names(self) -> list[str]:
        return [layer.name for layer in self.model.layers if layer.class_name in MAP_LAYERS]

    def feature_maps(self, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
        names = tuple(self.map_layer_names)
        _, maps = self.model(as_batch(image, self.input_shape)[:1], collect=names)
        return [(name, maps[name][0]) for name in names]

    def filters(self, layer_name: str | None = None) -> tuple[str, np.ndarray]:
        convs = [layer for layer in self.model.layers if layer.class_name == "Conv2D"]
        if not convs:
            raise ValueError("this model has no convolution layers")
        layer = next((c for c in convs if c.name == layer_name), convs[0]) if layer_name else convs[0]
        return layer.name, layer.weights[0]
