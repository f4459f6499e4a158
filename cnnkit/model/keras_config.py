"""What a saved Keras model's config.json implies, worked out before anything is built. No TensorFlow.

Keras allocates a layer's weights from its config: a 23 KB file declaring Dense(750,000,000)
peaked at 9.7 GB before the parameter cap could refuse the built model. So the shapes are
propagated here, layer by layer, from the model's input shape, with Python integers (no
overflow), and `config_budget` stops at the first layer that passes the parameter or
activation cap. Every shape the file declares for itself (a layer's `build_config`, the
tensors in a functional graph) must equal the propagated one: Keras builds layers from those
declarations, so a file that lies about them is refused rather than trusted.

Shapes exclude the batch axis: (28, 28, 1), never (None, 28, 28, 1).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cnnkit.errors import UploadError
from cnnkit.shapes import format_shape

MAX_DIM = 2**31 - 1
MODEL_CLASS_NAMES = ("Sequential", "Functional", "Model")
SAME_SHAPE = frozenset({
    "Rescaling", "Dropout", "SpatialDropout2D", "GaussianNoise", "Activation", "ReLU", "LeakyReLU",
    "ELU", "Softmax", "Identity", "RandomFlip", "RandomRotation", "RandomTranslation", "RandomZoom",
})
MERGES = frozenset({"Add", "Average", "Maximum", "Multiply", "Subtract"})


@dataclass(frozen=True)
class LayerBudget:
    """One layer as its config implies it: output shape and parameter count."""

    name: str
    class_name: str
    output_shape: tuple[int, ...]
    params: int

    def __repr__(self) -> str:
        return f"LayerBudget({self.name}: {self.class_name} → {format_shape(self.output_shape)}, {self.params:,})"


@dataclass(frozen=True)
class ConfigBudget:
    """The whole model: input shape, its layers in order, and the output layer's name."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerBudget, ...]
    output: str

    def __repr__(self) -> str:
        return f"ConfigBudget({format_shape(self.input_shape)}, {len(self.layers)} layers, {self.total_params:,} params)"

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def activation_floats(self) -> int:
        """Floats per image held by the layers' outputs (what one forward pass keeps alive)."""
        return sum(math.prod(layer.output_shape) for layer in self.layers)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return next(layer.output_shape for layer in self.layers if layer.name == self.output)


# ---------------------------------------------------------------------------
# Reading values out of a layer config


def _where(name: str) -> str:
    return f"layer '{name[:60]}'"


