"""The Sweeps page's form as data, without Streamlit: what a person typed or picked for each axis
becomes a list of values (or a random sweep's distribution), the axes and seeds a sweep document
(the document `cnnkit sweep` reads, see cnnkit/runs/sweeps.py), and two versions of an experiment
kept on Build the changes between them, as dotted fields.

Bad input raises SpecError naming the axis's field ("training.learning_rate: 'abc' is not a
number"), so the page can say which box to fix before anything starts.
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import quote

from cnnkit.errors import SpecError, shown
from cnnkit.specs import MAX_NAME_CHARS, ExperimentSpec, layer_from_dict
from cnnkit.views.text import fmt_seconds

MODES = {"Seeds only": "seeds", "Grid": "grid", "Random": "random", "A/B (from Build)": "variants"}
MAX_AXES = 3
MAX_VALUES = 20                      # per axis: a grid of 3 axes is already up to 8,000 configurations
SCALES = ("linear", "log")
SEPARATORS = re.compile(r"[,;\s]+")  # "0.001, 0.003 0.01": commas, semicolons or spaces
SIGNIFICANT = 6                      # a range's values as a person would type them: 0.01, not 0.010000000000000002
UNCOMPARED = ("name", "preset", "training.seed")  # what a variant is called; the seeds are the sweep's own


@dataclass(frozen=True)
class Axis:
    """One setting to vary, as the form holds it. `how` is "values" (typed in `text`, or for a
    choice field `picked`) or "range" (`low` to `high`: a grid takes `count` values on `scale`,
    a random sweep draws between them, uniformly or, on the log scale, log-uniformly)."""

    path: str
    kind: str = "float"
    how: str = "values"
    text: str = ""
    picked: tuple = ()
    low: float | None = None
    high: float | None = None
    count: int = 3
    scale: str = "linear"

    def __repr__(self) -> str:
        what = f"{self.low}..{self.high} ×{self.count} {self.scale}" if self.how == "range" else \
            (self.text or list(self.picked))
        return f"Axis({self.path!r}, {self.kind}, {what!r})"


# ---------------------------------------------------------------------------
# One axis: typed values, picked values, a range


NUMERIC = ("int", "optional int", "float")  # the kinds a range can span (sweeps.FieldChoice.kind)
WHOLE = ("int", "optional int")


def parse_value(token: str, kind: str, where: str):
    """One typed value of a field of this kind (sweeps.FieldChoice.kind: "int", "optional int"
    ("none" for none, as a train_limit of all the images), "float", "bool"; anything else: JSON)."""
    if kind == "optional int":
        return None if token.lower() == "none" else parse_value(token, "int", where)
    if kind == "int":
        number = parse_value(token, "float", where)
        if not float(number).is_integer():
            raise SpecError(where, f"{shown(token)} is not a whole number")
        return int(number)
    if kind == "float":
        try:
            number = float(token)
        except ValueError:
            raise SpecError(where, f"{shown(token)} is not a number") from None
        if not math.isfinite(number):
            raise SpecError(where, f"{shown(token)} is not a finite number")
        return number
    if kind == "bool":
        if token.lower() not in ("true", "false"):
            raise SpecError(where, f"{shown(token)}: type true or false")
        return token.lower() == "true"
    try:
        return json.loads(token)
    except ValueError:
        raise SpecError(where, f"{shown(token)} is not a JSON value") from None


def typed_values(text: str, kind: str, where: str) -> list:
    """"0.001, 0.003, 0.01" → [0.001, 0.003, 0.01]. A whole value (a field of another kind, such
    as `layers`) is typed as one JSON list of its values."""
    if kind in (*NUMERIC, "bool"):
        tokens = [token for token in SEPARATORS.split(text.strip()) if token]
        values = [parse_value(token, kind, where) for token in tokens]
    else:
        values = parse_value(text.strip() or "[]", kind, where)
        if not isinstance(values, list):
            raise SpecError(where, "type a JSON list of the values to try, e.g. [0.25, 0.5]")
    return _checked(values, where)


def range_values(low: float, high: float, count: int, scale: str, kind: str, where: str) -> list:
    """`count` values from `low` to `high`, both included: evenly spaced (linear) or with an even
    ratio (log: 0.001, 0.01, 0.1). Rounded to 6 significant digits; a whole-number field's values
    rounded to whole numbers, repeats dropped."""
    low, high = _bounds(low, high, scale, where)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_VALUES:
        raise SpecError(where, f"the number of values must be between 1 and {MAX_VALUES}, got {shown(count)}")
    steps = [i / (count - 1) for i in range(count)] if count > 1 else [0.0]
    if scale == "log":
        values = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * t) for t in steps]
    else:
        values = [low + (high - low) * t for t in steps]
    values = [float(f"{value:.{SIGNIFICANT}g}") for value in values]
    if kind in WHOLE:
        values = [int(round(value)) for value in values]
    return _checked(list(dict.fromkeys(values)), where)


def distribution(axis: Axis):
    """A random sweep's space for one axis: its values to pick from, or {"uniform"|"log_uniform": [lo, hi]}."""
    if axis.how != "range":
        return axis_values(axis)
    low, high = _bounds(axis.low, axis.high, axis.scale, axis.path)
    return {"log_uniform" if axis.scale == "log" else "uniform": [low, high]}


