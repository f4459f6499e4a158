"""Starting, queueing and stopping training jobs, each in its own process. No TensorFlow here.

A job is `python -m cnnkit.worker <runs_dir> <run_id>`. Before it imports TensorFlow it takes a
training slot: an `fcntl` lock on one of `CNNKIT_MAX_JOBS` files in the slots folder. The
kernel releases a lock when its process dies, even by SIGKILL, so a crash never leaks a slot.
Waiting jobs line up first-come first-served through files in `<slots>/queue/`; each sees its
position and writes it into its run, where the pages show it. A STOP file cancels a queued job.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from cnnkit import settings
from cnnkit.errors import RunError
from cnnkit.runs import threads, warm
from cnnkit.runs.store import (
    OPTIMIZER_FILE,
    RunRecord,
    RunStore,
    pid_alive,
    process_started,
    this_process,
)
from cnnkit.runs.workspaces import server_root, session_folders
from cnnkit.specs import ExperimentSpec

QUEUE_POLL_SECONDS = 0.3


def max_jobs() -> int:
    return settings.get().max_jobs


def slots_dir(store: RunStore) -> Path:
    """Slots are shared by every workspace of a server: set CNNKIT_SLOTS_DIR, else <runs>/.slots."""
    # server_root: a session workspace (<runs>/.sessions/<key>) shares its server's slots.
    return Path(settings.get().slots_dir or server_root(store.root) / ".slots")


# ---------------------------------------------------------------------------
# Launching (in the server or CLI process)

_children: list[subprocess.Popen] = []


def _reap(process: subprocess.Popen, then: Callable[[], object] | None = None) -> None:
    # Wait in a thread so a finished worker never lingers as a zombie of the server.
    process.wait()
    if then is not None:
        then()


class ActiveRunError(RunError):
    """This workspace has a run queued or running, and the start did not say "queue another"."""

    def __init__(self, active: list[RunRecord]):
        self.active = active
        names = ", ".join(f"'{record.name}'" for record in active[:3])
        super().__init__(f"{names} {'is' if len(active) == 1 else 'are'} still {active[0].status}: open it, "
                         f"or queue another on purpose")


def start(store: RunStore, spec: ExperimentSpec, *, name: str | None = None, data_dir: str | None = None,
          queue_another: bool = True, **meta) -> RunRecord:
    """Create the run folder and start its worker process; returns at once. Refused (RunError,
    saying what to stop) when this workspace or the server has as many jobs as it allows, and
    (ActiveRunError) when this workspace has an active run unless `queue_another`: a second
    click on Start must not bury the first run under a copy."""
    with start_lock(store):  # a click flood must not slip past the caps between count and create
        active = check_capacity(store)
        if active and not queue_another:
            raise ActiveRunError(active)
        record = store.create(spec, name=name, **meta)
        mark_active(store, record.run_id)
    launch(store, record.run_id, data_dir=data_dir)
    return store.get(record.run_id)


ACTIVE_DIR = ".active"  # <runs>/.active/<run_id>: an index of the runs that may be active


def mark_active(store: RunStore, run_id: str) -> None:
    """Put the run in the index that `active_runs` reads, so a page need not read every run.json."""
    folder = store.root / ACTIVE_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_id).touch()


def active_runs(store: RunStore) -> list[RunRecord]:
    """The queued and running runs of this workspace, newest first, from the index (a run that
    has ended, or gone, leaves it here): cheap with 10,000 runs in the folder."""
    folder = store.root / ACTIVE_DIR
    if not folder.is_dir():
        return []
    active = []
    for entry in folder.iterdir():
        try:
            record = store.get(entry.name) if store.exists(entry.name) else None
        except RunError:  # not a run id
            record = None
        if record is not None and record.is_active:
            active.append(record)
        else:
            entry.unlink(missing_ok=True)
    return sorted(active, key=lambda r: (r.created, r.run_id), reverse=True)


def extend(store: RunStore, run_id: str, epochs: int, *, data_dir: str | None = None) -> RunRecord:
    """Queue a finished or stopped run again to train `epochs` more epochs from its checkpoint,
    with the optimizer's state, and start its worker. Its history continues; run.json lists the
    extension."""
    requeue(store, run_id, epochs)
    launch(store, run_id, data_dir=data_dir)
    return store.get(run_id)


def requeue(store: RunStore, run_id: str, epochs: int) -> RunRecord:
    """`extend` without starting the process (`cnnkit train --continue` trains in its own)."""
    from cnnkit.limits import check_spec

    with start_lock(store):
        record = store.get(run_id)
        problem = continue_problem(record)
        if problem:
            raise RunError(f"run '{run_id}' cannot continue: {problem}")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise RunError(f"epochs: continue for at least 1 more epoch, not {epochs!r}")
        check_capacity(store)
        total = record.epochs_completed + epochs
        spec = record.spec.updated({"training.epochs": total})  # validated: the spec's epoch cap holds
        check_spec(spec)  # and this server's caps
        (store.path(run_id) / "STOP").unlink(missing_ok=True)
        extensions = list(record.meta.get("extensions") or [])
        extensions.append({"from_epoch": record.epochs_completed, "epochs": epochs, "time": time.time()})
        store.update(run_id, status="queued", pid=None, pid_started=None, requeued=time.time(),
                     spec=spec.to_dict(), continue_epochs=epochs, extensions=extensions, reason="",
                     suggestion="")
        mark_active(store, run_id)
    return store.get(run_id)


def continue_problem(record: RunRecord) -> str | None:
    """Why this run cannot train on, or None."""
    if record.is_active:
        return f"it is still {record.status}"
    if record.kind == "imported":
        return "it is an imported model (cnnkit did not train it, so it has no training state)"
    if record.status not in ("finished", "stopped", "interrupted"):
        return f"it is {record.status}"
    if not record.epochs_completed or not record.has_model("cnn"):
        return "no epoch finished, so there is no checkpoint to continue from (start it again instead)"
    if not (record.path / OPTIMIZER_FILE.format("cnn")).is_file():
        return "its checkpoint has no saved optimizer state (it was trained by an older cnnkit)"
    return None


@contextmanager
def start_lock(store: RunStore):
    """Held while one start counts and creates: shared by every workspace of a server."""
    folder = slots_dir(store)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "start.lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def server_active_runs(store: RunStore) -> list[RunRecord]:
    """The queued and running jobs of the whole server (every workspace)."""
    root = server_root(store.root)
    stores = [RunStore(root), *(RunStore(folder) for folder in session_folders(root))]
    return [record for each in stores for record in each.list() if record.is_active]


def check_capacity(store: RunStore) -> list[RunRecord]:
    """RunError when this workspace or the server is at its cap; else this workspace's active runs.
    A sweep's trials count as one job: its driver starts them one slot at a time."""
    limits = settings.get()
    mine = [record for record in store.list() if record.is_active]
    if job_count(mine) >= limits.max_jobs_per_workspace:
        names = ", ".join(f"'{record.name}'" for record in mine[:3])
        raise RunError(f"you already have {job_count(mine)} trainings queued or running ({names}); this server "
                       f"allows {limits.max_jobs_per_workspace} at a time per visitor "
                       f"(CNNKIT_MAX_JOBS_PER_WORKSPACE). Stop one to start another.")
    everyone = job_count(server_active_runs(store))
    if everyone >= limits.max_queue:
        raise RunError(f"the server's queue is full: {everyone} trainings are queued or running, "
                       f"the limit is {limits.max_queue} (CNNKIT_MAX_QUEUE). Try again when one has "
                       f"finished{', or stop yours' if mine else ''}.")
    return mine


