"""What a training reports while it runs, and how it stops: the Keras callbacks of a job.

`LiveReport` writes throttled per-batch points and per-epoch records into the run folder,
checkpoints after every finished epoch, and ends the fit within one batch on a stop request,
at the server's time limit, or when the loss diverges.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnkit import settings
from cnnkit.model.tf_import import keras  # TensorFlow, imported quietly
from cnnkit.runs.control import CommandReader, record_event
from cnnkit.runs.store import RunWriter
from cnnkit.specs import TrainingSpec

BATCH_RECORD_SECONDS = 0.25     # live-curve points: a few a second is plenty for the eye


PROGRESS_SECONDS = 0.5


EXPLODED_LOSS = 1e4             # cross-entropy at chance is ~2.3; this is divergence, not learning


HOLD_POLL_SECONDS = 0.05


PAUSE_POLL_SECONDS = 0.1        # a paused job checks for resume/stop/lr this often


ProgressHook = Callable[[dict], None]


class EndTraining(Exception):
    """Raised by LiveReport to leave model.fit at once on a stop: without it, fit still
    validates the epoch (and traces the test function the first time: most of a second)."""


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


def divergence_for(loss: float, training: TrainingSpec, normalization: str = "none",
                   batch_norm: bool = False) -> Divergence | None:
    """None while the loss is sane; else why, with remedies the run does not use already."""
    if math.isfinite(loss) and loss < EXPLODED_LOSS:
        return None
    what = "became NaN/infinite" if not math.isfinite(loss) else f"exploded to {loss:.3g}"
    remedies = [f"lower the learning rate (it is {training.learning_rate:g}; try {training.learning_rate / 10:g})"]
    if normalization == "none":
        remedies.append("scale the pixels (normalization 'scale')")
    if not batch_norm:
        remedies.append("add batch normalization")
    listed = remedies[0] if len(remedies) == 1 else ", ".join(remedies[:-1]) + " or " + remedies[-1]
    return Divergence(reason=f"The training loss {what}: the model diverged.",
                      suggestion=listed[0].upper() + listed[1:] + ".")


def hold_point() -> tuple[int, int] | None:
    """CNNKIT_TEST_HOLD_AT="EPOCH:BATCH": a test hook. The job holds after that batch of that
    epoch (1-based) until a stop is requested, so a test can SIGKILL it at a known mid-epoch
    point however fast the machine is. Anything else, or unset: no hold."""
    return settings.get().test_hold_at


class LiveReport(keras.callbacks.Callback):
    """Writes per-batch (throttled) and per-epoch metrics into the run folder; stops on request
    within one batch; stops a diverging run with a plain-language reason."""

    def __init__(self, writer: RunWriter | None, model_key: str, training: TrainingSpec, num_train: int,
                 steps_per_epoch: int, hook: ProgressHook | None = None, save_path: str | None = None,
                 export: Callable[[keras.Model], keras.Model] | None = None, deadline: float | None = None,
                 commands: CommandReader | None = None, on_checkpoint: Callable[[keras.Model], None] | None = None,
                 normalization: str = "none", batch_norm: bool = False):
        super().__init__()
        self.remedies_in_use = {"normalization": normalization, "batch_norm": batch_norm}
        self.commands = commands  # pause / resume / learning-rate commands from the pages or the CLI
        self.on_checkpoint = on_checkpoint  # after each checkpoint (the optimizer's state is saved there)
        self.learning_rate_override: float | None = None  # a live change replaces the schedule
        self.deadline = deadline  # clock() after which the job must stop (a server's cap)
        self.timed_out = False
        self.export = export or (lambda model: model)  # trained model → the model to save
        self.writer, self.model_key, self.training = writer, model_key, training
        self.num_train, self.steps_per_epoch, self.hook = num_train, steps_per_epoch, hook
        self.save_path = save_path
        self.stopped = False
        self.divergence: Divergence | None = None
        self.epochs_completed = 0
        self.batches_done = 0
        self.last_logs: dict = {}
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

    def _event(self, event: str, done: int, **values) -> None:
        record_event(self.writer.dir if self.writer else None, event, model=self.model_key,
                     epoch=self.epoch + 1, batch=done, step=self.epoch * self.steps_per_epoch + done, **values)

    def _learning_rate(self) -> float:
        return float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))

    def _set_learning_rate(self, value: float, done: int) -> None:
        before = self._learning_rate()
        self.model.optimizer.learning_rate.assign(value)  # read by the next call's updates
        self.learning_rate_override = value
        self._event("lr", done, **{"from": before, "to": value})

    def _steer(self, done: int) -> None:
        """Apply the commands that arrived since the last batch."""
        for command in self.commands.poll() if self.commands else ():
            if command.action == "lr":
                self._set_learning_rate(command.value, done)
            elif command.action == "pause":
                self._pause(done)

    def _pause(self, done: int) -> None:
        """Hold the model in memory until resume or stop; a new learning rate may come meanwhile.
        The time paused is left out of the epoch's time and speed (the server's time limit still runs)."""
        self._event("pause", done)
        self._progress(epoch=self.epoch + 1, batch=done, paused=True, elapsed=time.perf_counter() - self.train_start)
        began = time.perf_counter()
        while not self.stopped:
            time.sleep(PAUSE_POLL_SECONDS)
            self._check_stop()
            commands = self.commands.poll()
            for command in commands:
                if command.action == "lr":
                    self._set_learning_rate(command.value, done)
            if any(command.action == "resume" for command in commands):
                break
        paused = time.perf_counter() - began
        self.epoch_start += paused
        self.train_start += paused
        self.last_batch_end += paused
        if not self.stopped:
            self._event("resume", done, paused_seconds=paused)

    def _phase(self, phase: str) -> None:
        """Say what the job does between batches (validating, saving the checkpoint), so the bar
        never sits at the last batch without a word."""
        self._progress(phase=phase, epoch=self.epoch + 1, batch=self.steps_per_epoch,
                       elapsed=time.perf_counter() - self.train_start)

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
        self.batches_done = 0
        self.iterations_at_epoch_start = self._iterations() if self.multi_step else 0
        if self.training.schedule in ("step", "exponential", "cosine") and self.learning_rate_override is None:
            self.model.optimizer.learning_rate.assign(self.training.learning_rate_at(epoch))

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        self.last_batch_end = now
        self._check_stop()
        loss = float((logs or {}).get("loss", 0.0))
        self.divergence = self.divergence or divergence_for(loss, self.training, **self.remedies_in_use)
        if self.divergence:
            self.model.stop_training = True
        done = self._iterations() - self.iterations_at_epoch_start if self.multi_step else batch + 1
        done = self.batches_done = min(done, self.steps_per_epoch)
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
        if not self.stopped:
            self._steer(done)
        self.last_logs = dict(logs or {})  # at the last batch: the epoch's training metrics
        if self.stopped and not self.divergence:
            self._leave()

    def _hold(self, done: int) -> None:
        """The test hook of `hold_point`: say where it holds, then wait for a stop (or a kill)."""
        self._progress(epoch=self.epoch + 1, batch=done, held=True)
        while not self.stopped and self.writer is not None:
            time.sleep(HOLD_POLL_SECONDS)
            self._check_stop()

    def _leave(self) -> None:
        """On a stop: keep the epoch if all its batches ran (checkpoint and history, without a
        validation), then leave fit."""
        if self._epoch_trained():
            self._finish_epoch(self.epoch, self.last_logs)
        raise EndTraining

    def _epoch_trained(self) -> bool:
        if self.multi_step:
            self.batches_done = self._iterations() - self.iterations_at_epoch_start
        return self.batches_done >= self.steps_per_epoch

    def on_test_begin(self, logs=None):
        self._check_stop()
        if self.stopped:
            self._leave()  # a stop just before validation (or a multi-step epoch the data ended)
        self._phase("validating")

    def on_test_batch_end(self, batch, logs=None):
        self._check_stop()
        if self.stopped:
            self._leave()

    def on_epoch_end(self, epoch, logs=None):
        if self.divergence:
            return
        if not self._epoch_trained():
            self.stopped = True  # the epoch ended early: a stop (in a multi-step net, the data saw it)
            self.model.stop_training = True
            return  # a partial epoch is not a finished one: history keeps only complete epochs
        self._finish_epoch(epoch, logs or {})
        self._check_stop()  # a stop during the checkpoint: no health probe, no next epoch

    def _finish_epoch(self, epoch: int, logs: dict) -> None:
        """An epoch all of whose batches ran: its record, checkpoint and history."""
        now = time.perf_counter()
        train_seconds = self.last_batch_end - self.epoch_start
        self.epochs_completed = epoch + 1
        self.seconds_per_epoch.append(now - self.epoch_start)
        self.images_per_second.append(self.num_train / max(train_seconds, 1e-9))
        record = {"model": self.model_key, "epoch": epoch + 1, "learning_rate": self._learning_rate(),
                  "seconds": now - self.epoch_start, "images_per_second": self.images_per_second[-1],
                  "time": time.time()}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if key in logs:
                record[key] = float(logs[key])
        if self.writer is not None:
            # Checkpoint first, then history: a listed epoch always has its model on disk.
            if self.save_path:
                self._phase("saving the checkpoint")
                save_model_atomic(self.export(self.model), self.save_path)
                if self.on_checkpoint is not None:
                    self.on_checkpoint(self.model)
            self.writer.append_epoch(record)
            self.writer.set_model_result(self.model_key, epochs_completed=self.epochs_completed)
        if self.hook is not None:
            self.hook({"phase": "epoch_end", **record})


class StopEvaluation(keras.callbacks.Callback):
    """Ends a predict within one batch on a stop request; with `after`, only on a request newer
    than that time.time() (the test of a run already stopped ends only on another Stop)."""

    def __init__(self, writer: RunWriter | None, after: float | None = None):
        super().__init__()
        self.writer, self.after = writer, after
        self.stopped = False

    def __repr__(self) -> str:
        return f"StopEvaluation(stopped={self.stopped})"

    def on_predict_batch_end(self, batch, logs=None):
        if self.writer is not None and self.writer.stop_requested(self.after):
            self.stopped = True
            self.model.stop_predicting = True


def save_model_atomic(model: keras.Model, path: str) -> None:
    # Keras insists on the .keras suffix, so the temporary name keeps it.
    tmp = f"{path}.tmp-{os.getpid()}.keras"
    try:
        model.save(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)  # a full disk must not keep the half-written file
        raise
