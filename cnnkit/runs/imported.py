"""The index of imported runs: <runs>/.imported/<run_id>, an empty file a run.

The Models page offers the models brought in from elsewhere. Finding them by reading every
run.json took a new server ~2.5 s with 10,000 runs. A run is put in the index when its import
finishes (model/importing.py); a new runs folder starts with an empty index (RunStore.create),
and one from before the index is read whole once, the first time the index is asked for. A marker whose run has gone is dropped when it is read.
"""

from __future__ import annotations

import os

from cnnkit.errors import RunError
from cnnkit.runs.store import IMPORTED_DIR, RunRecord, RunStore


def mark_imported(store: RunStore, run_id: str) -> None:
    folder = store.root / IMPORTED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / run_id).touch()


def imported_runs(store: RunStore) -> list[RunRecord]:
    """The imported runs of the store, newest first (as RunStore.list() orders them)."""
    folder = store.root / IMPORTED_DIR
    if not folder.is_dir():
        if not store.root.is_dir():
            return []
        for record in store.list():  # a folder from before the index: once
            if record.kind == "imported":
                mark_imported(store, record.run_id)
        folder.mkdir(exist_ok=True)
    records = []
    for name in os.listdir(folder):
        try:
            record = store.get(name)
        except RunError:  # deleted, or never a run id
            record = None
        if record is not None and record.kind == "imported":
            records.append(record)
        else:
            (folder / name).unlink(missing_ok=True)
    return sorted(records, key=lambda r: (r.created, r.run_id), reverse=True)