def job_count(records: list[RunRecord]) -> int:
    """Active jobs, a sweep counting once whatever its number of trials."""
    return len({record.meta.get("sweep_id") or record.run_id for record in records})


def launch(store: RunStore, run_id: str, *, data_dir: str | None = None) -> int:
    """Start the run's worker: the warm spare when there is one and a slot is free
    (runs/warm.py), else a fresh process. Either way a new spare is made ready when it ends."""
    run_dir, runs_root = store.path(run_id), str(store.root.resolve())
    record = store.get(run_id)
    # the spare runs light jobs' thread count; a heavy job gets a fresh worker (runs/threads.py)
    environment = worker_environment(store, data_dir) | threads.environment_for(record.spec)
    spare = warm.take(environment) if slot_is_free(store) else None
    if spare is not None:
        # its pid goes into run.json before the job can write there itself
        store.update(run_id, pid=spare.pid, pid_started=process_started(spare.pid), warm_worker=True)
        if not spare.give(runs_root, run_id):
            spare = None
    if spare is not None:
        process = spare.process
    else:
        with open(run_dir / "log.txt", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cnnkit.worker", runs_root, run_id],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=environment,
                cwd=str(settings.REPO_ROOT), start_new_session=True)  # its own process group: a Ctrl-C in the server does not kill it
        store.update(run_id, pid=process.pid, pid_started=process_started(process.pid), warm_worker=False)
    dataset = record.dataset or "mnist"
    spare_next = spare_environment(store, data_dir)
    watch_child(process, then=lambda: warm.ensure(spare_next, dataset))  # the next job's spare loads this dataset
    return process.pid


