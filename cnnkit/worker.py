"""The training process: `python -m cnnkit.worker RUNS_DIR RUN_ID`.

It waits for a training slot (cheaply: TensorFlow is imported only once it has one), then runs
the job. SIGTERM is turned into a stop request, so `kill` ends the run cleanly as "stopped".
"""

from __future__ import annotations

import signal
import sys
import time

from cnnkit.runs.jobs import acquire_slot
from cnnkit.runs.store import RunStore, this_process


def main(argv: list[str]) -> int:
    runs_dir, run_id = argv
    store = RunStore(runs_dir)
    stop_file = store.path(run_id) / "STOP"

    def on_sigterm(signum, frame):
        stop_file.touch()

    signal.signal(signal.SIGTERM, on_sigterm)
    store.update(run_id, **this_process())
    slot = acquire_slot(store, run_id, stop_file.exists)
    if slot is None:
        store.update(run_id, status="stopped", reason="Cancelled while waiting in the queue.",
                     finished=time.time(), queue_position=None)
        return 0
    try:
        store.update(run_id, queue_position=None)
        from cnnkit.model.training import run_job  # TensorFlow loads here, once the job may run

        meta = run_job(store, run_id)
        print(f"run {run_id}: {meta.get('status')} {meta.get('reason') or ''}", flush=True)
        return 0
    finally:
        slot.release()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
