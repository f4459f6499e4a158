"""What cnnkit can read from a model trained elsewhere: its layers, as cnnkit layer specs where
they match. No TensorFlow: it works from the checked config.json and its budget.

A model is "rebuildable" when every layer maps (a plain stack of cnnkit's layer types, ending
in Dense over the classes) and the mapped spec has exactly the model's parameter count; then
Compare can train the same architecture again. Otherwise its layers are still listed, the
unmapped ones as "imported (not rebuildable)", and Inspect, Draw and Compare work on the
imported weights all the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnkit.errors import CnnkitError
from cnnkit.model.keras_config import ConfigBudget, history_names
from cnnkit.shapes import format_shape, summarize
from cnnkit.specs import (
    ACTIVATIONS,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool,
    Layer,
    MaxPool2D,
    text_problem,
)

NOT_REBUILDABLE = "imported (not rebuildable)"
INPUT_SCALES = ("unit", "raw")   # what pixels the model expects: 0–1 (x / 255) or 0–255


@dataclass(frozen=True)
class ImportedLayer:
    """One layer of an imported model, and the cnnkit layer it is (None: no cnnkit twin)."""

    name: str
    keras_class: str
    output_shape: tuple[int, ...]
    params: int
    cnnkit: Layer | None
    role: str = "layer"          # input / scaling / standardize / layer / output

    def __repr__(self) -> str:
        return f"ImportedLayer({self.name}: {self.keras_class} → {self.described})"

    @property
    def described(self) -> str:
        if self.role == "input":
            return "input"
        if self.role == "scaling":
            return "pixel scaling (x / 255)"
        if self.role == "standardize":
            return "per-pixel standardization (the training split's mean and std)"
        if self.role == "output":
            return "output (Dense over the classes)"
        return self.cnnkit.describe() if self.cnnkit is not None else NOT_REBUILDABLE

    def to_dict(self) -> dict:
        return {"name": self.name, "keras": self.keras_class, "output_shape": list(self.output_shape),
                "params": self.params, "cnnkit": self.described,
                "maps": self.role != "layer" or self.cnnkit is not None}


@dataclass(frozen=True)
class ImportedArchitecture:
    layers: tuple[ImportedLayer, ...]
    spec_layers: tuple[Layer, ...]     # () unless rebuildable
    rebuildable: bool
    normalization: str                 # what the run's model does to 0–255 pixels: scale or none
    output: str                        # softmax / logits
    why_not: str = ""

    def __repr__(self) -> str:
        kind = "rebuildable" if self.rebuildable else f"not rebuildable: {self.why_not}"
        return f"ImportedArchitecture({len(self.layers)} layers, {kind})"


def default_run_name(filename: str | None) -> str:
    """"imported <file name>", or "imported model" when the name is not plain text."""
    base = (filename or "").replace("\\", "/").rsplit("/", 1)[-1] or "model"
    name = f"imported {base}"[:100]
    return name if text_problem(name) is None else "imported model"


def _square(value, name: str) -> int | None:
    values = value if isinstance(value, list) else [value]
    return values[0] if len(set(values)) == 1 and isinstance(values[0], int) else None


def _activation(config: dict) -> str | None:
    activation = config.get("activation", "linear")
    return activation if isinstance(activation, str) and activation in ACTIVATIONS else None


def cnnkit_layer(kind: str, config: dict) -> Layer | None:
    """The cnnkit layer spec that builds exactly this Keras layer, or None."""
    try:
        if kind == "Conv2D":
            kernel, strides = _square(config.get("kernel_size"), "k"), _square(config.get("strides", 1), "s")
            plain = (_square(config.get("dilation_rate", 1), "d") == 1 and config.get("groups", 1) == 1
                     and config.get("use_bias", True) is True)
            if kernel and strides and plain and _activation(config):
                return Conv2D(config["filters"], kernel, strides, config.get("padding", "valid"),
                              _activation(config))
        if kind in ("MaxPooling2D", "AveragePooling2D"):
            pool = _square(config.get("pool_size", 2), "p")
            strides = config.get("strides")
            stride = pool if strides is None else _square(strides, "s")
            if pool and stride:
                cls = MaxPool2D if kind == "MaxPooling2D" else AvgPool2D
                return cls(pool, None if stride == pool else stride, config.get("padding", "valid"))
        if kind == "Dropout" and isinstance(config.get("rate"), (int, float)):
            return Dropout(float(config["rate"]))
        if kind == "BatchNormalization" and config.get("axis", -1) in (-1, 3, [-1], [3]) \
                and config.get("center", True) and config.get("scale", True):
            return BatchNorm()
        if kind == "Flatten":
            return Flatten()
        if kind == "GlobalAveragePooling2D" and not config.get("keepdims"):
            return GlobalAvgPool()
        if kind == "Dense" and _activation(config) and config.get("use_bias", True) is True:
            return Dense(config["units"], _activation(config))
    except (TypeError, ValueError, KeyError):
        return None
    return None


def _is_unit_scaling(kind: str, config: dict) -> bool:
    scale, offset = config.get("scale"), config.get("offset", 0.0)
    return (kind == "Rescaling" and isinstance(scale, (int, float)) and math.isclose(scale, 1 / 255, rel_tol=1e-4)
            and offset in (0, 0.0))


def _is_pixel_standardization(kind: str, config: dict) -> bool:
    return kind == "Normalization" and config.get("axis") in ([1, 2, 3], (1, 2, 3)) and not config.get("invert")


def read_architecture(config: dict, budget: ConfigBudget, num_classes: int, input_scale: str) -> ImportedArchitecture:
    """Map the checked config's layers to cnnkit's; `input_scale` is what the model expects."""
    entries = {entry.get("name") or entry["config"].get("name"): entry for entry in config["config"]["layers"]}
    rows: list[ImportedLayer] = []
    mapped: list[Layer] = []
    why_not = ""
    scaled_inside = standardized = False
    body = [b for b in budget.layers if b.class_name != "InputLayer"]
    output_index = _output_index(body, entries, num_classes)
    for layer in budget.layers:
        config_of = entries.get(layer.name, {}).get("config", {})
        if layer.class_name == "InputLayer":
            rows.append(ImportedLayer(layer.name, layer.class_name, layer.output_shape, 0, None, "input"))
            continue
        position = body.index(layer)
        if position == 0 and _is_unit_scaling(layer.class_name, config_of):
            scaled_inside = True
            rows.append(ImportedLayer(layer.name, layer.class_name, layer.output_shape, 0, None, "scaling"))
            continue
        if position == 0 and input_scale == "raw" and _is_pixel_standardization(layer.class_name, config_of):
            # cnnkit's "standardize": rebuilt, it takes the mean and std of its own training split
            standardized = True
            rows.append(ImportedLayer(layer.name, layer.class_name, layer.output_shape, layer.params, None,
                                      "standardize"))
            continue
        if output_index is not None and position >= output_index:
            rows.append(ImportedLayer(layer.name, layer.class_name, layer.output_shape, layer.params, None, "output"))
            continue
        twin = cnnkit_layer(layer.class_name, config_of)
        rows.append(ImportedLayer(layer.name, layer.class_name, layer.output_shape, layer.params, twin))
        if twin is None:
            why_not = why_not or f"layer '{layer.name[:40]}' ({layer.class_name}) has no cnnkit twin"
        else:
            mapped.append(twin)
    output = _output_kind(body, entries)
    if output_index is None:
        why_not = why_not or f"the model does not end in Dense({num_classes}) with softmax or no activation"
    if not _is_chain(config, budget):
        why_not = why_not or "the model is not a plain stack of layers (it branches)"
    if input_scale == "unit" and scaled_inside:
        why_not = why_not or "it divides by 255 itself, and was said to expect 0–1 inputs too"
    normalization = "standardize" if standardized else "scale" if (input_scale == "unit") != scaled_inside else "none"
    if not why_not:
        why_not = _params_problem(tuple(mapped), budget, num_classes, output)
    rebuildable = not why_not
    return ImportedArchitecture(tuple(rows), tuple(mapped) if rebuildable else (), rebuildable,
                                normalization, output, why_not)


def _output_index(body, entries, num_classes: int) -> int | None:
    """Where the output block starts: the last Dense(num_classes), maybe followed by a softmax."""
    for index in range(len(body) - 1, -1, -1):
        layer = body[index]
        config = entries.get(layer.name, {}).get("config", {})
        if layer.class_name == "Dense":
            ok = config.get("units") == num_classes and config.get("activation", "linear") in ("softmax", "linear")
            return index if ok and config.get("use_bias", True) is True else None
        if not _is_softmax(layer.class_name, config):
            return None
    return None


def _is_softmax(kind: str, config: dict) -> bool:
    return kind == "Softmax" or (kind == "Activation" and config.get("activation") == "softmax")


def _output_kind(body, entries) -> str:
    last = body[-1]
    config = entries.get(last.name, {}).get("config", {})
    if _is_softmax(last.class_name, config) or (last.class_name == "Dense" and config.get("activation") == "softmax"):
        return "softmax"
    return "logits"


def _is_chain(config: dict, budget: ConfigBudget) -> bool:
    if config.get("class_name") == "Sequential":
        return True
    names = [layer.name for layer in budget.layers]
    for previous, entry in zip(names, config["config"]["layers"][1:], strict=False):
        # the budget accepted the graph, so every entry has exactly one node
        if [source for source, _ in history_names(entry["inbound_nodes"][0])] != [previous]:
            return False
    return True


def _params_problem(layers: tuple[Layer, ...], budget: ConfigBudget, num_classes: int, output: str) -> str:
    try:
        planned = summarize(layers, budget.input_shape, num_classes).total_params
    except CnnkitError as exc:
        return f"cnnkit's shape calculator refuses the mapped layers ({exc})"
    if planned != budget.total_params:
        return f"the mapped layers would have {planned:,} parameters, not the model's {budget.total_params:,}"
    return ""


def layer_table(architecture: ImportedArchitecture) -> list[dict]:
    """Rows for a table: name, Keras class, output shape, params, what cnnkit calls it."""
    return [{"layer": row.name, "Keras class": row.keras_class, "output": format_shape(row.output_shape),
             "params": row.params, "cnnkit": row.described} for row in architecture.layers]
