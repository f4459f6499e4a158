"""`cnnkit sweep SWEEP.json`: every trial checked before any starts, then trained on the local
queue or a Ray cluster, a progress line per trial on stderr, the summary on stdout (with --json
its last line is the whole result). Ctrl-C stops every trial: each ends "stopped"."""

from __future__ import annotations

import sys

from cnnkit.cli.common import (
    UsageError,
    add_data_dir,
    add_runs_dir,
    data_dir_of,
    print_json,
    run_store,
)
from cnnkit.errors import UploadError
from cnnkit.specs import MAX_JSON_BYTES

BAR_WIDTH = 20


def add_command(sub) -> None:
    p = sub.add_parser("sweep", help="many seeds and configurations of one experiment, with statistics",
                       description="SWEEP.json: {\"base\": <spec>, \"grid\" | \"random\" | \"variants\": …, "
                                   "\"seeds\": 3} (docs/SWEEPS.md). Every trial is a normal run tagged with "
                                   "the sweep id.")
    p.add_argument("sweep", help="the sweep document (JSON)")
    p.add_argument("--engine", choices=("local", "ray"),
                   help="local: this machine's job queue; ray: a Ray cluster (default: CNNKIT_ENGINE, else local)")
    p.add_argument("--address", help="the Ray cluster to join (default: CNNKIT_RAY_ADDRESS, else RAY_ADDRESS, "
                                     "else a local Ray)")
    add_runs_dir(p)
    add_data_dir(p)
    p.add_argument("--json", action="store_true", help="print the result as one JSON line last, for programs")
    p.set_defaults(func=cmd_sweep)


def read_sweep(path: str):
    from cnnkit.files import read_upload
    from cnnkit.runs.sweeps import SweepSpec

    try:
        raw = read_upload(path, MAX_JSON_BYTES, "sweep file")
    except FileNotFoundError:
        raise UsageError(f"cannot read sweep file {path}: it does not exist") from None
    except UploadError as exc:
        raise UsageError(f"cannot read sweep file {path}: {exc}") from None
    try:
        return SweepSpec.from_json(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise UsageError(f"sweep file {path} is not UTF-8 text") from None


class TrialLines:
    """One line per trial event on stderr: started, each epoch, ended; `[3/8] seed 43 …`."""

    def __init__(self, store, record, stream=None):
        from cnnkit.runs.sweeps import config_label

        self.store, self.stream = store, stream or sys.stderr
        self.labels = {t["run_id"]: f"[{t['index'] + 1}/{len(record.trials)}] {config_label(t['config']) or 'base'}"
                                    f" · seed {t['seed']}" for t in record.trials}
        self.seen: dict[str, tuple] = {}

    def __repr__(self) -> str:
        return f"TrialLines({len(self.labels)} trials)"

    def __call__(self, run_id: str, meta: dict) -> None:
        progress = (self.store.progress(run_id) or {}) if meta.get("status") == "running" else {}
        state = (meta.get("status"), progress.get("model"), progress.get("epoch"))
        if self.seen.get(run_id) == state:
            return
        self.seen[run_id] = state
        self.stream.write(f"{self.labels.get(run_id, run_id)}  {self._state_text(meta, progress)}\n")
        self.stream.flush()

    @staticmethod
    def _state_text(meta: dict, progress: dict) -> str:
        status = meta.get("status")
        if status == "running" and progress.get("epochs"):
            done = int(BAR_WIDTH * (max(progress.get("epoch", 1), 1) - 1) / progress["epochs"])
            return (f"[{'#' * done}{'.' * (BAR_WIDTH - done)}] {progress.get('model', 'cnn')} "
                    f"epoch {progress.get('epoch')}/{progress['epochs']}")
        accuracy = ((meta.get("models") or {}).get("cnn") or {}).get("test_accuracy")
        if status == "finished" and accuracy is not None:
            return f"[{'#' * BAR_WIDTH}] finished: test accuracy {accuracy:.2%}"
        reason = f" ({meta['reason']})" if meta.get("reason") and status != "finished" else ""
        return f"{status}{reason}"


def summary_lines(result: dict, trials: list[dict]) -> list[str]:
    """The result for people: how many trials finished, a line per configuration (`trials` with
    their times and sizes), the verdict."""
    from cnnkit.runs.stats import summarize_trials
    from cnnkit.views.sweeps import summary_rows

    finished = sum(trial["status"] == "finished" for trial in trials)
    lines = [f"sweep {result['sweep_id']} ({result['engine']}): {finished}/{len(trials)} trials finished"]
    for row in summary_rows(summarize_trials(trials)[0]):
        lines.append("  " + "  ".join(f"{key}: {value}" for key, value in row.items()))
    if result.get("comparison"):
        lines.append(result["comparison"]["verdict"])
    return lines


def cmd_sweep(args) -> int:
    from cnnkit.runs.sweeping import create_sweep, drive, results, stop_sweep, trial_rows

    sweep = read_sweep(args.sweep)
    store = run_store(args)
    data_dir = data_dir_of(args)
    record = create_sweep(store, sweep, engine=args.engine, address=args.address)
    print(f"sweep {record.sweep_id}: {len(record.trials)} trials on the {record.engine} engine"
          + (f", about {record.estimated_seconds / 60:.0f} min" if record.estimated_seconds else ""), file=sys.stderr)
    try:
        drive(store, record.sweep_id, data_dir=data_dir, on_update=TrialLines(store, record))
    except KeyboardInterrupt:
        stop_sweep(store, record.sweep_id)  # the driver has stopped them; trials it never reached too
        print("interrupted: every trial was stopped", file=sys.stderr)
        interrupted = True
    else:
        interrupted = False
    result = results(store, record.sweep_id)
    print("\n".join(summary_lines(result, trial_rows(store, record))), file=sys.stderr if args.json else sys.stdout)
    if args.json:
        print_json(result)
    if interrupted:
        return 130
    return 0 if all(t["status"] == "finished" for t in result["trials"]) else 1
