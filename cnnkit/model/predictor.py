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


def reevaluate(record, key: str, data_dir: str | None = None) -> tuple[float, float, int]:
    """Run the saved `key` model ("cnn" or "baseline") on the run's test set again and store its
    predictions, as training does: (test accuracy, test loss, test images). What Inspect offers
    when a predictions file is missing or damaged; numpy only for the built-in layer types."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.outputs import test_metrics
    from cnnkit.runs.store import write_predictions

    prepared = prepare_data(record.spec, data_dir)
    output = record.spec.output if key == "cnn" else "softmax"  # a baseline always ends in softmax
    probs = load_predictor(record.model_path(key), output).probabilities(prepared.x_test)
    accuracy, loss = test_metrics(probs.astype("float64"), prepared.y_test.astype("int64"))
    write_predictions(record.path, key, probs, prepared.y_test, prepared.test_indices)
    return accuracy, loss, len(prepared.y_test)