def _int(value: Any, name: str, key: str, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= MAX_DIM:
        shown = repr(value) if isinstance(value, (int, float, str)) and len(repr(value)) < 40 else "a bad value"
        raise UploadError(f"{_where(name)} has {key} {shown}: it must be a whole number from {lo} to {MAX_DIM:,}")
    return value


def _pair(value: Any, name: str, key: str, lo: int = 1) -> tuple[int, int]:
    if isinstance(value, list) and len(value) == 2:
        return _int(value[0], name, key, lo), _int(value[1], name, key, lo)
    number = _int(value, name, key, lo)
    return number, number


def _axes(value: Any, rank: int, name: str) -> tuple[int, ...]:
    values = value if isinstance(value, list) else [value]
    axes = []
    for axis in values:
        if isinstance(axis, bool) or not isinstance(axis, int) or not -rank - 1 <= axis <= rank:
            raise UploadError(f"{_where(name)} has an invalid axis {str(axis)[:20]!r}")
        axes.append(axis % (rank + 1) - 1)  # 0 = the first axis after the batch
    if any(axis < 0 for axis in axes):
        raise UploadError(f"{_where(name)} normalizes over the batch axis")
    return tuple(axes)


def _spatial(shape: tuple[int, ...], name: str, kind: str) -> tuple[int, int, int]:
    if len(shape) != 3:
        raise UploadError(f"{_where(name)} ({kind}) needs an image-shaped input (height×width×channels), "
                          f"but receives {format_shape(shape)}")
    return shape  # type: ignore[return-value]


def _window(n: int, k: int, s: int, d: int, padding: Any, name: str) -> int:
    if padding == "same":
        return -(-n // s)
    if padding != "valid":
        raise UploadError(f"{_where(name)} has padding {str(padding)[:20]!r}; only 'valid' and 'same' exist")
    out = (n - d * (k - 1) - 1) // s + 1
    if out < 1:
        raise UploadError(f"{_where(name)} has a window of {k} on an input of size {n}: its output would be empty")
    return out


def _channels_last(config: dict, name: str) -> None:
    if config.get("data_format", "channels_last") not in ("channels_last", None):
        raise UploadError(f"{_where(name)} uses data_format {str(config.get('data_format'))[:20]!r}; "
                          f"only channels_last (height×width×channels, Keras' default) is accepted")


# ---------------------------------------------------------------------------
# One layer: (class, config, input shapes) → (output shape, parameters)


def _conv(kind: str, config: dict, shape: tuple[int, ...], name: str) -> tuple[tuple[int, ...], int]:
    height, width, channels = _spatial(shape, name, kind)
    _channels_last(config, name)
    kh, kw = _pair(config.get("kernel_size"), name, "kernel_size")
    sh, sw = _pair(config.get("strides", 1), name, "strides")
    dh, dw = _pair(config.get("dilation_rate", 1), name, "dilation_rate")
    bias = config.get("use_bias", True) is not False
    out_h = _window(height, kh, sh, dh, config.get("padding", "valid"), name)
    out_w = _window(width, kw, sw, dw, config.get("padding", "valid"), name)
    if kind == "Conv2D":
        filters, groups = _int(config.get("filters"), name, "filters"), _int(config.get("groups", 1), name, "groups")
        if channels % groups or filters % groups:
            raise UploadError(f"{_where(name)} has {groups} groups, which do not divide its channels")
        return (out_h, out_w, filters), kh * kw * (channels // groups) * filters + filters * bias
    multiplier = _int(config.get("depth_multiplier", 1), name, "depth_multiplier")
    depthwise = kh * kw * channels * multiplier
    if kind == "DepthwiseConv2D":
        return (out_h, out_w, channels * multiplier), depthwise + channels * multiplier * bias
    filters = _int(config.get("filters"), name, "filters")
    return (out_h, out_w, filters), depthwise + channels * multiplier * filters + filters * bias


def _pool(kind: str, config: dict, shape: tuple[int, ...], name: str) -> tuple[tuple[int, ...], int]:
    height, width, channels = _spatial(shape, name, kind)
    _channels_last(config, name)
    ph, pw = _pair(config.get("pool_size", 2), name, "pool_size")
    strides = config.get("strides")
    sh, sw = (ph, pw) if strides is None else _pair(strides, name, "strides")
    padding = config.get("padding", "valid")
    return (_window(height, ph, sh, 1, padding, name), _window(width, pw, sw, 1, padding, name), channels), 0


def _padding_amounts(value: Any, name: str, key: str) -> tuple[int, int, int, int]:
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, list) for v in value):
        (top, bottom), (left, right) = (_pair(v, name, key, 0) for v in value)
        return top, bottom, left, right
    vertical, horizontal = _pair(value, name, key, 0)
    return vertical, vertical, horizontal, horizontal


def layer_budget(kind: str, config: dict, shapes: list[tuple[int, ...]], name: str) -> tuple[tuple[int, ...], int]:
    """The output shape and parameter count of one built-in layer, from its config."""
    if kind in MERGES or kind == "Concatenate":
        if len(shapes) < 2:
            raise UploadError(f"{_where(name)} ({kind}) merges at least two inputs, but has {len(shapes)}")
        if kind == "Concatenate":
            axis = _axes(config.get("axis", -1), len(shapes[0]), name)[0]
            if any(len(s) != len(shapes[0]) or s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:]
                   for s in shapes):
                raise UploadError(f"{_where(name)} concatenates inputs of shapes that do not fit together")
            return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:], 0
        if any(s != shapes[0] for s in shapes):
            raise UploadError(f"{_where(name)} ({kind}) gets inputs of different shapes: "
                              f"{', '.join(format_shape(s) for s in shapes[:4])}")
        return shapes[0], 0
    if len(shapes) != 1:
        raise UploadError(f"{_where(name)} ({kind}) takes one input, but has {len(shapes)}")
    shape = shapes[0]
    if kind in SAME_SHAPE:
        return shape, 0
    if kind in ("Conv2D", "DepthwiseConv2D", "SeparableConv2D"):
        return _conv(kind, config, shape, name)
    if kind in ("MaxPooling2D", "AveragePooling2D"):
        return _pool(kind, config, shape, name)
    if kind in ("GlobalAveragePooling2D", "GlobalMaxPooling2D"):
        channels = _spatial(shape, name, kind)[2]
        _channels_last(config, name)
        return ((1, 1, channels) if config.get("keepdims") else (channels,)), 0
    if kind == "Dense":
        units = _int(config.get("units"), name, "units")
        return shape[:-1] + (units,), shape[-1] * units + units * (config.get("use_bias", True) is not False)
    if kind == "Flatten":
        return (math.prod(shape),), 0
    if kind == "Reshape":
        return _reshape(config.get("target_shape"), shape, name), 0
    if kind in ("BatchNormalization", "LayerNormalization", "Normalization"):
        size = math.prod(shape[axis] for axis in _axes(config.get("axis", -1), len(shape), name))
        if kind == "BatchNormalization":
            return shape, 4 * size  # gamma, beta, moving mean, moving variance
        if kind == "LayerNormalization":
            return shape, size * ((config.get("scale", True) is not False) + (config.get("center", True) is not False))
        # Given mean and variance live in the config (no weights); adapted ones are weights.
        return shape, 0 if config.get("mean") is not None else 2 * size + 1  # mean, variance, count
    if kind == "PReLU":
        shared = set(_axes(config.get("shared_axes") or [], len(shape), name)) if config.get("shared_axes") else set()
        return shape, math.prod(1 if axis in shared else size for axis, size in enumerate(shape))
    if kind in ("ZeroPadding2D", "Cropping2D"):
        height, width, channels = _spatial(shape, name, kind)
        _channels_last(config, name)
        key = "padding" if kind == "ZeroPadding2D" else "cropping"
        top, bottom, left, right = _padding_amounts(config.get(key, 1 if key == "padding" else 0), name, key)
        sign = 1 if kind == "ZeroPadding2D" else -1
        out = (height + sign * (top + bottom), width + sign * (left + right), channels)
        if min(out[:2]) < 1:
            raise UploadError(f"{_where(name)} crops its whole input away")
        return out, 0
    raise UploadError(f"{_where(name)} is a {kind[:60]} layer, which uploaded models may not use")