def axis_values(axis: Axis) -> list:
    """A grid's values for one axis, from what the form holds."""
    if axis.how == "range":
        return range_values(axis.low, axis.high, axis.count, axis.scale, axis.kind, axis.path)
    if axis.picked:
        return _checked(list(axis.picked), axis.path)
    return typed_values(axis.text, axis.kind, axis.path)


def _bounds(low, high, scale: str, where: str) -> tuple[float, float]:
    if scale not in SCALES:
        raise SpecError(where, f"the scale is one of {', '.join(SCALES)}, not {shown(scale)}")
    for value in (low, high):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SpecError(where, f"a range needs two numbers, got {shown(value)}")
    if low > high:
        raise SpecError(where, f"the range runs from {low:g} up to {high:g}: put the smaller number first")
    if scale == "log" and low <= 0:
        raise SpecError(where, f"a log range needs numbers above 0, got {low:g}")
    return float(low), float(high)


def _checked(values: list, where: str) -> list:
    if not values:
        raise SpecError(where, "give at least one value")
    if len(values) > MAX_VALUES:
        raise SpecError(where, f"{len(values)} values; at most {MAX_VALUES} on one axis")
    return values


# ---------------------------------------------------------------------------
# The sweep document


def grid_document(base: ExperimentSpec, axes: list[Axis], seeds: int) -> dict:
    """Every combination of the axes' values, each over `seeds` seeds."""
    grid = {axis.path: axis_values(axis) for axis in _distinct(axes)}
    return {"name": _name(base, " × ".join(grid)), "base": base.to_dict(), "grid": grid, "seeds": seeds}


def random_document(base: ExperimentSpec, axes: list[Axis], seeds: int, trials: int, seed: int) -> dict:
    """`trials` configurations drawn from the axes (repeatable: `seed`), each over `seeds` seeds."""
    space = {axis.path: distribution(axis) for axis in _distinct(axes)}
    return {"name": _name(base, "random " + ", ".join(space)), "base": base.to_dict(),
            "random": {"trials": trials, "seed": seed, "space": space}, "seeds": seeds}


def seeds_document(base: ExperimentSpec, seeds: int) -> dict:
    """The base alone over `seeds` seeds: how much of an accuracy is the luck of the seed?"""
    return {"name": _name(base, f"{seeds} seeds"), "base": base.to_dict(), "seeds": seeds}


def variants_document(a: dict, b: dict, seeds: int) -> dict:
    """A (the base, unchanged) against B (A with the changes between them), over the same seeds."""
    changes = changes_between(a, b)
    if not changes:
        raise SpecError("variants", "A and B are the same experiment: change something on Build and save it "
                                    "as variant B again")
    base = ExperimentSpec.from_dict(a)
    return {"name": _name(base, "A/B: " + ", ".join(changes)), "base": base.to_dict(), "seeds": seeds,
            "variants": [{"name": "A", "changes": {}}, {"name": "B", "changes": changes}]}


def _distinct(axes: list[Axis]) -> list[Axis]:
    if not axes:
        raise SpecError("axes", "choose at least one setting to vary")
    if len(axes) > MAX_AXES:
        raise SpecError("axes", f"{len(axes)} axes; at most {MAX_AXES}")
    seen = set()
    for axis in axes:
        if axis.path in seen:
            raise SpecError(axis.path, "is chosen on two axes: pick another setting")
        seen.add(axis.path)
    return axes


def _name(base: ExperimentSpec, what: str) -> str:
    return f"{base.name or base.preset or 'custom'} · {what}"[:MAX_NAME_CHARS]


# ---------------------------------------------------------------------------
# A against B: what changed


def _differences(a: dict, b: dict) -> list[tuple[str, object, object]]:
    """(dotted field, A's value, B's value) for each field that differs, in the spec's order.
    Layers of the same types one by one differ field by field (layers[3].rate); otherwise the
    whole `layers` list is B's."""
    first, second = ExperimentSpec.from_dict(a), ExperimentSpec.from_dict(b)
    found = []
    for section in ("dataset", "layers", "training", "augmentation"):
        if section == "layers":
            found += _layer_differences(first.layers, second.layers)
            continue
        mine, theirs = getattr(first, section).to_dict(), getattr(second, section).to_dict()
        found += [(f"{section}.{key}", mine[key], theirs[key]) for key in mine if mine[key] != theirs[key]]
    found += [(key, getattr(first, key), getattr(second, key)) for key in ("output", "baseline")
              if getattr(first, key) != getattr(second, key)]
    return [item for item in found if item[0] not in UNCOMPARED]


