"""Import a model trained elsewhere as an "imported" run: checked, wrapped, evaluated. TensorFlow.

The uploaded model expects pixels scaled as its script scaled them (0–1 after `/255`, what the
source articles do, or raw 0–255). cnnkit's models take raw 0–255 pixels and scale inside, so
the run's `model.keras` is the uploaded model behind a `preprocess` layer that does the same:
Draw, Inspect and the numpy predictor then treat it like any trained run. The test split is
evaluated once and stored as for trained runs (the confusion matrix needs no TensorFlow later).
TensorFlow loads only once the file has passed every check that needs none, so a hostile file
is refused in a fraction of a second.
"""

from __future__ import annotations

import shutil
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.prepare import prepare_data
from cnnkit.errors import RunError, UploadError
from cnnkit.limits import Limits
from cnnkit.model.import_spec import INPUT_SCALES, default_run_name, read_architecture
from cnnkit.model.predictor import evaluate
from cnnkit.model.uploads import brief, check_model_fits, check_upload, load_keras_bytes
from cnnkit.runs.imported import mark_imported
from cnnkit.runs.store import MODEL_FILES, RunRecord, RunStore, this_process, write_predictions
from cnnkit.specs import DatasetSpec, ExperimentSpec, text_problem

if TYPE_CHECKING:
    from cnnkit.model.tf_import import keras


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 1
    while candidate in taken:
        candidate, number = f"{name}_{number}", number + 1
    return candidate


def wrap_for_raw_pixels(model: keras.Model, input_scale: str) -> keras.Model:
    """The model behind a preprocess layer, so it takes 0–255 pixels like cnnkit's own. Its
    layers are replayed on the new input, not nested: feature maps, filters and the numpy
    predictor find them at the top level, branches included."""
    from cnnkit.model.models import PREPROCESS_LAYER
    from cnnkit.model.tf_import import keras  # TensorFlow, imported quietly

    taken = {layer.name for layer in model.layers}
    inputs = keras.Input(shape=tuple(model.inputs[0].shape[1:]), name=_unique("pixels", taken))
    scale = 1.0 / 255.0 if input_scale == "unit" else 1.0
    x = keras.layers.Rescaling(scale, name=_unique(PREPROCESS_LAYER, taken))(inputs)
    if isinstance(model, keras.Sequential):
        for layer in model.layers:
            x = layer(x)
    else:
        try:  # the functional graph, run on symbolic tensors: each layer gets a second node
            x = model._run_through_graph(x, operation_fn=lambda operation: operation)
        except (AttributeError, TypeError, ValueError) as exc:
            raise UploadError(f"the model's graph could not be rewired to cnnkit's input ({brief(exc)})") from None
    return keras.Model(inputs, x, name=_unique("imported", taken))


def import_model(data: Any, dataset: str, *, input_scale: str = "unit", name: str | None = None,
                 filename: str | None = None, store: RunStore | None = None,
                 data_dir: str | None = None) -> RunRecord:
    """Check, load, wrap and evaluate an uploaded `.keras` file; returns the finished run."""
    if input_scale not in INPUT_SCALES:
        raise UploadError(f"input must be one of {', '.join(INPUT_SCALES)}; got {str(input_scale)[:20]!r}")
    info = get_dataset_info(dataset)
    store = store or RunStore()
    problem = text_problem(name) if name else None
    if problem:
        raise RunError(f"the run name {problem}")
    limits = Limits.from_env()
    raw, checked = check_upload(data, info, max_params=limits.max_params)
    architecture = read_architecture(checked.config, checked.budget, info.num_classes, input_scale)
    from cnnkit.model.callbacks import save_model_atomic  # TensorFlow loads here, the file checked

    model = load_keras_bytes(raw)
    check_model_fits(model, info, limits.max_params)
    wrapped = wrap_for_raw_pixels(model, input_scale)
    spec = ExperimentSpec(layers=architecture.spec_layers, output=architecture.output,
                          dataset=DatasetSpec(name=dataset, normalization=architecture.normalization),
                          name=name or default_run_name(filename))
    record = store.create(spec, name=spec.name, kind="imported", status="running", **this_process(), imported={
        "file": default_run_name(filename).removeprefix("imported "), "input": input_scale,
        "rebuildable": architecture.rebuildable, "why_not_rebuildable": architecture.why_not,
        "layers": [row.to_dict() for row in architecture.layers]})
    try:
        started = time.perf_counter()
        save_model_atomic(wrapped, str(record.path / MODEL_FILES["cnn"]))
        prepared = prepare_data(spec, data_dir)
        record = store.get(record.run_id)
        probs, accuracy, loss = evaluate(record, "cnn", prepared)
        indices = prepared.test_indices if prepared.test_indices is not None else np.arange(len(prepared.y_test))
        write_predictions(record.path, "cnn", probs, prepared.y_test, indices)
        store.update(record.run_id, status="finished", finished=time.time(),
                     data_source=prepared.source.to_dict(),
                     data_summary={"train": 0, "validation": 0, "test": len(prepared.x_test)},
                     models={"cnn": {"status": "finished", "params": int(model.count_params()),
                                     "test_accuracy": accuracy, "test_loss": loss, "epochs_completed": 0,
                                     "seconds": time.perf_counter() - started}})
        mark_imported(store, record.run_id)  # the Models page finds it without reading every run
    except BaseException:
        shutil.rmtree(record.path, ignore_errors=True)  # no half-imported run in the ledger
        raise
    return store.get(record.run_id)
