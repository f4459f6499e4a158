"""The run store: one folder per training run, readable while the run is still going.

    <runs_dir>/<run_id>/
        run.json          status, spec, data source, final metrics (rewritten atomically)
        spec.json         the experiment spec the run was started with (never changes)
        history.json      one complete record per finished epoch, per model (rewritten atomically)
        batches.jsonl     throttled per-batch records for live curves (append-only)
        progress.json     where the job is now: phase, epoch, batch, images/s, ETA
        model.keras       the CNN, checkpointed after every epoch; baseline.keras for the baseline
        optimizer_<model>.npz   the optimizer's state at that checkpoint (to continue training)
        control.jsonl, events.jsonl   live commands (pause, resume, lr) and what the job did
        predictions_<model>.npz   test-set probabilities, for the confusion matrix without TensorFlow
        health.jsonl      per epoch and layer: activation mean/std, dead ReLU units, gradient norm
        robustness.json   the robustness lab's report, once it has been measured
        STOP              a stop request; the job ends within one batch when it sees it
        log.txt           the job's stdout/stderr

Everything is written to a temporary file and renamed into place, so a reader (or a SIGKILL)
never sees half a file. Plain Python: listing runs never imports TensorFlow.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from cnnkit import settings
from cnnkit.errors import RunError, shown
from cnnkit.runs.listing import read_json, read_run_json
from cnnkit.specs import ExperimentSpec, text_problem
from cnnkit.sysinfo import proc_stat_fields

ACTIVE = ("queued", "running")
STATUSES = ("queued", "running", "finished", "stopped", "failed", "interrupted", "damaged")
MODEL_FILES = {"cnn": "model.keras", "baseline": "baseline.keras"}
IMPORTED_DIR = ".imported"  # <runs>/.imported/<run_id>: the index of imported runs (runs/imported.py)
OPTIMIZER_FILE = "optimizer_{}.npz"  # beside each checkpoint: the optimizer's state, to continue training
HEALTH_FILE = "health.jsonl"  # one record per model and epoch: layer activations, dead units, gradients
RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # always .fullmatch: "$" lets a "\n" through


def default_runs_dir() -> Path:
    return Path(settings.get().runs_dir)


# ---------------------------------------------------------------------------
# Atomic file helpers


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """`write(handle)` into a temporary file beside `path`, then rename it over `path`: a reader,
    or a kill, sees the old file or the new one, never half of one."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def is_temporary(path: Path) -> bool:
    """A file being written (by `atomic_write` or a checkpoint save), not yet in place."""
    return ".tmp" in path.name


def remove_temporary_files(folder: Path) -> list[str]:
    """Delete what a killed writer left half-written in `folder`; returns the names."""
    removed = []
    for entry in folder.iterdir():
        if entry.is_file() and is_temporary(entry):
            entry.unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_npz(path: Path, **arrays) -> None:
    """np.savez_compressed, atomically (written straight to its name, a kill left 0 bytes)."""
    atomic_write(path, lambda handle: np.savez_compressed(handle, **arrays))


def predictions_path(run_dir: Path, key: str) -> Path:
    return Path(run_dir) / f"predictions_{key}.npz"


def write_predictions(run_dir: Path, key: str, probs: np.ndarray, y_true: np.ndarray,
                      test_indices: np.ndarray) -> None:
    """A model's test-set probabilities (N, classes) float32, the labels and which test images."""
    atomic_write_npz(predictions_path(run_dir, key), probs=np.asarray(probs, dtype=np.float32),
                     y_true=y_true, test_indices=test_indices)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, indent=1, allow_nan=False, default=_json_default))


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays sneak into metrics; store them as plain numbers/lists.
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot store {type(value).__name__} as JSON")


def append_jsonl(path: Path, record: dict) -> None:
    # One write() of one whole line: readers skip a torn last line if we are killed mid-write.
    line = json.dumps(record, allow_nan=True, default=_json_default) + "\n"
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line)


def read_jsonl(path: Path) -> list[dict]:
    records = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue  # a torn line from a killed writer
    except FileNotFoundError:
        pass
    return records


def _start_ticks(fields: list[str] | None) -> int | None:
    try:
        return int(fields[19]) if fields else None  # field 22 of stat; fields start at field 3
    except (IndexError, ValueError):
        return None


