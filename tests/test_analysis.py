"""Confusion matrix, per-class accuracy and example picking against a hand-made example."""

import numpy as np
import pytest

from cnnkit.errors import RunError
from cnnkit.views.analysis import (
    Predictions,
    cell_examples,
    confusion_matrix,
    load_predictions,
    mistakes,
    per_class_accuracy,
)

# Seven test images, four classes; class 3 has no test images at all.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2, 2])
PROBS = np.array([
    [0.90, 0.05, 0.05, 0.00],   # true 0 → 0  right
    [0.30, 0.60, 0.10, 0.00],   # true 0 → 1  wrong, confidence 0.60
    [0.10, 0.80, 0.10, 0.00],   # true 1 → 1  right
    [0.20, 0.70, 0.10, 0.00],   # true 1 → 1  right
    [0.00, 0.05, 0.95, 0.00],   # true 2 → 2  right
    [0.85, 0.05, 0.10, 0.00],   # true 2 → 0  wrong, confidence 0.85
    [0.10, 0.10, 0.50, 0.30],   # true 2 → 2  right
])


@pytest.fixture
def predictions():
    return Predictions(PROBS.astype(np.float32), Y_TRUE, np.arange(100, 107))


def test_confusion_matrix_by_hand(predictions):
    counts = confusion_matrix(predictions.y_true, predictions.y_pred, 4)
    assert counts.tolist() == [
        [1, 1, 0, 0],   # true 0: one right, one called 1
        [0, 2, 0, 0],   # true 1: both right
        [1, 0, 2, 0],   # true 2: two right, one called 0
        [0, 0, 0, 0],   # true 3: none in the test set
    ]
    assert counts.sum() == len(Y_TRUE)


def test_per_class_accuracy_by_hand(predictions):
    accuracy = per_class_accuracy(confusion_matrix(predictions.y_true, predictions.y_pred, 4))
    assert accuracy[:3].tolist() == [0.5, 1.0, pytest.approx(2 / 3)]
    assert np.isnan(accuracy[3])  # no images: unknown, not 0%


def test_overall_accuracy_and_confidence(predictions):
    assert predictions.accuracy == pytest.approx(5 / 7)
    assert predictions.num_classes == 4
    assert predictions.y_pred.tolist() == [0, 1, 1, 1, 2, 0, 2]
    assert predictions.confidence.tolist() == pytest.approx([0.9, 0.6, 0.8, 0.7, 0.95, 0.85, 0.5])
    assert Predictions(np.zeros((0, 4)), np.zeros(0, int), np.zeros(0, int)).accuracy == 0.0


def test_mistakes_most_confident_first(predictions):
    assert mistakes(predictions).tolist() == [5, 1]     # 0.85, then 0.60
    assert mistakes(predictions, limit=1).tolist() == [5]


def test_cell_examples_most_confident_first(predictions):
    assert cell_examples(predictions, 1, 1).tolist() == [2, 3]        # 0.80, 0.70
    assert cell_examples(predictions, 2, 2).tolist() == [4, 6]        # 0.95, 0.50
    assert cell_examples(predictions, 2, 0).tolist() == [5]
    assert cell_examples(predictions, 3, 3).tolist() == []
    assert cell_examples(predictions, 2, 2, limit=1).tolist() == [4]


def test_load_predictions_round_trip(tmp_path):
    np.savez_compressed(tmp_path / "predictions_cnn.npz", probs=PROBS.astype(np.float32),
                        y_true=Y_TRUE.astype(np.uint8), test_indices=np.arange(100, 107))
    loaded = load_predictions(tmp_path)
    assert np.array_equal(loaded.probs, PROBS.astype(np.float32))
    assert loaded.y_true.dtype == np.int64 and loaded.y_true.tolist() == Y_TRUE.tolist()
    assert loaded.test_indices.tolist() == list(range(100, 107))
    assert loaded.accuracy == pytest.approx(5 / 7)


def test_missing_or_damaged_predictions_are_run_errors(tmp_path):
    with pytest.raises(RunError, match="predictions_cnn.npz is missing"):
        load_predictions(tmp_path)
    (tmp_path / "predictions_baseline.npz").write_bytes(b"not a zip file")
    with pytest.raises(RunError, match="predictions_baseline.npz is damaged"):
        load_predictions(tmp_path, "baseline")
    np.savez(tmp_path / "predictions_cnn.npz", probs=PROBS)  # y_true missing
    with pytest.raises(RunError, match="damaged"):
        load_predictions(tmp_path)
