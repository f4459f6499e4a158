"""Reading run.json for the ledger: its fields checked, and remembered per file.

A page lists every run on every rerun. With 10,000 runs, reading and checking each run.json
took 3–5 s (JSON decoding and the spec's validation, about equally). `read_run_json` keeps
what it read, keyed by the file's identity (inode, size, modification time): every write of
run.json replaces the file (an atomic rename gives it a new inode), so a changed run is read
again and an unchanged one costs one `stat`. Plain Python, no TensorFlow.
"""

from __future__ import annotations

import json
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnkit.errors import CnnkitError
from cnnkit.specs import ExperimentSpec

MAX_REMEMBERED = 50_000  # run.json files kept in memory (~3 KB each): more clears the lot


@dataclass(frozen=True)
class RunJson:
    """What one run.json says, checked: `problem` is why it cannot be used as it is."""

    meta: dict | None
    spec: ExperimentSpec | None
    problem: str = ""

    def __repr__(self) -> str:
        return f"RunJson(status={(self.meta or {}).get('status')!r}, problem={self.problem!r})"


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def bad_meta_field(meta: dict) -> str | None:
    """The first run.json field whose type the pages cannot use (a hand-edited or foreign file)."""
    checks = {
        "created": is_number, "updated": is_number, "finished": is_number, "requeued": is_number,
        "pid": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31,
        "pid_started": lambda v: isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63,
        "queue_position": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "name": lambda v: isinstance(v, str), "reason": lambda v: isinstance(v, str),
        "suggestion": lambda v: isinstance(v, str), "status": lambda v: isinstance(v, str),
        "models": lambda v: isinstance(v, dict) and all(isinstance(m, dict) for m in v.values()),
    }
    for key, ok in checks.items():
        if meta.get(key) is not None and not ok(meta[key]):
            return key
    for key, result in (meta.get("models") or {}).items():
        for name in ("epochs_completed", "test_accuracy", "test_loss", "params", "seconds"):
            if result.get(name) is not None and not is_number(result[name]):
                return f"models.{str(key)[:20]}.{name}"
    return None


def read_json(path: str | Path) -> Any:
    """A JSON file; ValueError for one that is not JSON, or is nested too deeply to read
    (a 100,000-deep draft.json raised RecursionError on the Build and Train pages)."""
    with open(path, encoding="utf-8") as handle:
        try:
            return json.load(handle)
        except RecursionError:
            raise ValueError(f"{os.path.basename(path)} is nested too deeply to be cnnkit's") from None


def parse_run_json(path: str | Path) -> RunJson:
    """Read and check one run.json (FileNotFoundError when there is none)."""
    try:
        meta = read_json(path)
        if not isinstance(meta, dict):
            raise ValueError("run.json is not a JSON object")
    except FileNotFoundError:
        raise
    except (ValueError, OSError, RecursionError) as exc:
        return RunJson(None, None, f"run.json is unreadable ({exc})")
    bad_field = bad_meta_field(meta)
    if bad_field:  # keep the odd values away from every page: RunRecord reads none of them
        return RunJson(None, None, f"run.json has an invalid '{bad_field}'")
    try:
        spec = ExperimentSpec.from_dict(meta.get("spec"))
    except CnnkitError as exc:
        return RunJson(meta, None, f"its spec is invalid ({exc})")
    return RunJson(meta, spec)


_remembered: dict[str, tuple[tuple, RunJson]] = {}
_lock = threading.Lock()  # the Streamlit server lists from several sessions' threads


def read_run_json(path: str | Path) -> RunJson:
    """parse_run_json, answered from memory while the file is the same file. The meta dict is
    shared between callers: treat it as read-only (RunStore.update reads the file itself)."""
    stat = os.stat(path)  # FileNotFoundError: no run.json
    identity = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    key = str(path)
    known = _remembered.get(key)
    if known is not None and known[0] == identity:
        return known[1]
    parsed = parse_run_json(path)
    with _lock:
        if len(_remembered) >= MAX_REMEMBERED:
            _remembered.clear()
        _remembered[key] = (identity, parsed)
    return parsed


def forget() -> None:
    """Drop everything read so far, as a new process starts (tests and benchmarks)."""
    with _lock:
        _remembered.clear()
