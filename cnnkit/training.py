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
import os
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cnnkit import data as datamod
from cnnkit.errors import DataError
from cnnkit.limits import Limits
from cnnkit.models import build_model, compile_model
from cnnkit.presets import DEFAULT_BASELINE, baseline_layers
from cnnkit.shapes import summarize
from cnnkit.specs import ExperimentSpec, Layer, TrainingSpec
from cnnkit.store import MODEL_FILES, RunStore, RunWriter, this_process
from cnnkit.tf_import import keras, tf  # TensorFlow, imported quietly

BATCH_RECORD_SECONDS = 0.25     # live-curve points: a few a second is plenty for the eye
PROGRESS_SECONDS = 0.5
EVAL_BATCH_SIZE = 256           # memory: 1,000 held 360 MB more activations (moroney-cnn)
EXPLODED_LOSS = 1e4             # cross-entropy at chance is ~2.3; this is divergence, not learning
HOLD_POLL_SECONDS = 0.05

ProgressHook = Callable[[dict], None]


class StopRequested(Exception):
    """The user asked the job to stop (STOP file or SIGTERM), or its time ran out."""

    def __init__(self, reason: str = "Stopped on request.", suggestion: str = ""):
        super().__init__(reason)
        self.reason, self.suggestion = reason, suggestion


def clock() -> float:
    """Seconds on a monotonic clock: what the time limit of a job is measured with."""
    return time.monotonic()


def time_limit_stop(minutes: float) -> StopRequested:
    return StopRequested(f"Stopped at this server's time limit of {minutes:g} minutes per training "
                         f"(CNNKIT_MAX_JOB_MINUTES); the epochs finished before it are kept.",
                         "Train fewer epochs or on a training subset, or raise CNNKIT_MAX_JOB_MINUTES.")


@dataclass(frozen=True)
class Divergence:
    reason: str
    suggestion: str

    def __repr__(self) -> str:
        return f"Divergence({self.reason!r})"


def divergence_for(loss: float, training: TrainingSpec) -> Divergence | None:
    if math.isfinite(loss) and loss < EXPLODED_LOSS:
        return None
    what = "became NaN/infinite" if not math.isfinite(loss) else f"exploded to {loss:.3g}"
    return Divergence(
        reason=f"The training loss {what}: the model diverged.",
        suggestion=(f"Lower the learning rate (it is {training.learning_rate:g}; try "
                    f"{training.learning_rate / 10:g}), scale the pixels (normalization 'scale'), "
                    f"or add batch normalization."),
    )


def hold_point() -> tuple[int, int] | None:
    """CNNKIT_TEST_HOLD_AT="EPOCH:BATCH": a test hook. The job holds after that batch of that
    epoch (1-based) until a stop is requested, so a test can SIGKILL it at a known mid-epoch
    point however fast the machine is. Anything else, or unset: no hold."""
    epoch, _, batch = os.environ.get("CNNKIT_TEST_HOLD_AT", "").partition(":")
    if not (epoch.isdigit() and batch.isdigit()):
        return None
    return int(epoch), int(batch)


