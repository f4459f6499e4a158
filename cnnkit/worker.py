"""The training process: `python -m cnnkit.worker RUNS_DIR RUN_ID`.

It waits for a training slot (cheaply: TensorFlow is imported only once it has one), then runs
the job. SIGTERM is turned into a stop request, so `kill` ends the run cleanly as "stopped".
With CNNKIT_ENGINE=ray it trains nothing itself: it hands the run to the Ray cluster and mirrors
it into the run folder (`runs/ray_engine.py`).

`python -m cnnkit.worker --sweep RUNS_DIR SWEEP_ID` is a sweep's driver (`runs/sweeping.py`).
`python -m cnnkit.worker --warm DATASET` is a warm spare that waits for its job on stdin
(`runs/warm.py`).
"""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time

from cnnkit import settings
from cnnkit.runs.jobs import acquire_slot, mark_active
from cnnkit.runs.store import RunStore, this_process
from cnnkit.runs.threads import op_threads_for
from cnnkit.runs.warm import wait_for_quiet


def run_in_slot(store: RunStore, run_id: str, *, data_dir: str | None = None, hook=None) -> dict:
    """Wait for a training slot (cheaply: TensorFlow is imported only once there is one), then
    run the job; returns its run.json. A STOP while waiting cancels it. The worker and
    `cnnkit train` both train this way, so the CLI waits its turn behind the app's jobs; both
    end their process right after (`exit_now`)."""
    stop_file = store.path(run_id) / "STOP"
    mark_active(store, run_id)  # `cnnkit train` creates its run without jobs.start
    slot = acquire_slot(store, run_id, stop_file.exists)
    if slot is None:
        return store.update(run_id, status="stopped", reason="Cancelled while waiting in the queue.",
                            finished=time.time(), queue_position=None)
    try:
        store.update(run_id, queue_position=None)
        # TensorFlow loads here, once the job may run
        from cnnkit.model.levers import use_op_threads
        from cnnkit.model.training import run_job

        use_op_threads(op_threads_for(store.get(run_id).spec))
        return run_job(store, run_id, data_dir=data_dir, hook=hook, release_at_end=False)  # the process ends next
    finally:
        slot.release()


def run_on_engine(store: RunStore, run_id: str) -> dict:
    """Train here (the local engine), or on the Ray cluster when CNNKIT_ENGINE says so."""
    if settings.get().engine != "ray":
        return run_in_slot(store, run_id)
    from cnnkit.runs.ray_engine import available, run_trials

    if not available():
        return store.update(run_id, status="failed", finished=time.time(),
                            reason="CNNKIT_ENGINE=ray, but Ray is not installed on this server "
                                   "(pip install -r requirements-ray.txt), so the run could not start.")
    return run_trials(store, [run_id])[0]  # the cluster of CNNKIT_RAY_ADDRESS / RAY_ADDRESS


def drive_sweep(store: RunStore, sweep_id: str) -> int:
    from cnnkit.runs.sweeping import drive, stop_sweep

    signal.signal(signal.SIGTERM, lambda signum, frame: stop_sweep(store, sweep_id))
    drive(store, sweep_id)
    return 0


def run_job_process(runs_dir: str, run_id: str) -> int:
    """The job, in this process: SIGTERM becomes a stop request."""
    store = RunStore(runs_dir)
    store.path(run_id)  # a run id that is not one is refused here (RunError)

    def on_sigterm(signum, frame):
        (store.path(run_id) / "STOP").touch()

    signal.signal(signal.SIGTERM, on_sigterm)
    store.update(run_id, **this_process())
    meta = run_on_engine(store, run_id)
    if meta.get("status") != "stopped" or meta.get("started"):
        print(f"run {run_id}: {meta.get('status')} {meta.get('reason') or ''}", flush=True)
    return 0


def wait_warm(dataset: str) -> int:
    """`--warm DATASET`: once the machine is quiet, import and warm up TensorFlow, then run the
    one job that arrives on stdin (runs/warm.py). A job that arrives first is run at once,
    without the warm-up. The end of stdin before a job ends this process at once."""
    job: queue.Queue[str] = queue.Queue()

    def read_job() -> None:
        line = sys.stdin.readline()
        if not line.endswith("\n"):
            os._exit(0)  # the server closed the pipe or went away: nothing to wait for, even mid-warm-up
        job.put(line)

    threading.Thread(target=read_job, daemon=True).start()
    if wait_for_quiet(lambda: not job.empty()) != "job":  # no job yet: get everything ready for it
        from cnnkit.model.levers import use_op_threads
        from cnnkit.model.warmup import warm_up

        use_op_threads(op_threads_for(None))  # what the server gave it: a light job's count
        try:
            warm_up(dataset, settings.get().data_dir)
        except Exception as exc:  # the job itself will meet (and report) whatever went wrong
            print(f"warm-up failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    runs_dir, _, run_id = job.get().rstrip("\n").partition("\t")
    log = os.open(os.path.join(RunStore(runs_dir).path(run_id), "log.txt"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.dup2(log, 1)  # print() and TensorFlow's own messages go to the run's log.txt
    os.dup2(log, 2)
    os.close(log)
    return run_job_process(runs_dir, run_id)


def main(argv: list[str]) -> int:
    if argv[:1] == ["--sweep"]:
        return drive_sweep(RunStore(argv[1]), argv[2])
    if argv[:1] == ["--warm"]:
        return wait_warm(argv[1])
    runs_dir, run_id = argv
    return run_job_process(runs_dir, run_id)


def exit_now(code: int) -> None:
    """End the process without the interpreter's teardown of TensorFlow, which took 1.4–4 s here
    after a job whose files were all written and closed. With Ray loaded, a normal exit: its exit
    handlers stop the local cluster it may have started."""
    sys.stdout.flush()
    sys.stderr.flush()
    if "ray" in sys.modules or "tensorflow" not in sys.modules:
        sys.exit(code)
    os._exit(code)


if __name__ == "__main__":
    exit_now(main(sys.argv[1:]))
