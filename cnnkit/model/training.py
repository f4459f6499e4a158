"""The training job: spec → trained models, reporting into the run folder as it goes.

`run_job` is what the worker process (`python -m cnnkit.worker RUN_DIR`) and the CLI's `train`
call. It never runs inside the Streamlit server: a training thread there competes with the
page for the interpreter (measured 20× slower here), and a process frees all of TensorFlow's
memory when it ends.
"""

from __future__ import annotations

import ctypes
import gc
import math
import time
import traceback
import warnings
from dataclasses import dataclass

import numpy as np

from cnnkit import settings
from cnnkit.data.prepare import prepare_data
from cnnkit.errors import DataError, is_disk_full
from cnnkit.limits import Limits
from cnnkit.model.callbacks import (
    EndTraining,
    LiveReport,
    ProgressHook,
    StopEvaluation,
    StopRequested,
    clock,
    time_limit_stop,
)
from cnnkit.model.health import HealthMonitor
from cnnkit.model.levers import (
    augment_dataset,
    build_compiled,
    configure_determinism,
    ended_by_stop_file,
    float32_twin,
    is_float32,
    make_dataset,
    op_threads_in_force,
    stop_when_file_exists,
)
from cnnkit.model.outputs import probabilities, test_metrics
from cnnkit.model.resume import optimizer_path, restore, save_optimizer_state
from cnnkit.model.tf_import import keras  # TensorFlow, imported quietly
from cnnkit.presets import DEFAULT_BASELINE, baseline_layers
from cnnkit.runs.control import CommandReader, record_event
from cnnkit.runs.store import (
    HEALTH_FILE,
    MODEL_FILES,
    RunStore,
    RunWriter,
    remove_temporary_files,
    this_process,
    write_predictions,
)
from cnnkit.shapes import summarize
from cnnkit.specs import ExperimentSpec, Layer

EVAL_BATCH_SIZE = 256           # memory: 1,000 held 360 MB more activations (moroney-cnn)


class Float32Export:
    """The trained model → its float32 twin for each checkpoint. The twin is built once and then
    only given the new weights: building it again at every epoch end cost the stop latency."""

    def __init__(self, key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared):
        self.key, self.layers, self.spec, self.prepared = key, layers, spec, prepared
        self.twin: keras.Model | None = None

    def __repr__(self) -> str:
        return f"Float32Export({self.key}, built={self.twin is not None})"

    def __call__(self, trained: keras.Model) -> keras.Model:
        if is_float32(trained):
            return trained
        if self.twin is None:
            self.twin = float32_twin(trained, self.key, self.layers, self.spec, self.prepared)
        else:
            self.twin.set_weights(trained.get_weights())
        return self.twin


@dataclass
class ModelOutcome:
    key: str
    status: str                 # finished / stopped / failed
    report: LiveReport
    params: int
    test_accuracy: float | None = None
    test_loss: float | None = None
    seconds: float = 0.0
    evaluation_stopped: bool = False   # the stop came during the test evaluation itself

    def __repr__(self) -> str:
        return f"ModelOutcome({self.key}, {self.status}, acc={self.test_accuracy})"

    def release(self) -> None:
        """Drop every reference to the trained model (the callback holds one too), so that
        clearing the Keras session can free it before the next model is built."""
        self.model = None
        self.report.set_model(None)
        self.report.export = None  # it holds the float32 twin


