"""Editing a network as data: the pure functions behind the Build page's layer editor.

Layers are an immutable tuple of layer specs; every edit returns a new tuple, validated by
the same readers as a JSON upload, so the editor can never build a spec the loader would
refuse. `FIELDS` lists every parameter of every layer type with its bounds, which is what
the Build page turns into widgets; `TRAINING_FIELDS` does the same for the Train page's
settings. No streamlit, no TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from cnnkit.errors import ArchitectureError, SpecError
from cnnkit.shapes import LayerShape, NetworkSummary, format_shape, summarize
from cnnkit.specs import (
    ACTIVATIONS,
    LAYER_TYPES,
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_FILTERS,
    MAX_KERNEL,
    MAX_LAYERS,
    MAX_LEARNING_RATE,
    MAX_NOISE,
    MAX_ROTATION,
    MAX_SEED,
    MAX_SHIFT,
    MAX_STRIDE,
    MAX_TRAIN_LIMIT,
    MAX_UNITS,
    MAX_VALIDATION_SPLIT,
    MAX_ZOOM,
    MIN_TRAIN_LIMIT,
    NORMALIZATIONS,
    OPTIMIZERS,
    PADDINGS,
    SCHEDULES,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    layer_from_dict,
)


@dataclass(frozen=True)
class Field:
    """One editable parameter of a layer type: how to offer it and which values are legal."""

    name: str                         # a layer parameter, or a dotted spec path ("training.epochs")
    kind: str                         # "int" | "float" | "choice" | "optional_int" | "count" | "bool"
    label: str
    lo: float | None = None
    hi: float | None = None
    step: float = 1
    choices: tuple = ()
    help: str = ""
    key: str = ""                     # the widget's key (tests and the URL address widgets by it)
    fmt: str = "%.2f"                 # how a float is shown: "%g" for rates that span decades
    shown_if: tuple = ()              # (other field, allowed values): offered only then
    labels: tuple = ()                # ((other field's value, label), ...): the label depends on it

    def __repr__(self) -> str:
        return f"Field({self.name!r}, {self.kind})"

    def applies(self, values: dict) -> bool:
        return not self.shown_if or values.get(self.shown_if[0]) in self.shown_if[1]

    def label_for(self, values: dict) -> str:
        current = values.get(self.shown_if[0]) if self.shown_if else None
        return dict(self.labels).get(current, self.label)


_ACTIVATION = Field("activation", "choice", "activation", choices=ACTIVATIONS)
_PADDING = Field("padding", "choice", "padding", choices=PADDINGS,
                 help="valid: no border, the map shrinks; same: zero border, the map keeps its size "
                      "(divided by the stride)")
_POOL_FIELDS = (
    Field("pool_size", "int", "pool size", 1, MAX_KERNEL),
    Field("strides", "optional_int", "stride", 1, MAX_STRIDE,
          help="empty: the same as the pool size (non-overlapping windows, Keras' default)"),
    _PADDING,
)

# Every parameter of every layer type (tests check this matches the spec dataclasses exactly).
FIELDS: dict[str, tuple[Field, ...]] = {
    "conv2d": (
        Field("filters", "int", "filters", 1, MAX_FILTERS),
        Field("kernel_size", "int", "kernel size", 1, MAX_KERNEL),
        Field("strides", "int", "stride", 1, MAX_STRIDE),
        _PADDING,
        _ACTIVATION,
    ),
    "maxpool2d": _POOL_FIELDS,
    "avgpool2d": _POOL_FIELDS,
    # Keras refuses rate 1.0 (it would drop everything): the spec reads [0, 1).
    "dropout": (Field("rate", "float", "rate", 0.0, 0.95, step=0.05),),
    "batchnorm": (),
    "flatten": (),
    "globalavgpool": (),
    "dense": (Field("units", "int", "units", 1, MAX_UNITS), _ACTIVATION),
}

# The Train page's settings, in the order they are offered. Bounds are the spec's own (tests check
# each against the spec); the spec's open intervals (a rate above 0) are refused inline, by name.
_DECAYS = ("step", "exponential", "plateau")
TRAINING_FIELDS: tuple[Field, ...] = (
    Field("training.optimizer", "choice", "Optimizer", choices=OPTIMIZERS, key="train_optimizer"),
    Field("training.learning_rate", "float", "Learning rate", 0.0, MAX_LEARNING_RATE, step=1e-4, fmt="%g",
          key="train_lr"),
    Field("training.momentum", "float", "Momentum", 0.0, 0.9999, step=0.1, key="train_momentum",
          shown_if=("training.optimizer", ("sgd",))),
    Field("training.nesterov", "bool", "Nesterov", key="train_nesterov", shown_if=("training.optimizer", ("sgd",))),
    Field("training.schedule", "choice", "LR schedule", choices=SCHEDULES, key="train_schedule",
          help="step: × rate every N epochs · exponential: × rate per epoch · cosine: to 0 over the run · "
               "plateau: × rate when validation loss stalls"),
    Field("training.decay_rate", "float", "Decay factor", 0.0, 1.0, step=0.05, key="train_decay_rate",
          shown_if=("training.schedule", _DECAYS)),
    Field("training.decay_epochs", "int", "Every N epochs", 1, MAX_EPOCHS, key="train_decay_epochs",
          shown_if=("training.schedule", ("step", "plateau")), labels=(("plateau", "Patience (epochs)"),)),
    Field("training.batch_size", "int", "Batch size", 1, MAX_BATCH_SIZE, step=32, key="train_batch"),
    Field("training.epochs", "int", "Epochs", 1, MAX_EPOCHS, key="train_epochs"),
    Field("training.seed", "int", "Seed", 0, MAX_SEED, key="train_seed"),
    Field("training.weight_decay", "float", "Weight decay (L2)", 0.0, 1.0, step=1e-4, fmt="%g",
          key="train_weight_decay"),
    Field("dataset.train_limit", "count", "Training images", MIN_TRAIN_LIMIT, MAX_TRAIN_LIMIT, step=1000,
          key="train_limit", help="A random subset (class proportions kept); empty = all of them"),
    Field("dataset.validation_split", "float", "Validation split", 0.0, MAX_VALIDATION_SPLIT, step=0.05,
          key="train_val_split"),
    Field("dataset.normalization", "choice", "Normalization", choices=NORMALIZATIONS, key="train_norm",
          help="none: raw 0–255 · scale: /255 · standardize: (x − mean) / std of the training pixels"),
)


# Data augmentation (the spec's "augmentation"): all zero = off.
AUGMENTATION_FIELDS: tuple[Field, ...] = (
    Field("augmentation.shift", "float", "Shift", 0.0, MAX_SHIFT, step=0.05, key="train_aug_shift",
          help="Up to this fraction of the size, each way: 0.15 moves a 28-pixel digit up to about 4 px"),
    Field("augmentation.rotation", "float", "Rotation (°)", 0.0, MAX_ROTATION, step=5.0, fmt="%g",
          key="train_aug_rotation", help="Up to this many degrees, each way"),
    Field("augmentation.zoom", "float", "Zoom", 0.0, MAX_ZOOM, step=0.05, key="train_aug_zoom",
          help="Scale by 1 ± up to this fraction"),
    Field("augmentation.noise", "float", "Noise", 0.0, MAX_NOISE, step=0.05, key="train_aug_noise",
          help="Gaussian noise; its standard deviation as a fraction of 255"),
    Field("augmentation.flip", "bool", "Flip", key="train_aug_flip",
          help="Mirror left-right half of the time: fine for clothes, wrong for digits (a mirrored 2 is no 2)"),
)


def spec_value(spec, path: str):
    """The value at a dotted path of a spec ("training.epochs" → spec.training.epochs)."""
    value = spec
    for part in path.split("."):
        value = getattr(value, part)
    return value


TYPE_TITLES = {"conv2d": "Conv2D", "maxpool2d": "MaxPool2D", "avgpool2d": "AvgPool2D",
               "dropout": "Dropout", "batchnorm": "BatchNorm", "flatten": "Flatten",
               "globalavgpool": "GlobalAvgPool", "dense": "Dense"}


def new_layer(layer_type: str) -> Layer:
    """A layer of `layer_type` with the spec's defaults (e.g. Conv2D 32 3×3 relu)."""
    if layer_type not in LAYER_TYPES:
        raise SpecError("type", f"must be one of {', '.join(LAYER_TYPES)}; got {layer_type!r}")
    return LAYER_TYPES[layer_type]()


