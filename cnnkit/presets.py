"""The classic architectures from the source articles, each with the recipe it was published with.

A preset is an architecture + the dataset/training recipe of its article + the published result,
so the app can show "published vs ours". `Preset.experiment()` turns it into an `ExperimentSpec`.
Where an article leaves a setting open, the choice made here is stated in `notes`.
"""

from __future__ import annotations

from dataclasses import dataclass

from cnnkit.errors import SpecError
from cnnkit.specs import (
    Conv2D,
    DatasetSpec,
    Dense,
    Dropout,
    ExperimentSpec,
    Flatten,
    Layer,
    MaxPool2D,
    TrainingSpec,
)


@dataclass(frozen=True)
class Published:
    """The result an article reports."""

    metric: str | None = None            # "test" or "val" accuracy
    accuracy: float | None = None        # percent
    seconds_per_epoch: float | None = None
    hardware: str = ""
    text: str = "(none given)"

    def __repr__(self) -> str:
        return f"Published({self.text})"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    source: str
    layers: tuple[Layer, ...]
    dataset: DatasetSpec
    training: TrainingSpec
    published: Published
    output: str = "softmax"
    notes: str = ""

    def __repr__(self) -> str:
        return f"Preset({self.name!r}, {len(self.layers)} layers, {self.dataset.name})"

    @property
    def is_cnn(self) -> bool:
        return any(layer.type == "conv2d" for layer in self.layers)

    def experiment(self, baseline: str | None = None) -> ExperimentSpec:
        return ExperimentSpec(layers=self.layers, dataset=self.dataset, training=self.training,
                              output=self.output, baseline=baseline, name=self.name, preset=self.name)


def _conv(filters: int, padding: str = "valid") -> Conv2D:
    return Conv2D(filters=filters, kernel_size=3, strides=1, padding=padding, activation="relu")


_POOL = MaxPool2D(pool_size=2)
_MOS = "Machine Learning Foundations: Part 4 – Coding with Convolutional Neural Networks"
_KRUSE = 'J. Kruse, "Convolutional Neural Networks in keras" (2020)'
_SIMPLE = '"A simple CNN for the MNIST datasets – II" (2020)'
_KRUSE_NOTE = ("Trained on unscaled 0–255 pixels, as the article did; one-hot labels with categorical "
               "cross-entropy are mathematically the same loss as the sparse form used here. "
               "The article's 'val' accuracy is measured on the 10,000 test images.")

PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset(
        name="dense-128", title="Dense 128 (MLP)", source=_MOS,
        layers=(Flatten(), Dense(128)),
        dataset=DatasetSpec("fashion_mnist", "scale", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=32, epochs=5),
        published=Published("test", 87.10, text="test 87.10%"),
    ),
    Preset(
        name="dense-32-32", title="Dense 32-32 (MLP)", source=_KRUSE,
        layers=(Flatten(), Dense(32), Dense(32)),
        dataset=DatasetSpec("mnist", "none", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=128, epochs=10),
        published=Published("val", 92.33, text="val 92.33%"), notes=_KRUSE_NOTE,
    ),
    Preset(
        name="mlp-70-30", title="MLP 70-30", source=_SIMPLE,
        layers=(Flatten(), Dense(70), Dense(30)),
        dataset=DatasetSpec("mnist", "standardize", validation_split=0.0),
        training=TrainingSpec("rmsprop", 0.001, batch_size=64, epochs=35),
        published=Published("test", 97.7, text="test ≈ 97.7%"),
        notes="The article gives 'about 35 epochs' only; optimizer and batch size follow the same "
              "article's CNN (RMSprop, batch 64).",
    ),
    Preset(
        name="west-fashion", title="West: one conv block", source='M. West, "Convolutional Neural '
                                                                  'Networks: An Implementation" (2019)',
        layers=(_conv(32), MaxPool2D(pool_size=2, strides=2), Dropout(0.25), Flatten(), Dense(128)),
        dataset=DatasetSpec("fashion_mnist", "scale", validation_split=0.1),
        training=TrainingSpec("adam", 0.001, batch_size=32, epochs=10),
        published=Published(),
        notes="The article gives no batch size, epochs or scaling: /255, Keras' default batch 32 and "
              "10 epochs are assumed.",
    ),
    Preset(
        name="kruse-conv-nopool", title="Kruse: two convs, no pooling", source=_KRUSE,
        layers=(_conv(64, "same"), _conv(32, "same"), Flatten(), Dense(32), Dense(32)),
        dataset=DatasetSpec("mnist", "none", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=128, epochs=10),
        published=Published("val", 97.95, 188, "CPU", "val 97.95%, 188 s/epoch (CPU)"), notes=_KRUSE_NOTE,
    ),
    Preset(
        name="kruse-conv", title="Kruse: two conv blocks", source=_KRUSE,
        layers=(_conv(64, "same"), _POOL, _conv(32, "same"), _POOL, Flatten(), Dense(32), Dense(32)),
        dataset=DatasetSpec("mnist", "none", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=128, epochs=10),
        published=Published("val", 98.38, 35, "CPU", "val 98.38%, 35 s/epoch (CPU)"), notes=_KRUSE_NOTE,
    ),
    Preset(
        name="moroney-cnn", title="Moroney: two conv blocks", source=_MOS,
        layers=(_conv(64), _POOL, _conv(64), _POOL, Flatten(), Dense(128)),
        dataset=DatasetSpec("fashion_mnist", "scale", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=32, epochs=5),
        published=Published("test", 90.71, 78, "", "test 90.71%, 78 s/epoch"),
    ),
    Preset(
        name="tf-tutorial-cnn", title="TensorFlow tutorial CNN", source='"Convolutional Neural Network: '
                                                                        'theory and code"',
        layers=(_conv(32, "same"), _POOL, _conv(64, "same"), _POOL, _conv(64, "same"), Flatten(), Dense(64)),
        dataset=DatasetSpec("fashion_mnist", "scale", validation_split=0.0),
        training=TrainingSpec("adam", 0.001, batch_size=32, epochs=10),
        published=Published("test", 92.25, 55, "", "test 92.25%, 55 s/epoch"), output="logits",
        notes="The output layer gives logits; the loss uses from_logits=True and the app applies "
              "softmax for probabilities.",
    ),
    Preset(
        name="chollet-cnn", title="Chollet-style CNN", source=_SIMPLE,
        layers=(_conv(32), _POOL, _conv(64), _POOL, _conv(64), Flatten(), Dense(70)),
        dataset=DatasetSpec("mnist", "standardize", validation_split=0.0),
        training=TrainingSpec("rmsprop", 0.001, batch_size=64, epochs=5),
        published=Published("test", 99.0, 20.6 / 5, "GTX 960 GPU", "test ≈ 99%, 20.6 s for 5 epochs (GTX 960)"),
    ),
)}

DEFAULT_BASELINE = "dense-128"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise SpecError("preset", f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[name]


def baseline_layers(kind: str, target_params: int | None, input_shape: tuple[int, ...],
                    num_classes: int) -> tuple[Layer, ...]:
    """The dense baseline: Flatten → Dense(128), or one Dense layer sized to `target_params`.

    For "matched", params(u) = n_in*u + u + u*num_classes + num_classes, solved for u.
    """
    if kind == "dense-128":
        return (Flatten(), Dense(128))
    if kind != "matched":
        raise SpecError("baseline", f"must be dense-128 or matched, got {kind!r}")
    n_in = 1
    for side in input_shape:
        n_in *= side
    units = round(((target_params or 0) - num_classes) / (n_in + 1 + num_classes))
    return (Flatten(), Dense(max(1, units)))
