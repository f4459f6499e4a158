"""Test-set analysis from the stored predictions: confusion matrix, per-class accuracy, mistakes.

Plain numpy: the Inspect page draws these without importing TensorFlow, from the
`predictions_<model>.npz` file that training leaves in the run folder.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from cnnkit.errors import RunError
from cnnkit.shapes import summarize_spec

INSPECTABLE = ("finished", "stopped", "interrupted")  # statuses that leave a model behind


@dataclass(frozen=True, repr=False)
class Predictions:
    probs: np.ndarray          # (N, num_classes) float
    y_true: np.ndarray         # (N,) int
    test_indices: np.ndarray   # (N,) position of each row in the dataset's test split

    def __repr__(self) -> str:
        return f"Predictions({len(self.y_true)} test images, accuracy={self.accuracy:.4f})"

    # computed once: a page captions 40 images, each reading a row of both
    @cached_property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @cached_property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    @property
    def num_classes(self) -> int:
        return self.probs.shape[1]

    @property
    def accuracy(self) -> float:
        return float((self.y_pred == self.y_true).mean()) if len(self.y_true) else 0.0


def load_predictions(run_dir: str | Path, key: str = "cnn") -> Predictions:
    path = Path(run_dir) / f"predictions_{key}.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return Predictions(data["probs"].astype(np.float32), data["y_true"].astype(np.int64),
                               data["test_indices"].astype(np.int64))
    except FileNotFoundError:
        raise RunError(f"{path.name} is missing: the run has no test predictions "
                       f"(it did not finish, or was stopped before evaluation)") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        # EOFError and BadZipFile: what a kill mid-write left (0 bytes, a cut zip) crashed Inspect
        raise RunError(f"{path.name} is damaged ({type(exc).__name__}: {exc})") from None


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[i, j] = test images of true class i predicted as class j."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return counts


def per_class_accuracy(counts: np.ndarray) -> np.ndarray:
    """Recall per true class; NaN for a class with no test images."""
    totals = counts.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(counts) / np.maximum(totals, 1), np.nan)


def cell_examples(predictions: Predictions, true_class: int, predicted_class: int,
                  limit: int = 24) -> np.ndarray:
    """Row numbers of the images in one confusion-matrix cell, most confident first."""
    mask = (predictions.y_true == true_class) & (predictions.y_pred == predicted_class)
    rows = np.flatnonzero(mask)
    order = np.argsort(-predictions.confidence[rows], kind="stable")
    return rows[order][:limit]


def mistakes(predictions: Predictions, limit: int = 50) -> np.ndarray:
    """Row numbers of misclassified images, the most confidently wrong first."""
    rows = np.flatnonzero(predictions.y_pred != predictions.y_true)
    order = np.argsort(-predictions.confidence[rows], kind="stable")
    return rows[order][:limit]


def is_inspectable(record) -> bool:
    """Whether the run left a model (finished, or stopped with a checkpoint)."""
    # A finished run's model was checked by the listing (without it the run reads as damaged): a
    # stat fewer per run.
    return record.status in INSPECTABLE and (record.status == "finished" or record.has_model())


def is_robustness_ready(record) -> bool:
    """Whether the Robustness lab can test the run: finished, with a model."""
    return record.status == "finished" and is_inspectable(record)


def inspectable_models(record) -> list[str]:
    """"cnn" and "baseline" as far as the run has test predictions for them (the CNN also when it
    has only a model: its feature maps and filters can still be shown)."""
    return [key for key in ("cnn", "baseline") if (Path(record.path) / f"predictions_{key}.npz").is_file()
            or (key == "cnn" and record.has_model())]


def conv_layer_names(record) -> list[str]:
    """The names of a run's convolution layers ("conv2d_1", …): the ones with filters to show.
    An imported run's come from its model file (its spec may not describe its layers)."""
    if record.kind == "imported":
        return [row["name"] for row in record.imported.get("layers", []) if row.get("keras") == "Conv2D"]
    return [row.name for row in summarize_spec(record.spec).layers if row.type == "conv2d"]


def worst_cell(counts: np.ndarray) -> tuple[int, int]:
    """(true, predicted) of the most frequent mistake; (0, 0) when there is none."""
    off = counts - np.diag(np.diag(counts))
    true_class, predicted = np.unravel_index(int(off.argmax()), off.shape)
    return int(true_class), int(predicted)


def results_summary(counts: np.ndarray, accuracy: float) -> str:
    """One markdown line: how many test images, the accuracy, how many mistakes."""
    total, right = int(counts.sum()), int(np.trace(counts))
    return f"**{total:,} test images**, accuracy **{accuracy:.2%}**, {total - right:,} mistakes."


def row_caption(predictions: Predictions, class_names, row: int, confidence: bool = True) -> str:
    """"#17: 7 → 1 (93%)": a test image's row, true → predicted class and the confidence."""
    true_name, predicted = class_names[predictions.y_true[row]], class_names[predictions.y_pred[row]]
    tail = f" ({predictions.confidence[row]:.0%})" if confidence else ""
    return f"#{row}: {true_name} → {predicted}{tail}"


def image_caption(predictions: Predictions, class_names, row: int) -> str:
    """"true 7, predicted 1 (93%)": under one test image."""
    return (f"true {class_names[predictions.y_true[row]]}, predicted {class_names[predictions.y_pred[row]]} "
            f"({predictions.confidence[row]:.0%})")


def filters_caption(kernel_shape: tuple) -> str:
    """What a conv layer's filter mosaic shows, from its kernel's shape (k, k, c_in, filters)."""
    k, _, c_in, n = kernel_shape
    return (f"{n} filters of {k}×{k}×{c_in}. Red: positive weights, blue: negative; each filter "
            "is scaled to its own largest weight.")


def same_test_set(predictions: Predictions, y_test: np.ndarray) -> bool:
    """Whether the test labels this server loads are the ones the run was evaluated on (a run
    trained on the real set, shown where only the sample is, is not)."""
    idx = predictions.test_indices
    return not len(idx) or (idx.max() < len(y_test) and np.array_equal(y_test[idx], predictions.y_true))


def clicked_cell(selection, class_names) -> tuple[int, int] | None:
    """(true, predicted) class index of the confusion-matrix point a click selected (a plotly
    selection: {"points": [{"x": predicted name, "y": true name}, …]}), or None without one."""
    points = selection.get("points") or []
    if not points:
        return None
    names = list(class_names)
    return names.index(str(points[0]["y"])), names.index(str(points[0]["x"]))
