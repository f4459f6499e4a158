"""Continuing a run: the optimizer's state beside each checkpoint, and a model rebuilt from both.

A checkpoint (`model.keras`) is the float32 twin of the trained model, saved without its
optimizer so that every reader gets a plain model. To train on where it stopped, the optimizer's
variables (Adam's moments, the step count, the learning rate) are saved after each checkpoint
into `optimizer_<model>.npz`, as float32 arrays in `optimizer.variables` order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit.errors import RunError
from cnnkit.model.models import load_model
from cnnkit.model.tf_import import keras  # TensorFlow, imported quietly
from cnnkit.runs.store import OPTIMIZER_FILE, atomic_write


def optimizer_path(run_dir: Path, key: str) -> Path:
    return Path(run_dir) / OPTIMIZER_FILE.format(key)


def save_optimizer_state(model: keras.Model, path: Path) -> None:
    values = [np.asarray(keras.ops.convert_to_numpy(keras.ops.cast(v, "float32"))) for v in model.optimizer.variables]
    # uncompressed: compressing a few MB of moments cost a second at each epoch's end
    arrays = {f"v{index:04d}": value for index, value in enumerate(values)}
    atomic_write(path, lambda handle: np.savez(handle, **arrays))


def restore(model: keras.Model, checkpoint: Path, state: Path) -> None:
    """Load the checkpoint's weights into the compiled `model` (any precision), then the
    optimizer's saved variables. RunError when either does not fit the model."""
    saved = load_model(checkpoint)
    try:
        model.set_weights(saved.get_weights())
    except ValueError as exc:
        raise RunError(f"{Path(checkpoint).name} does not fit this run's model ({exc})") from None
    model.optimizer.build(model.trainable_variables)
    try:
        with np.load(state) as arrays:
            values = [arrays[name] for name in sorted(arrays.files)]
    except (OSError, ValueError) as exc:
        raise RunError(f"the optimizer state {Path(state).name} cannot be read ({exc})") from None
    variables = model.optimizer.variables
    shapes = [tuple(v.shape) for v in variables]
    if [tuple(value.shape) for value in values] != shapes:
        raise RunError(f"the optimizer state {Path(state).name} holds {len(values)} arrays that do not match "
                       f"the optimizer's {len(variables)} variables")
    for variable, value in zip(variables, values, strict=True):
        variable.assign(keras.ops.cast(value, variable.dtype))
