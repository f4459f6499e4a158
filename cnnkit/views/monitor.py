"""What a run is doing, in words and numbers, from its folder: for the Train and Draw pages.

Plain Python on the records `RunStore` reads (run.json, progress.json, history, batches), so
the pages stay thin and every rule here is testable without Streamlit or TensorFlow.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from cnnkit.errors import RunError
from cnnkit.runs.store import RunRecord
from cnnkit.views.text import MODEL_TITLES, fmt_pct, fmt_seconds


def model_keys(record: RunRecord) -> list[str]:
    """The models a run trains, in training order."""
    return ["cnn", "baseline"] if record.spec and record.spec.baseline else ["cnn"]


def steps_per_epoch(record: RunRecord) -> int | None:
    """Batches per epoch, from the training-set size the job reported and the batch size."""
    train = (record.meta.get("data_summary") or {}).get("train")
    if not train or not record.spec:
        return None
    return max(1, math.ceil(int(train) / record.spec.training.batch_size))


@dataclass(frozen=True)
class LiveStatus:
    """One poll of a run: a sentence, overall progress 0–1, and the current model's speed."""

    text: str
    fraction: float
    images_per_second: float | None = None
    eta_seconds: float | None = None      # for the model training now
    model: str | None = None

    def __repr__(self) -> str:
        return f"LiveStatus({self.text!r}, {self.fraction:.0%})"

    @property
    def details(self) -> str:
        """The line under the progress bar: speed, and the time left for the current model."""
        details = []
        if self.images_per_second:
            details.append(f"{self.images_per_second:,.0f} images/s")
        if self.eta_seconds and self.eta_seconds >= 1 and self.model:
            details.append(f"about {fmt_seconds(self.eta_seconds)} left for the {MODEL_TITLES[self.model]}")
        return " · ".join(details)


def _within_model(progress: dict) -> float:
    """How far the current model is, 0–1: finished batches over all batches of all epochs."""
    if progress.get("phase") == "evaluating":
        return 1.0
    epochs = max(int(progress.get("epochs") or 1), 1)
    batches = max(int(progress.get("batches") or 1), 1)
    done = (int(progress.get("epoch") or 1) - 1) * batches + int(progress.get("batch") or 0)
    return min(max(done / (epochs * batches), 0.0), 1.0)


def live_status(record: RunRecord, progress: dict | None) -> LiveStatus:
    """Describe a run from its record and progress.json (None when the job has not written one)."""
    if not record.is_active:
        return LiveStatus(record.status.capitalize(), 1.0 if record.status == "finished" else 0.0)
    if record.status == "queued":
        position = record.meta.get("queue_position")
        # Without a place in line the process has its slot and is importing TensorFlow.
        text = (f"Queued: number {position} in line (trainings run one at a time)" if position
                else "Starting: loading TensorFlow…")
        return LiveStatus(text, 0.0)
    progress = progress or {}
    phase = progress.get("phase")
    keys = model_keys(record)
    model = progress.get("model") if progress.get("model") in keys else None
    index = keys.index(model) if model else 0
    where = f"epoch {progress.get('epoch')}/{progress.get('epochs')}"
    if phase == "training" and model:
        fraction = (index + _within_model(progress)) / len(keys)
        if progress.get("paused"):
            return LiveStatus(f"⏸ Paused: the {MODEL_TITLES[model]} waits in memory at {where}, batch "
                              f"{progress.get('batch')}/{progress.get('batches')}", fraction, model=model)
        text = (f"Training the {MODEL_TITLES[model]} ({index + 1} of {len(keys)}): {where}, batch "
                f"{progress.get('batch')}/{progress.get('batches')}")
        return LiveStatus(text, fraction, progress.get("images_per_second"), progress.get("eta_seconds"), model)
    if phase in ("validating", "saving the checkpoint") and model:
        return LiveStatus(f"{phase.capitalize()}: the {MODEL_TITLES[model]} after {where}…",
                          (index + _within_model(progress)) / len(keys), model=model)
    if phase == "testing" and model:
        return LiveStatus(f"Stopped: testing the {MODEL_TITLES[model]} of epoch {progress.get('epoch')} "
                          f"(its last finished one) on the test split…", 1.0, model=model)
    if phase == "evaluating" and model:
        return LiveStatus(f"Evaluating the {MODEL_TITLES[model]} on the test set…",
                          (index + 1) / len(keys), model=model)
    if phase == "loading data":
        return LiveStatus("Loading the data…", 0.0)
    if phase == "done":
        return LiveStatus("Saving the results…", 1.0)
    # Running, but the process is still importing TensorFlow (a few seconds).
    return LiveStatus("Starting: loading TensorFlow…", 0.0)


