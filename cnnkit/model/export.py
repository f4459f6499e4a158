"""A run's model in the formats other tools read: TensorFlow SavedModel and ONNX. TensorFlow.

Both go through Keras' own `model.export` (ONNX through tf2onnx). The model file is checked
like an upload first (`keras_file.read_keras_file`): a runs folder may be an unpacked zip
someone shared. The exported model takes what the run's model takes: raw 0–255 pixels,
(N, height, width, channels) float32, and returns the same outputs (probabilities, or logits
for a logits run).
"""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import numpy as np

from cnnkit.model.keras_file import read_model_file
from cnnkit.model.models import load_model

KERAS_FORMATS = ("savedmodel", "onnx")


def export_model(model_path: str | os.PathLike, fmt: str, out: str | os.PathLike) -> Path:
    """Write the model at `model_path` as `fmt` ("savedmodel": a folder, "onnx": a file) at `out`."""
    if fmt not in KERAS_FORMATS:
        raise ValueError(f"unknown export format {fmt!r}")
    read_model_file(model_path)
    model = load_model(model_path)
    # Keras' ONNX export wants a model that has been called once (a loaded one has not).
    model(np.zeros((1, *model.inputs[0].shape[1:]), np.float32), training=False)
    out = Path(out)
    if fmt == "savedmodel" and out.exists():
        shutil.rmtree(out)  # model.export refuses to write into an existing folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf2onnx's numpy FutureWarnings are not the user's concern
        model.export(str(out), format="tf_saved_model" if fmt == "savedmodel" else "onnx", verbose=False)
    return out