def train_one(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared, writer: RunWriter | None,
              hook: ProgressHook | None = None, steps_per_execution: int | None = None,
              deadline: float | None = None, commands: CommandReader | None = None,
              initial_epoch: int = 0) -> ModelOutcome:
    """Train one model for spec.training.epochs; from `initial_epoch` > 0 on, it continues the
    run folder's checkpoint of that epoch with its optimizer state."""
    training = spec.training
    configure_determinism(training.seed + initial_epoch)  # a continuation draws fresh batches
    model = build_compiled(key, layers, spec, prepared, steps_per_execution)
    if initial_epoch:
        restore(model, writer.dir / MODEL_FILES[key], optimizer_path(writer.dir, key))
    train_ds = make_dataset(prepared.x_train, prepared.y_train, training.batch_size, shuffle=True,
                            seed=training.seed)
    train_ds = augment_dataset(train_ds, spec.augmentation, training.seed)
    if writer is not None and model.steps_per_execution > 1:
        # callbacks run once per chunk of steps; the data itself checks for a stop before each batch
        train_ds = stop_when_file_exists(train_ds, writer.dir / "STOP")
    val_ds = None
    if len(prepared.x_val):
        val_ds = make_dataset(prepared.x_val, prepared.y_val, EVAL_BATCH_SIZE, shuffle=False, seed=0)
    steps = math.ceil(len(prepared.x_train) / training.batch_size)
    save_path = str(writer.dir / MODEL_FILES[key]) if writer is not None else None
    export = Float32Export(key, layers, spec, prepared)
    report = LiveReport(writer, key, training, len(prepared.x_train), steps, hook, save_path, export=export,
                        deadline=deadline, commands=commands,
                        on_checkpoint=lambda trained: save_optimizer_state(trained, optimizer_path(writer.dir, key)),
                        normalization=spec.dataset.normalization,
                        batch_norm=any(layer.type == "batchnorm" for layer in layers))
    callbacks: list[keras.callbacks.Callback] = [report]
    if writer is not None:  # after the report: its epoch time leaves the probe out
        callbacks.append(HealthMonitor(writer.dir / HEALTH_FILE, key, prepared.x_train, prepared.y_train,
                                       from_logits=key == "cnn" and spec.output == "logits"))
    if training.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if val_ds is not None else "loss", factor=training.decay_rate,
            patience=training.decay_epochs, verbose=0))
    start = time.perf_counter()
    with warnings.catch_warnings():
        # a multi-step call asks for more batches than the epoch's last call has: its end says this
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        try:
            model.fit(train_ds, validation_data=val_ds, epochs=training.epochs, initial_epoch=initial_epoch,
                      callbacks=callbacks, verbose=0, shuffle=False)  # the tf.data pipeline shuffles, seeded
        except EndTraining:
            pass  # a stop: report.stopped says so
        except Exception as exc:
            if writer is None or not ended_by_stop_file(exc, writer.dir / "STOP"):
                raise
            report.stopped = True  # the data saw the STOP before the next batch of a multi-step call
    outcome = ModelOutcome(key, "finished", report, model.count_params(), seconds=time.perf_counter() - start)
    if report.stopped or report.divergence:
        return _ended_early(outcome)
    model = outcome.model = export(model)

    _progress(writer, hook, phase="evaluating", model=key)
    tested = test_model(model, key, spec, prepared, writer, StopEvaluation(writer))
    if tested is None:
        outcome.status, outcome.evaluation_stopped = "stopped", True
        record_event(writer.dir if writer else None, "stop", phase="evaluating")
        return outcome
    outcome.test_accuracy, outcome.test_loss = tested
    return outcome


def test_model(model: keras.Model, key: str, spec: ExperimentSpec, prepared, writer: RunWriter | None,
               stopper: StopEvaluation) -> tuple[float, float] | None:
    """Test accuracy and loss on the test split, with the test-set probabilities stored (for the
    confusion matrix, without TF later); None if `stopper` ended it."""
    raw = model.predict(make_dataset(prepared.x_test, prepared.y_test, EVAL_BATCH_SIZE, shuffle=False, seed=0),
                        verbose=0, callbacks=[stopper])
    if stopper.stopped:
        return None
    # float32, the model's own precision, and the metrics come from exactly the stored array:
    # float16 rounding made near-tied probabilities equal, so the argmax (and the accuracy the
    # confusion matrix shows) differed from the reported test accuracy.
    probs = probabilities(np.asarray(raw, dtype=np.float64), spec.output if key == "cnn" else "softmax")
    probs = probs.astype(np.float32)
    accuracy, loss = test_metrics(probs.astype(np.float64), prepared.y_test.astype(np.int64))
    if writer is not None:
        indices = prepared.test_indices if prepared.test_indices is not None else np.arange(len(prepared.y_test))
        write_predictions(writer.dir, key, probs, prepared.y_test, indices)
    return accuracy, loss


