"""The run ledger: runs as table rows, their curves as plain lists, a run as a zip download.

The Compare page is a thin view over these functions. They read only the run folder's JSON
files (never TensorFlow), and tolerate damaged runs, which appear as rows with their problem.

With thousands of runs the pages show a window of them: the newest that match what the person
typed (`find_runs`), plus the runs that must stay reachable (the chosen one, the URL's), and
say how many are left out and how to find them (`run_window`). A run picker reads no more than
it shows (`RunChoices`, `picker_window`): the newest 100 of 10,000 runs are ~100 run.json files.
"""

from __future__ import annotations

import io
import itertools
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import CnnkitError, RunError
from cnnkit.presets import PRESETS
from cnnkit.runs.store import RunRecord, RunStore
from cnnkit.shapes import summarize_spec
from cnnkit.specs import ExperimentSpec
from cnnkit.views.text import plain, run_label

SCATTER_RUNS = 200  # the newest runs drawn against their cost: 1,000 (4,000 SVG markers) cost Compare ~0.3 s more
LEDGER_ROWS = 200  # the newest runs Compare lists (table, overlay, one run); the others by its Find box
STATUS_RUNS = 1_000  # the newest runs whose statuses Home counts
PICKER_RUNS = 100  # the newest runs a page's run picker offers (ui.select_run); the others by its Find box
FIND_HINT = "part of a name, a status, a dataset or a date as in the run id (20261201)"
ZIP_FILES = ("model.keras", "baseline.keras", "spec.json", "run.json", "history.json")


def architecture_label(spec: ExperimentSpec | None) -> str:
    """The preset name when the layers are still the preset's, else what the network is made of."""
    if spec is None:
        return "?"
    preset = PRESETS.get(spec.preset or "")
    if preset is not None and tuple(preset.layers) == tuple(spec.layers):
        return preset.name
    counts: dict[str, int] = {}
    for layer in spec.layers:
        if layer.type in ("conv2d", "dense"):
            counts[layer.type] = counts.get(layer.type, 0) + 1
    parts = [f"{n} {kind.removesuffix('2d')}" for kind, n in counts.items()]
    made_of = ", ".join(parts) or "no conv/dense"
    return f"{preset.name}, edited ({made_of})" if preset else f"custom ({made_of})"


def imported_label(record: RunRecord) -> str:
    """What an imported run's model is: rebuildable (its layers map to cnnkit's) or not."""
    return "imported, rebuildable" if record.rebuildable else "imported (not rebuildable)"


def planned_params(record: RunRecord) -> int | None:
    """Parameters of the CNN: what training reported, else what the spec implies."""
    params = record.model_result("cnn").get("params")
    if params is not None:
        return int(params)
    if record.spec is None:
        return None
    try:
        return summarize_spec(record.spec).total_params
    except CnnkitError:
        return None


def ledger_row(record: RunRecord) -> dict:
    spec, cnn, baseline = record.spec, record.model_result("cnn"), record.model_result("baseline")
    source = record.meta.get("data_source") or {}
    imported = record.kind == "imported"
    epochs = "–" if imported else f"{record.epochs_completed}/{spec.training.epochs}" if spec else "?"
    extended = sum(int(part.get("epochs") or 0) for part in record.meta.get("extensions") or []
                   if isinstance(part, dict))
    if extended and not imported:
        epochs += f" (extended +{extended})"  # continued from a checkpoint, not trained in one go
    return {
        "name": record.name,
        "status": record.status,
        "dataset": record.dataset or "?",
        "data": ("SAMPLE" if source.get("is_sample") else "full") if source else "–",
        "architecture": imported_label(record) if imported else architecture_label(spec),
        "params": planned_params(record),
        "optimizer": "–" if imported else f"{spec.training.optimizer} {spec.training.learning_rate:g}" if spec else "?",
        "epochs": epochs,
        "test accuracy": cnn.get("test_accuracy"),
        "baseline accuracy": baseline.get("test_accuracy"),
        "baseline params": baseline.get("params"),
        "time (s)": cnn.get("seconds"),
        "baseline time (s)": baseline.get("seconds"),
        "problem": record.problem,
        "run_id": record.run_id,
    }


