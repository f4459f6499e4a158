"""Steering a run while it trains: pause, resume, a new learning rate, stop. No TensorFlow here.

The page or the CLI appends a command to `<run>/control.jsonl`; the training process reads new
lines after every call into TensorFlow (up to 16 batches; a `stat` when nothing changed) and
answers in `<run>/events.jsonl`, which the curves draw as markers. Stop keeps its own STOP file,
which the data pipeline sees between the steps of a call.

    control.jsonl   {"action": "pause" | "resume" | "lr", "value": 0.0003, "time": ...}
    events.jsonl    {"event": "pause" | "resume" | "lr" | "stop" | "continue", "model", "epoch",
                     "batch", "step", "time", and for lr "from"/"to", for resume "paused_seconds"}
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import RunError, SpecError, shown
from cnnkit.runs.store import RunStore, append_jsonl, read_jsonl
from cnnkit.specs import MAX_LEARNING_RATE, read_float

CONTROL_FILE = "control.jsonl"
EVENTS_FILE = "events.jsonl"
ACTIONS = ("pause", "resume", "lr", "stop")
MAX_CONTROL_BYTES = 1 << 20     # a flood of clicks (or a hostile script) cannot grow it without end


@dataclass(frozen=True)
class Command:
    action: str
    value: float | None = None
    time: float = 0.0

    def __repr__(self) -> str:
        return f"Command({self.action}{'' if self.value is None else f' {self.value:g}'})"

    def to_dict(self) -> dict:
        data = {"action": self.action, "time": self.time}
        if self.value is not None:
            data["value"] = self.value
        return data

    @classmethod
    def from_dict(cls, data) -> Command:
        """A checked command; SpecError naming the field for anything else."""
        if not isinstance(data, dict):
            raise SpecError("command", "must be a JSON object")
        action = data.get("action")
        if action not in ACTIONS:
            raise SpecError("action", f"must be one of {', '.join(ACTIONS)}, not {shown(action)}")
        value = None
        if action == "lr":
            value = read_float(data.get("value"), "learning_rate", 0.0, MAX_LEARNING_RATE, lo_open=True)
        stamp = data.get("time", 0.0)
        return cls(action, value, float(stamp) if isinstance(stamp, (int, float)) else 0.0)


def send(store: RunStore, run_id: str, action: str, value: float | None = None) -> Command:
    """Ask a running job to pause, resume, change its learning rate, or stop. Refused (RunError)
    when the run is not training: a queued run can only be stopped (cancelled)."""
    command = Command.from_dict({"action": action, "value": value, "time": time.time()})
    record = store.get(run_id)
    if command.action == "stop":
        if not record.is_active:
            raise RunError(f"run '{run_id}' is {record.status}: there is nothing to stop")
        store.request_stop(run_id)
        return command
    if record.status != "running":
        what = "still queued: it can only be stopped" if record.status == "queued" else record.status
        raise RunError(f"run '{run_id}' is {what}, so it cannot {command.action} now")
    path = store.path(run_id) / CONTROL_FILE
    if path.exists() and path.stat().st_size > MAX_CONTROL_BYTES:
        raise RunError(f"run '{run_id}' has received too many commands; stop it or let it finish")
    append_jsonl(path, command.to_dict())
    return command


def events(store: RunStore | Path, run_id: str | None = None) -> list[dict]:
    """What the job did with the commands, in order (plus each stop and continuation): of a run
    in `store`, or of the run folder `store` itself."""
    folder = store.path(run_id) if isinstance(store, RunStore) else Path(store)
    return read_jsonl(folder / EVENTS_FILE)


def paused(events_so_far: list[dict]) -> bool:
    """The last pause/resume event is a pause."""
    flips = [event["event"] for event in events_so_far if event.get("event") in ("pause", "resume")]
    return bool(flips) and flips[-1] == "pause"


def rate_in_use(events_so_far: list[dict]) -> float | None:
    """The learning rate of the last live change, or None when there was none."""
    changes = [event["to"] for event in events_so_far if event.get("event") == "lr"]
    return changes[-1] if changes else None


def is_paused(store: RunStore, run_id: str) -> bool:
    """The run is paused now: still training, and its last pause/resume event is a pause."""
    return paused(events(store, run_id)) and store.get(run_id).status == "running"


class CommandReader:
    """The job's side: new commands since the last read. One per job, so a command given while
    the CNN trains is not applied again to the baseline. Cheap when nothing changed: one stat."""

    def __init__(self, run_dir: Path | None):
        self.path = Path(run_dir) / CONTROL_FILE if run_dir is not None else None
        self.offset = self._size()  # commands sent before this job (an earlier continuation) are old

    def __repr__(self) -> str:
        return f"CommandReader(offset={self.offset})"

    def _size(self) -> int:
        try:
            return os.stat(self.path).st_size if self.path is not None else 0
        except FileNotFoundError:
            return 0

    def poll(self) -> list[Command]:
        size = self._size()
        if size <= self.offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(size - self.offset)
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a line being written is read next time
        self.offset += len(complete)
        commands = []
        for line in complete.decode("utf-8", errors="replace").splitlines():
            try:
                commands.append(Command.from_dict(json.loads(line)))
            except (ValueError, SpecError):
                continue  # a hand-written or torn line: ignored, never a crash of the job
        return commands


def record_event(run_dir: Path | None, event: str, **values) -> dict:
    record = {"event": event, **values, "time": time.time()}
    if run_dir is not None:
        append_jsonl(Path(run_dir) / EVENTS_FILE, record)
    return record
