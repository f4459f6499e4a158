"""Helpers shared by the tests that check cnnkit against Keras itself (the oracle).

Importing this module is cheap: TensorFlow loads on the first call, as in the tests' fixtures.
"""


def spec_layers(model) -> list:
    """The model's layers that correspond to shape-calculator rows (input and preprocessing left out)."""
    from cnnkit.model.models import PREPROCESS_LAYER
    from cnnkit.model.tf_import import keras

    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and layer.name != PREPROCESS_LAYER]
