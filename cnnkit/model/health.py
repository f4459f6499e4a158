"""Training health, per epoch and per layer: activations, dead ReLU units, gradient norms. TensorFlow.

At the end of every epoch `HealthMonitor` runs one fixed probe batch (the first 256 training
images, the same every epoch) through the model: each conv/dense layer's output mean and std,
the share of its ReLU units that are zero for every probe image (a conv unit is a filter: zero
at every position of every image), and the norm of the loss's gradient with respect to its
kernel. One record per epoch goes to health.jsonl in the run folder; the Train page turns them
into plain-language warnings (cnnkit.views.health). It costs one forward and one backward pass
of 256 images an epoch; the record says how long it took.
"""

from __future__ import annotations

import time

import numpy as np

from cnnkit.model.tf_import import keras, tf  # TensorFlow, imported quietly
from cnnkit.runs.store import append_jsonl

PROBE_IMAGES = 256
WATCHED = (keras.layers.Conv2D, keras.layers.Dense)


def _is_relu(layer) -> bool:
    return getattr(getattr(layer, "activation", None), "__name__", "") == "relu"


def layer_health(model: keras.Model, x: np.ndarray, y: np.ndarray, from_logits: bool) -> list[dict]:
    """[{name, type, mean, std, dead (share, ReLU layers only), grad_norm}] of `model` on (x, y)."""
    layers = [layer for layer in model.layers if isinstance(layer, WATCHED)]
    probe = keras.Model(model.inputs, [layer.output for layer in layers] + [model.outputs[0]])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    kernels = [layer.kernel for layer in layers]
    with tf.GradientTape() as tape:
        outputs = probe(tf.constant(x, tf.float32), training=False)
        loss = loss_fn(tf.constant(y), tf.cast(outputs[-1], tf.float32))
    grads = tape.gradient(loss, kernels)
    rows = []
    for layer, out, grad in zip(layers, outputs[:-1], grads, strict=True):
        values = np.asarray(tf.cast(out, tf.float32))
        units = values.reshape(-1, values.shape[-1])  # (images × positions, filters or units)
        dead = float(np.mean(np.all(units <= 0.0, axis=0))) if _is_relu(layer) else None
        rows.append({"name": layer.name, "type": type(layer).__name__, "mean": float(values.mean()),
                     "std": float(values.std()), "dead": dead,
                     "grad_norm": None if grad is None else float(tf.norm(tf.cast(grad, tf.float32)))})
    return rows


class HealthMonitor(keras.callbacks.Callback):
    """Writes one health record per epoch (see the module docstring) into `path`."""

    def __init__(self, path, model_key: str, x: np.ndarray, y: np.ndarray, from_logits: bool):
        super().__init__()
        self.path, self.model_key, self.from_logits = path, model_key, from_logits
        self.x, self.y = x[:PROBE_IMAGES].astype(np.float32), y[:PROBE_IMAGES].astype(np.int32)
        self.seconds: list[float] = []

    def __repr__(self) -> str:
        return f"HealthMonitor({self.model_key}, {len(self.x)} probe images, {len(self.seconds)} epochs)"

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        if self.model.stop_training:
            return  # a stop (or a diverged loss) ends the job now, not after a probe of a partial epoch
        started = time.perf_counter()
        rows = layer_health(self.model, self.x, self.y, self.from_logits)
        self.seconds.append(time.perf_counter() - started)
        append_jsonl(self.path, {"model": self.model_key, "epoch": epoch + 1, "seconds": self.seconds[-1],
                                 "layers": rows})