def starter_layers() -> tuple[Layer, ...]:
    """"Start from scratch": the smallest network that is still a CNN."""
    return (Conv2D(filters=16, kernel_size=3), MaxPool2D(pool_size=2), Flatten(), Dense(units=64))


def from_scratch(spec):
    """"From scratch": `starter_layers` named "my-cnn", with the spec's data, training and baseline."""
    return type(spec)(starter_layers(), spec.dataset, spec.training, baseline=spec.baseline, name="my-cnn")


def _check_index(layers: tuple[Layer, ...], index: int) -> None:
    if not 0 <= index < len(layers):
        raise SpecError("layers", f"there is no layer {index + 1} (the network has {len(layers)})")


def insert_layer(layers: tuple[Layer, ...], index: int, layer: Layer) -> tuple[Layer, ...]:
    """Insert `layer` so it becomes layers[index] (index == len(layers) appends)."""
    if len(layers) >= MAX_LAYERS:
        raise SpecError("layers", f"a network has at most {MAX_LAYERS} layers")
    index = max(0, min(index, len(layers)))
    return (*layers[:index], layer, *layers[index:])


def remove_layer(layers: tuple[Layer, ...], index: int) -> tuple[Layer, ...]:
    _check_index(layers, index)
    return (*layers[:index], *layers[index + 1:])


