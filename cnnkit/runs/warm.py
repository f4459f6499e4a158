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
not the spare's ~290 MB of anonymous memory. A new spare starts when a job ends (it then loads that
job's dataset) and when the Train page opens; it warms up once the machine is quiet
(`wait_for_quiet`), so as not to slow the pages the person opens meanwhile. `CNNKIT_WARM_WORKER`: auto (on when the machine
has WARM_MIN_GIB or more: not on a 1 GB Community Cloud box), on, off. No TensorFlow here.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from cnnkit import settings
from cnnkit.sysinfo import busy_fraction, machine_ticks, memory_gib

WARM_MIN_GIB = 4.0  # auto: a spare (~290 MB anonymous, ~620 MB RSS with TensorFlow's library files) and a job fit
QUIET_BUSY = 0.25      # the share of the machine others may use while a spare warms up (2 cores: half a core)
QUIET_SECONDS = 1.0    # for this long in a row
QUIET_SAMPLE = 0.25    # seconds between readings of /proc/stat
QUIET_MAX_WAIT = 20.0  # then it warms up anyway


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


def wait_for_quiet(job_arrived, *, busy=QUIET_BUSY, seconds=QUIET_SECONDS, sample=QUIET_SAMPLE,
                   max_wait=QUIET_MAX_WAIT, read_ticks=machine_ticks, sleep=time.sleep) -> str:
    """Before a spare warms up: wait until the machine has been quiet (others using under `busy`
    of it) for `seconds` in a row, for at most `max_wait` seconds, or until `job_arrived()`.
    Returns "quiet", "job" or "waited".

    Its warm-up is ~3 s of a core (TensorFlow's import, one tiny training step). Started as the
    Train page opens or a job ends, it competed with the pages the person opened next: with
    10,000 runs Inspect's first visit took 1.14–1.37 s while a spare warmed up and 0.71 s without
    one (docs/PERFORMANCE.md §8). A job that arrives meanwhile ends the wait, and the worker
    skips the warm-up: it imports what it needs anyway, as a fresh worker would."""
    waited, quiet_for, before = 0.0, 0.0, read_ticks()
    while waited < max_wait:
        if job_arrived():
            return "job"
        sleep(sample)
        waited += sample
        after = read_ticks()
        quiet_for = quiet_for + sample if busy_fraction(before, after) < busy else 0.0
        before = after
        if quiet_for >= seconds:
            return "quiet"
    return "job" if job_arrived() else "waited"
