"""`python -m cnnkit reproduce`: train the classic presets with their published recipes and
print a markdown table of published vs ours.

Each preset runs through `training.run_job`, the same path the dashboard uses, so the table
measures the app, not a side script. Presets that the articles trained on unscaled 0–255
pixels (normalization "none") get a second row trained on pixels /255 beside them: the
article's reading is the faithful one, the scaled one shows what the reading costs.

The full run needs the real datasets (`--data-dir` or CNNKIT_DATA_DIR) and takes tens of
minutes on a 2-core CPU. `--quick` trains every row for one epoch on a small subset of
whatever data is available (the bundled sample too): a smoke test, not a result.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit.errors import DataError
from cnnkit.presets import PRESETS, Preset, get_preset
from cnnkit.specs import ExperimentSpec
from cnnkit.sysinfo import describe_machine, load_average, machine_info

QUICK_TRAIN_LIMIT = 500    # enough batches to exercise the whole path, seconds per row
QUICK_TEST_LIMIT = 200
QUICK_EPOCHS = 1


@dataclass
class Row:
    """One trained configuration and what came of it."""

    preset: Preset
    spec: ExperimentSpec
    variant: str = ""                  # "" = the published recipe; "scaled /255" = our extra row
    status: str = "not run"
    test_accuracy: float | None = None  # fraction
    seconds_per_epoch: list[float] = field(default_factory=list)
    run_id: str = ""
    reason: str = ""
    data: str = ""

    def __repr__(self) -> str:
        return f"Row({self.label}, {self.status}, acc={self.test_accuracy})"

    @property
    def label(self) -> str:
        return f"{self.preset.name} ({self.variant})" if self.variant else self.preset.name

    @property
    def published_accuracy(self) -> float | None:
        return None if self.variant else self.preset.published.accuracy

    @property
    def delta(self) -> float | None:
        """Ours minus published, in percentage points."""
        if self.test_accuracy is None or self.published_accuracy is None:
            return None
        return 100.0 * self.test_accuracy - self.published_accuracy

    @property
    def median_seconds_per_epoch(self) -> float | None:
        return statistics.median(self.seconds_per_epoch) if self.seconds_per_epoch else None


def rows_for(names: list[str] | None, quick: bool) -> list[Row]:
    """The published recipe of each preset, plus a scaled twin for the unscaled ones."""
    presets = [get_preset(n) for n in names] if names else list(PRESETS.values())
    rows = []
    for preset in presets:
        spec = preset.experiment()
        if quick:
            spec = spec.updated({"dataset.train_limit": QUICK_TRAIN_LIMIT,
                                 "dataset.test_limit": QUICK_TEST_LIMIT,
                                 "training.epochs": QUICK_EPOCHS})
        rows.append(Row(preset, spec))
        if preset.dataset.normalization == "none":
            rows.append(Row(preset, spec.updated({"dataset.normalization": "scale"}), "scaled /255"))
    return rows


def check_full_data(rows: list[Row], data_dir: str | None) -> None:
    """A reproduction on the 4,000-image sample would be a wrong answer, not a small one."""
    from cnnkit.data.sources import load_raw

    for name in sorted({row.spec.dataset.name for row in rows}):
        source = load_raw(name, data_dir).source
        if source.is_sample:
            raise DataError(
                f"reproduce needs the full {source.title or name} dataset, but only the bundled "
                f"sample was found ({source.note}). Pass --data-dir (a folder holding mnist/ and "
                "fashion-mnist/ with the IDX files) or set CNNKIT_DATA_DIR; --quick runs on the sample.")


def run_row(row: Row, store, data_dir: str | None, hook=None) -> Row:
    from cnnkit.model.training import run_job  # TensorFlow loads here

    name = f"reproduce {row.label}"
    record = store.create(row.spec, name=name)
    row.run_id = record.run_id
    meta = run_job(store, record.run_id, data_dir=data_dir, hook=hook)
    cnn = (meta.get("models") or {}).get("cnn") or {}
    row.status = meta.get("status", "?")
    row.reason = meta.get("reason") or ""
    row.test_accuracy = cnn.get("test_accuracy")
    row.seconds_per_epoch = list(cnn.get("seconds_per_epoch") or [])
    row.data = (meta.get("data_source") or {}).get("description", "")
    return row


# ---------------------------------------------------------------------------
# The table


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}%"


def _seconds(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.1f} s" if value < 100 else f"{value:.0f} s"


def row_cells(row: Row) -> list[str]:
    published = row.preset.published
    if row.variant:
        pub_text, pub_time, pub_hw = "(not in the article)", "–", ""
    else:
        pub_text = (f"{published.metric} {published.accuracy:.2f}%" if published.accuracy is not None
                    else "(none given)")
        pub_time = _seconds(published.seconds_per_epoch)
        pub_hw = published.hardware or ("hardware not stated" if published.seconds_per_epoch else "")
    ours = _pct(None if row.test_accuracy is None else 100.0 * row.test_accuracy)
    if row.status != "finished":
        ours = f"{row.status}: {row.reason}".strip(": ")
    delta = "–" if row.delta is None else f"{row.delta:+.2f}"
    training = row.spec.training
    return [row.label, row.spec.dataset.name, str(training.epochs), pub_text, ours, delta,
            pub_time + (f" ({pub_hw})" if pub_hw and pub_time != "–" else ""),
            _seconds(row.median_seconds_per_epoch),
            f"{row.spec.dataset.normalization}, {training.optimizer} lr {training.learning_rate:g}, "
            f"batch {training.batch_size}, val split {row.spec.dataset.validation_split:g}"]


HEADER = ["preset", "dataset", "epochs", "published", "ours (test acc)", "Δ pt",
          "published s/epoch (hardware)", "ours s/epoch", "recipe"]


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row_cells(row)) + " |" for row in rows]
    return "\n".join(lines)


def notes_for(rows: list[Row]) -> list[str]:
    """The preset's own notes (how an ambiguous recipe was read), once per preset."""
    seen, notes = set(), []
    for row in rows:
        if row.preset.name in seen or not row.preset.notes:
            continue
        seen.add(row.preset.name)
        notes.append(f"- **{row.preset.name}**: {row.preset.notes}")
    return notes