def prepare_spare(store: RunStore, data_dir: str | None = None, dataset: str = "mnist") -> None:
    """Have a warm worker waiting for this server's next job (the Train page calls this as it opens)."""
    warm.ensure(spare_environment(store, data_dir), dataset)


def spare_environment(store: RunStore, data_dir: str | None = None) -> dict:
    """The warm spare's environment: a worker's, with a light job's threads per op."""
    return worker_environment(store, data_dir) | threads.environment_for(None)


def slot_is_free(store: RunStore) -> bool:
    """Whether a job started now would train at once (a look at the slots' locks, taken and let go)."""
    slot = try_acquire(slots_dir(store), max_jobs())
    if slot is None:
        return False
    slot.release()
    return True


def worker_environment(store: RunStore, data_dir: str | None = None) -> dict:
    """What a worker or sweep driver process starts with: this code first on the path, the data
    folder, and this server's slots."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.REPO_ROOT), env.get("PYTHONPATH")]))
    if data_dir:
        env["CNNKIT_DATA_DIR"] = str(data_dir)
    env.setdefault("CNNKIT_SLOTS_DIR", str(slots_dir(store)))
    return env


def watch_child(process: subprocess.Popen, then: Callable[[], object] | None = None) -> None:
    """Reap the process when it ends (and call `then`)."""
    _children.append(process)
    threading.Thread(target=_reap, args=(process, then), name=reaper_name(process.pid), daemon=True).start()


def reaper_name(pid: int) -> str:
    """The name of the thread that reaps this worker and then runs what follows its end."""
    return f"cnnkit-reap-{pid}"


def stop(store: RunStore, run_id: str) -> None:
    """Ask a job to stop: it ends within one batch (or leaves the queue at once)."""
    store.request_stop(run_id)


def wait(store: RunStore, run_id: str, timeout: float = 600.0, poll: float = 0.2) -> RunRecord:
    """Block until the run is no longer queued or running (for tests and scripts)."""
    deadline = time.monotonic() + timeout
    while True:
        record = store.get(run_id)
        if not record.is_active:
            return record
        if time.monotonic() > deadline:
            raise RunError(f"run '{run_id}' still {record.status} after {timeout:.0f} s")
        time.sleep(poll)


# ---------------------------------------------------------------------------
# Slots and the queue (in the worker process, before TensorFlow is imported)


@dataclass
class Slot:
    path: Path
    handle: object

    def __repr__(self) -> str:
        return f"Slot({self.path.name})"

    def release(self) -> None:
        try:
            fcntl.flock(self.handle, fcntl.LOCK_UN)
        finally:
            self.handle.close()


def try_acquire(folder: Path, count: int) -> Slot | None:
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        path = folder / f"slot-{index}.lock"
        handle = open(path, "a+")  # noqa: SIM115 - held for the life of the job
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return Slot(path, handle)
    return None


def ticket_text() -> str:
    """What a ticket holds: this process's pid and start time (the OS reuses pids, not both)."""
    started = process_started()
    return f"{os.getpid()} {started}" if started is not None else str(os.getpid())


def read_ticket(entry: Path) -> tuple[int, int | None] | None:
    """(pid, start time or None) of a ticket; None if it cannot be read."""
    try:
        fields = entry.read_text().split()
        return int(fields[0]), (int(fields[1]) if len(fields) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None


def queue_position(queue: Path, ticket: Path) -> int:
    """0 = next in line. Tickets of dead processes (or of a reused pid) do not count."""
    ahead = 0
    for entry in sorted(queue.glob("*.ticket")):
        if entry.name >= ticket.name:
            break
        owner = read_ticket(entry)
        if owner is None:
            continue
        if pid_alive(*owner):
            ahead += 1
        else:
            entry.unlink(missing_ok=True)
    return ahead


def acquire_slot(store: RunStore, run_id: str, stop_requested) -> Slot | None:
    """Wait for a free training slot, first come first served; None if stopped while waiting."""
    folder, count = slots_dir(store), max_jobs()
    queue = folder / "queue"
    queue.mkdir(parents=True, exist_ok=True)
    ticket = queue / f"{time.time():017.6f}-{run_id}.ticket"
    ticket.write_text(ticket_text())
    last_position = None
    try:
        while True:
            if stop_requested():
                return None
            position = queue_position(queue, ticket)
            if position == 0:
                slot = try_acquire(folder, count)
                if slot is not None:
                    return slot
            if position != last_position:
                store.update(run_id, status="queued", queue_position=position + 1, **this_process())
                last_position = position
            time.sleep(QUEUE_POLL_SECONDS)
    finally:
        ticket.unlink(missing_ok=True)