def _ended_early(outcome: ModelOutcome) -> ModelOutcome:
    # No twin of the half-trained model: the checkpoint of the last finished epoch is what is kept.
    outcome.status = "failed" if outcome.report.divergence else "stopped"
    if outcome.report.stopped and outcome.report.writer is not None:
        record_event(outcome.report.writer.dir, "stop", phase="training")  # the fit has returned
    return outcome


def _progress(writer: RunWriter | None, hook: ProgressHook | None, **values) -> None:
    if writer is not None:
        writer.write_progress(values)
    if hook is not None:
        hook(values)


def jobs_for(spec: ExperimentSpec, info) -> list[tuple[str, tuple[Layer, ...]]]:
    jobs = [("cnn", spec.layers)]
    if spec.baseline:
        cnn_params = summarize(spec.layers, info.input_shape, info.num_classes).total_params
        jobs.append(("baseline", baseline_layers(spec.baseline or DEFAULT_BASELINE, cnn_params,
                                                  info.input_shape, info.num_classes)))
    return jobs


def run_job(store: RunStore, run_id: str, *, data_dir: str | None = None, hook: ProgressHook | None = None,
            steps_per_execution: int | None = None, release_at_end: bool = True) -> dict:
    """Train the run's model (and baseline), writing everything into its folder. Returns run.json.
    A run that `jobs.extend` queued again continues each model from its checkpoint.
    `release_at_end=False`: the process ends right after (a worker, `cnnkit train`), so the last
    model's memory is left to its exit (clearing the session and collecting took ~0.7 s)."""
    writer = RunWriter(store, run_id)
    record = store.get(run_id)
    spec, continuing = record.spec, bool(record.meta.get("continue_epochs"))
    writer.update(status="running", **this_process(), started=time.time(), op_threads=op_threads_in_force())
    outcome_status, reason, suggestion = "finished", "", ""
    raise_after: Exception | None = None
    minutes = Limits.from_env().max_job_minutes
    deadline = clock() + 60 * minutes if minutes else None
    commands = CommandReader(writer.dir)
    prepared, test_after_stop, stop_recorded = None, True, False
    try:
        if writer.stop_requested():
            raise StopRequested
        _progress(writer, hook, phase="loading data")
        prepared = prepare_data(spec, data_dir)
        writer.update(data_source=prepared.source.to_dict(), data_summary={
            "train": len(prepared.x_train), "validation": len(prepared.x_val), "test": len(prepared.x_test)})
        models = jobs_for(spec, prepared.info)
        for index, (key, layers) in enumerate(models):
            if writer.stop_requested():
                raise StopRequested
            if deadline is not None and clock() > deadline:
                raise time_limit_stop(minutes)
            earlier = record.model_result(key) if continuing and record.has_model(key) else {}
            initial = int(earlier.get("epochs_completed") or 0)
            if initial >= spec.training.epochs:
                continue  # this model is there already (a baseline that ran further)
            if initial:
                record_event(writer.dir, "continue", model=key, epoch=initial, batch=0, step=None)
            outcome = train_one(key, layers, spec, prepared, writer, hook, steps_per_execution, deadline,
                                commands, initial)
            writer.set_model_result(
                key, status=outcome.status, params=outcome.params, test_accuracy=outcome.test_accuracy,
                test_loss=outcome.test_loss, seconds=float(earlier.get("seconds") or 0.0) + outcome.seconds,
                tested_epoch=outcome.report.epochs_completed if outcome.test_accuracy is not None else None,
                epochs_completed=max(initial, outcome.report.epochs_completed),
                seconds_per_epoch=list(earlier.get("seconds_per_epoch") or []) + outcome.report.seconds_per_epoch,
                images_per_second=list(earlier.get("images_per_second") or []) + outcome.report.images_per_second,
                layers=[layer.to_dict() for layer in layers])
            outcome.release()
            if release_at_end or index < len(models) - 1 or outcome.status != "finished":
                keras.backend.clear_session()
                gc.collect()  # the model's graph is a reference cycle: free it now, not some time later
                release_free_memory()
            if outcome.status == "stopped":
                test_after_stop = not outcome.evaluation_stopped  # the person stopped that very test
                stop_recorded = True  # train_one wrote the stop event when its fit or test returned
                raise time_limit_stop(minutes) if outcome.report.timed_out else StopRequested()
            if outcome.status == "failed":
                outcome_status = "failed"
                reason, suggestion = outcome.report.divergence.reason, outcome.report.divergence.suggestion
                break
    except StopRequested as stop:
        outcome_status, reason, suggestion = "stopped", stop.reason, stop.suggestion
        if not stop_recorded:
            record_event(writer.dir, "stop", phase="between models")
        if prepared is not None and test_after_stop:
            test_checkpoints(store, run_id, prepared, writer, hook)
    except Exception as exc:  # the job must always leave a readable, final status behind
        outcome_status, reason = "failed", f"{type(exc).__name__}: {exc}"
        suggestion = suggestion_for(exc)
        if is_disk_full(exc):
            reason = "The disk is full: the checkpoint or the results could not be written."
            remove_temporary_files(writer.dir)  # whatever a failed write left holds the space
        else:
            traceback.print_exc()  # into the run's log.txt; the page shows `reason`
        raise_after = exc
    finally:
        _progress(writer, hook, phase="done")
    meta = writer.update(status=outcome_status, reason=reason, suggestion=suggestion, finished=time.time(),
                         continue_epochs=None)
    if raise_after is not None and settings.get().raise_errors:
        raise raise_after
    return meta


