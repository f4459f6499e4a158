"""Sweeps on disk and their driver: many runs of one experiment, started, watched, stopped and
read as one. No TensorFlow here.

A sweep is a record, `<runs>/.sweeps/<sweep_id>.json` (the document, the engine, one entry per
trial), and one ordinary run per trial, tagged in its run.json with `sweep_id`, `sweep_trial` and
`sweep_config`: Compare, Inspect and Draw see trials as the runs they are.

One driver process starts the trials: `python -m cnnkit.worker --sweep RUNS SWEEP_ID` for the app,
or `cnnkit sweep` in the foreground. Until a trial starts, the driver's pid is in its run.json, so
trials of a driver that died read "interrupted" instead of waiting for ever.
- local: at most CNNKIT_MAX_JOBS trial workers exist at a time (each still takes a slot behind the
  server's other jobs), so a sweep of 48 trials is 48 folders, not 48 waiting processes;
- ray: every trial becomes a Ray task (`ray_engine.run_trials`); the driver mirrors each into its
  run folder while it trains.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cnnkit import settings
from cnnkit.errors import RunError
from cnnkit.runs import jobs
from cnnkit.runs.stats import summarize_trials
from cnnkit.runs.store import (
    RunStore,
    atomic_write_json,
    process_started,
    read_json,
    this_process,
)
from cnnkit.runs.sweeps import SweepSpec, check_sweep, measured_macs_per_second

SWEEPS_DIR = ".sweeps"
SWEEP_ID_PATTERN = re.compile(r"sweep-[0-9]{8}-[0-9]{6}-[0-9a-f]{4}")
ENGINES = ("local", "ray")
DRIVER_POLL_SECONDS = 0.5
STOP_WAIT_SECONDS = 120.0  # Ctrl-C: how long the driver waits for its trials to end "stopped"


@dataclass(frozen=True)
class SweepRecord:
    sweep_id: str
    name: str
    created: float
    engine: str
    document: dict
    trials: tuple[dict, ...]          # {"run_id", "index", "config", "seed"}
    address: str | None = None
    estimated_seconds: float | None = None

    def __repr__(self) -> str:
        return f"SweepRecord({self.sweep_id!r}, {self.engine}, {len(self.trials)} trials)"

    @property
    def run_ids(self) -> list[str]:
        return [trial["run_id"] for trial in self.trials]

    def to_dict(self) -> dict:
        return {"sweep_id": self.sweep_id, "name": self.name, "created": self.created, "engine": self.engine,
                "address": self.address, "estimated_seconds": self.estimated_seconds,
                "document": self.document, "trials": list(self.trials)}

    @classmethod
    def from_dict(cls, data: dict) -> SweepRecord:
        return cls(sweep_id=data["sweep_id"], name=data["name"], created=float(data["created"]),
                   engine=data["engine"], document=data["document"], trials=tuple(data["trials"]),
                   address=data.get("address"), estimated_seconds=data.get("estimated_seconds"))


# ---------------------------------------------------------------------------
# The record


def sweeps_dir(store: RunStore) -> Path:
    return store.root / SWEEPS_DIR


def sweep_path(store: RunStore, sweep_id: str) -> Path:
    # Sweep ids come from URLs: never let one name another file.
    if not isinstance(sweep_id, str) or not SWEEP_ID_PATTERN.fullmatch(sweep_id):
        raise RunError(f"{str(sweep_id)[:60]!r} is not a sweep id")
    return sweeps_dir(store) / f"{sweep_id}.json"


def load_sweep(store: RunStore, sweep_id: str) -> SweepRecord:
    path = sweep_path(store, sweep_id)
    try:
        return SweepRecord.from_dict(read_json(path))
    except FileNotFoundError:
        raise RunError(f"sweep '{sweep_id}' does not exist in this runs folder") from None
    except (ValueError, KeyError, TypeError, OSError) as exc:
        raise RunError(f"sweep '{sweep_id}' is unreadable ({exc})") from None


def list_sweeps(store: RunStore) -> list[SweepRecord]:
    """Every readable sweep of this workspace, newest first (a damaged record is left out)."""
    folder = sweeps_dir(store)
    found = []
    for path in folder.glob("sweep-*.json") if folder.is_dir() else ():
        try:
            found.append(load_sweep(store, path.stem))
        except RunError:
            continue
    return sorted(found, key=lambda record: record.created, reverse=True)


def engine_of(engine: str | None) -> str:
    engine = engine or settings.get().engine
    if engine not in ENGINES:
        raise RunError(f"engine: one of {', '.join(ENGINES)}, not {str(engine)[:40]!r}")
    if engine == "ray":
        from cnnkit.runs.ray_engine import available

        if not available():
            raise RunError("engine ray: Ray is not installed here (pip install -r requirements-ray.txt)")
    return engine


def create_sweep(store: RunStore, sweep: SweepSpec, *, engine: str | None = None, address: str | None = None,
                 **meta) -> SweepRecord:
    """Check the whole sweep (every trial's spec, the trial and time caps), then create one queued
    run per trial and the record. Toward the per-visitor caps the sweep counts as one job."""
    engine = engine_of(engine)
    check = check_sweep(sweep, macs_per_second=measured_macs_per_second(store.recent(20)))
    sweep_id = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    name = sweep.name or sweep.base.name or sweep.base.preset or sweep_id
    trials = []
    with jobs.start_lock(store):
        jobs.check_capacity(store)
        for trial in check.trials:
            record = store.create(trial.spec, name=trial.spec.name, sweep_id=sweep_id, sweep_trial=trial.index,
                                  sweep_config=trial.config, engine=engine, **this_process(), **meta)
            trials.append({"run_id": record.run_id, "index": trial.index, "config": trial.config,
                           "seed": trial.seed})
        record = SweepRecord(sweep_id, name, time.time(), engine, sweep.to_dict(), tuple(trials), address,
                             check.estimated_seconds)
        sweeps_dir(store).mkdir(parents=True, exist_ok=True)
        atomic_write_json(sweep_path(store, sweep_id), record.to_dict())
    return record


def start_sweep(store: RunStore, sweep: SweepSpec, *, engine: str | None = None, address: str | None = None,
                data_dir: str | None = None) -> SweepRecord:
    """`create_sweep`, then its driver in a process of its own (the app's Start); returns at once."""
    record = create_sweep(store, sweep, engine=engine, address=address)
    launch_driver(store, record.sweep_id, data_dir=data_dir)
    return record


def launch_driver(store: RunStore, sweep_id: str, *, data_dir: str | None = None) -> int:
    env = jobs.worker_environment(store, data_dir)
    log_path = sweep_path(store, sweep_id).with_suffix(".log")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cnnkit.worker", "--sweep", str(store.root.resolve()), sweep_id],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(settings.REPO_ROOT), start_new_session=True)
    jobs.watch_child(process)
    # Its trials carry its pid from now on; the driver writes it itself too, once it runs.
    for run_id in load_sweep(store, sweep_id).run_ids:
        store.update(run_id, pid=process.pid, pid_started=process_started(process.pid))
    return process.pid


def stop_sweep(store: RunStore, sweep_id: str) -> int:
    """Ask every trial that has not ended to stop; returns how many were asked. A trial that has
    not started ends "stopped" at once; one that trains ends within a batch."""
    asked = 0
    for run_id in load_sweep(store, sweep_id).run_ids:
        if store.exists(run_id) and store.get(run_id).is_active:
            store.request_stop(run_id)
            asked += 1
    return asked


# ---------------------------------------------------------------------------
# The driver


def drive(store: RunStore, sweep_id: str, *, data_dir: str | None = None, on_update=None) -> SweepRecord:
    """Run every trial of the sweep that has not ended, and return when all have. Ctrl-C stops
    every trial (each ends "stopped") before it returns the KeyboardInterrupt."""
    record = load_sweep(store, sweep_id)
    pending = [run_id for run_id in record.run_ids if store.exists(run_id) and store.get(run_id).is_active]
    for run_id in pending:
        store.update(run_id, **this_process())
    if record.engine == "ray":
        from cnnkit.runs.ray_engine import run_trials

        run_trials(store, pending, address=record.address, data_dir=data_dir, on_update=on_update)
    else:
        drive_locally(store, pending, data_dir=data_dir, on_update=on_update)
    return record


def drive_locally(store: RunStore, run_ids: list[str], *, data_dir: str | None = None, on_update=None) -> None:
    pending, running = list(run_ids), []
    try:
        while pending or running:
            running = [run_id for run_id in running if _still_active(store, run_id, on_update)]
            while pending and len(running) < jobs.max_jobs():
                run_id = pending.pop(0)
                if (store.path(run_id) / "STOP").exists():
                    _cancel(store, run_id, on_update)
                    continue
                jobs.launch(store, run_id, data_dir=data_dir)
                running.append(run_id)
            time.sleep(DRIVER_POLL_SECONDS)
    except KeyboardInterrupt:
        for run_id in pending:
            _cancel(store, run_id, on_update)
        for run_id in running:
            store.request_stop(run_id)
        deadline = time.monotonic() + STOP_WAIT_SECONDS
        while running and time.monotonic() < deadline:
            running = [run_id for run_id in running if _still_active(store, run_id, on_update)]
            time.sleep(DRIVER_POLL_SECONDS)
        raise


def _still_active(store: RunStore, run_id: str, on_update) -> bool:
    record = store.get(run_id)
    if on_update:
        on_update(run_id, record.meta)
    return record.is_active


def _cancel(store: RunStore, run_id: str, on_update) -> None:
    meta = store.update(run_id, status="stopped", reason="Cancelled before it started.", finished=time.time(),
                        queue_position=None)
    if on_update:
        on_update(run_id, meta)


# ---------------------------------------------------------------------------
# Reading


def trial_rows(store: RunStore, record: SweepRecord) -> list[dict]:
    """Each trial as the CLI prints it and the page shows it (see the sweeps contract)."""
    rows = []
    for trial in record.trials:
        row = {"run_id": trial["run_id"], "index": trial["index"], "config": trial["config"],
               "seed": trial["seed"], "status": "damaged", "test_accuracy": None, "seconds": None,
               "params": None, "progress": None}
        if store.exists(trial["run_id"]):
            run = store.get(trial["run_id"])
            result = run.model_result("cnn")
            row.update(status=run.status, test_accuracy=run.test_accuracy, seconds=result.get("seconds"),
                       params=result.get("params"), progress=_fraction_done(store, run))
        rows.append(row)
    return rows


def _fraction_done(store: RunStore, run) -> float | None:
    if run.status != "running":
        return 1.0 if run.status == "finished" else None
    progress = store.progress(run.run_id) or {}
    epochs, batches = progress.get("epochs") or run.spec.training.epochs, progress.get("batches") or 1
    done = (max(int(progress.get("epoch") or 1), 1) - 1 + int(progress.get("batch") or 0) / batches) / max(epochs, 1)
    models = 2 if run.spec.baseline else 1
    first = progress.get("model", "cnn") == "cnn"
    return min(1.0, (done if first else 1 + done) / models)


def results(store: RunStore, sweep_id: str) -> dict:
    """The sweep as `cnnkit sweep --json` prints it: trials, a summary per configuration and, for
    two configurations, their paired comparison."""
    record = load_sweep(store, sweep_id)
    trials = trial_rows(store, record)
    summaries, comparison = summarize_trials(trials)
    return {"sweep_id": record.sweep_id, "name": record.name, "engine": record.engine,
            "trials": [{key: row[key] for key in ("run_id", "config", "seed", "status", "test_accuracy")}
                       for row in trials],
            "summary": [summary.to_dict() for summary in summaries],
            "comparison": comparison.to_dict() if comparison else None}