def process_started(pid: int | None = None) -> int | None:
    """When process `pid` (default: this one) started, in clock ticks after boot; None where
    /proc is missing. With the pid it identifies a process: the OS reuses pids, not both."""
    return _start_ticks(proc_stat_fields(pid or os.getpid()))


def pid_alive(pid: int | None, started: int | None = None) -> bool:
    """True if process `pid` exists and is not a zombie (a finished child nobody reaped), and,
    when `started` is given, is the same process that was recorded (not a reused pid)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    fields = proc_stat_fields(pid)
    if not fields:
        # No /proc on this system: kill(0) is all we know. With /proc, its entry vanished after
        # kill(0) succeeded: a zombie reaped in between (a killed worker once read as "running").
        return not os.path.isdir("/proc/self")
    if started is not None and _start_ticks(fields) not in (None, started):
        return False  # the pid now belongs to another process
    return fields[0] != "Z"


def this_process() -> dict:
    """The run.json fields that identify the process writing them."""
    return {"pid": os.getpid(), "pid_started": process_started()}


# ---------------------------------------------------------------------------
# Reading runs


@dataclass(frozen=True, repr=False)
class RunRecord:
    """A run as listed: what run.json says, plus the status corrected for dead processes."""

    run_id: str
    path: Path
    status: str
    meta: dict = field(default_factory=dict)
    spec: ExperimentSpec | None = None
    problem: str = ""                     # why the run is damaged or interrupted

    def __repr__(self) -> str:
        return f"RunRecord({self.run_id!r}, {self.status}, epochs={self.epochs_completed})"

    @property
    def name(self) -> str:
        """The run's name, safe to draw: a stored name that is not plain text (written by hand,
        or before names were checked) is shown escaped, so its run can still be listed and deleted."""
        name = self.meta.get("name") or self.run_id
        if not isinstance(name, str):
            return self.run_id
        return name if text_problem(name, max_chars=200) is None else shown(name, 80)

    @property
    def created(self) -> float:
        return float(self.meta.get("created") or 0.0)

    @property
    def dataset(self) -> str | None:
        return self.spec.dataset.name if self.spec else None

    @property
    def kind(self) -> str:
        """"trained" here, or "imported" (a model trained elsewhere, brought in by `cnnkit import`)."""
        return "imported" if self.meta.get("kind") == "imported" else "trained"

    @property
    def imported(self) -> dict:
        value = self.meta.get("imported")
        return value if self.kind == "imported" and isinstance(value, dict) else {}

    @property
    def rebuildable(self) -> bool:
        """Whether the spec rebuilds this model (always for trained runs; imported: if every layer maps)."""
        return self.spec is not None and (self.kind == "trained" or self.imported.get("rebuildable") is True)

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE

    @property
    def models(self) -> dict:
        return self.meta.get("models") or {}

    def model_result(self, key: str = "cnn") -> dict:
        return self.models.get(key) or {}

    @property
    def test_accuracy(self) -> float | None:
        return self.model_result("cnn").get("test_accuracy")

    @property
    def epochs_completed(self) -> int:
        return int(self.model_result("cnn").get("epochs_completed") or 0)

    @property
    def has_baseline(self) -> bool:
        return "baseline" in self.models

    def model_path(self, key: str = "cnn") -> Path:
        return self.path / MODEL_FILES[key]

    def has_model(self, key: str = "cnn") -> bool:
        return self.model_path(key).is_file()

    def to_dict(self) -> dict:
        return {"run_id": self.run_id, "status": self.status, "name": self.name,
                "epochs_completed": self.epochs_completed, "test_accuracy": self.test_accuracy,
                "problem": self.problem}


class RunStore:
    """The runs directory. Every method tolerates damaged folders: they list as "damaged"."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else default_runs_dir()

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    def path(self, run_id: str) -> Path:
        # Run ids come from URLs and uploads: never let one escape the runs directory.
        if not isinstance(run_id, str) or not RUN_ID_PATTERN.fullmatch(run_id) or run_id.startswith(".."):
            raise RunError(f"{shown(run_id)} is not a valid run id")
        return self.root / run_id

    def exists(self, run_id: str) -> bool:
        return (self.path(run_id) / "run.json").is_file()

    # -- creating and changing runs ---------------------------------------------------------

    def create(self, spec: ExperimentSpec, name: str | None = None, **meta: Any) -> RunRecord:
        problem = text_problem(name) if name else None
        if problem:
            raise RunError(f"the run name {problem}")
        if not self.root.is_dir():  # a new runs folder starts with its (empty) index of imported runs
            (self.root / IMPORTED_DIR).mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        label = re.sub(r"[^A-Za-z0-9-]+", "-", spec.preset or spec.dataset.name).strip("-")[:30] or "run"
        while True:
            run_id = f"{stamp}-{label}-{secrets.token_hex(2)}"
            try:
                (self.root / run_id).mkdir()
                break
            except FileExistsError:
                continue
        run_dir = self.root / run_id
        atomic_write_json(run_dir / "spec.json", spec.to_dict())
        now = time.time()
        record = {"run_id": run_id, "name": name or spec.name or spec.preset or run_id,
                  "created": now, "updated": now, "status": "queued", "pid": None,
                  "spec": spec.to_dict(), "models": {}, **meta}
        atomic_write_json(run_dir / "run.json", record)
        return self.get(run_id)

    def update(self, run_id: str, **changes: Any) -> dict:
        run_dir = self.path(run_id)
        meta = read_json(run_dir / "run.json")
        meta.update(changes)
        meta["updated"] = time.time()
        atomic_write_json(run_dir / "run.json", meta)
        return meta

    def rename(self, run_id: str, name: str) -> None:
        name = (name or "").strip()
        problem = "is empty" if not name else text_problem(name)
        if problem:
            raise RunError(f"the new name {problem}")
        self.update(run_id, name=name)

    def delete(self, run_id: str) -> None:
        run_dir = self.path(run_id)
        if not run_dir.is_dir():
            raise RunError(f"run '{run_id}' does not exist")
        record = self.get(run_id)
        if record.is_active:
            raise RunError(f"run '{run_id}' is still {record.status}: stop it before deleting it")
        shutil.rmtree(run_dir)

    def request_stop(self, run_id: str) -> None:
        run_dir = self.path(run_id)
        if not run_dir.is_dir():
            raise RunError(f"run '{run_id}' does not exist")
        (run_dir / "STOP").touch()

    # -- reading ------------------------------------------------------------------------------

    def get(self, run_id: str) -> RunRecord:
        return self._read(run_id, self.path(run_id))

    def _read(self, run_id: str, run_dir: Path) -> RunRecord:
        folder = str(run_dir)  # string paths: listing 10,000 runs built 30,000 Path strings
        try:
            parsed = read_run_json(os.path.join(folder, "run.json"))  # from memory while the file is unchanged
        except (FileNotFoundError, NotADirectoryError):
            if not run_dir.is_dir():
                raise RunError(f"run '{run_id}' does not exist in this runs folder") from None
            return RunRecord(run_id, run_dir, "damaged", problem="run.json is missing")
        except OSError as exc:
            return RunRecord(run_id, run_dir, "damaged", problem=f"run.json is unreadable ({exc})")
        meta, spec = parsed.meta, parsed.spec
        if parsed.problem:
            return RunRecord(run_id, run_dir, "damaged", meta or {}, spec, problem=parsed.problem)
        status, problem = meta.get("status"), meta.get("reason") or ""
        if status not in STATUSES:
            return RunRecord(run_id, run_dir, "damaged", meta, spec, problem=f"unknown status {str(status)[:40]!r}")
        if status in ACTIVE and not pid_alive(meta.get("pid"), meta.get("pid_started")) \
                and not _just_created(meta):
            status, problem = "interrupted", "the training process ended without finishing (killed or crashed)"
            remove_temporary_files(run_dir)  # its process is gone: nothing will finish them
        if status == "finished" and not os.path.isfile(os.path.join(folder, MODEL_FILES["cnn"])):
            status, problem = "damaged", "the run says finished but model.keras is missing"
        return RunRecord(run_id, run_dir, status, meta, spec, problem)

    def _run_names(self) -> list[str]:
        """The run folders' names. Hidden folders (".slots") and stray files are skipped."""
        try:
            with os.scandir(self.root) as entries:  # is_dir() from the directory entry: no stat
                return [entry.name for entry in entries if not entry.name.startswith(".")
                        and entry.is_dir() and RUN_ID_PATTERN.fullmatch(entry.name)]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def _read_listed(self, names: list[str]) -> list[RunRecord]:
        """The runs of these folder names, newest first; one deleted since the folder was listed
        is left out."""
        records = []
        for name in names:
            try:
                records.append(self._read(name, self.root / name))
            except (RunError, FileNotFoundError):
                continue
        return sorted(records, key=lambda r: (r.created, r.run_id), reverse=True)

    def list(self) -> list[RunRecord]:
        """All runs, newest first. Each run.json is read once while it stays the same file
        (runs/listing.py)."""
        return self._read_listed(self._run_names())

    def count(self) -> int:
        """How many run folders there are (read none of them)."""
        return len(self._run_names())

    def scan(self) -> Iterator[RunRecord]:
        """The runs newest first, read as they are reached: a page that needs the newest few need
        not read all of 10,000. A run id starts with the local second it was created in
        (create()); the runs of one second are read together and ordered as list() orders them.
        So the order is list()'s as long as run ids and creation times agree: not for a run whose
        run.json is damaged (list() puts it last) or one made under another time zone."""
        by_second = itertools.groupby(sorted(self._run_names(), reverse=True), key=lambda name: name[:15])
        for _, names in by_second:
            yield from self._read_listed(list(names))

    def recent(self, count: int) -> list[RunRecord]:
        """The newest `count` runs, in list()'s order."""
        return list(itertools.islice(self.scan(), count))

    def newest(self, status: str | None = None) -> RunRecord | None:
        """The newest run (of `status`) in list()'s order, reading no more than it must."""
        return next((r for r in self.scan() if status is None or r.status == status), None)

    def latest(self, dataset: str | None = None, status: str = "finished") -> RunRecord | None:
        for record in self.list():
            if record.status == status and (dataset is None or record.dataset == dataset):
                return record
        return None

    def history(self, run_id: str) -> list[dict]:
        try:
            data = read_json(self.path(run_id) / "history.json")
        except (OSError, ValueError):
            return []
        return data if isinstance(data, list) else []

    def batches(self, run_id: str) -> list[dict]:
        return read_jsonl(self.path(run_id) / "batches.jsonl")

    def progress(self, run_id: str) -> dict | None:
        try:
            data = read_json(self.path(run_id) / "progress.json")
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def log_tail(self, run_id: str, lines: int = 20) -> str:
        try:
            text = (self.path(run_id) / "log.txt").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def _just_created(meta: dict) -> bool:
    # A run is "queued" for the instant between its folder being made and its process starting.
    return meta.get("status") == "queued" and not meta.get("pid") and time.time() - float(
        meta.get("requeued") or meta.get("created") or 0) < 30