def ledger_rows(records: list[RunRecord]) -> list[dict]:
    return [ledger_row(record) for record in records]


def find_runs(records: list[RunRecord], query: str) -> list[RunRecord]:
    """The runs whose name, run id, status or dataset contain every word of `query` (any case),
    in their order; all of them for an empty query."""
    words = query.casefold().split()
    if not words:
        return list(records)
    found = []
    for record in records:
        about = "\n".join((record.name, record.run_id, record.status, record.dataset or "")).casefold()
        if all(word in about for word in words):
            found.append(record)
    return found


def compare_records(store: RunStore, query: str = "", keep=()) -> list[RunRecord]:
    """The runs Compare works with, newest first: all of them while the person searches; else
    the newest it can list or draw, one more (to know that there are more), and the runs of `keep`
    (chosen before) that exist. A new server need not read 10,000 run.json files to open it."""
    if query.strip():
        return store.list()
    records = store.recent(max(LEDGER_ROWS, SCATTER_RUNS) + 1)
    have = {record.run_id for record in records}
    every = RunChoices(store)
    return records + [record for run_id in dict.fromkeys(keep) if run_id not in have
                      and (record := every.get(run_id)) is not None]  # deleted meanwhile, or a stale id: left out


def run_window(records: list[RunRecord], query: str = "", limit: int | None = None,
               keep=(), total: int | None = None) -> tuple[list[RunRecord], str]:
    """What a page lists of `records` (newest first): the newest `limit` that match `query`
    (find_runs), then each run of `keep` (run ids: the chosen run, the URL's) that exists and is
    not among them. With a note for the person, markdown-safe: how many runs are not listed and
    how to reach them ("" when every run is listed). `limit` None: LEDGER_ROWS; `total`: how many
    runs there are when `records` is a window of them (compare_records)."""
    limit = LEDGER_ROWS if limit is None else limit
    total = len(records) if total is None else total
    found = find_runs(records, query)
    shown = found[:limit]
    listed = {record.run_id for record in shown}
    wanted = {run_id for run_id in keep if run_id and run_id not in listed}
    if wanted:
        extra = [record for record in records if record.run_id in wanted]
        shown += extra
        listed.update(record.run_id for record in extra)
    hidden = max(0, total - len(listed))  # runs made since they were counted are listed, not hidden
    if not hidden:
        return shown, ""
    if query.strip():
        return shown, f"{matched_note(len(found), total, query, limit)}; {hidden:,} not listed. Find: {FIND_HINT}."
    return shown, (f"The newest {min(limit, len(found)):,} of {total:,} runs are listed; {hidden:,} older ones are "
                   f"not: find any run by {FIND_HINT}.")


def matched_note(found: int, total: int, query: str, limit: int) -> str:
    """How many of the runs a Find matched, and whether only the newest `limit` of them are listed."""
    matched = f"{found:,} of {total:,} runs match “{plain(query.strip())}”"
    return matched + (f", the newest {limit:,} of them listed" if found > limit else "")


def every_run(record: RunRecord) -> bool:
    return True


def is_finished(record: RunRecord) -> bool:
    return record.status == "finished"