def _reshape(target: Any, shape: tuple[int, ...], name: str) -> tuple[int, ...]:
    if not isinstance(target, list) or not 1 <= len(target) <= 8:
        raise UploadError(f"{_where(name)} has an invalid target_shape")
    known = [_int(v, name, "target_shape") for v in target if v != -1]
    if len(target) - len(known) > 1:
        raise UploadError(f"{_where(name)} has more than one -1 in its target_shape")
    size, product = math.prod(shape), math.prod(known)
    if len(known) < len(target):
        if product == 0 or size % product:
            raise UploadError(f"{_where(name)} cannot reshape {format_shape(shape)} to {target}")
        target = [size // product if v == -1 else v for v in target]
    if math.prod(target) != size:
        raise UploadError(f"{_where(name)} cannot reshape {format_shape(shape)} to {format_shape(tuple(target))}")
    return tuple(target)


# ---------------------------------------------------------------------------
# The whole graph


def _declared_shape(value: Any) -> tuple[int, ...] | None:
    """A shape the file declares, batch axis dropped; None when it declares none."""
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, (int, type(None))) and not isinstance(v, bool) for v in value):
        return tuple(value[1:])  # type: ignore[arg-type]
    return ()  # not a plain shape (a list of shapes, strings...): never equal to a real one


def history_names(node: Any) -> Iterator[tuple[str, tuple[int, ...] | None]]:
    """(layer name, declared shape) of every tensor a graph node reads."""
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            config = item.get("config")
            if item.get("class_name") == "__keras_tensor__" and isinstance(config, dict):
                history = config.get("keras_history")
                if not isinstance(history, list) or not history or not isinstance(history[0], str):
                    raise UploadError("the model's graph has a tensor with no source layer")
                yield history[0], _declared_shape(config.get("shape"))
                continue
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _input_shape(entry: dict, name: str) -> tuple[int, ...]:
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    shape = _declared_shape(config.get("batch_shape") or config.get("batch_input_shape"))
    if not shape or any(not isinstance(v, int) for v in shape):
        raise UploadError(f"the input layer '{name[:60]}' has no fixed shape: the model must be built "
                          f"with keras.Input(shape=(height, width, channels))")
    return tuple(_int(v, name, "input size") for v in shape)


def _entry(entry: Any) -> tuple[str, str, dict]:
    if not isinstance(entry, dict) or not isinstance(entry.get("class_name"), str):
        raise UploadError("the model's layer list holds something that is not a layer")
    config = entry.get("config") if isinstance(entry.get("config"), dict) else {}
    name = entry.get("name") if isinstance(entry.get("name"), str) else config.get("name")
    if not isinstance(name, str) or not name:
        raise UploadError(f"a {entry['class_name'][:60]} layer has no name")
    return entry["class_name"], name, config


