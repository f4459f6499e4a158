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
        from cnnkit.model.models import load_model

        # the numpy loader refused it only for a layer it lacks, after the file's checks passed
        return Predictor(load_model(path), output)


def evaluate(record, key: str, prepared) -> tuple:
    """The saved `key` model ("cnn" or "baseline") on `prepared`'s test images:
    (probabilities (N, classes), test accuracy, test loss). Numpy only for the built-in layers."""
    from cnnkit.model.outputs import test_metrics

    output = record.spec.output if key == "cnn" else "softmax"  # a baseline always ends in softmax
    probs = load_predictor(record.model_path(key), output).probabilities(prepared.x_test)
    accuracy, loss = test_metrics(probs.astype("float64"), prepared.y_test.astype("int64"))
    return probs, accuracy, loss


def reevaluate(record, key: str, data_dir: str | None = None, prepared=None) -> tuple[float, float, int]:
    """`evaluate` on the run's test set, and store the predictions as training does: (test
    accuracy, test loss, test images). What Inspect offers when a predictions file is missing or
    damaged."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.runs.store import write_predictions

    prepared = prepared or prepare_data(record.spec, data_dir)
    probs, accuracy, loss = evaluate(record, key, prepared)
    write_predictions(record.path, key, probs, prepared.y_test, prepared.test_indices)
    return accuracy, loss, len(prepared.y_test)
