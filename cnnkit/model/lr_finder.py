"""The learning-rate finder (fastai's lr_find): train ~100 batches with a learning rate growing
geometrically from 1e-7 to 10, record the loss, stop when it blows up, restore the weights.
TensorFlow. The curve's suggestion is cnnkit.views.lr.suggest_lr (pure numpy)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cnnkit.model.levers import build_compiled, configure_determinism, make_dataset
from cnnkit.model.tf_import import keras

START, END, STEPS = 1e-7, 10.0, 100
BLOW_UP = 4.0          # stop once the smoothed loss is this many times its lowest
SMOOTHING = 0.9        # exponential smoothing of the per-batch loss (bias-corrected)


def lr_range_test(model: keras.Model, batches, steps: int = STEPS, start: float = START, end: float = END,
                  progress: Callable[[int, int], None] | None = None) -> tuple[list[float], list[float]]:
    """(learning rates, smoothed losses) of one pass of growing rates over `batches`; the
    model's weights (and its optimizer's state) are put back afterwards."""
    weights = model.get_weights()
    model.optimizer.build(model.trainable_variables)  # its slots exist now, so they can be put back
    optimizer_state = [v.numpy() for v in model.optimizer.variables]
    lrs, losses, average, best = [], [], 0.0, math.inf
    try:
        for step, (x, y) in enumerate(batches.repeat().take(steps)):
            lr = start * (end / start) ** (step / max(steps - 1, 1))
            model.optimizer.learning_rate.assign(lr)
            loss = float(model.train_on_batch(x, y, return_dict=True)["loss"])
            average = SMOOTHING * average + (1 - SMOOTHING) * loss
            smoothed = average / (1 - SMOOTHING ** (step + 1))
            if not math.isfinite(smoothed):
                break
            lrs.append(lr)
            losses.append(smoothed)
            best = min(best, smoothed)
            if progress is not None:
                progress(step + 1, steps)
            if smoothed > BLOW_UP * best:
                break
    finally:
        model.set_weights(weights)
        for variable, value in zip(model.optimizer.variables, optimizer_state, strict=False):
            variable.assign(value)
    return lrs, losses


def find_lr(spec, prepared, steps: int = STEPS, progress: Callable[[int, int], None] | None = None) -> dict:
    """The range test on the spec's CNN with its optimizer and batch size: {"lrs", "losses"}."""
    configure_determinism(spec.training.seed)
    model = build_compiled("cnn", spec.layers, spec, prepared, 1)
    batches = make_dataset(prepared.x_train, prepared.y_train, spec.training.batch_size, shuffle=True,
                           seed=spec.training.seed)
    lrs, losses = lr_range_test(model, batches, steps, progress=progress)
    return {"lrs": lrs, "losses": [float(np.float32(v)) for v in losses]}
