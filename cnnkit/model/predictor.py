"""`load_predictor`: the fastest way to run a saved model, for the pages and the CLI.

A numpy forward pass (`lite`) when the model is a plain stack of layers it knows, so the
dashboard never imports TensorFlow; otherwise Keras through a compiled `tf.function`
(`inspection.Predictor`). Both have the same interface: `probabilities`, `feature_maps`,
`filters`.
"""

from __future__ import annotations

import os

from cnnkit.model.lite import LitePredictor, UnsupportedModel


def load_predictor(path: str | os.PathLike, output: str = "softmax"):
    """A numpy predictor when the model is a plain stack of supported layers, else Keras'."""
    try:
        return LitePredictor.from_file(path, output)
    except UnsupportedModel:
        from cnnkit.model.inspection import (
            Predictor,  # TensorFlow, only for models numpy cannot run
        )

        return Predictor.from_file(path, output)
