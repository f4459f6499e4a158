"""The training process: `python -m cnnkit.worker RUNS_DIR RUN_ID`.

It waits for a training slot (cheaply: TensorFlow is imported only once it has one), then runs
the job. SIGTERM is turned into a stop request, so `kill` ends the run cleanly as "stopped".
"""

from __future__ import annotations

import signal
import sys
import time

from cnnkit.runs.jobs import acquire_slot, mark_active
from cnnkit.runs.store import RunStore, this_process


def run_in_slot(store: RunStore, run_id: str, *, data_dir: str | None = None, hook=None) -> dict:
    """Wait for a training slot (cheaply: TensorFlow is imported only once there is one), then
    run the job; returns its run.json. A STOP while waiting cancels it. The worker and
    `cnnkit train` both train this way, so the CLI waits its turn behind the app's jobs."""
    stop_file = store.path(run_id) / "STOP"
    mark_active(store, run_id)  # `cnnkit train` creates its run without jobs.start
    slot = acquire_slot(store, run_id, stop_file.exists)
    if slot is None:
        return store.update(run_id, status="stopped", reason="Cancelled while waiting in the queue.",
                            finished=time.time(), queue_position=None)
    try:
        store.update(run_id, queue_position=None)
        from cnnkit.model.training import run_job  # TensorFlow loads here, once the job may run

        return run_job(store, run_id, data_dir=data_dir, hook=hook)
    finally:
        slot.release()


def main(argv: list[str]) -> int:
    runs_dir, run_id = argv
    store = RunStore(runs_dir)

    def on_sigterm(signum, frame):
        (store.path(run_id) / "STOP").touch()

    signal.signal(signal.SIGTERM, on_sigterm)
    store.update(run_id, **this_process())
    meta = run_in_slot(store, run_id)
    if meta.get("status") != "stopped" or meta.get("started"):
        print(f"run {run_id}: {meta.get('status')} {meta.get('reason') or ''}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
