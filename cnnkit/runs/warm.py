"""The warm worker: a spare training process that has imported TensorFlow before there is a job.

Start → first batch took 4–7 s, most of it a fresh worker importing TensorFlow (3–5 s). The
server therefore keeps one spare, `python -m cnnkit.worker --warm DATASET`, which imports
TensorFlow, trains a tiny model for one step on a few images of DATASET (model/warmup.py: the
first trace, oneDNN, and the dataset's arrays in memory) and then waits for one line on its
stdin: "RUNS_DIR<TAB>RUN_ID". Given a job it points its stdout and stderr at the run's log.txt
and runs it exactly as `python -m cnnkit.worker RUNS_DIR RUN_ID` would (slot, queue, SIGTERM);
then it ends, so a job's memory is still freed with its process. End of file on stdin (the
server closed the pipe, or died) ends an idle spare at once, even mid-warm-up. (Not
PR_SET_PDEATHSIG: it fires when the parent *thread* ends, and Streamlit runs each script run,
which starts jobs, in a thread of its own.)

One spare, for one worker environment (data folder, slots). A job is given to it only when a
training slot is free: a queued job waits in a fresh worker, which costs ~30 MB until its turn,
not the spare's ~320 MB of anonymous memory. A new spare starts when a job ends (it then loads that
job's dataset) and when the Train page opens. `CNNKIT_WARM_WORKER`: auto (on when the machine
has WARM_MIN_GIB or more: not on a 1 GB Community Cloud box), on, off. No TensorFlow here.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import dataclass

from cnnkit import settings
from cnnkit.sysinfo import memory_gib

WARM_MIN_GIB = 4.0  # auto: a spare (~320 MB anonymous, ~700 MB RSS with TensorFlow's library files) and a job fit


@dataclass
class Spare:
    process: subprocess.Popen
    environment: dict
    dataset: str

    def __repr__(self) -> str:
        state = "idle" if self.process.poll() is None else f"ended {self.process.returncode}"
        return f"Spare(pid={self.process.pid}, {self.dataset}, {state})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def give(self, runs_dir: str, run_id: str) -> bool:
        """Hand it the job; False if it is gone (the caller starts a fresh worker instead)."""
        try:
            self.process.stdin.write(f"{runs_dir}\t{run_id}\n".encode())
            self.process.stdin.close()
        except (OSError, ValueError):  # BrokenPipeError: it died; ValueError: its pipe was closed
            return False
        return True

    def end(self) -> None:
        """An idle spare ends at the end of its stdin."""
        try:
            self.process.stdin.close()
        except OSError:
            pass


_spare: Spare | None = None
_lock = threading.Lock()  # several sessions' script threads start jobs


def enabled() -> bool:
    chosen = settings.get()
    if chosen.warm_worker == "off" or chosen.engine == "ray":  # a Ray job trains on the cluster
        return False
    if chosen.warm_worker == "on":
        return True
    memory = memory_gib()
    return memory is not None and memory >= WARM_MIN_GIB


def ensure(environment: dict, dataset: str = "mnist", cwd: str | None = None) -> Spare | None:
    """The spare for this worker environment, started unless one is waiting (a spare for
    another environment is ended first); None when warm workers are off."""
    global _spare
    if not enabled():
        return None
    with _lock:
        if _spare is not None and _spare.process.poll() is None:
            if _spare.environment == environment:
                return _spare
            _spare.end()
        process = subprocess.Popen(
            [sys.executable, "-m", "cnnkit.worker", "--warm", dataset], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=environment,
            cwd=cwd or str(settings.REPO_ROOT), start_new_session=True)  # a Ctrl-C in the server spares its job
        threading.Thread(target=process.wait, daemon=True).start()  # never a zombie of the server
        _spare = Spare(process, environment, dataset)
        return _spare


def take(environment: dict) -> Spare | None:
    """Claim the waiting spare for a job in this environment (None: start a fresh worker)."""
    global _spare
    with _lock:
        spare = _spare
        if spare is None or spare.process.poll() is not None or spare.environment != environment:
            return None
        _spare = None
        return spare


def idle_spare() -> Spare | None:
    """The spare waiting now, if any (for the benchmark and tests)."""
    with _lock:
        return _spare if _spare is not None and _spare.process.poll() is None else None


def end_spare() -> None:
    """End the waiting spare (tests; a server that turns warm workers off)."""
    global _spare
    with _lock:
        if _spare is not None:
            _spare.end()
            _spare = None
