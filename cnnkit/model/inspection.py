"""Looking inside a trained model: fast predictions, feature maps, filters. Imports TensorFlow.

`model.predict` on one image costs ~50 ms here (it builds a data pipeline per call); a
`tf.function` with a fixed input signature traces once and then costs well under 1 ms.
"""

from __future__ import annotations

import os

import numpy as np

from cnnkit.model.models import load_model
from cnnkit.model.outputs import as_batch, probabilities
from cnnkit.model.tf_import import keras, tf  # TensorFlow, imported quietly

MAP_LAYER_TYPES = (keras.layers.Conv2D, keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


class Predictor:
    """Class probabilities through one compiled call: the Draw page's hot path."""

    def __init__(self, model: keras.Model, output: str = "softmax"):
        self.model = model
        self.output = output
        self.input_shape = tuple(model.input_shape[1:])
        signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]
        self._call = tf.function(lambda x: model(x, training=False), input_signature=signature)
        self._maps_model = None
        self._maps_call = None
        self.probabilities(np.zeros(self.input_shape, np.float32))  # trace now, not on the first stroke

    def __repr__(self) -> str:
        return f"Predictor({self.model.name}, input={self.input_shape}, output={self.output})"

    @classmethod
    def from_file(cls, path: str | os.PathLike, output: str = "softmax") -> Predictor:
        """Through the upload checks first: a runs folder may be an unpacked zip someone shared."""
        from cnnkit.model.keras_file import read_model_file

        read_model_file(path)
        return cls(load_model(path), output)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """Pixels 0–255, one image or a batch → (N, num_classes) probabilities."""
        raw = self._call(tf.constant(as_batch(images, self.input_shape))).numpy()
        return probabilities(raw, self.output)

    # -- feature maps -------------------------------------------------------------------

    @property
    def map_layers(self) -> list[keras.layers.Layer]:
        return [layer for layer in self.model.layers if isinstance(layer, MAP_LAYER_TYPES)]

    def feature_maps(self, image: np.ndarray) -> list[tuple[str, np.ndarray]]:
        """[(layer name, (H, W, C) activations)] of every conv/pool layer for one image."""
        layers = self.map_layers
        if not layers:
            return []
        if self._maps_call is None:
            self._maps_model = keras.Model(self.model.input, [layer.output for layer in layers])
            signature = [tf.TensorSpec((None, *self.input_shape), tf.float32)]
            self._maps_call = tf.function(lambda x: self._maps_model(x, training=False),
                                          input_signature=signature)
        outputs = self._maps_call(tf.constant(as_batch(image, self.input_shape)[:1]))
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [(layer.name, out.numpy()[0]) for layer, out in zip(layers, outputs, strict=False)]

    def filters(self, layer_name: str | None = None) -> tuple[str, np.ndarray]:
        """(name, kernel (k, k, c_in, filters)) of a conv layer; the first one by default."""
        convs = [layer for layer in self.model.layers if isinstance(layer, keras.layers.Conv2D)]
        if not convs:
            raise ValueError("this model has no convolution layers")
        layer = next((c for c in convs if c.name == layer_name), convs[0]) if layer_name else convs[0]
        return layer.name, np.asarray(layer.kernel.numpy())