def config_budget(config: dict, *, max_params: int, max_activation_floats: int) -> ConfigBudget:
    """Propagate shapes through the model's layers; UploadError at the first problem or cap."""
    body = config.get("config") if isinstance(config.get("config"), dict) else {}
    entries = body.get("layers")
    if not isinstance(entries, list) or not entries:
        raise UploadError("the model has no layers")
    if len(entries) > 1000:
        raise UploadError(f"the model has {len(entries):,} layers; at most 1,000 are accepted")
    sequential = config.get("class_name") == "Sequential"
    shapes: dict[str, tuple[int, ...]] = {}
    layers: list[LayerBudget] = []
    total_params = total_floats = 0
    previous: str | None = None
    input_shape: tuple[int, ...] | None = None  # the first input layer's, or a Sequential's built shape
    for index, raw in enumerate(entries):
        kind, name, layer_config = _entry(raw)
        if name in shapes:
            raise UploadError(f"two layers are named '{name[:60]}'")
        if kind in MODEL_CLASS_NAMES:
            raise UploadError(f"{_where(name)} is a whole model inside the model; save a flat model "
                              f"(one list of layers) instead")
        if kind == "InputLayer":
            if sequential and index:
                raise UploadError(f"the input layer '{name[:60]}' is not the first layer")
            output, params = _input_shape(raw, name), 0
            input_shape = input_shape or output
        else:
            inputs = _inputs(raw, name, sequential, previous, shapes, body)
            if previous is None:  # a Sequential without an input layer reads its built shape
                input_shape = inputs[0]
            declared = _declared_shape((raw.get("build_config") or {}).get("input_shape")
                                       if isinstance(raw.get("build_config"), dict) else None)
            if declared is not None and len(inputs) == 1 and declared != inputs[0]:
                raise UploadError(f"{_where(name)} declares the input shape {format_shape(declared)} but "
                                  f"receives {format_shape(inputs[0])}: the file was edited or is damaged")
            output, params = layer_budget(kind, layer_config, inputs, name)
        total_params += params
        total_floats += math.prod(output)
        if total_params > max_params:
            raise UploadError(f"{_where(name)} ({kind}) brings the model to {total_params:,} parameters; "
                              f"this server allows {max_params:,} (CNNKIT_MAX_PARAMS)")
        if total_floats > max_activation_floats:
            raise UploadError(f"{_where(name)} ({kind}, output {format_shape(output)}) brings the activations "
                              f"to {total_floats:,} values per image; this server allows "
                              f"{max_activation_floats:,} (CNNKIT_MAX_ACTIVATION_MB)")
        shapes[name] = output
        layers.append(LayerBudget(name, kind, output, params))
        previous = name
    return ConfigBudget(input_shape or (), tuple(layers), _output_name(body, sequential, previous))


def _inputs(raw: dict, name: str, sequential: bool, previous: str | None, shapes: dict,
            body: dict) -> list[tuple[int, ...]]:
    if sequential:
        if previous is None:
            declared = _declared_shape(body.get("build_input_shape"))
            if not declared or any(not isinstance(v, int) for v in declared):
                raise UploadError("the model was saved before it was built, so it has no input shape: "
                                  "build it with keras.Input(shape=(28, 28, 1)) as its first layer (or "
                                  "input_shape= on the first layer) and save it again")
            return [tuple(_int(v, name, "input size") for v in declared)]
        return [shapes[previous]]
    nodes = raw.get("inbound_nodes")
    if not isinstance(nodes, list) or len(nodes) != 1:
        raise UploadError(f"{_where(name)} is used {len(nodes) if isinstance(nodes, list) else 'an unknown number of'} "
                          f"times in the graph; each layer must be used exactly once")
    inputs = []
    for source, declared in history_names(nodes[0]):
        if source not in shapes:
            raise UploadError(f"{_where(name)} reads from '{source[:60]}', which is not an earlier layer")
        if declared is not None and declared != shapes[source]:
            raise UploadError(f"{_where(name)} declares an input of shape {format_shape(declared)} from "
                              f"'{source[:60]}', which outputs {format_shape(shapes[source])}: the file was edited")
        inputs.append(shapes[source])
    return inputs


def _output_name(body: dict, sequential: bool, last: str | None) -> str:
    if sequential:
        return str(last)
    outputs = body.get("output_layers")
    if isinstance(outputs, list) and len(outputs) == 1 and isinstance(outputs[0], list):
        outputs = outputs[0]
    if not (isinstance(outputs, list) and outputs and isinstance(outputs[0], str)):
        raise UploadError("the model must have exactly one output")
    return outputs[0]
