"""What every benchmark shares: the statistics, a report section, the child processes, the
selection of benchmarks and the report around them.

Every training side runs in a fresh child process (`python -m cnnkit.lab.bench --child KIND
PARAMS`): each gets TensorFlow's default start-up state, nothing leaks from one side into the
other, and the parent never imports TensorFlow. A child prints its answer as one JSON line
after RESULT_PREFIX; `run_child` reads the last such line.

This module knows no benchmark by name: the package (`cnnkit.lab.bench`) hands `run_all` its
runners and `child_main` its children, so the benchmark modules can import this one.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cnnkit import settings
from cnnkit.errors import DataError, SpecError
from cnnkit.lab.browser import browser_available
from cnnkit.sysinfo import describe_machine, load_average, machine_info

BENCHES = ("throughput", "latency", "memory", "dashboard", "startup", "start", "whole", "bf16", "ledger", "live",
           "draw")
EXTRAS = ("levers", "hostile", "hostile-keras", "explain", "augmentation", "stop", "sweeps")  # run only when named
RESULT_PREFIX = "BENCH_RESULT "
CHILD_TIMEOUT = 3 * 3600
SKIP_NO_DATA = ("Skipped: needs the real datasets. Pass --data-dir (a folder with mnist/ and "
                "fashion-mnist/ holding the IDX files) or set CNNKIT_DATA_DIR; --quick runs on the sample.")


# ---------------------------------------------------------------------------
# The numbers


def median(values) -> float | None:
    """The median, leaving out missing measurements (None); None when nothing is left."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def percentile(values, q: int) -> float | None:
    """The q-th percentile (q a whole number, 0–100), interpolated between the closest ranks as
    numpy's default does; None for no values."""
    if q != int(q) or not 0 <= q <= 100:
        raise ValueError(f"percentile: q must be a whole number from 0 to 100, got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    if len(ordered) == 1 or q in (0, 100):  # quantiles() needs two points and gives only 1..99
        return ordered[0] if q < 100 else ordered[-1]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def steady(values: list[float]) -> float | None:
    """The median over epochs after the first (which includes tracing and warm-up)."""
    return median(values[1:] if len(values) > 1 else values)


def epoch_end_marks(marks: list[float]):
    """A run_job progress hook that appends the process CPU time at each end of a CNN epoch."""
    def hook(progress: dict) -> None:
        if progress.get("phase") == "epoch_end" and progress.get("model") == "cnn":
            marks.append(time.process_time())

    return hook


def cpu_ms_per_image(marks: list[float], images: int) -> list[float]:
    """CPU ms per training image of each epoch, from one epoch end to the next. The first epoch
    (with tracing) has no start mark and counts as 0: `steady` leaves it out."""
    cpu = [0.0] + [b - a for a, b in zip(marks, marks[1:], strict=False)]
    return [1000 * c / images for c in cpu]


# ---------------------------------------------------------------------------
# Sections and options


@dataclass
class Section:
    """One benchmark's result: a markdown block and its raw numbers."""

    title: str
    lines: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Section({self.title!r}, {len(self.lines)} lines)"

    def markdown(self) -> str:
        return "\n".join([f"### {self.title}", "", *self.lines]) + "\n"


def table(header: list[str], rows: list[list]) -> list[str]:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:,.3g}" if abs(value) < 10 else f"{value:,.0f}"
        return "–" if value is None else str(value)

    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]]


@dataclass(frozen=True)
class Options:
    data_dir: str | None
    quick: bool
    real_data: bool
    against: str | None = None  # a git revision the `live` benchmark also shows, taking turns

    def __repr__(self) -> str:
        return f"Options(quick={self.quick}, real_data={self.real_data})"


def skipped_without_data(section: Section, opts: Options) -> bool:
    """True (with the skip line added to `section`) when a full benchmark has no real data."""
    if opts.quick or opts.real_data:
        return False
    section.lines.append(SKIP_NO_DATA)
    return True


def bench_spec(preset, train_limit: int | None, epochs: int, seed: int | None = None):
    """A preset's experiment with a benchmark's epochs, training images and seed."""
    changes = {"training.epochs": epochs}
    if seed is not None:
        changes["training.seed"] = seed
    if train_limit:
        changes["dataset.train_limit"] = train_limit
    return preset.experiment().updated(changes)


def _epoch_timer_class():
    from cnnkit.model.tf_import import keras

    class _EpochTimer(keras.callbacks.Callback):
        """Wall and CPU seconds of each epoch; epoch hooks only, so Keras' loop is unchanged."""

        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.cpu_seconds: list[float] = []

        def __repr__(self) -> str:
            return f"EpochTimer({len(self.seconds)} epochs)"

        def on_epoch_begin(self, epoch, logs=None):
            self._wall, self._cpu = time.perf_counter(), time.process_time()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._wall)
            self.cpu_seconds.append(time.process_time() - self._cpu)

    return _EpochTimer


def EpochTimer():  # noqa: N802 - a class, built lazily so this module never imports TensorFlow
    return _epoch_timer_class()()


# ---------------------------------------------------------------------------
# Child processes


