"""Experiment specs: frozen dataclasses with a JSON round trip, validated at the boundary.

A whole experiment is one JSON document::

    {"dataset": {"name": "mnist", "normalization": "scale", "validation_split": 0.1, "train_limit": null},
     "layers": [{"type": "conv2d", "filters": 32, "kernel_size": 3}, {"type": "flatten"}, ...],
     "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 128, "epochs": 5, "seed": 42}}

`ExperimentSpec.from_dict` accepts exactly that (missing optional keys take defaults) and
raises `SpecError` naming the field (``layers[2].filters``) and the bad value otherwise.
The output layer (Dense over the classes) is not part of `layers`: it is always appended.
Pure Python: importing this module never imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import unicodedata
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from cnnkit.errors import SpecError, shown

DATASET_NAMES = ("mnist", "fashion_mnist", "cifar10")
NORMALIZATIONS = ("none", "scale", "standardize")
ACTIVATIONS = ("relu", "sigmoid", "tanh", "elu", "selu", "linear")
PADDINGS = ("valid", "same")
OPTIMIZERS = ("adam", "rmsprop", "sgd", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "cosine", "plateau")
OUTPUTS = ("softmax", "logits")
BASELINES = ("dense-128", "matched")

# Hard sanity bounds: a value outside them is a typo or an attack, never an experiment.
# (Softer, deployment-specific resource caps live in cnnkit.limits.)
MAX_LAYERS = 64
MAX_FILTERS = 2048
MAX_UNITS = 16384
MAX_KERNEL = 31
MAX_STRIDE = 16
MAX_EPOCHS = 1000
MAX_BATCH_SIZE = 65536
MAX_SEED = 2**31 - 1
MAX_TRAIN_LIMIT = 10_000_000
MIN_TRAIN_LIMIT = 10
MAX_LEARNING_RATE = 1e6
MAX_VALIDATION_SPLIT = 0.5
MAX_NAME_CHARS = 120
MAX_JSON_BYTES = 1_000_000


# ---------------------------------------------------------------------------
# Field readers: each takes the raw value and the field path for messages.


def _show_key(key: Any) -> str:
    """A key as it appears in a field path ("dataset.<key>"), never a megabyte long."""
    text = key if isinstance(key, str) else shown(key)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_name(value: Any) -> str:
    return type(value).__name__


def read_int(value: Any, where: str, lo: int, hi: int) -> int:
    # bool is an int subclass in Python; `true` for a filter count is a mistake.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a whole number, got {shown(value)} ({_type_name(value)})")
    if isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            raise SpecError(where, f"must be a whole number, got {shown(value)}")
        value = int(value)
    if not lo <= value <= hi:
        raise SpecError(where, f"must be between {lo} and {hi}, got {shown(value)}")
    return value


def read_float(value: Any, where: str, lo: float, hi: float, *, lo_open: bool = False,
               hi_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SpecError(where, f"must be a number, got {shown(value)} ({_type_name(value)})")
    try:
        value = float(value)
    except OverflowError:  # an int beyond float range
        raise SpecError(where, f"must be a finite number, got {shown(value)}") from None
    if not math.isfinite(value):
        raise SpecError(where, f"must be a finite number, got {value}")
    too_low = value <= lo if lo_open else value < lo
    too_high = value >= hi if hi_open else value > hi
    if too_low or too_high:
        left, right = "(" if lo_open else "[", ")" if hi_open else "]"
        raise SpecError(where, f"must be in {left}{lo:g}, {hi:g}{right}, got {value:g}")
    return value


def read_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        raise SpecError(where, f"must be one of {', '.join(choices)}; got {shown(value)}")
    return value


def read_bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(where, f"must be true or false, got {shown(value)}")
    return value


def text_problem(value: str, max_chars: int = MAX_NAME_CHARS) -> str | None:
    """Why `value` cannot be a name shown on the pages, or None: too long, a control character
    (a newline, an escape), or not encodable (a lone surrogate such as "\\ud800" is valid JSON
    and crashed every page that drew it)."""
    if len(value) > max_chars:
        return f"is {len(value):,} characters long; at most {max_chars}"
    bad = next((c for c in value if unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        kind = "a lone surrogate" if unicodedata.category(bad) == "Cs" else "a control character"
        return f"contains {kind} ({bad!r} at position {value.index(bad)}); use printable text"
    return None


def read_optional_str(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(where, f"must be text, got {shown(value)} ({_type_name(value)})")
    problem = text_problem(value)
    if problem:
        raise SpecError(where, problem)
    return value


def _check_mapping(data: Any, where: str, allowed: set[str], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise SpecError(where, f"must be a JSON object, got {shown(data)} ({_type_name(data)})")
    for key in data:
        if key not in allowed:
            options = ", ".join(sorted(allowed))
            raise SpecError(f"{where}.{_show_key(key)}" if where else _show_key(key),
                            f"unknown key; allowed keys here: {options}")
    for key in required:
        if key not in data:
            raise SpecError(f"{where}.{key}" if where else key, "is required")
    return data


# ---------------------------------------------------------------------------
# Layers


@dataclass(frozen=True)
class Layer:
    """Base class of the layer specs. `type` is the JSON tag."""

    type: ClassVar[str] = ""

    def to_dict(self) -> dict:
        return {"type": self.type, **{f.name: getattr(self, f.name) for f in fields(self)}}

    def describe(self) -> str:
        return self.type

    @classmethod
    def _read(cls, data: dict, where: str) -> Layer:
        return cls()


@dataclass(frozen=True)
class Conv2D(Layer):
    filters: int = 32
    kernel_size: int = 3
    strides: int = 1
    padding: str = "valid"
    activation: str = "relu"
    type: ClassVar[str] = "conv2d"

    def describe(self) -> str:
        return (f"Conv2D {self.filters} × {self.kernel_size}×{self.kernel_size}, stride {self.strides}, "
                f"{self.padding}, {self.activation}")

    @classmethod
    def _read(cls, data, where):
        return cls(
            filters=read_int(data.get("filters", 32), f"{where}.filters", 1, MAX_FILTERS),
            kernel_size=read_int(data.get("kernel_size", 3), f"{where}.kernel_size", 1, MAX_KERNEL),
            strides=read_int(data.get("strides", 1), f"{where}.strides", 1, MAX_STRIDE),
            padding=read_choice(data.get("padding", "valid"), f"{where}.padding", PADDINGS),
            activation=read_choice(data.get("activation", "relu"), f"{where}.activation", ACTIVATIONS),
        )


@dataclass(frozen=True)
class _Pool(Layer):
    pool_size: int = 2
    strides: int | None = None  # None: same as pool_size (Keras' default)
    padding: str = "valid"

    @property
    def effective_strides(self) -> int:
        return self.pool_size if self.strides is None else self.strides

    def describe(self) -> str:
        kind = "MaxPool" if self.type == "maxpool2d" else "AvgPool"
        return f"{kind} {self.pool_size}×{self.pool_size}, stride {self.effective_strides}, {self.padding}"

    @classmethod
    def _read(cls, data, where):
        strides = data.get("strides")
        return cls(
            pool_size=read_int(data.get("pool_size", 2), f"{where}.pool_size", 1, MAX_KERNEL),
            strides=None if strides is None else read_int(strides, f"{where}.strides", 1, MAX_STRIDE),
            padding=read_choice(data.get("padding", "valid"), f"{where}.padding", PADDINGS),
        )


@dataclass(frozen=True)
class MaxPool2D(_Pool):
    type: ClassVar[str] = "maxpool2d"


@dataclass(frozen=True)
class AvgPool2D(_Pool):
    type: ClassVar[str] = "avgpool2d"


@dataclass(frozen=True)
class Dropout(Layer):
    rate: float = 0.25
    type: ClassVar[str] = "dropout"

    def describe(self) -> str:
        return f"Dropout {self.rate:g}"

    @classmethod
    def _read(cls, data, where):
        return cls(rate=read_float(data.get("rate", 0.25), f"{where}.rate", 0.0, 1.0, hi_open=True))


@dataclass(frozen=True)
class BatchNorm(Layer):
    type: ClassVar[str] = "batchnorm"

    def describe(self) -> str:
        return "BatchNorm"


@dataclass(frozen=True)
class Flatten(Layer):
    type: ClassVar[str] = "flatten"

    def describe(self) -> str:
        return "Flatten"


@dataclass(frozen=True)
class GlobalAvgPool(Layer):
    type: ClassVar[str] = "globalavgpool"

    def describe(self) -> str:
        return "GlobalAvgPool"


@dataclass(frozen=True)
class Dense(Layer):
    units: int = 128
    activation: str = "relu"
    type: ClassVar[str] = "dense"

    def describe(self) -> str:
        return f"Dense {self.units}, {self.activation}"

    @classmethod
    def _read(cls, data, where):
        return cls(
            units=read_int(data.get("units", 128), f"{where}.units", 1, MAX_UNITS),
            activation=read_choice(data.get("activation", "relu"), f"{where}.activation", ACTIVATIONS),
        )


LAYER_TYPES: dict[str, type[Layer]] = {
    cls.type: cls for cls in (Conv2D, MaxPool2D, AvgPool2D, Dropout, BatchNorm, Flatten, GlobalAvgPool, Dense)
}


def layer_from_dict(data: Any, where: str = "layer") -> Layer:
    if not isinstance(data, dict):
        raise SpecError(where, f"must be a JSON object with a 'type', got {shown(data)}")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise SpecError(f"{where}.type", f"must be one of {', '.join(LAYER_TYPES)}; got {shown(kind)}")
    cls = LAYER_TYPES[kind]
    allowed = {"type"} | {f.name for f in fields(cls)}
    _check_mapping(data, where, allowed)
    return cls._read(data, where)


def layers_from_list(data: Any, where: str = "layers") -> tuple[Layer, ...]:
    if not isinstance(data, list):
        raise SpecError(where, f"must be a list of layers, got {shown(data)} ({_type_name(data)})")
    if len(data) > MAX_LAYERS:
        raise SpecError(where, f"has {len(data)} layers; at most {MAX_LAYERS}")
    return tuple(layer_from_dict(item, f"{where}[{i}]") for i, item in enumerate(data))


# ---------------------------------------------------------------------------
# Dataset and training


@dataclass(frozen=True)
class DatasetSpec:
    name: str = "mnist"
    normalization: str = "scale"
    validation_split: float = 0.1
    train_limit: int | None = None
    test_limit: int | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "dataset") -> DatasetSpec:
        _check_mapping(data, where, {f.name for f in fields(cls)})
        train_limit, test_limit = data.get("train_limit"), data.get("test_limit")
        return cls(
            name=read_choice(data.get("name", "mnist"), f"{where}.name", DATASET_NAMES),
            normalization=read_choice(data.get("normalization", "scale"), f"{where}.normalization",
                                      NORMALIZATIONS),
            validation_split=read_float(data.get("validation_split", 0.1), f"{where}.validation_split",
                                        0.0, MAX_VALIDATION_SPLIT),
            train_limit=None if train_limit is None else read_int(
                train_limit, f"{where}.train_limit", MIN_TRAIN_LIMIT, MAX_TRAIN_LIMIT),
            test_limit=None if test_limit is None else read_int(
                test_limit, f"{where}.test_limit", MIN_TRAIN_LIMIT, MAX_TRAIN_LIMIT),
        )


@dataclass(frozen=True)
class TrainingSpec:
    optimizer: str = "adam"
    learning_rate: float = 0.001
    batch_size: int = 128
    epochs: int = 5
    seed: int = 42
    momentum: float = 0.0          # sgd only
    nesterov: bool = False         # sgd only
    schedule: str = "constant"
    decay_rate: float = 0.5        # step/exponential: factor per step/epoch; plateau: factor
    decay_epochs: int = 2          # step: epochs per step; plateau: patience
    weight_decay: float = 0.0      # L2 on conv/dense kernels

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, where: str = "training") -> TrainingSpec:
        _check_mapping(data, where, {f.name for f in fields(cls)})
        d = cls()
        return cls(
            optimizer=read_choice(data.get("optimizer", d.optimizer), f"{where}.optimizer", OPTIMIZERS),
            learning_rate=read_float(data.get("learning_rate", d.learning_rate),
                                     f"{where}.learning_rate", 0.0, MAX_LEARNING_RATE, lo_open=True),
            batch_size=read_int(data.get("batch_size", d.batch_size), f"{where}.batch_size", 1,
                                MAX_BATCH_SIZE),
            epochs=read_int(data.get("epochs", d.epochs), f"{where}.epochs", 1, MAX_EPOCHS),
            seed=read_int(data.get("seed", d.seed), f"{where}.seed", 0, MAX_SEED),
            momentum=read_float(data.get("momentum", d.momentum), f"{where}.momentum", 0.0, 1.0,
                                hi_open=True),
            nesterov=read_bool(data.get("nesterov", d.nesterov), f"{where}.nesterov"),
            schedule=read_choice(data.get("schedule", d.schedule), f"{where}.schedule", SCHEDULES),
            decay_rate=read_float(data.get("decay_rate", d.decay_rate), f"{where}.decay_rate", 0.0, 1.0,
                                  lo_open=True),
            decay_epochs=read_int(data.get("decay_epochs", d.decay_epochs), f"{where}.decay_epochs", 1,
                                  MAX_EPOCHS),
            weight_decay=read_float(data.get("weight_decay", d.weight_decay), f"{where}.weight_decay",
                                    0.0, 1.0),
        )

    def learning_rate_at(self, epoch: int) -> float:
        """The scheduled learning rate for a 0-based epoch (plateau: the starting rate)."""
        lr = self.learning_rate
        if self.schedule == "step":
            return lr * self.decay_rate ** (epoch // self.decay_epochs)
        if self.schedule == "exponential":
            return lr * self.decay_rate ** epoch
        if self.schedule == "cosine":
            return lr * 0.5 * (1.0 + math.cos(math.pi * epoch / self.epochs))
        return lr


MAX_SHIFT, MAX_ROTATION, MAX_ZOOM, MAX_NOISE = 0.5, 180.0, 0.5, 0.5


@dataclass(frozen=True)
class AugmentationSpec:
    """Random changes to each training batch (never to validation or test images, nor inside
    the saved model). All zero: off, and left out of the JSON."""

    shift: float = 0.0             # up to this fraction of the height/width, each way
    rotation: float = 0.0          # up to this many degrees, each way
    zoom: float = 0.0              # scale by 1 ± up to this fraction
    flip: bool = False             # mirror left-right half of the time (not for digits!)
    noise: float = 0.0             # Gaussian noise, std as a fraction of the 0–255 range

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def active(self) -> bool:
        return any((self.shift, self.rotation, self.zoom, self.flip, self.noise))

    def describe(self) -> str:
        parts = [f"shift ±{self.shift:.0%}" if self.shift else "", f"rotate ±{self.rotation:g}°" if self.rotation else "",
                 f"zoom ±{self.zoom:.0%}" if self.zoom else "", "flip" if self.flip else "",
                 f"noise σ {self.noise:.0%}" if self.noise else ""]
        return ", ".join(p for p in parts if p) or "none"

    @classmethod
    def from_dict(cls, data: Any, where: str = "augmentation") -> AugmentationSpec:
        _check_mapping(data, where, {f.name for f in fields(cls)})
        return cls(
            shift=read_float(data.get("shift", 0.0), f"{where}.shift", 0.0, MAX_SHIFT),
            rotation=read_float(data.get("rotation", 0.0), f"{where}.rotation", 0.0, MAX_ROTATION),
            zoom=read_float(data.get("zoom", 0.0), f"{where}.zoom", 0.0, MAX_ZOOM),
            flip=read_bool(data.get("flip", False), f"{where}.flip"),
            noise=read_float(data.get("noise", 0.0), f"{where}.noise", 0.0, MAX_NOISE),
        )


# ---------------------------------------------------------------------------
# The whole experiment

def parse_json(text: str | bytes, what: str) -> Any:
    if len(text) > MAX_JSON_BYTES:  # checked before parsing
        raise SpecError("", f"the {what} is {len(text):,} bytes; at most {MAX_JSON_BYTES:,}")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SpecError("", f"not valid JSON ({exc})") from None


@dataclass(frozen=True)
class ExperimentSpec:
    layers: tuple[Layer, ...]
    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    output: str = "softmax"          # "logits": the last Dense is linear and the loss uses from_logits
    baseline: str | None = None      # also train a dense baseline: "dense-128" or "matched" (same params)
    name: str | None = None
    preset: str | None = None        # the preset this spec started from, if any
    augmentation: AugmentationSpec = field(default_factory=AugmentationSpec)

    KEYS: ClassVar[tuple[str, ...]] = ("dataset", "layers", "training", "output", "baseline", "name", "preset",
                                       "augmentation")

    def to_dict(self) -> dict:
        data = {
            "dataset": self.dataset.to_dict(),
            "layers": [layer.to_dict() for layer in self.layers],
            "training": self.training.to_dict(),
            "output": self.output,
            "baseline": self.baseline,
            "name": self.name,
            "preset": self.preset,
        }
        if self.augmentation.active:  # off: absent, so specs written before it existed read the same
            data["augmentation"] = self.augmentation.to_dict()
        return data

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, data: Any) -> ExperimentSpec:
        _check_mapping(data, "", set(cls.KEYS), required=("layers",))
        baseline = data.get("baseline")
        return cls(
            layers=layers_from_list(data["layers"]),
            dataset=DatasetSpec.from_dict(data.get("dataset", {})),
            training=TrainingSpec.from_dict(data.get("training", {})),
            output=read_choice(data.get("output", "softmax"), "output", OUTPUTS),
            baseline=None if baseline is None else read_choice(baseline, "baseline", BASELINES),
            name=read_optional_str(data.get("name"), "name"),
            preset=read_optional_str(data.get("preset"), "preset"),
            augmentation=AugmentationSpec.from_dict(data.get("augmentation") or {}),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ExperimentSpec:
        return cls.from_dict(parse_json(text, "spec"))

    def updated(self, changes: dict[str, Any]) -> ExperimentSpec:
        """A validated copy with keys changed: top-level ("name") or dotted ("training.epochs")."""
        data = self.to_dict()
        for key, value in changes.items():
            section, _, name = key.partition(".")
            if name:
                data.setdefault(section, {})[name] = value
            else:
                data[key] = value
        return ExperimentSpec.from_dict(data)