def move_layer(layers: tuple[Layer, ...], index: int, offset: int) -> tuple[Layer, ...]:
    """Swap layers[index] with its neighbour `offset` (-1 up, +1 down); at an end, no change."""
    _check_index(layers, index)
    target = index + offset
    if not 0 <= target < len(layers) or offset == 0:
        return tuple(layers)
    out = list(layers)
    out[index], out[target] = out[target], out[index]
    return tuple(out)


# The buttons under each layer: action → label.
LAYER_ACTIONS = {"up": "↑ Up", "down": "↓ Down", "remove": "✕ Remove"}


def action_allowed(layers: tuple[Layer, ...], index: int, action: str) -> bool:
    """Whether a LAYER_ACTIONS button does something: the first layer cannot go up, the last down."""
    return not ((action == "up" and index == 0) or (action == "down" and index == len(layers) - 1))


def rearrange(layers: tuple[Layer, ...], index: int, action: str) -> tuple[Layer, ...]:
    """The layers after one of LAYER_ACTIONS on layers[index]."""
    if action == "remove":
        return remove_layer(layers, index)
    return move_layer(layers, index, {"up": -1, "down": +1}[action])


def edit_layer(layers: tuple[Layer, ...], index: int, changes: dict) -> tuple[Layer, ...]:
    """Replace parameters of layers[index]; validated like an upload (SpecError names the field)."""
    _check_index(layers, index)
    data = {**layers[index].to_dict(), **changes}
    data["type"] = layers[index].type  # changing the type is remove + insert, not an edit
    layer = layer_from_dict(data, f"layers[{index}]")
    return (*layers[:index], layer, *layers[index + 1:])


def with_layers(spec, layers: tuple[Layer, ...]):
    """An ExperimentSpec with other layers (validated as a JSON upload would be)."""
    return spec.updated({"layers": [layer.to_dict() for layer in layers]})


def position_label(position: int, count: int) -> str:
    """Where "Add a layer" puts it among `count` layers: "at the end", "before layer 3"."""
    return "at the end" if position == count else f"before layer {position + 1}"


def preset_about(preset) -> str:
    """A preset (cnnkit.presets.Preset) in three markdown lines: what, where published, source."""
    training = preset.training
    return (f"**{preset.title}** · {len(preset.layers)} layers · {preset.dataset.name} · "
            f"{training.optimizer}, batch {training.batch_size}, {training.epochs} epochs  \n"
            f"**Published:** {preset.published.text}  \n**Source:** {preset.source}")


def layer_values(layer: Layer) -> dict:
    """The editable parameters of a layer, by name (what the widgets start from)."""
    return {f.name: getattr(layer, f.name) for f in fields(layer)}