def ended_early_text(record: RunRecord) -> str:
    """What a stopped or interrupted run kept, and whether its model was tested."""
    if record.status == "stopped" and not record.meta.get("started"):
        return "Cancelled while it waited in the queue: nothing was trained."
    reason = record.meta.get("reason") if record.status == "stopped" else f"Interrupted: {record.problem}."
    epochs = record.epochs_completed
    if not epochs:
        return f"{reason} The CNN's first epoch had not finished, so there is no model to keep or test."
    text = f"{reason} {epochs} epoch{'s' if epochs != 1 else ''} of the CNN finished; the model after epoch {epochs} is kept"
    result = record.model_result("cnn")
    if result.get("tested_epoch") == epochs and result.get("test_accuracy") is not None:
        return f"{text} and tested on the test split: {fmt_pct(result['test_accuracy'])}."
    return f"{text}; it has not been tested (Inspect can evaluate it)."


def pick_run(records: list[RunRecord], wanted: list[str | None]) -> RunRecord | None:
    """The run a page attaches to: the first wanted id that exists, else the newest queued or
    running run, else the newest finished one, else the newest of any status. `records` are
    newest first, as RunStore.list() returns them."""
    by_id = {r.run_id: r for r in records}
    for run_id in wanted:
        if run_id and run_id in by_id:
            return by_id[run_id]
    for statuses in (("queued", "running"), ("finished",)):
        for record in records:
            if record.status in statuses:
                return record
    return records[0] if records else None


def attach_run(store, wanted: list[str | None]) -> RunRecord | None:
    """pick_run(store.list(), wanted) without reading every run: the first wanted id that names a
    run (the URL's, the session's; one that is not a valid run id, from the URL, is passed over),
    else the newest active run (from the active index), else the newest finished run, else the
    newest. With 10,000 runs the listing was half of the Train page's time."""
    from cnnkit.runs.jobs import active_runs

    for run_id in wanted:
        with contextlib.suppress(RunError):
            if run_id and store.exists(run_id):
                return store.get(run_id)
    active = active_runs(store)
    return active[0] if active else store.newest("finished") or store.newest()


def result_rows(record: RunRecord) -> list[dict]:
    """One row per trained model with its final numbers, for the results table (None: not known)."""
    rows = []
    for key in model_keys(record):
        result = record.model_result(key)
        per_epoch = result.get("seconds_per_epoch") or []
        rows.append({"model": MODEL_TITLES[key], "test_accuracy": result.get("test_accuracy"),
                     "test_loss": result.get("test_loss"), "params": result.get("params"),
                     "epochs": int(result.get("epochs_completed") or 0),
                     "seconds_per_epoch": sum(per_epoch) / len(per_epoch) if per_epoch else None,
                     "seconds": result.get("seconds")})
    return rows


def _cnn_and_baseline(rows: list[dict]) -> tuple[dict, dict]:
    """The CNN's row of `result_rows` and the baseline's ({} for a run without one)."""
    return rows[0], (rows[1] if len(rows) > 1 else {})


def accuracy_delta(rows: list[dict]) -> str | None:
    """The CNN's lead over its baseline in percentage points ("+3.2 pp vs dense"), from
    `result_rows`; None unless both test accuracies are known."""
    cnn, base = _cnn_and_baseline(rows)
    if cnn["test_accuracy"] is None or base.get("test_accuracy") is None:
        return None
    return f"{(cnn['test_accuracy'] - base['test_accuracy']) * 100:+.1f} pp vs dense"


def result_metrics(rows: list[dict]) -> list[dict]:
    """The four numbers over the results table, as st.metric arguments (label, value, delta, help)."""
    cnn, base = _cnn_and_baseline(rows)
    return [
        {"label": "CNN test accuracy", "value": fmt_pct(cnn["test_accuracy"]), "delta": accuracy_delta(rows),
         "help": "pp: percentage points, CNN minus the dense baseline"},
        {"label": "Baseline test accuracy", "value": fmt_pct(base.get("test_accuracy"))},
        {"label": "CNN parameters", "value": f"{cnn['params'] or 0:,}"},
        {"label": "Training time", "value": fmt_seconds(sum(r["seconds"] or 0 for r in rows))},
    ]


def result_table(rows: list[dict]) -> list[dict]:
    """`result_rows` as the Train page's table shows them: every number formatted."""
    return [{"model": r["model"], "test accuracy": fmt_pct(r["test_accuracy"]),
             "test loss": "–" if r["test_loss"] is None else f"{r['test_loss']:.4f}",
             "parameters": f"{r['params'] or 0:,}", "epochs": r["epochs"],
             "time per epoch": fmt_seconds(r["seconds_per_epoch"]),
             "total time": fmt_seconds(r["seconds"])} for r in rows]
