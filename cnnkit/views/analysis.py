"""Test-set analysis from the stored predictions: confusion matrix, per-class accuracy, mistakes.

Plain numpy: the Inspect page draws these without importing TensorFlow, from the
`predictions_<model>.npz` file that training leaves in the run folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cnnkit.errors import RunError


@dataclass(frozen=True, repr=False)
class Predictions:
    probs: np.ndarray          # (N, num_classes) float
    y_true: np.ndarray         # (N,) int
    test_indices: np.ndarray   # (N,) position of each row in the dataset's test split

    def __repr__(self) -> str:
        return f"Predictions({len(self.y_true)} test images, accuracy={self.accuracy:.4f})"

    @property
    def y_pred(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
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
    except (OSError, ValueError, KeyError) as exc:
        raise RunError(f"{path.name} is damaged ({exc})") from None


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