# ---------------------------------------------------------------------------
# The live table


def failing_index(exc: ArchitectureError) -> int | None:
    """0-based index of the layer an ArchitectureError names ("layers[4]"), else None."""
    field = exc.field or ""
    if field.startswith("layers[") and field.endswith("]"):
        try:
            return int(field[len("layers["):-1])
        except ValueError:
            return None
    return None


def prefix_rows(layers: tuple[Layer, ...], input_shape, num_classes: int,
                upto: int) -> tuple[LayerShape, ...]:
    """The rows of layers[:upto], which are valid, for showing beside an error at layer upto.

    The calculator only summarizes a whole network (it appends the output layer, which needs a
    flat input), so a prefix that ends in an image-shaped map gets a temporary Flatten whose
    row, like the output's, is dropped again.
    """
    prefix = tuple(layers[:upto])
    if not prefix:
        return ()
    try:
        return summarize(prefix, input_shape, num_classes).layers[:-1]
    except ArchitectureError:
        return summarize((*prefix, Flatten()), input_shape, num_classes).layers[:-2]


def receptive_field_text(row: LayerShape) -> str:
    if row.receptive_field is None:
        return "whole image"
    return f"{row.receptive_field}×{row.receptive_field} (stride {row.rf_stride})"


def summary_rows(rows: tuple[LayerShape, ...] | list[LayerShape]) -> list[dict]:
    """Table rows for the Build page: one per layer, the output layer last."""
    return [{
        "#": "out" if row.index == 0 else str(row.index),
        "layer": row.name,
        "what": row.description,
        "output shape": format_shape(row.output_shape, spaced=True),
        "params": row.params,
        "receptive field": receptive_field_text(row),
        "multiply-adds": row.macs,
    } for row in rows]


def summary_totals(summary: NetworkSummary, batch_size: int) -> dict:
    """The totals under the table: params (trainable), multiply-adds per image, activation memory."""
    return {
        "params": summary.total_params,
        "trainable_params": summary.trainable_params,
        "macs": summary.total_macs,
        "activation_mb": summary.activation_bytes(batch_size) / 1e6,
        "layers": len(summary.layers),
    }


def summary_metrics(summary: NetworkSummary, batch_size: int) -> list[dict]:
    """The three numbers over the table, as st.metric arguments (label, value, help)."""
    totals = summary_totals(summary, batch_size)
    return [
        {"label": "Parameters", "value": f"{totals['params']:,}",
         "help": f"{totals['trainable_params']:,} trainable"},
        {"label": "Multiply-adds / image", "value": human_count(totals["macs"])},
        {"label": f"Activations / batch of {batch_size}", "value": f"{totals['activation_mb']:,.1f} MB",
         "help": "float32 activations and their gradients kept for one training batch"},
    ]


def human_count(value: float) -> str:
    """1234 → "1,234"; 12_345_678 → "12.3 M": readable at a glance on a demo screen."""
    value = float(value)
    for limit, suffix in ((1e9, "G"), (1e6, "M")):
        if abs(value) >= limit:
            return f"{value / limit:.1f} {suffix}"
    return f"{value:,.0f}"


def total_row(summary: NetworkSummary) -> dict:
    """The table's last row: the totals of the columns that add up."""
    return {"#": "Σ", "layer": "total", "what": "", "output shape": "", "params": summary.total_params,
            "receptive field": "", "multiply-adds": summary.total_macs}


def shape_table(rows, summary: NetworkSummary | None) -> list[dict]:
    """The Build page's table: a row per layer (`summary_rows` without "what"), then the totals
    when the whole network could be summarized."""
    table = summary_rows(rows) + ([total_row(summary)] if summary is not None else [])
    return [{column: value for column, value in row.items() if column != "what"} for row in table]


def summarize_or_prefix(layers: tuple[Layer, ...], input_shape, num_classes: int):
    """(summary, rows, None) for a valid network; (None, rows of the valid prefix, the error) else."""
    try:
        summary = summarize(layers, input_shape, num_classes)
        return summary, summary.layers, None
    except ArchitectureError as exc:
        bad = failing_index(exc)
        return None, prefix_rows(layers, input_shape, num_classes, len(layers) if bad is None else bad), exc
