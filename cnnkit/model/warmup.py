"""What a warm worker does before it has a job: everything a job's first batch waits for.

A fresh worker spent 3–5 s importing TensorFlow, ~0.3 s reading and checking the dataset and
~0.5 s on TensorFlow's first-ever trace before a job's first batch (runs/warm.py). Here the
worker trains a tiny CNN for one step on a few images of the dataset it expects, through the
same code path as a job (`train_one`: bf16 convolutions, the float32 twin, the test): that
imports and initialises all of it and leaves the dataset's raw arrays in `load_raw`'s cache.
Nothing is written anywhere and the Keras session is cleared afterwards; the job then sets its
own seeds, so it trains exactly as in a fresh process (tests/test_warm_worker.py checks).
"""

from __future__ import annotations

import gc
import time

from cnnkit.model.tf_import import keras
from cnnkit.specs import ExperimentSpec

WARM_UP_IMAGES = 64  # enough for one batch of training and one of testing


def warm_up_spec(dataset: str) -> ExperimentSpec:
    """A CNN of the common layer kinds, one epoch of one batch on a few images of `dataset`."""
    return ExperimentSpec.from_dict({
        "dataset": {"name": dataset, "validation_split": 0.0, "train_limit": WARM_UP_IMAGES,
                    "test_limit": WARM_UP_IMAGES},
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
                   {"type": "flatten"}, {"type": "dense", "units": 8}],
        "training": {"epochs": 1, "batch_size": WARM_UP_IMAGES, "seed": 0}})


def warm_up(dataset: str, data_dir: str | None) -> float:
    """Train the warm-up spec on `dataset` without a run folder; the seconds it took."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.training import train_one

    started = time.perf_counter()
    spec = warm_up_spec(dataset)
    prepared = prepare_data(spec, data_dir)  # loads (and caches) the whole raw dataset, keeps 64 images
    outcome = train_one("cnn", spec.layers, spec, prepared, writer=None)
    outcome.release()
    keras.backend.clear_session()
    gc.collect()
    return time.perf_counter() - started
