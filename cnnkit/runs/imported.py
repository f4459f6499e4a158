"""The index of imported runs: <runs>/.imported/<run_id>, an empty file a run.

The Models page offers the models brought in from elsewhere. Finding them by reading every
run.json took a new server ~2.5 s with 10,000 runs. A run is put in the index when its import
finishes (model/importing.py); a new runs folder starts with an empty index (RunStore.create),
and one from before the index is read whole once, the first time the index is asked for. A
marker whose run has gone is dropped when it is read.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from cnnkit.errors import RunError
from cnnkit.runs.store import IMPORTED_DIR, RunRecord, RunStore


def mark_imported(store: RunStore, run_id: str) -> None:
    """Put the run in the index, if the folder has one (one that has none is indexed whole when
    the index is first read: a marker alone would hide the older imports)."""
    folder = store.root / IMPORTED_DIR
    if folder.is_dir():
        (folder / run_id).touch()


def build_index(store: RunStore) -> None:
    """The index of a folder from before it, from every run.json: made aside, then renamed into
    place, so that a crash midway leaves no index that looks complete."""
    made = Path(tempfile.mkdtemp(prefix=".imported-", dir=store.root))
    for record in store.list():
        if record.kind == "imported":
            (made / record.run_id).touch()
    try:
        made.rename(store.root / IMPORTED_DIR)
    except OSError:  # another session made it meanwhile
        shutil.rmtree(made, ignore_errors=True)


def imported_runs(store: RunStore) -> list[RunRecord]:
    """The imported runs of the store, newest first (as RunStore.list() orders them). A marker
    whose run is gone is dropped; a damaged run keeps its marker (its run.json may be mended)."""
    folder = store.root / IMPORTED_DIR
    if not store.root.is_dir():
        return []
    try:
        if not folder.is_dir():
            build_index(store)
        names = os.listdir(folder)
    except OSError:  # a read-only runs folder: read them all, as before the index
        return [record for record in store.list() if record.kind == "imported"]
    records = []
    for name in names:
        try:
            record = store.get(name)
        except RunError:  # deleted, or never a run id
            record = None
        if record is not None and record.kind == "imported":
            records.append(record)
        elif record is None or record.status != "damaged":
            with contextlib.suppress(OSError):  # a read-only folder keeps it
                (folder / name).unlink(missing_ok=True)
    return sorted(records, key=lambda r: (r.created, r.run_id), reverse=True)