@dataclass(frozen=True)
class RunChoices:
    """The runs of `store` that `keep` accepts, newest first, each read only when it is reached
    (RunStore.scan): a page offers the newest and never lists the rest unless searched. `source`
    gives the runs to choose from, newest first (an index of some of them: runs/imported.py)."""

    store: RunStore
    keep: Callable[[RunRecord], bool] = every_run
    source: Callable[[RunStore], Iterable[RunRecord]] = RunStore.scan

    def __repr__(self) -> str:
        return f"RunChoices({self.store.root}, {getattr(self.keep, '__name__', 'keep')})"

    def __iter__(self) -> Iterator[RunRecord]:
        return (record for record in self.source(self.store) if self.keep(record))

    def __bool__(self) -> bool:
        return self.first() is not None

    def first(self, where: Callable[[RunRecord], bool] | None = None) -> RunRecord | None:
        return next((record for record in self if where is None or where(record)), None)

    def newest(self, count: int) -> list[RunRecord]:
        return list(itertools.islice(self, count))

    def get(self, run_id: str | None) -> RunRecord | None:
        """The run, if it exists and is one of these (a URL's run id is anybody's text)."""
        if not run_id:
            return None
        try:
            record = self.store.get(run_id)
        except RunError:
            return None
        return record if self.keep(record) else None


def picker_window(choices: RunChoices, query: str = "", limit: int | None = None,
                  keep=(), newest: list[RunRecord] | None = None) -> tuple[list[RunRecord], str]:
    """What a run picker offers when there are more than `limit` runs (PICKER_RUNS): the newest
    `limit` that match `query` (find_runs), then each run of `keep` (the chosen run, the URL's)
    that is one of them. With a note, markdown-safe. Only a query reads every run.json; `newest`:
    the newest `limit`, when the caller has them already."""
    limit = PICKER_RUNS if limit is None else limit
    if query.strip():
        everything = list(choices)
        found = find_runs(everything, query)
        shown = found[:limit]
    else:
        shown = list(newest) if newest is not None else choices.newest(limit)
    listed = {record.run_id for record in shown}
    for run_id in dict.fromkeys(keep):
        if run_id not in listed and (record := choices.get(run_id)) is not None:
            shown.append(record)
            listed.add(run_id)
    if query.strip():
        return shown, f"{matched_note(len(found), len(everything), query, limit)}. Find: {FIND_HINT}."
    return shown, f"The newest {limit:,} are listed: find any other by {FIND_HINT}."