def report(rows: list[Row], *, quick: bool, machine: dict, seconds: float, loads: tuple,
           precision: str = "float32") -> str:
    title = "QUICK smoke run (small subsets, 1 epoch): NOT comparable with the published figures" \
        if quick else "Published results vs ours"
    sources = sorted({row.data for row in rows if row.data})
    lines = [f"### {title}", "",
             f"Command: `python -m cnnkit reproduce{' --quick' if quick else ''}` "
             f"({time.strftime('%Y-%m-%d %H:%M')}, {seconds / 60:.1f} min).", "",
             f"Ours: {describe_machine(machine)}.",
             "Precision: float32, as the articles trained (`--precision float32`, the default)." if
             precision == "float32" else "Precision: the app's choice (`--precision auto`: bfloat16 "
             "compute for CNNs on a CPU that has it natively).",
             f"Load average at start / end: {loads[0]:.2f} / {loads[1]:.2f} "
             "(the machine is shared; times per epoch are wall-clock and include validation).", ""]
    lines += [f"Data: {src}." for src in sources] + [""]
    lines.append(markdown_table(rows))
    notes = notes_for(rows)
    if notes:
        lines += ["", "How ambiguous recipes were read (from the presets):", *notes]
    lines += ["", "Δ pt = ours − published, in percentage points of test accuracy. The articles' "
              "'val' accuracy was measured on the 10,000 test images, so it compares with our test "
              "accuracy. One run per row, seed 42."]
    return "\n".join(lines) + "\n"


@contextmanager
def _environment_for_runs(variables: dict[str, str]):
    """Set environment variables for the runs only, then put back what was there.

    run_job takes its precision from cnnkit.settings, which follows the environment. The old
    values are kept as raw text only, to be restored: settings alone interprets them.
    """
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(args) -> int:
    from cnnkit.runs.store import RunStore
    from cnnkit.views.text import TerminalProgress

    quick = bool(getattr(args, "quick", False))
    data_dir = getattr(args, "data_dir", None)
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    rows = rows_for(getattr(args, "preset", None), quick)
    if not quick:
        check_full_data(rows, data_dir)
    # The articles trained in float32; the app's bfloat16 speed-up costs tf-tutorial-cnn ~0.3 pt.
    precision = getattr(args, "precision", "float32") or "float32"
    runs_dir = getattr(args, "runs_dir", None)
    scratch = None if runs_dir else tempfile.mkdtemp(prefix="cnnkit-reproduce-")
    store = RunStore(runs_dir or scratch)
    load_start, started = load_average(), time.perf_counter()
    try:
        with _environment_for_runs({"CNNKIT_PRECISION": "float32"} if precision == "float32" else {}):
            for i, row in enumerate(rows, start=1):
                print(f"[{i}/{len(rows)}] {row.label}", file=sys.stderr, flush=True)
                run_row(row, store, data_dir, hook=None if quick else TerminalProgress())
                acc = "" if row.test_accuracy is None else f"{100 * row.test_accuracy:.2f}%"
                print(f"[{i}/{len(rows)}] {row.label}: {row.status} {acc}", file=sys.stderr, flush=True)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    text = report(rows, quick=quick, machine=machine_info(), seconds=time.perf_counter() - started,
                  loads=(load_start, load_average()), precision=precision)
    print(text)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    return 0 if all(row.status == "finished" for row in rows) else 1