# ---------------------------------------------------------------------------
# Writing from the training job


class RunWriter:
    """What the training process uses to report into its run folder."""

    def __init__(self, store: RunStore, run_id: str):
        self.store = store
        self.run_id = run_id
        self.dir = store.path(run_id)
        self._history = store.history(run_id)

    def __repr__(self) -> str:
        return f"RunWriter({self.run_id!r})"

    def update(self, **changes: Any) -> dict:
        return self.store.update(self.run_id, **changes)

    def set_model_result(self, key: str, **values: Any) -> None:
        meta = read_json(self.dir / "run.json")
        models = meta.get("models") or {}
        models.setdefault(key, {}).update(values)
        self.update(models=models)

    def append_epoch(self, record: dict) -> None:
        self._history.append(record)
        atomic_write_json(self.dir / "history.json", self._history)

    def append_batch(self, record: dict) -> None:
        append_jsonl(self.dir / "batches.jsonl", record)

    def write_progress(self, progress: dict) -> None:
        atomic_write_json(self.dir / "progress.json", {**progress, "updated": time.time()})

    def stop_requested(self, after: float | None = None) -> bool:
        """A STOP file exists (and, with `after`, was touched after that time.time())."""
        try:
            touched = (self.dir / "STOP").stat().st_mtime
        except FileNotFoundError:
            return False
        return after is None or touched > after
