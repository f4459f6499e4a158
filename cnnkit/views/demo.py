"""The live demo on the Draw page: a quick-train recipe, and a drawing turned into predictions.

No Streamlit and no TensorFlow import here: `read_drawing` takes already-loaded predictors
(anything with `.probabilities(pixels_0_255)`, e.g. `cnnkit.model.inspection.Predictor`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from cnnkit import settings
from cnnkit.data.catalog import DRAWABLE
from cnnkit.data.drawing import (
    MIN_CONTRAST,
    SUBJECTS,
    DrawingResult,
    Subject,
    preprocess_drawing,
    preprocess_steps,
    shrink_picture,
)
from cnnkit.specs import (
    Conv2D,
    DatasetSpec,
    Dense,
    ExperimentSpec,
    Flatten,
    MaxPool2D,
    TrainingSpec,
)

QUICK_TRAIN_NAME = "Quick train (small CNN)"
# 12,000 real images x 2 epochs: ~94-95% test accuracy in ~20 s on 2 CPU cores (measured,
# including TensorFlow's import); offline the whole 4,000-image bundled sample is used.
QUICK_TRAIN_LIMIT = 12_000
QUICK_TRAIN_EPOCHS = 2


def quick_train_spec(available: int | None = None) -> ExperimentSpec:
    """A small MNIST CNN that trains in well under a minute on 2 CPU cores, with its dense baseline.

    CNNKIT_QUICK_TRAIN_LIMIT / CNNKIT_QUICK_TRAIN_EPOCHS shrink it for tests. `available` is the
    number of MNIST training images this machine has: with fewer than the limit (the bundled
    sample) all of them are used, instead of asking for more than exist.
    """
    limit = settings.get().quick_train_limit or QUICK_TRAIN_LIMIT
    epochs = settings.get().quick_train_epochs or QUICK_TRAIN_EPOCHS
    if available is not None and limit >= available:
        # Fewer images (the sample): as many optimizer steps in more epochs, else the model is weak
        # (measured on the 4,000-image sample: 2 epochs 85% test accuracy).
        if not settings.get().quick_train_epochs:
            epochs = math.ceil(epochs * limit / available)
        limit = None
    layers = (Conv2D(16, 3), MaxPool2D(2), Conv2D(32, 3), MaxPool2D(2), Flatten(), Dense(64))
    return ExperimentSpec(
        layers=layers,
        dataset=DatasetSpec("mnist", "scale", validation_split=0.1,
                            train_limit=limit),
        training=TrainingSpec("adam", 0.001, batch_size=128, epochs=epochs, seed=42),
        baseline="dense-128", name=QUICK_TRAIN_NAME)


@dataclass(frozen=True, repr=False)
class DrawingPrediction:
    """A drawing as the model sees it, and each model's class probabilities (empty unless ok)."""

    drawing: DrawingResult
    probs: dict[str, np.ndarray] = field(default_factory=dict)   # model key -> (num_classes,)

    def __repr__(self) -> str:
        tops = {key: int(p.argmax()) for key, p in self.probs.items()}
        return f"DrawingPrediction({self.drawing.status}, top={tops})"

    @property
    def ok(self) -> bool:
        return self.drawing.ok and bool(self.probs)

    def top(self, key: str = "cnn") -> tuple[int, float]:
        """(class index, probability) of the most likely class."""
        p = self.probs[key]
        best = int(np.argmax(p))
        return best, float(p[best])


def read_drawing(image_data: np.ndarray | None, predictors: dict) -> DrawingPrediction:
    """Canvas pixels (RGBA, any size; None before the first stroke) → MNIST-style 28×28 → the
    probabilities of every predictor. An empty or unreadable drawing predicts nothing."""
    if image_data is None:
        image_data = np.zeros((28, 28, 4), np.uint8)
    return predict_drawing(preprocess_drawing(image_data), predictors)


def predict_drawing(drawing: DrawingResult, predictors: dict) -> DrawingPrediction:
    """Every predictor's probabilities for a preprocessed drawing (none when it is not ok)."""
    if not drawing.ok:
        return DrawingPrediction(drawing)
    pixels = drawing.as_uint8().astype(np.float32)   # the models take raw 0–255 pixels
    probs = {key: np.asarray(p.probabilities(pixels))[0] for key, p in predictors.items()}
    return DrawingPrediction(drawing, probs)


PICTURE_MESSAGES = {
    "empty": "No {one} found: use a picture of {a_one}, dark on light ground (or light on dark).",
    "too_small": "The {one} is too small in the picture: crop it so the {one} fills most of it.",
    "filled": "Ink covers almost the whole picture: crop it to {a_one} on plain ground.",
}


def picture_message(status: str, about: Subject = SUBJECTS["mnist"]) -> str:
    """What to do about a photo that could not be read, in the words of the run's dataset."""
    return PICTURE_MESSAGES[status].format(one=about.one, a_one=about.a_one)


def read_picture(image: np.ndarray, predictors: dict) -> tuple[DrawingPrediction, list[tuple[str, np.ndarray]]]:
    """An uploaded photo or scan (uint8, any size) → the canvas's preprocessing, with its stages
    to show, and the predictions of the 28×28 result."""
    picture = shrink_picture(image)
    drawing, steps = preprocess_steps(picture)
    if float(np.ptp(steps[0][1])) < MIN_CONTRAST:
        # Uniform paper: on the canvas uniform white means "painted over", in a photo "no digit".
        return DrawingPrediction(DrawingResult("empty", picture_message("empty"), None, 0.0, None)), steps[:1]
    return predict_drawing(drawing, predictors), steps


def is_drawable(record) -> bool:
    """Whether the run finished with a model that reads 28×28 grey images, as the canvas gives
    (CIFAR-10's 32×32 colour ones don't)."""
    return record.status == "finished" and record.dataset in DRAWABLE


def is_mnist(record) -> bool:
    """The newest drawable MNIST run is the model Draw starts with."""
    return record.dataset == "mnist"


def quick_train_id(active: list, remembered: str | None) -> str | None:
    """The quick train to show: the one this session started, else one of the `active` runs."""
    return remembered or next((r.run_id for r in active if r.is_active and r.name == QUICK_TRAIN_NAME),
                              None)
