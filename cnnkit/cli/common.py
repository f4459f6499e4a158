"""What every cnnkit command shares: the usage error (exit 2, one line), the options several
commands take (--preset/--spec, the experiment's settings, --runs-dir, --data-dir), reading the
experiment with those settings applied, the runs folder, and text for a terminal."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

from cnnkit.errors import UploadError
from cnnkit.specs import BASELINES, DATASET_NAMES
from cnnkit.views.editing import TRAINING_FIELDS, Field, spec_value

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input: exit 2 with one line."""


def print_json(data) -> None:
    """One JSON line on stdout; numpy values as lists, anything else as text."""
    print(json.dumps(data, default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v)))


# ---------------------------------------------------------------------------
# Options shared by several commands


def add_runs_dir(p) -> None:
    p.add_argument("--runs-dir", dest="runs_dir", help="the runs folder (default: CNNKIT_RUNS_DIR, else ./runs)")


def add_data_dir(p) -> None:
    p.add_argument("--data-dir", dest="data_dir",
                   help="a folder of the datasets' IDX files (default: CNNKIT_DATA_DIR; without one, the "
                        "Keras cache, else the bundled sample)")


def add_experiment_source(p):
    """--preset NAME | --spec FILE, one of them required; returns the group (share adds --run)."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--preset", help="a classic architecture with its published recipe (see `cnnkit presets`)")
    group.add_argument("--spec", help="an experiment JSON file (Build's download, or written by hand)")
    return group


def option_name(path: str) -> str:
    """The command-line option of a spec path: "training.weight_decay" → "--weight-decay"."""
    return "--" + path.rpartition(".")[2].replace("_", "-")


def count(text: str) -> int | None:
    """A number of images, or "all" (the Train page's empty box)."""
    return None if text == "all" else int(text)


# The experiment's settings, each an option whose dest is its spec path. TRAINING_FIELDS is the
# Train page's table (names, bounds, conditions), so the page and the command line offer the same
# settings; these are the ones the page sets elsewhere (Data, Build, the run's name).
OTHER_SPEC_OPTIONS = {
    "dataset.test_limit": dict(type=count, metavar="N", help="test on a random subset of N test images, "
                                                             "or all (the whole test split)"),
    "baseline": dict(choices=BASELINES, help="also train a dense baseline: dense-128 (Flatten, Dense 128) or "
                                             "matched (one Dense layer with the CNN's parameter count)"),
    "name": dict(help="the run's name (shown by `cnnkit runs` and on Compare; default: the preset's)"),
}
ALIASES = {"training.learning_rate": ("--lr",)}  # the spelling before every setting had an option
KIND_TYPES = {"int": int, "count": count, "float": float}


def field_help(field: Field) -> str:
    """A TRAINING_FIELDS entry's help: its label, range, explanation, and when it applies."""
    parts = [field.label]
    if field.kind in KIND_TYPES:
        bounds = (f"{field.lo:g} to {field.hi:g}" if field.kind == "float" else
                  f"{field.lo:,.0f} to {field.hi:,.0f}")
        parts.append(bounds + (", or all" if field.kind == "count" else ""))
    # The page's words for its empty box ("empty = all of them") mean nothing here.
    parts += [part for part in field.help.split("; ") if part and not part.startswith("empty")]
    if field.shown_if:
        condition, allowed = field.shown_if
        parts.append(f"only with {option_name(condition)} {' or '.join(allowed)}")
        parts += [f"with {option_name(condition)} {value}: {label}" for value, label in field.labels]
    return "; ".join(parts).replace("%", "%%")  # argparse %-formats help


def add_field_option(p, field: Field) -> None:
    options = (option_name(field.name), *ALIASES.get(field.name, ()))
    given = dict(dest=field.name, default=argparse.SUPPRESS, help=field_help(field))  # absent unless given
    if field.kind == "bool":
        p.add_argument(*options, action=argparse.BooleanOptionalAction, **given)
    elif field.kind == "choice":
        p.add_argument(*options, choices=field.choices, **given)
    else:
        p.add_argument(*options, type=KIND_TYPES[field.kind], metavar=field.name.rpartition(".")[2].upper(),
                       **given)


def add_spec_options(p, training: bool):
    """--preset/--spec, --dataset and --json; with `training`, every setting of the experiment
    (TRAINING_FIELDS and OTHER_SPEC_OPTIONS), --runs-dir and --data-dir. Returns the
    --preset/--spec group (train adds --continue to it)."""
    group = add_experiment_source(p)
    p.add_argument("--dataset", dest="dataset.name", choices=DATASET_NAMES, default=argparse.SUPPRESS,
                   help="use this dataset instead of the experiment's")
    if training:
        for field in TRAINING_FIELDS:
            add_field_option(p, field)
        for path, options in OTHER_SPEC_OPTIONS.items():
            p.add_argument(option_name(path), dest=path, default=argparse.SUPPRESS, **options)
        add_data_dir(p)
        add_runs_dir(p)
    p.add_argument("--json", action="store_true",
                   help="the result as one JSON line on stdout, for programs (the text goes to stderr)"
                   if training else "print JSON for programs instead of text")
    return group


SPEC_PATHS = ("dataset.name", *(field.name for field in TRAINING_FIELDS), *OTHER_SPEC_OPTIONS)


# ---------------------------------------------------------------------------
# Reading what the options say


def load_spec(args):
    """The experiment of --preset or --spec (read like an upload), with the command's options
    applied and validated as the spec's own (a SpecError names the field)."""
    from cnnkit.presets import get_preset

    if getattr(args, "spec", None):
        # The upload's reader: bounded (a device or a FIFO is refused), BOM and encoding checked.
        from cnnkit.model.uploads import read_spec_upload

        path = Path(args.spec)
        try:
            spec = read_spec_upload(path)
        except FileNotFoundError:
            raise UsageError(f"cannot read spec file {path}: it does not exist") from None
        except UploadError as exc:
            raise UsageError(f"cannot read spec file {path.name}: {exc}") from None
    elif getattr(args, "preset", None):
        spec = get_preset(args.preset).experiment()
    else:
        raise UsageError("give --preset NAME or --spec FILE")
    changes = {path: getattr(args, path) for path in SPEC_PATHS if hasattr(args, path)}  # the options given
    spec = spec.updated(changes) if changes else spec
    values = {field.name: spec_value(spec, field.name) for field in TRAINING_FIELDS}
    for field in TRAINING_FIELDS:
        if field.name in changes and not field.applies(values):
            # The Train page hides such a setting; here it was asked for, so say it would do nothing.
            condition, allowed = field.shown_if
            raise UsageError(f"{option_name(field.name)} does nothing unless {option_name(condition)} is "
                             f"{' or '.join(allowed)} (it is {values[condition]})")
    return spec


def data_dir_of(args) -> str | None:
    """--data-dir, which must be a folder: a typo is bad input, not a quiet fall-back to the sample."""
    data_dir = getattr(args, "data_dir", None)
    if data_dir and not Path(data_dir).is_dir():
        raise UsageError(f"--data-dir {data_dir} is not a folder")
    return data_dir


def say_data_source(description: str) -> None:
    """Which data a result came from (the bundled SAMPLE says so itself), on stderr."""
    print(f"data: {description}", file=sys.stderr)


def run_store(args):
    """The runs folder of --runs-dir, else CNNKIT_RUNS_DIR's."""
    from cnnkit.runs.store import RunStore

    return RunStore(getattr(args, "runs_dir", None))


ZERO_WIDTH_JOINER = "\u200d"  # a format character, but harmless: it holds emoji sequences together


def terminal_text(value: object, limit: int = 80) -> str:
    """Someone's text (a run name) for one terminal line: every run of whitespace (a newline, a
    line separator) becomes one space, and what a terminal would act on or hide (ESC, a bidi
    override, a zero-width space) is written as its escape."""
    text = "".join(c if unicodedata.category(c)[0] != "C" or c == ZERO_WIDTH_JOINER
                   else c.encode("unicode_escape").decode("ascii")
                   for c in " ".join(str(value).split()))
    return text if len(text) <= limit else text[:limit - 1] + "…"