def epoch_curve(history: list[dict], model: str, metric: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one model's per-epoch metric; epochs without the metric are skipped."""
    epochs, values = [], []
    for record in history:
        if record.get("model") == model and record.get(metric) is not None:
            epochs.append(int(record["epoch"]))
            values.append(float(record[metric]))
    return epochs, values


def best_metric(history: list[dict], model: str, preferred: str, fallback: str) -> str:
    """`preferred` (e.g. val_accuracy) if the model's history has it, else `fallback`."""
    return preferred if epoch_curve(history, model, preferred)[0] else fallback


def run_zip_bytes(run_dir: str | Path, script: str | None = None) -> bytes:
    """The run's models and JSON files as one zip, in memory, under a folder named like the run;
    with `script`, also the standalone training script (train.py) that rebuilds the model."""
    run_dir = Path(run_dir)
    present = [name for name in ZIP_FILES if (run_dir / name).is_file()]
    if not present:
        raise RunError(f"run folder {run_dir.name} has none of {', '.join(ZIP_FILES)}")
    buffer = io.BytesIO()
    # .keras files are zips already: storing them uncompressed saves time and loses nothing.
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in present:
            method = zipfile.ZIP_STORED if name.endswith(".keras") else zipfile.ZIP_DEFLATED
            archive.write(run_dir / name, f"{run_dir.name}/{name}", compress_type=method)
        if script is not None:
            archive.writestr(f"{run_dir.name}/train.py", script, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def run_curves(label: str, history: list[dict], metric: str, validation: bool = True,
               baselines: bool = True) -> list[dict]:
    """The curves of one run for the Compare overlay: the CNN, then its baseline (dashed).

    With `validation`, the validation metric where the run has one; a run trained without a
    validation split falls back to its training metric, and its label says "(train)".
    """
    curves = []
    for model in ("cnn", "baseline") if baselines else ("cnn",):
        key = best_metric(history, model, f"val_{metric}", metric) if validation else metric
        epochs, values = epoch_curve(history, model, key)
        if not epochs:
            continue
        suffix = " · baseline" if model == "baseline" else ""
        if validation and not key.startswith("val_"):
            suffix += " (train)"
        curves.append({"label": label + suffix, "epochs": epochs, "values": values,
                       "dashed": model == "baseline"})
    return curves


def chosen_curves(chosen: list[str], names: dict[str, str], histories: dict[str, list[dict]], metric: str,
                  validation: bool, baselines: bool, color: Callable[[int], str]) -> list[dict]:
    """The Compare overlay's curves of the chosen runs (run_curves), each run in the colour of its
    place in `chosen` (`color`: charts.run_color), its baseline in the same colour."""
    return [{**curve, "color": color(n)} for n, run_id in enumerate(chosen)
            for curve in run_curves(names[run_id], histories[run_id], metric, validation, baselines)]


def without_validation(histories: dict[str, list[dict]]) -> list[str]:
    """The runs whose CNN recorded no validation loss: their validation curves fall back to the
    training ones (run_curves marks them "(train)")."""
    return [run_id for run_id, history in histories.items()
            if best_metric(history, "cnn", "val_loss", "loss") == "loss"]


def has_curves(record: RunRecord) -> bool:
    """Whether the run's history has an epoch to draw, from run.json alone (every finished epoch
    is counted there as it is appended to history.json)."""
    return any(int(result.get("epochs_completed") or 0) > 0 for result in record.models.values())


def no_curves_note(read: int, total: int) -> str:
    """Why Compare has no curves to overlay: no run has finished an epoch, or none of the `read`
    newest of `total` (compare_records)."""
    if read < total:
        return f"None of the newest {read:,} runs has finished an epoch: find an older one above to overlay its curves."
    return "No run has finished an epoch yet: curves appear here after the first one."


def overlay_choices(records: list[RunRecord], listed: list[RunRecord],
                    before: list[str] | None) -> tuple[list[str], list[str]]:
    """Compare's "Runs to overlay": (its options, its choice). The options are the listed runs that
    have curves and any run chosen `before` (kept, though a Find no longer lists it); the choice is
    what was chosen before and still has curves, else the newest three runs with curves. Both
    empty when no run has finished an epoch. run.json says which runs have curves: no history read."""
    by_id = {r.run_id: r for r in records}
    newest = list(itertools.islice((r.run_id for r in records if has_curves(r)), 3))
    if not newest:
        return [], []
    kept = [i for i in (newest if before is None else before) if i in by_id and has_curves(by_id[i])]
    options = [r.run_id for r in listed if has_curves(r)]
    return options + [i for i in kept if i not in set(options)], kept


def scatter_points(records: list[RunRecord]) -> list[dict]:
    """One point per trained model with a test accuracy: for accuracy vs params / vs time."""
    points = []
    for record in records:
        for kind in ("cnn", "baseline"):
            result = record.model_result(kind)
            if result.get("test_accuracy") is None:
                continue
            points.append({"label": record.name + (" · baseline" if kind == "baseline" else ""), "kind": kind,
                           "accuracy": result["test_accuracy"], "params": result.get("params"),
                           "seconds": result.get("seconds")})
    return points


def run_chip(record: RunRecord, name: str) -> str:
    """A run in a picker (text.run_label) under the name the page gives it (distinct where names repeat)."""
    return name + run_label(record).removeprefix(record.name)


def scatter_window(records: list[RunRecord], query: str = "") -> tuple[list[dict], str | None]:
    """The points Compare draws against their cost (the newest SCATTER_RUNS runs that `query`
    finds) and, when that leaves runs out, the chart's note saying so."""
    found = find_runs(records, query)
    note = f"The newest {SCATTER_RUNS:,} runs" + (" found" if query.strip() else "")
    return scatter_points(found[:SCATTER_RUNS]), note if len(found) > SCATTER_RUNS else None


def has_files(run_dir: str | Path) -> bool:
    """Whether the run folder has anything `run_zip_bytes` would pack."""
    return any((Path(run_dir) / name).is_file() for name in ZIP_FILES)