@contextlib.contextmanager
def checkouts(against: str | None):
    """The apps a before/after benchmark shows, taking turns: {"this checkout": None} and, with
    `against` (a git revision), {against: a temporary worktree of it}, removed afterwards."""
    apps: dict[str, Path | None] = {"this checkout": None}
    if not against:
        yield apps
        return
    folder = Path(tempfile.mkdtemp(prefix="cnnkit-against-")) / "app"
    git = ["git", "-C", str(settings.REPO_ROOT), "worktree"]
    subprocess.run([*git, "add", "--detach", str(folder), against], check=True, capture_output=True)
    try:
        yield {**apps, against: folder}
    finally:
        subprocess.run([*git, "remove", "--force", str(folder)], capture_output=True)


def child_environment(**extra: str) -> dict:
    """This process's environment with this checkout first on the path (and `extra`)."""
    root = str(settings.REPO_ROOT)
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            **extra}


def run_child(kind: str, params: dict, timeout: float = CHILD_TIMEOUT) -> dict:
    """Run one measurement in a fresh interpreter; its last RESULT line is the answer."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "cnnkit.lab.bench", "--child", kind, json.dumps(params)],
                          capture_output=True, text=True, timeout=timeout, env=child_environment(),
                          cwd=str(settings.REPO_ROOT))
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
            result["child_seconds"] = time.perf_counter() - started
            return result
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
    raise RuntimeError(f"benchmark child {kind} failed (exit {proc.returncode}): {' / '.join(tail)}")


def make_finished_run(runs_dir: str, data_dir: str | None) -> Path:
    """A small finished run to show (chollet-cnn on 2,000 images, 1 epoch, with its dense
    baseline), trained in a child process; its folder."""
    run_child("train_run", {"runs_dir": runs_dir, "data_dir": data_dir, "preset": "chollet-cnn",
                            "train_limit": 2000, "epochs": 1, "baseline": "dense-128"})
    return next(p for p in Path(runs_dir).iterdir() if not p.name.startswith("."))


def child_main(argv: list[str], children: dict[str, Callable[..., dict]]) -> int:
    """In the child: `KIND PARAMS-JSON` → children[KIND](**params), printed as a RESULT line."""
    kind, params = argv[0], json.loads(argv[1])
    result = children[kind](**params)
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------
# Which benchmarks, and the report


def has_real_data(data_dir: str | None) -> bool:
    from cnnkit.data.sources import load_raw

    try:
        return all(not load_raw(name, data_dir).source.is_sample for name in ("mnist", "fashion_mnist"))
    except DataError:
        return False


def browser_skip() -> str | None:
    """Why the app cannot be benchmarked in a browser here (a section's line), or None."""
    why_not = browser_available()
    if why_not or not (settings.REPO_ROOT / "app.py").exists():
        return f"Skipped: {why_not or 'no app.py'}."
    return None


def selected(which: list[str] | None) -> list[str]:
    names = list(which or ["all"])
    if "all" in names:
        return list(BENCHES) + [n for n in names if n in EXTRAS]
    unknown = [n for n in names if n not in BENCHES + EXTRAS]
    if unknown:
        raise SpecError("bench", f"unknown benchmark {unknown[0]!r}; choose from: all, "
                                 f"{', '.join(BENCHES + EXTRAS)}")
    return names


def report(sections: list[Section], *, quick: bool, machine: dict, seconds: float, loads: tuple) -> str:
    lines = ["## Benchmark report" + (" (QUICK: tiny smoke-test sizes, not results)" if quick else ""), "",
             f"Measured {time.strftime('%Y-%m-%d %H:%M')} in {seconds / 60:.1f} min: {describe_machine(machine)}.",
             f"Load average (1 min) at start / end: {loads[0]:.2f} / {loads[1]:.2f}.", ""]
    return "\n".join(lines) + "\n" + "\n".join(s.markdown() for s in sections)


def _reported_gpus(sections: list[Section]) -> list[str] | None:
    # The Keras reference child lists the GPUs TensorFlow saw; the parent never imports it.
    return next((r.get("gpus") for s in sections for runs in s.data.values() if isinstance(runs, dict)
                 for r in runs.get("keras", []) if isinstance(r, dict)), None)


def run_all(args, runners: dict[str, Callable[[Options], Section]]) -> int:
    """`python -m cnnkit bench`: run the chosen benchmarks, print the report (and write --output)."""
    names = selected(getattr(args, "which", None))
    data_dir = getattr(args, "data_dir", None) or settings.get().data_dir
    if data_dir and not Path(data_dir).is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder")
    opts = Options(data_dir=data_dir, quick=bool(getattr(args, "quick", False)), real_data=has_real_data(data_dir),
                   against=getattr(args, "against", None))
    started, load_start = time.perf_counter(), load_average()
    sections = []
    for name in names:
        print(f"bench: {name}…", file=sys.stderr, flush=True)
        try:
            sections.append(runners[name](opts))
        except Exception as exc:  # one broken benchmark must not lose the others' numbers
            if settings.get().debug:
                raise
            sections.append(Section(name, [f"Failed: {type(exc).__name__}: {exc}"], {"failed": True}))
        print(sections[-1].markdown(), file=sys.stderr, flush=True)  # each result as soon as it is known
    text = report(sections, quick=opts.quick, machine=machine_info(_reported_gpus(sections)),
                  seconds=time.perf_counter() - started, loads=(load_start, load_average()))
    print(text)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    return 1 if any(section.data.get("failed") is True for section in sections) else 0