def configure_determinism(seed: int) -> None:
    """Same seed + same data + same spec on CPU → identical weights."""
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of (float32 images, int32 labels), shuffled each epoch with `seed`.

    The pipeline shuffles indices and gathers whole batches: shuffling 60,000 image tensors one
    by one cost CPU time and a second copy of the images in the shuffle buffer. The images stay
    uint8 until a batch is gathered (4× less memory traffic); the model scales them itself.
    """
    images, labels = tf.constant(x), tf.constant(y.astype("int32"))

    def gather(index):
        return tf.cast(tf.gather(images, index), tf.float32), tf.gather(labels, index)

    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def stop_when_file_exists(ds: tf.data.Dataset, path) -> tf.data.Dataset:
    """The dataset, ending at the first element requested after `path` exists.

    The check is a graph op run as each batch is pulled, so it works inside a multi-step
    execution, where no Python callback runs between the steps. A path with glob characters
    (which TensorFlow's pattern matching would read as a pattern) is returned unchecked.
    """
    pattern = str(path)
    if set(pattern) & set("*?[]{}\\"):
        return ds
    # In a variable: with a constant pattern the optimizer folds the file check into a constant.
    where = tf.Variable(pattern, trainable=False)

    @tf.autograph.experimental.do_not_convert
    def no_stop_file(*_):
        return tf.equal(tf.size(tf.io.matching_files(where)), 0)

    # No prefetch injected after the check: it would run the check a few batches ahead.
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    return ds.take_while(no_stop_file).with_options(options)


# -- speed levers, each kept because it measured faster here (docs/PERFORMANCE.md) ------------

PRECISIONS = ("auto", "float32", "mixed_bfloat16")


def cpu_has_bf16() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def training_precision(layers: tuple[Layer, ...]) -> str:
    """bfloat16 compute for convolution networks on a CPU that has it natively.

    Measured on an AVX512-BF16 CPU: 1.35–1.5× less CPU per image for the classic CNNs; test
    accuracy moved by less than the seed-to-seed spread except on tf-tutorial-cnn (-0.27 pt,
    mean of 3 seeds; docs/RESULTS.md). Dense-only networks gain little (their cost is per-step
    overhead, not arithmetic) and without native bf16 it is emulated: those keep float32.
    Weights stay float32 either way, and the saved model is float32 (see `float32_twin`).
    CNNKIT_PRECISION=float32 or mixed_bfloat16 overrides the choice.
    """
    choice = os.environ.get("CNNKIT_PRECISION", "auto")
    if choice in ("float32", "mixed_bfloat16"):
        return choice
    if tf.config.list_physical_devices("GPU"):
        return "float32"  # untested on a GPU here (mixed_float16 would be the GPU's lever)
    has_conv = any(layer.type == "conv2d" for layer in layers)
    return "mixed_bfloat16" if has_conv and cpu_has_bf16() else "float32"


DENSE_STEPS_PER_EXECUTION = 16


def steps_per_execution_for(layers: tuple[Layer, ...]) -> int:
    """How many training steps one call into TensorFlow runs.

    A dense network's step is a fraction of a millisecond of arithmetic behind ~2 ms of fixed
    per-step cost (Python, callbacks, the function call): 16 steps per call made dense-128
    ~3× faster here. Callbacks then run every 16 batches; a stop still takes effect within one
    batch because the data checks for it (`stop_when_file_exists`). Convolution networks keep 1:
    their step is long enough that the overhead is small.
    (XLA also helped the dense nets a little, but Keras turns it off under op determinism.)
    """
    if any(layer.type == "conv2d" for layer in layers):
        return 1
    return DENSE_STEPS_PER_EXECUTION


def _build(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared, precision: str) -> keras.Model:
    """Built in float32, so the initial weights never depend on the precision; for bfloat16,
    rebuilt from its config with every layer but the input and the output computing in it.
    (bfloat16 only in the conv/pool layers gave the same accuracy: 91.68% vs 91.68% on
    tf-tutorial-cnn, mean of 3 seeds.)"""
    model = build_model(layers, prepared.info.input_shape, prepared.info.num_classes, output=spec.output,
                        normalization=prepared.normalization, mean=prepared.mean, std=prepared.std,
                        weight_decay=spec.training.weight_decay, name=key)
    if precision == "float32":
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["config"].get("name") != "output":
            layer["config"]["dtype"] = precision
    mixed = keras.Model.from_config(config)
    mixed.set_weights(model.get_weights())
    return mixed


def is_float32(model: keras.Model) -> bool:
    return all(layer.dtype_policy.name == "float32" for layer in model.layers)


def build_compiled(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared,
                   steps_per_execution: int | None = None) -> keras.Model:
    """The model as run_job trains it: in its precision, compiled (None: the automatic steps
    per execution)."""
    model = _build(key, layers, spec, prepared, training_precision(layers))
    compile_model(model, spec.training, spec.output, steps_per_execution or steps_per_execution_for(layers))
    return model


def float32_twin(model: keras.Model, key: str, layers: tuple[Layer, ...], spec: ExperimentSpec,
                 prepared) -> keras.Model:
    """The trained model in plain float32 with the same weights: what is saved, evaluated and
    inspected, so a saved model never depends on how it was trained."""
    if is_float32(model):
        return model
    twin = _build(key, layers, spec, prepared, "float32")
    twin.set_weights(model.get_weights())
    return twin


class LiveReport(keras.callbacks.Callback):
    """Writes per-batch (throttled) and per-epoch metrics into the run folder; stops on request
    within one batch; stops a diverging run with a plain-language reason."""

    def __init__(self, writer: RunWriter | None, model_key: str, training: TrainingSpec, num_train: int,
                 steps_per_epoch: int, hook: ProgressHook | None = None, save_path: str | None = None,
                 export: Callable[[keras.Model], keras.Model] | None = None, deadline: float | None = None):
        super().__init__()
        self.deadline = deadline  # clock() after which the job must stop (a server's cap)
        self.timed_out = False
        self.export = export or (lambda model: model)  # trained model → the model to save
        self.writer, self.model_key, self.training = writer, model_key, training
        self.num_train, self.steps_per_epoch, self.hook = num_train, steps_per_epoch, hook
        self.save_path = save_path
        self.stopped = False
        self.divergence: Divergence | None = None
        self.epochs_completed = 0
        self.seconds_per_epoch: list[float] = []
        self.images_per_second: list[float] = []
        self._last_batch_record = self._last_progress = 0.0
        self.hold_at = hold_point()

    def __repr__(self) -> str:
        return f"LiveReport({self.model_key}, epochs_completed={self.epochs_completed})"

    # -- helpers ----------------------------------------------------------------------------

    def _check_stop(self) -> None:
        if self.deadline is not None and clock() > self.deadline:
            self.timed_out = True
        if self.timed_out or (self.writer is not None and self.writer.stop_requested()):
            self.stopped = True
            self.model.stop_training = True

    def _progress(self, **values) -> None:
        progress = {"phase": "training", "model": self.model_key, "epochs": self.training.epochs,
                    "batches": self.steps_per_epoch, **values}
        if self.writer is not None:
            self.writer.write_progress(progress)
        if self.hook is not None:
            self.hook(progress)

    # -- Keras hooks -----------------------------------------------------------------------

    def _iterations(self) -> int:
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_begin(self, logs=None):
        self.train_start = time.perf_counter()
        # With several steps per execution the callbacks see only every n-th batch, and the data
        # may end a chunk early (a stop): count the batches that really ran.
        self.multi_step = int(getattr(self.model, "steps_per_execution", 1) or 1) > 1
        self._check_stop()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.epoch_start = time.perf_counter()
        self.last_batch_end = self.epoch_start
        self.iterations_at_epoch_start = self._iterations() if self.multi_step else 0
        if self.training.schedule in ("step", "exponential", "cosine"):
            self.model.optimizer.learning_rate.assign(self.training.learning_rate_at(epoch))

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.last_batch_end = now
        self._check_stop()
        loss = float((logs or {}).get("loss", 0.0))
        self.divergence = self.divergence or divergence_for(loss, self.training)
        if self.divergence:
            self.model.stop_training = True
        done = self._iterations() - self.iterations_at_epoch_start if self.multi_step else batch + 1
        done = min(done, self.steps_per_epoch)
        elapsed = now - self.epoch_start
        rate = done * self.training.batch_size / max(elapsed, 1e-9)
        if now - self._last_batch_record >= BATCH_RECORD_SECONDS and self.writer is not None:
            self._last_batch_record = now
            self.writer.append_batch({
                "model": self.model_key, "epoch": self.epoch + 1, "batch": done,
                "step": self.epoch * self.steps_per_epoch + done, "loss": loss,
                "accuracy": float((logs or {}).get("accuracy", 0.0)), "time": time.time()})
        if now - self._last_progress >= PROGRESS_SECONDS or done == self.steps_per_epoch:
            self._last_progress = now
            seconds_per_step = elapsed / done
            remaining = (self.steps_per_epoch - done) + (self.training.epochs - self.epoch - 1) * self.steps_per_epoch
            self._progress(epoch=self.epoch + 1, batch=done, images_per_second=rate, loss=loss,
                           elapsed=now - self.train_start, eta_seconds=remaining * seconds_per_step)
        if self.hold_at == (self.epoch + 1, done):
            self._hold(done)

    def _hold(self, done: int) -> None:
        """The test hook of `hold_point`: say where it holds, then wait for a stop (or a kill)."""
        self._progress(epoch=self.epoch + 1, batch=done, held=True)
        while not self.stopped and self.writer is not None:
            time.sleep(HOLD_POLL_SECONDS)
            self._check_stop()

    def on_epoch_end(self, epoch, logs=None):
        if self.multi_step and self._iterations() - self.iterations_at_epoch_start < self.steps_per_epoch:
            self.stopped = True  # the data ended the epoch early: the STOP file appeared
            self.model.stop_training = True
        if self.stopped or self.divergence:
            return  # a partial epoch is not a finished one: history keeps only complete epochs
        logs = logs or {}
        now = time.perf_counter()
        train_seconds = self.last_batch_end - self.epoch_start
        self.epochs_completed = epoch + 1
        self.seconds_per_epoch.append(now - self.epoch_start)
        self.images_per_second.append(self.num_train / max(train_seconds, 1e-9))
        record = {"model": self.model_key, "epoch": epoch + 1,
                  "learning_rate": float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)),
                  "seconds": now - self.epoch_start, "images_per_second": self.images_per_second[-1],
                  "time": time.time()}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                record[key] = float(logs[key])
        if self.writer is not None:
            # Checkpoint first, then history: a listed epoch always has its model on disk.
            if self.save_path:
                save_model_atomic(self.export(self.model), self.save_path)
            self.writer.append_epoch(record)
            self.writer.set_model_result(self.model_key, epochs_completed=self.epochs_completed)
        if self.hook is not None:
            self.hook({"phase": "epoch_end", **record})


class StopEvaluation(keras.callbacks.Callback):
    def __init__(self, writer: RunWriter | None):
        super().__init__()
        self.writer = writer
        self.stopped = False

    def __repr__(self) -> str:
        return f"StopEvaluation(stopped={self.stopped})"

    def on_predict_batch_end(self, batch, logs=None):
        if self.writer is not None and self.writer.stop_requested():
            self.stopped = True
            self.model.stop_predicting = True


def save_model_atomic(model: keras.Model, path: str) -> None:
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    tmp = f"{path}.tmp-{os.getpid()}.keras"
    model.save(tmp)
    os.replace(tmp, path)


def probabilities(model_output: np.ndarray, output: str) -> np.ndarray:
    if output != "logits":
        return model_output
    shifted = model_output - model_output.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def test_metrics(probs: np.ndarray, y_test: np.ndarray) -> tuple[float, float]:
    """Accuracy and mean cross-entropy, clipping as Keras does (eps 1e-7)."""
    picked = np.clip(probs[np.arange(len(y_test)), y_test], 1e-7, 1.0)
    return float((probs.argmax(axis=1) == y_test).mean()), float(-np.log(picked).mean())


@dataclass
class ModelOutcome:
    key: str
    status: str                 # finished / stopped / failed
    report: LiveReport
    params: int
    test_accuracy: float | None = None
    test_loss: float | None = None
    seconds: float = 0.0

    def __repr__(self) -> str:
        return f"ModelOutcome({self.key}, {self.status}, acc={self.test_accuracy})"

    def release(self) -> None:
        """Drop every reference to the trained model (the callback holds one too), so that
        clearing the Keras session can free it before the next model is built."""
        self.model = None
        self.report.set_model(None)


def train_one(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared, writer: RunWriter | None,
              hook: ProgressHook | None = None, steps_per_execution: int | None = None,
              deadline: float | None = None) -> ModelOutcome:
    training = spec.training
    configure_determinism(training.seed)
    model = build_compiled(key, layers, spec, prepared, steps_per_execution)
    train_ds = make_dataset(prepared.x_train, prepared.y_train, training.batch_size, shuffle=True,
                            seed=training.seed)
    if writer is not None and model.steps_per_execution > 1:
        # callbacks run once per chunk of steps; the data itself checks for a stop before each batch
        train_ds = stop_when_file_exists(train_ds, writer.dir / "STOP")
    val_ds = None
    if len(prepared.x_val):
        val_ds = make_dataset(prepared.x_val, prepared.y_val, EVAL_BATCH_SIZE, shuffle=False, seed=0)
    steps = math.ceil(len(prepared.x_train) / training.batch_size)
    save_path = str(writer.dir / MODEL_FILES[key]) if writer is not None else None
    report = LiveReport(writer, key, training, len(prepared.x_train), steps, hook, save_path,
                        export=lambda trained: float32_twin(trained, key, layers, spec, prepared),
                        deadline=deadline)
    callbacks: list[keras.callbacks.Callback] = [report]
    if training.schedule == "plateau":
        callbacks.append(keras.callbacks.ReduceLROnPlateau(
            monitor="val_loss" if val_ds is not None else "loss", factor=training.decay_rate,
            patience=training.decay_epochs, verbose=0))
    start = time.perf_counter()
    with warnings.catch_warnings():
        # a dataset of unknown length (see stop_when_file_exists) ends every epoch this way
        warnings.filterwarnings("ignore", message="Your input ran out of data")
        model.fit(train_ds, validation_data=val_ds, epochs=training.epochs, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the tf.data pipeline shuffles, seeded
    outcome = ModelOutcome(key, "finished", report, model.count_params(), seconds=time.perf_counter() - start)
    model = outcome.model = float32_twin(model, key, layers, spec, prepared)
    if report.divergence:
        outcome.status = "failed"
        return outcome
    if report.stopped:
        outcome.status = "stopped"
        return outcome

    # Test metrics and the test-set probabilities (for the confusion matrix, without TF later).
    _progress(writer, hook, phase="evaluating", model=key)
    stopper = StopEvaluation(writer)
    raw = model.predict(make_dataset(prepared.x_test, prepared.y_test, EVAL_BATCH_SIZE, shuffle=False, seed=0),
                        verbose=0, callbacks=[stopper])
    if stopper.stopped:
        outcome.status = "stopped"
        return outcome
    # float32, the model's own precision, and the metrics come from exactly the stored array:
    # float16 rounding made near-tied probabilities equal, so the argmax (and the accuracy the
    # confusion matrix shows) differed from the reported test accuracy.
    probs = probabilities(np.asarray(raw, dtype=np.float64), spec.output).astype(np.float32)
    outcome.test_accuracy, outcome.test_loss = test_metrics(probs.astype(np.float64),
                                                            prepared.y_test.astype(np.int64))
    if writer is not None:
        np.savez_compressed(writer.dir / f"predictions_{key}.npz", probs=probs,
                            y_true=prepared.y_test, test_indices=prepared.test_indices
                            if hasattr(prepared, "test_indices") else np.arange(len(prepared.y_test)))
    return outcome


def _progress(writer: RunWriter | None, hook: ProgressHook | None, **values) -> None:
    if writer is not None:
        writer.write_progress(values)
    if hook is not None:
        hook(values)


def prepare_data(spec: ExperimentSpec, data_dir: str | None = None):
    raw = datamod.load_raw(spec.dataset.name, data_dir)
    return datamod.prepare(raw, train_limit=spec.dataset.train_limit,
                           validation_split=spec.dataset.validation_split,
                           normalization=spec.dataset.normalization, seed=spec.training.seed,
                           test_limit=spec.dataset.test_limit)


def jobs_for(spec: ExperimentSpec, info) -> list[tuple[str, tuple[Layer, ...]]]:
    jobs = [("cnn", spec.layers)]
    if spec.baseline:
        cnn_params = summarize(spec.layers, info.input_shape, info.num_classes).total_params
        jobs.append(("baseline", baseline_layers(spec.baseline or DEFAULT_BASELINE, cnn_params,
                                                  info.input_shape, info.num_classes)))
    return jobs


def run_job(store: RunStore, run_id: str, *, data_dir: str | None = None, hook: ProgressHook | None = None,
            steps_per_execution: int | None = None) -> dict:
    """Train the run's model (and baseline), writing everything into its folder. Returns run.json."""
    writer = RunWriter(store, run_id)
    spec = store.get(run_id).spec
    writer.update(status="running", **this_process(), started=time.time())
    outcome_status, reason, suggestion = "finished", "", ""
    raise_after: Exception | None = None
    minutes = Limits.from_env().max_job_minutes
    deadline = clock() + 60 * minutes if minutes else None
    try:
        if writer.stop_requested():
            raise StopRequested
        _progress(writer, hook, phase="loading data")
        prepared = prepare_data(spec, data_dir)
        writer.update(data_source=prepared.source.to_dict(), data_summary={
            "train": len(prepared.x_train), "validation": len(prepared.x_val), "test": len(prepared.x_test)})
        for key, layers in jobs_for(spec, prepared.info):
            if writer.stop_requested():
                raise StopRequested
            if deadline is not None and clock() > deadline:
                raise time_limit_stop(minutes)
            outcome = train_one(key, layers, spec, prepared, writer, hook, steps_per_execution, deadline)
            writer.set_model_result(
                key, status=outcome.status, params=outcome.params, test_accuracy=outcome.test_accuracy,
                test_loss=outcome.test_loss, seconds=outcome.seconds,
                epochs_completed=outcome.report.epochs_completed,
                seconds_per_epoch=outcome.report.seconds_per_epoch,
                images_per_second=outcome.report.images_per_second,
                layers=[layer.to_dict() for layer in layers])
            outcome.release()
            keras.backend.clear_session()
            gc.collect()  # the model's graph is a reference cycle: free it now, not some time later
            release_free_memory()
            if outcome.status == "stopped":
                raise time_limit_stop(minutes) if outcome.report.timed_out else StopRequested()
            if outcome.status == "failed":
                outcome_status = "failed"
                reason, suggestion = outcome.report.divergence.reason, outcome.report.divergence.suggestion
                break
    except StopRequested as stop:
        outcome_status, reason, suggestion = "stopped", stop.reason, stop.suggestion
    except Exception as exc:  # the job must always leave a readable, final status behind
        outcome_status, reason = "failed", f"{type(exc).__name__}: {exc}"
        suggestion = suggestion_for(exc)
        traceback.print_exc()  # into the run's log.txt; the page shows `reason`
        raise_after = exc
    finally:
        _progress(writer, hook, phase="done")
    meta = writer.update(status=outcome_status, reason=reason, suggestion=suggestion, finished=time.time())
    if raise_after is not None and os.environ.get("CNNKIT_RAISE"):
        raise raise_after
    return meta


def release_free_memory() -> None:
    """Give freed heap pages back to the system (glibc keeps them otherwise, so the RSS of a
    process that trains several models grows by ~20 MB per model though nothing leaks)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc (macOS, musl): nothing to do


def suggestion_for(exc: Exception) -> str:
    text = str(exc).lower()
    if isinstance(exc, MemoryError) or "out of memory" in text or "oom" in text:
        return "Use a smaller batch size, fewer filters, or a training subset."
    if isinstance(exc, DataError):
        return "Check the data directory (CNNKIT_DATA_DIR) or use the bundled sample."
    return "See log.txt in the run folder for details."