def test_checkpoints(store: RunStore, run_id: str, prepared, writer: RunWriter, hook: ProgressHook | None) -> None:
    """After a stop: test each model's last finished epoch (its checkpoint) that has no test
    result of that epoch yet, so a stopped run can be inspected and compared. Another Stop
    (a newer STOP file) ends that too."""
    from cnnkit.model.models import load_model

    record = store.get(run_id)
    stopper = StopEvaluation(writer, after=time.time())
    for key, result in record.models.items():
        epoch = int(result.get("epochs_completed") or 0)
        if not epoch or result.get("tested_epoch") == epoch or not record.has_model(key):
            continue
        _progress(writer, hook, phase="testing", model=key, epoch=epoch)
        try:
            tested = test_model(load_model(record.model_path(key)), key, record.spec, prepared, writer, stopper)
        except Exception:  # a test that fails must not hide the stop; Inspect can evaluate again
            traceback.print_exc()
            continue
        if tested is None:
            return
        writer.set_model_result(key, test_accuracy=tested[0], test_loss=tested[1], tested_epoch=epoch)


def release_free_memory() -> None:
    """Give freed heap pages back to the system (glibc keeps them otherwise, so the RSS of a
    process that trains several models grows by ~20 MB per model though nothing leaks)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to do


def suggestion_for(exc: Exception) -> str:
    if is_disk_full(exc):
        return "Free some disk space (delete old runs on Compare), then start it again."
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or "out of memory" in text or "oom" in text:
        return "Use a smaller batch size, fewer filters, or a training subset."
    if isinstance(exc, DataError):
        return "Check the data directory (CNNKIT_DATA_DIR) or use the bundled sample."
    return "See log.txt in the run folder for details."
