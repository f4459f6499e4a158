"""What every predictor shares, in numpy: images in as a batch, model outputs out as probabilities.

The numpy runner (`lite`), the TensorFlow one (`inspection`) and training all use these, so a
prediction is shaped and scored the same way whichever path made it. No TensorFlow here.
"""

from __future__ import annotations

import numpy as np


def as_batch(images: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """(H, W), (H, W, C) or (N, H, W[, C]) pixels 0–255 → float32 (N, H, W, C)."""
    x = np.asarray(images, dtype=np.float32)
    gray = input_shape[-1] == 1
    if x.shape == tuple(input_shape):
        x = x[None]
    elif gray and x.shape == tuple(input_shape[:-1]):
        x = x[None, ..., None]
    elif gray and x.shape[1:] == tuple(input_shape[:-1]):
        x = x[..., None]
    if tuple(x.shape[1:]) != tuple(input_shape):
        raise ValueError(f"images of shape {tuple(x.shape[1:])} do not fit the model's input {tuple(input_shape)}")
    return x


def softmax(x: np.ndarray) -> np.ndarray:
    shifted = x - x.max(axis=-1, keepdims=True)  # exp of large logits would overflow
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def probabilities(model_output: np.ndarray, output: str) -> np.ndarray:
    """(N, classes) model outputs → probabilities: a softmax output is one already."""
    return softmax(model_output) if output == "logits" else model_output


def test_metrics(probs: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy, clipping as Keras does (eps 1e-7)."""
    picked = np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)
    return float((probs.argmax(axis=1) == y_test).mean()), float(-np.log(picked).mean())


test_metrics.__test__ = False  # a metric, not a test for pytest to collect
