"""Training runs as Ray tasks (the `ray` engine). No TensorFlow here, and Ray only inside functions:
cnnkit imports without the optional extra.

Nothing assumes a filesystem shared between the driver and the nodes:
- the driver sends each run's folder by value (run.json, spec.json, and for a continuation its
  checkpoint and history) as the task's argument;
- the task recreates the run in a temporary folder of its node and trains it there with
  `python -m cnnkit.worker` (a subprocess: TensorFlow never loads into Ray's worker, and its
  memory is freed with the trial);
- the task is a Ray generator: every `poll_seconds` it yields what changed (whole JSON files, the
  new bytes of the .jsonl logs), and at the end the model files and predictions as bytes;
- the driver writes each delta into its own run folder, so the pages see a Ray run exactly as a
  local one; pause, resume, a new learning rate and STOP go to the task through a small actor.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit import settings
from cnnkit.runs.store import (
    ACTIVE,
    RunStore,
    atomic_write,
    atomic_write_json,
    read_json,
    this_process,
)

NOT_SENT = ("STOP", "log.txt")         # the driver keeps its own log; a STOP travels as a command
INBOUND = ("STOP", "control.jsonl")    # the driver's commands to the job: never mirrored back (an echo
                                       # came back as a new command, and applied it again every poll)
APPENDED_SUFFIXES = (".jsonl", ".txt")  # grow by appending: only the new bytes travel
MAX_SENT_BYTES = 512 * 1024 * 1024      # a run folder larger than this is not a cnnkit run
STOP_WAIT_SECONDS = 60.0                # Ctrl-C: how long the trials get to end "stopped"
TASK_POLL_SECONDS = 0.5


def available() -> bool:
    """Ray is importable here (without importing it: that takes a second)."""
    return importlib.util.find_spec("ray") is not None


def connect(address: str | None = None):
    """The `ray` module, connected: to `address`, else CNNKIT_RAY_ADDRESS, else Ray's own
    RAY_ADDRESS (Ray reads it when no address is given), else a new local Ray on this machine's
    cores. cnnkit travels to the nodes with the job (runtime_env py_modules)."""
    import ray

    if not ray.is_initialized():
        import cnnkit

        address = address or settings.get().ray_address
        local = address is None and not os.environ.get("RAY_ADDRESS")
        # "local": a new instance even when `ray start` left one on this machine (ray.init(None)
        # would join it, and refuse the num_cpus).
        ray.init(address="local" if local else address, include_dashboard=False if local else None, log_to_driver=False,
                 logging_level="ERROR", configure_logging=True,
                 runtime_env={"py_modules": [str(Path(cnnkit.__file__).parent)],
                              "excludes": ["__pycache__", "*.pyc"]},
                 **({"num_cpus": os.cpu_count() or 2} if local else {}))
    return ray


# ---------------------------------------------------------------------------
# On the node


class Mailbox:
    """Commands from the driver to its trials (a Ray actor): STOP and control.jsonl lines."""

    def __init__(self):
        self.boxes: dict[str, list[str]] = {}

    def __repr__(self) -> str:
        return f"Mailbox({sum(map(len, self.boxes.values()))} waiting)"

    def put(self, run_id: str, line: str) -> None:
        self.boxes.setdefault(run_id, []).append(line)

    def take(self, run_id: str) -> list[str]:
        return self.boxes.pop(run_id, [])


@dataclass
class FolderTail:
    """What changed in a run folder since the last look: JSON files whole, logs by their new bytes."""

    folder: Path
    offsets: dict[str, int] = field(default_factory=dict)
    stamps: dict[str, tuple] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"FolderTail({self.folder.name!r})"

    def __post_init__(self):
        self.changes(final=True, record_only=True)  # what the driver sent is not sent back

    def changes(self, final: bool = False, record_only: bool = False) -> dict:
        delta = {"json": {}, "append": {}, "files": {}}
        for path in sorted(self.folder.iterdir()):
            name = path.name
            if not path.is_file() or name in INBOUND or ".tmp" in name:
                continue
            stat = path.stat()
            if name.endswith(APPENDED_SUFFIXES):
                start = self.offsets.get(name, 0)
                if stat.st_size > start and not record_only:
                    with open(path, "rb") as handle:
                        handle.seek(start)
                        delta["append"][name] = handle.read(stat.st_size - start)
                self.offsets[name] = stat.st_size
                continue
            if (stat.st_mtime_ns, stat.st_size) == self.stamps.get(name):
                continue
            if not record_only:
                data = path.read_bytes()
                if not final and (not name.endswith(".json") or name == "run.json" and _has_ended(data)):
                    continue  # checkpoints, and the run's last word, travel at the end, together
                delta["json" if name.endswith(".json") else "files"][name] = data
            self.stamps[name] = (stat.st_mtime_ns, stat.st_size)
        return delta if any(delta.values()) else {}


def _has_ended(run_json: bytes) -> bool:
    try:
        return json.loads(run_json).get("status") not in ACTIVE
    except ValueError:  # caught mid-write: read it next time
        return True


def _die_with_parent() -> None:
    # The worker gets SIGTERM (a clean stop) if the Ray worker that started it is killed. The
    # kernel ties this to the parent *thread*: fine here, the task's thread outlives the worker.
    import ctypes

    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def train_remotely(run_id: str, files: dict, data_dir: str | None, mailbox, poll_seconds: float = TASK_POLL_SECONDS,
                   env: dict | None = None):
    """The Ray task (a generator): train the run in a private folder of this node, yielding what
    changes. Cancelled (Ctrl-C on the driver, a lost driver), it ends its worker and cleans up."""
    import ray

    import cnnkit

    extra_env = env
    root = Path(tempfile.mkdtemp(prefix="cnnkit-ray-"))
    run_dir = root / run_id
    run_dir.mkdir()
    for name, data in files.items():
        (run_dir / name).write_bytes(data)
    env = dict(os.environ, CNNKIT_ENGINE="local", CNNKIT_SLOTS_DIR=str(root / ".slots"), CNNKIT_MAX_JOBS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(Path(cnnkit.__file__).parent.parent),
                                                        os.environ.get("PYTHONPATH")])))
    env.update(extra_env or {})
    if data_dir:
        env["CNNKIT_DATA_DIR"] = data_dir
    with open(run_dir / "log.txt", "ab") as log:
        process = subprocess.Popen([sys.executable, "-m", "cnnkit.worker", str(root), run_id], stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=str(root),
                                   preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    try:
        tail = FolderTail(run_dir)
        yield {"node": socket.gethostname(), "node_id": ray.get_runtime_context().get_node_id(),
               "folder": str(root), "pid": process.pid}
        while True:
            ended = process.poll() is not None
            for line in ray.get(mailbox.take.remote(run_id)):
                if line == "STOP":
                    (run_dir / "STOP").touch()
                else:
                    with open(run_dir / "control.jsonl", "a", encoding="utf-8") as handle:
                        handle.write(line)
            delta = tail.changes(final=ended)
            if delta:
                yield delta
            if ended:
                return
            time.sleep(poll_seconds)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


# ---------------------------------------------------------------------------
# On the driver


@dataclass
class RemoteTrial:
    run_id: str
    stream: object                     # the task's ray.ObjectRefGenerator
    control_offset: int = 0
    stop_sent: bool = False
    node: str | None = None
    folder: str | None = None
    ended: bool = False

    def __repr__(self) -> str:
        return f"RemoteTrial({self.run_id!r}, node={self.node}, ended={self.ended})"


def folder_files(run_dir: Path) -> dict:
    """The run folder by value, as the task recreates it (a continuation needs its checkpoint)."""
    files, total = {}, 0
    for path in sorted(run_dir.iterdir()):
        if path.is_file() and path.name not in NOT_SENT and ".tmp" not in path.name:
            total += path.stat().st_size
            if total > MAX_SENT_BYTES:
                raise ValueError(f"run folder {run_dir.name} holds over {MAX_SENT_BYTES >> 20} MiB")
            files[path.name] = path.read_bytes()
    return files


def apply_delta(store: RunStore, trial: RemoteTrial, delta: dict) -> dict | None:
    """Write a task's delta into the driver's folder; returns the new run.json when it changed.
    Binary files land before run.json, so a "finished" run never points at a missing model."""
    run_dir = store.path(trial.run_id)
    if "node" in delta:
        trial.node, trial.folder = delta["node"], delta["folder"]
        return store.update(trial.run_id, ray_node=trial.node, ray_node_id=delta["node_id"], ray_folder=trial.folder,
                            ray_worker_pid=delta.get("pid"))  # a pid on that node, for its logs
    for name, data in delta.get("files", {}).items():
        atomic_write(run_dir / name, lambda handle, data=data: handle.write(data))
    for name, data in delta.get("append", {}).items():
        with open(run_dir / name, "ab") as handle:
            handle.write(data)
    meta = None
    for name, data in sorted(delta.get("json", {}).items(), key=lambda item: item[0] == "run.json"):
        if name == "run.json":
            meta = _mirrored_meta(store, trial, data)
            atomic_write_json(run_dir / name, meta)
        else:
            atomic_write(run_dir / name, lambda handle, data=data: handle.write(data))
    return meta


def _mirrored_meta(store: RunStore, trial: RemoteTrial, data: bytes) -> dict:
    meta = json.loads(data)
    here = read_json(store.path(trial.run_id) / "run.json")
    # This process answers for the run (if it dies, the run reads "interrupted"); a rename made
    # on the page while it trained stays.
    meta.update(this_process(), name=here.get("name", meta.get("name")), engine="ray", ray_node=trial.node,
                ray_node_id=here.get("ray_node_id"), ray_folder=trial.folder, ray_worker_pid=here.get("ray_worker_pid"))
    return meta


def forward_commands(store: RunStore, trial: RemoteTrial, mailbox) -> None:
    run_dir = store.path(trial.run_id)
    if not trial.stop_sent and (run_dir / "STOP").exists():
        mailbox.put.remote(trial.run_id, "STOP")
        trial.stop_sent = True
    try:
        with open(run_dir / "control.jsonl", "rb") as handle:
            handle.seek(trial.control_offset)
            new = handle.read()
    except FileNotFoundError:
        return
    complete = new[:new.rfind(b"\n") + 1]
    if complete:
        mailbox.put.remote(trial.run_id, complete.decode("utf-8", "replace"))
        trial.control_offset += len(complete)


def run_trials(store: RunStore, run_ids: list[str], *, address: str | None = None, data_dir: str | None = None,
               poll_seconds: float = TASK_POLL_SECONDS, on_update=None, num_cpus: float | None = None,
               num_gpus: float | None = None, env: dict | None = None) -> list[dict]:
    """Train each queued run as a Ray task, mirrored into its folder here while it trains; returns
    their final run.json. Each task asks for `num_cpus`/`num_gpus` (default: CNNKIT_RAY_CPUS_PER_TRIAL,
    CNNKIT_RAY_GPUS_PER_TRIAL). `env`: more environment for the training processes on the nodes. Ctrl-C stops every trial (each ends "stopped") and nothing is left on
    the cluster, then re-raises."""
    if not run_ids:
        return []
    ray = connect(address)
    mailbox = ray.remote(num_cpus=0)(Mailbox).remote()
    task = ray.remote(num_cpus=settings.get().ray_cpus_per_trial if num_cpus is None else num_cpus,
                      num_gpus=settings.get().ray_gpus_per_trial if num_gpus is None else num_gpus,
                      max_retries=0)(train_remotely)
    trials = []
    for run_id in run_ids:
        store.update(run_id, engine="ray", **this_process())
        offset = _size(store.path(run_id) / "control.jsonl")
        stream = task.remote(run_id, folder_files(store.path(run_id)), data_dir, mailbox, poll_seconds, env)
        trials.append(RemoteTrial(run_id, stream, control_offset=offset))
    ctrl_c = CtrlC()
    try:
        with ctrl_c:
            try:
                _mirror(ray, store, trials, mailbox, poll_seconds, on_update, None, ctrl_c.check)
            except KeyboardInterrupt:
                for trial in trials:
                    store.request_stop(trial.run_id)
                # A second Ctrl-C while they stop cancels them at once.
                _mirror(ray, store, trials, mailbox, poll_seconds, on_update,
                        time.monotonic() + STOP_WAIT_SECONDS, ctrl_c.check)
                raise
    finally:
        for trial in trials:
            if not trial.ended:
                ray.cancel(trial.stream)  # not force: the task's finally ends its worker
                _give_up(store, trial, "stopped", "Stopped: the Ray task was cancelled.")
        ray.kill(mailbox)
    return [read_json(store.path(run_id) / "run.json") for run_id in run_ids]


class CtrlC:
    """Ctrl-C noted by a handler and raised as KeyboardInterrupt only between deltas: one raised in
    the middle of writing a delta lost its log lines. Only in the main thread (signals go there)."""

    def __init__(self):
        self.pressed = self.raised = 0
        self.previous = None

    def __repr__(self) -> str:
        return f"CtrlC(pressed={self.pressed})"

    def __enter__(self) -> CtrlC:
        if threading.current_thread() is threading.main_thread() \
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._note)
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)

    def _note(self, signum, frame) -> None:
        self.pressed += 1

    def check(self) -> None:
        if self.pressed > self.raised:
            self.raised = self.pressed
            raise KeyboardInterrupt


def _mirror(ray, store: RunStore, trials: list[RemoteTrial], mailbox, poll_seconds: float, on_update,
            deadline: float | None, check_interrupt=lambda: None) -> None:
    while any(not trial.ended for trial in trials):
        check_interrupt()
        if deadline is not None and time.monotonic() > deadline:
            return
        live = [trial for trial in trials if not trial.ended]
        for trial in live:
            forward_commands(store, trial, mailbox)
        ready, _ = ray.wait([trial.stream for trial in live], num_returns=len(live), timeout=poll_seconds)
        for trial in (t for t in live if t.stream in ready):
            _take_one(ray, store, trial, on_update)
            while not trial.ended and trial.stream.next_ready():  # a backlog: catch up now, not a delta a poll
                _take_one(ray, store, trial, on_update)


def _take_one(ray, store: RunStore, trial: RemoteTrial, on_update) -> None:
    try:
        delta = ray.get(next(trial.stream))
    except StopIteration:
        trial.ended = True
        meta = read_json(store.path(trial.run_id) / "run.json")
        if meta.get("status") in ACTIVE:  # the worker died without a last word
            meta = _give_up(store, trial, "failed", "The training process on the Ray node ended without "
                                                    "finishing (see log.txt).")
        if on_update:
            on_update(trial.run_id, meta)
        return
    except Exception as exc:  # the task failed: its node died, it was cancelled, it raised
        trial.ended = True
        meta = _give_up(store, trial, "failed", failure_reason(exc, trial.node))
        if on_update:
            on_update(trial.run_id, meta)
        return
    meta = apply_delta(store, trial, delta)
    if meta is not None and on_update:
        on_update(trial.run_id, meta)


def failure_reason(exc: Exception, node: str | None) -> str:
    """What the run's page says when its task failed: which node, and what Ray reported, in a line."""
    import ray.exceptions as errors

    node = f"node {node}" if node else "node it was sent to"
    if isinstance(exc, errors.NodeDiedError):
        return f"The Ray {node} died or became unreachable while it trained this run, so the run could not finish."
    if isinstance(exc, errors.WorkerCrashedError):
        return f"Ray's worker process on the {node} crashed (out of memory, or killed) while it trained this run."
    cause = getattr(exc, "cause", None) or exc  # RayTaskError: what the task itself raised
    first_line = (str(cause).strip().splitlines() or [""])[0][:200]
    return f"The Ray task on the {node} failed: {type(cause).__name__}: {first_line}"


def _give_up(store: RunStore, trial: RemoteTrial, status: str, reason: str) -> dict:
    trial.ended = True
    meta = read_json(store.path(trial.run_id) / "run.json")
    if meta.get("status") not in ACTIVE:
        return meta
    return store.update(trial.run_id, status=status, reason=reason, finished=time.time())


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