def _layer_differences(first: tuple, second: tuple) -> list[tuple[str, object, object]]:
    if [layer.type for layer in first] != [layer.type for layer in second]:
        return [("layers", [layer.to_dict() for layer in first], [layer.to_dict() for layer in second])]
    found = []
    for i, (mine, theirs) in enumerate(zip(first, second, strict=True)):
        left, right = mine.to_dict(), theirs.to_dict()
        found += [(f"layers[{i}].{key}", left[key], right[key]) for key in left if left[key] != right[key]]
    return found


def changes_between(a: dict, b: dict) -> dict:
    """B as changes to A, dotted: {"training.learning_rate": 0.003}, {"layers[0].filters": 16}, or
    {"layers": [...]} when B's layers are another stack. The name, the preset and the seed are
    not changes (both variants train on the sweep's seeds)."""
    return {path: theirs for path, _, theirs in _differences(a, b)}


def change_rows(a: dict, b: dict) -> list[dict]:
    """The changes as a table: {"setting", "A", "B"}, each value as text."""
    return [{"setting": path, "A": value_text(mine), "B": value_text(theirs)} for path, mine, theirs in _differences(a, b)]


def value_text(value) -> str:
    """A field's value in a table or a label: a layer list as its layers, 0.001 as "0.001"."""
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return " → ".join(layer_from_dict(item).describe() for item in value) if value else "no layers"
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def config_spec(document: dict, config: dict) -> ExperimentSpec:
    """The experiment of one configuration of a sweep (its first seed's): the base with the
    configuration applied, as its trial trained. SpecError if the sweep has no such configuration."""
    from cnnkit.runs.sweeps import SweepSpec

    for trial in SweepSpec.from_dict(document).trials():
        if trial.config == config:
            return trial.spec
    raise SpecError("config", f"the sweep has no configuration {shown(config)}")


# ---------------------------------------------------------------------------
# What the form shows


def field_label(choice) -> str:
    """A setting in the axis picker, with its value in the draft: "training.learning_rate (now 0.001)"."""
    value = choice.value
    now = f"{len(value)} layers" if choice.path == "layers" and isinstance(value, list) else value_text(value)
    return f"{choice.path} (now {now})"


def suggested_values(choice) -> str:
    """A first guess for the values box: a float a third of it and three times it, a count half
    and double, a switch both ways."""
    value = choice.value
    if choice.kind == "float" and isinstance(value, (int, float)) and value:
        return ", ".join(f"{v:.3g}" for v in (value / 3, value, value * 3))
    if choice.kind in WHOLE and isinstance(value, int) and value > 1:
        return ", ".join(str(v) for v in (value // 2, value, value * 2))
    if choice.kind == "bool":
        return "false, true"
    if choice.kind in NUMERIC:
        return value_text(value)
    return json.dumps([value])


def suggested_range(choice) -> tuple:
    """A first range: for a float a tenth of it to ten times it (0 to 0.5 from 0), for a whole
    number half of it to double."""
    if choice.kind in WHOLE:
        value = int(choice.value or 1)
        return max(value // 2, 1), value * 2
    value = float(choice.value or 0)
    return (value / 10, value * 10) if value > 0 else (0.0, 0.5)


def plan_text(check) -> str:
    """"4 trials · about 2 min 05 s (31 s a trial)" before anything starts (a
    sweeps.SweepCheck: the trials, their estimated seconds in all and each)."""
    count = len(check.trials)
    plan = f"{count} trial{'s' if count != 1 else ''}"
    if check.estimated_seconds is None:
        return f"{plan} · no time estimate yet"
    each = f" ({fmt_seconds(check.estimated_seconds / count)} a trial)" if count > 1 else ""
    return f"{plan} · about {fmt_seconds(check.estimated_seconds)}{each}"


def sweep_label(record) -> str:
    """A sweep in the picker: its name, when it was made, its size (a sweeping.SweepRecord)."""
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime(record.created))
    return f"{record.name} · {made} · {len(record.trials)} trials"


def trial_link(base_url: str, run_id: str, active: bool, workspace: str | None = None) -> str:
    """Where a trial's run opens: Train while it is queued or running, Inspect after."""
    page = "Train" if active else "Inspect"
    link = f"{base_url.rstrip('/')}/{page}?run={quote(run_id, safe='')}"
    return link + (f"&ws={quote(workspace, safe='')}" if workspace else "")
