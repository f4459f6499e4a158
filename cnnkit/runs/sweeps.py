"""A sweep: one experiment (the base), what to vary in it (a grid, random draws or named variants),
over seeds; the document is {"name", "base", "grid" | "random" | "variants", "seeds"} (docs/SWEEPS.md).
A setting is a dotted field (`training.learning_rate`, `layers[0].filters`, `baseline`, a whole `layers`).
Every configuration × seed is a trial whose spec is checked (specs, then limits) before anything starts;
a bad document raises SpecError naming its field ("grid.layers[9].filters"). No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import math
import re
import statistics
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from cnnkit import settings, specs
from cnnkit.errors import SpecError, shown
from cnnkit.limits import check_spec
from cnnkit.presets import baseline_layers
from cnnkit.shapes import summarize, summarize_spec
from cnnkit.specs import ExperimentSpec, _check_mapping, _show_key, read_int
from cnnkit.views.editing import AUGMENTATION_FIELDS, FIELDS, TRAINING_FIELDS

MAX_AXES = 8
MAX_VALUES = 100                 # per grid axis, and choices of a random axis
MAX_SEEDS = 50
MAX_RANDOM_TRIALS = 500
MIN_VARIANTS, MAX_VARIANTS = 2, 10
MAX_CONFIGURATIONS = 10_000      # what configs() ever builds; the server's trial cap is far lower
SIGNIFICANT = 6                  # random draws as a person would type them: 0.00316228, not 0.0031622776601683794

# Measured once on this 2-core machine (shared with other workers): the chollet-cnn preset, 1 epoch
# on the bundled 4,000-image sample through model.training.run_job in a temporary RunStore:
# 2,375 images/s × 3 (forward + backward ≈ 3 forward passes) × 2,797,756 forward multiply-adds.
DEFAULT_MACS_PER_SECOND = 2.0e10
# The same run took 22.3 s of wall time for 2.1 s of training: a trial's fixed cost (a process,
# importing TensorFlow, loading the data, building, testing, saving) is about 20 s.
TRIAL_OVERHEAD_SECONDS = 20.0
FULL_TRAIN_IMAGES = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000}
RECENT_RUNS = 20

SECTIONS = {"dataset": specs.DatasetSpec, "training": specs.TrainingSpec, "augmentation": specs.AugmentationSpec}
_PATH = re.compile(r"(?P<section>dataset|training|augmentation)\.(?P<key>[a-z_]{1,40})"
                   r"|layers\[(?P<index>0|[1-9][0-9]{0,2})\]\.(?P<layer_key>[a-z_]{1,40})"
                   r"|(?P<whole>layers|baseline|output)")
_PATH_HELP = ("is not a setting: write section.field (training.learning_rate), layers[i].field "
              "(layers[0].filters), or layers, baseline, output")


def _locate(data: dict, path: Any, where: str | None, *, create: bool = False) -> tuple[dict, str, Any]:
    """The dict holding the setting at `path`, its key there and its default; SpecError if the base has none."""
    where = _show_key(path) if where is None else where
    match = _PATH.fullmatch(path) if isinstance(path, str) else None
    if match is None:
        raise SpecError(where, _PATH_HELP)
    if match["whole"]:
        return data, match["whole"], None
    if match["section"]:
        what = match["section"]
        owner, holder = SECTIONS[what], data.get(what) if isinstance(data.get(what), dict) else {}
        if create:  # augmentation is left out of a spec while it is off
            data[what] = holder
    else:
        index, layers = int(match["index"]), data.get("layers") if isinstance(data.get("layers"), list) else []
        if index >= len(layers):
            raise SpecError(where, f"the base has {len(layers)} layers (0–{len(layers) - 1})" if layers else
                            "the base has no layers")
        holder = layers[index] if isinstance(layers[index], dict) else {}
        owner = specs.LAYER_TYPES.get(str(holder.get("type")))
        if owner is None:
            raise SpecError(where, f"layer {index} has no known type")
        what = f"layer {index} ({owner.type})"
    key = match["key"] or match["layer_key"]
    defaults = {f.name: f.default for f in fields(owner)}
    if key not in defaults:
        raise SpecError(where, f"{what} has no setting {key!r}; its settings: {', '.join(defaults) or 'none'}")
    return holder, key, defaults[key]


def get_field(data: dict, path: str, where: str | None = None):
    """The value at a dotted path of a spec dict (`where` names it in errors); a setting left out reads as its default."""
    holder, key, default = _locate(data, path, where)
    return holder.get(key, default)


def set_field(data: dict, path: str, value, where: str | None = None) -> dict:
    """A deep copy of the spec dict with the value at `path` changed (a missing section created)."""
    changed = copy.deepcopy(data)
    holder, key, _ = _locate(changed, path, where, create=True)
    holder[key] = copy.deepcopy(value)
    return changed


def _check_setting(base_dict: dict, path: Any, where: str) -> None:
    get_field(base_dict, path, where)
    if path == "training.seed":
        raise SpecError(where, 'seeds are set with "seeds", not as a setting to vary')


def _json_values(values, where: str):
    try:
        json.dumps(values, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        raise SpecError(where, f"must be JSON values (numbers, text, true/false, lists), got {shown(values)}") from None
    return copy.deepcopy(values)


def _message(exc: SpecError) -> str:
    return str(exc)[len(exc.field) + 2:] if exc.field else str(exc)


@dataclass(frozen=True)
class Distribution:
    """Where a random sweep draws one setting from: log_uniform/uniform over [low, high], or choices."""

    kind: str                      # "log_uniform" | "uniform" | "choice"
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def __repr__(self) -> str:
        return f"Distribution({list(self.choices)!r})" if self.kind == "choice" else \
            f"Distribution({self.kind} {self.low:g}..{self.high:g})"

    @classmethod
    def from_dict(cls, data: Any, where: str = "distribution") -> Distribution:
        """[choices...], {"uniform": [lo, hi]} or {"log_uniform": [lo, hi]}."""
        if isinstance(data, list):
            if not 1 <= len(data) <= MAX_VALUES:
                raise SpecError(where, f"has {len(data)} choices; give 1 to {MAX_VALUES}")
            return cls("choice", choices=tuple(_json_values(data, where)))
        if not isinstance(data, dict) or len(data) != 1 or next(iter(data)) not in ("uniform", "log_uniform"):
            raise SpecError(where, f'must be a list of choices, {{"uniform": [lo, hi]}} or {{"log_uniform": '
                                   f'[lo, hi]}}; got {shown(data)}')
        kind, bounds = next(iter(data.items()))
        where = f"{where}.{kind}"
        if not isinstance(bounds, list) or len(bounds) != 2:
            raise SpecError(where, f"must be [low, high], got {shown(bounds)}")
        low, high = (specs.read_float(bound, where, -math.inf, math.inf) for bound in bounds)
        if not low < high:
            raise SpecError(where, f"the low end must be below the high end, got [{low:g}, {high:g}]")
        if kind == "log_uniform" and low <= 0:
            raise SpecError(where, f"a log-uniform range needs numbers above 0, got {low:g}")
        return cls(kind, low, high)

    def to_dict(self):
        return list(copy.deepcopy(self.choices)) if self.kind == "choice" else {self.kind: [self.low, self.high]}

    def draw(self, rng: np.random.Generator, *, whole: bool = False):
        """One value: a choice, or a number rounded to 6 significant digits (log_uniform: uniform in log
        space); `whole`: rounded to a whole number inside the range (filters drawn from [8, 64])."""
        if self.kind == "choice":
            return copy.deepcopy(self.choices[int(rng.integers(len(self.choices)))])
        if self.kind == "log_uniform":
            value = math.exp(float(rng.uniform(math.log(self.low), math.log(self.high))))
        else:
            value = float(rng.uniform(self.low, self.high))
        if whole:
            return min(max(round(value), math.ceil(self.low)), math.floor(self.high))
        return min(max(float(f"{value:.{SIGNIFICANT}g}"), self.low), self.high)


def value_label(value) -> str:
    """A value in a label: 0.001, true, none, adam, <4 layers> (a whole layer list)."""
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "none"}[value]
    if isinstance(value, list):
        return f"<{len(value)} layer{'' if len(value) == 1 else 's'}>"
    return f"{value:g}" if isinstance(value, float) else value if isinstance(value, str) else shown(value)


def config_label(config: dict) -> str:
    """"training.learning_rate=0.001, layers[0].filters=32"; a variant is its name ("B"); the base alone ""."""
    if set(config) == {"variant"}:
        return str(config["variant"])
    return ", ".join(f"{path}={value_label(value)}" for path, value in config.items())


@dataclass(frozen=True)
class Trial:
    index: int                     # 0-based over the sweep, configuration-major
    config: dict
    seed: int
    spec: ExperimentSpec

    def __repr__(self) -> str:
        return f"Trial({self.index}: {self.label})"

    @property
    def label(self) -> str:
        return f"{config_label(self.config) or 'base'} · seed {self.seed}"


@dataclass(frozen=True)
class SweepSpec:
    base: ExperimentSpec
    grid: tuple[tuple[str, tuple], ...] = ()
    random_trials: int = 0
    random_space: tuple[tuple[str, Distribution], ...] = ()
    random_seed: int = 0
    variants: tuple[tuple[str, dict], ...] = ()   # (name, dotted changes)
    seeds: tuple[int, ...] = ()                   # empty: the base's own seed
    name: str | None = None

    KEYS = ("name", "base", "grid", "random", "variants", "seeds")

    def __repr__(self) -> str:
        return (f"SweepSpec({self.title!r}, {self.mode}, {self.configuration_count():,} configurations × "
                f"{len(self.seed_list)} seed{'s' * (len(self.seed_list) != 1)})")

    @property
    def title(self) -> str:
        return self.name or self.base.name or self.base.preset or "custom"

    @property
    def mode(self) -> str:
        """"grid", "random", "variants", or "seeds" (the base alone over its seeds)."""
        return "grid" if self.grid else "random" if self.random_space else "variants" if self.variants else "seeds"

    @property
    def seed_list(self) -> tuple[int, ...]:
        return self.seeds or (self.base.training.seed,)

    def configuration_count(self) -> int:
        """Counted, never built: a 100-value grid on 8 axes is 10^16 configurations."""
        if self.mode == "grid":
            return math.prod(len(values) for _, values in self.grid)
        return {"random": self.random_trials, "variants": len(self.variants), "seeds": 1}[self.mode]

    @classmethod
    def from_dict(cls, data: Any) -> SweepSpec:
        _check_mapping(data, "", set(cls.KEYS), required=("base",))
        present = [key for key in ("grid", "random", "variants") if data.get(key) is not None]
        if len(present) > 1:
            raise SpecError(present[1], "use grid, random or variants, not both")
        try:
            base = ExperimentSpec.from_dict(data["base"])
        except SpecError as exc:
            raise type(exc)(f"base.{exc.field}" if exc.field else "base", _message(exc)) from None
        base_dict = base.to_dict()
        parts: dict[str, Any] = {"name": specs.read_optional_str(data.get("name"), "name"),
                                 "seeds": _read_seeds(data.get("seeds", 1), base.training.seed)}
        if present == ["grid"]:
            parts["grid"] = _read_grid(data["grid"], base_dict)
        elif present == ["random"]:
            parts.update(_read_random(data["random"], base_dict))
        elif present == ["variants"]:
            parts["variants"] = _read_variants(data["variants"], base_dict)
        return cls(base, **parts)

    @classmethod
    def from_json(cls, text: str | bytes) -> SweepSpec:
        return cls.from_dict(specs.parse_json(text, "sweep"))

    def to_dict(self) -> dict:
        data: dict[str, Any] = {"name": self.name} if self.name is not None else {}
        data["base"] = self.base.to_dict()
        if self.mode == "grid":
            data["grid"] = {path: list(copy.deepcopy(values)) for path, values in self.grid}
        elif self.mode == "random":
            data["random"] = {"trials": self.random_trials, "seed": self.random_seed,
                              "space": {path: dist.to_dict() for path, dist in self.random_space}}
        elif self.mode == "variants":
            data["variants"] = [{"name": label, "changes": copy.deepcopy(changes)} for label, changes in self.variants]
        return {**data, "seeds": list(self.seed_list)}

    def configs(self) -> list[dict]:
        """The configurations in order: a grid's product (first axis slowest), the random draws, the variants."""
        count = self.configuration_count()
        if count > MAX_CONFIGURATIONS:
            raise SpecError(self.scope_field(), f"{count:,} configurations; at most {MAX_CONFIGURATIONS:,}")
        if self.mode == "grid":
            paths = [path for path, _ in self.grid]
            return [dict(zip(paths, copy.deepcopy(combo), strict=True))
                    for combo in itertools.product(*(values for _, values in self.grid))]
        if self.mode == "random":
            return self._random_configs()
        return [{"variant": label} for label, _ in self.variants] if self.variants else [{}]

    def _random_configs(self) -> list[dict]:
        rng = np.random.default_rng(self.random_seed)
        whole = {choice.path for choice in fields_of(self.base) if choice.kind in ("int", "optional int")}
        return [{path: dist.draw(rng, whole=path in whole) for path, dist in self.random_space}
                for _ in range(self.random_trials)]

    def trials(self) -> list[Trial]:
        """Every configuration × every seed, each spec checked (the specs' rules, then this server's limits)."""
        base_dict, found = self.base.to_dict(), []
        for number, config in enumerate(self.configs(), start=1):
            for seed in self.seed_list:
                spec = self._trial_spec(base_dict, number, config, seed, check=seed == self.seed_list[0])
                found.append(Trial(len(found), copy.deepcopy(config), seed, spec))
        return found

    def _trial_spec(self, base_dict: dict, number: int, config: dict, seed: int, *, check: bool) -> ExperimentSpec:
        changes = dict(self.variants)[config["variant"]] if self.mode == "variants" else config
        try:
            data = base_dict
            for path, value in changes.items():
                data = set_field(data, path, value)
            data = set_field(data, "training.seed", seed)
            name = " · ".join(part for part in (self.title, config_label(config), f"seed {seed}") if part)
            data["name"] = "".join(c if c.isprintable() else "?" for c in name[:specs.MAX_NAME_CHARS])
            spec = ExperimentSpec.from_dict(data)
            if check:  # the seed changes nothing the limits look at
                check_spec(spec)
        except SpecError as exc:
            raise self._trial_error(exc, number, config, changes) from None
        return spec

    def _trial_error(self, exc: SpecError, number: int, config: dict, changes: dict) -> SpecError:
        """One configuration's error, named by the axis (or variant) that caused it."""
        axis = next((p for p in changes if any(a == b or a.startswith((b + ".", b + "["))  # layers[0].filters
                                               for a, b in ((exc.field, p), (p, exc.field)))), None)  # and "layers"
        if self.mode == "variants":
            index = [label for label, _ in self.variants].index(config["variant"])
            where = f"variants[{index}]" + (f".changes.{axis}" if axis else "")
        else:  # no axis at all when the limits refuse the whole network over another setting
            where = {"grid": "grid", "random": "random.space"}.get(self.mode, "base") + (f".{axis}" if axis else "")
        detail = "" if axis == exc.field or not exc.field else f"{exc.field}: "
        label = config_label(config) or "the base"
        return type(exc)(where, f"configuration {number} ({label}): {detail}{_message(exc)}")

    def scope_field(self) -> str:
        """The part of the document to shrink when the sweep as a whole is too big."""
        if self.mode == "grid":
            return f"grid.{max(self.grid, key=lambda axis: len(axis[1]))[0]}"
        return {"random": "random.trials", "variants": "variants", "seeds": "seeds"}[self.mode]


def _read_seeds(value: Any, base_seed: int) -> tuple[int, ...]:
    """3 → the base's seed, +1, +2; a list → those seeds (distinct)."""
    if not isinstance(value, list):
        count = read_int(value, "seeds", 1, min(MAX_SEEDS, specs.MAX_SEED - base_seed + 1))
        return tuple(range(base_seed, base_seed + count))
    if not 1 <= len(value) <= MAX_SEEDS:
        raise SpecError("seeds", f"has {len(value)} seeds; give 1 to {MAX_SEEDS}")
    seeds = tuple(read_int(seed, f"seeds[{i}]", 0, specs.MAX_SEED) for i, seed in enumerate(value))
    if len(set(seeds)) < len(seeds):
        raise SpecError("seeds", "has a seed twice: each seed trains once per configuration")
    return seeds


def _read_axes(data: Any, where: str, base_dict: dict) -> list[tuple[str, Any]]:
    if not isinstance(data, dict) or not data:
        raise SpecError(where, f"must be a JSON object of the settings to vary, got {shown(data)}")
    if len(data) > MAX_AXES:
        raise SpecError(where, f"has {len(data)} settings to vary; at most {MAX_AXES}")
    for path in data:
        _check_setting(base_dict, path, f"{where}.{_show_key(path)}")
    return list(data.items())


def _read_grid(data: Any, base_dict: dict) -> tuple[tuple[str, tuple], ...]:
    grid = []
    for path, values in _read_axes(data, "grid", base_dict):
        where = f"grid.{path}"
        if not isinstance(values, list) or not 1 <= len(values) <= MAX_VALUES:
            raise SpecError(where, f"must be a list of 1 to {MAX_VALUES} values, got {shown(values)}")
        values = _json_values(values, where)
        repeated = next((i for i, value in enumerate(values) if value in values[:i]), None)
        if repeated is not None:
            raise SpecError(where, f"has {value_label(values[repeated])} twice: each value is one configuration")
        grid.append((path, tuple(values)))
    return tuple(grid)


def _read_random(data: Any, base_dict: dict) -> dict:
    _check_mapping(data, "random", {"trials", "seed", "space"}, required=("trials", "space"))
    space = [(path, Distribution.from_dict(value, f"random.space.{path}"))
             for path, value in _read_axes(data["space"], "random.space", base_dict)]
    return {"random_trials": read_int(data["trials"], "random.trials", 1, MAX_RANDOM_TRIALS),
            "random_seed": read_int(data.get("seed", 0), "random.seed", 0, specs.MAX_SEED),
            "random_space": tuple(space)}


def _read_variants(data: Any, base_dict: dict) -> tuple[tuple[str, dict], ...]:
    if not isinstance(data, list) or not MIN_VARIANTS <= len(data) <= MAX_VARIANTS:
        raise SpecError("variants", f"must be a list of {MIN_VARIANTS} to {MAX_VARIANTS} variants, got {shown(data)}")
    variants: dict[str, dict] = {}
    for i, item in enumerate(data):
        where = f"variants[{i}]"
        label, changes = _check_mapping(item, where, {"name", "changes"}, required=("name",))["name"], \
            item.get("changes") or {}
        problem = "must be a non-empty name" if not isinstance(label, str) or not label.strip() else \
            specs.text_problem(label) or (f"{label!r} names two variants" if label in variants else None)
        if problem:
            raise SpecError(f"{where}.name", problem)
        if not isinstance(changes, dict):
            raise SpecError(f"{where}.changes", f"must be a JSON object of settings, got {shown(changes)}")
        for path in changes:
            _check_setting(base_dict, path, f"{where}.changes.{_show_key(path)}")
        variants[label] = _json_values(changes, f"{where}.changes")
    return tuple(variants.items())


@dataclass(frozen=True)
class FieldChoice:
    path: str
    value: Any
    kind: str                      # "int" | "float" | "bool" | "choice" | "optional int"
    choices: tuple = ()

    def __repr__(self) -> str:
        return f"FieldChoice({self.path}={self.value!r}, {self.kind})"


_KINDS = {"int": "int", "float": "float", "bool": "bool", "choice": "choice", "optional_int": "optional int",
          "count": "optional int"}


def fields_of(spec: ExperimentSpec) -> list[FieldChoice]:
    """Every single setting a sweep can vary, its value and kind (the editor's tables): training (not the
    seed: the sweep's seeds are), dataset (not which), augmentation, each layer's, the baseline."""
    table = {f.name: f for f in TRAINING_FIELDS + AUGMENTATION_FIELDS}
    found = []
    for section in ("training", "dataset", "augmentation"):
        for f in fields(SECTIONS[section]):
            path, value = f"{section}.{f.name}", getattr(getattr(spec, section), f.name)
            if path in table and path != "training.seed":
                found.append(FieldChoice(path, value, _KINDS[table[path].kind], tuple(table[path].choices)))
            elif path == "dataset.test_limit":  # no widget on Train
                found.append(FieldChoice(path, value, "optional int"))
    for i, layer in enumerate(spec.layers):
        found += [FieldChoice(f"layers[{i}].{f.name}", getattr(layer, f.name), _KINDS[f.kind], tuple(f.choices))
                  for f in FIELDS[layer.type]]
    return found + [FieldChoice("baseline", spec.baseline, "choice", (None, *specs.BASELINES))]


def estimate_seconds(spec: ExperimentSpec, macs_per_second: float) -> float:
    """Training time on the full dataset (or train_limit): per epoch each training image costs ≈ 3
    forward passes (forward and backward), each validation image one; the baseline's too if it trains."""
    summary = summarize_spec(spec)
    macs = summary.total_macs
    if spec.baseline:
        shape, classes = summary.input_shape, summary.layers[-1].output_shape[0]
        macs += summarize(baseline_layers(spec.baseline, summary.total_params, shape, classes), shape,
                          classes).total_macs
    images = spec.dataset.train_limit or FULL_TRAIN_IMAGES[spec.dataset.name]
    validation = math.floor(images * spec.dataset.validation_split + 0.5)  # as data.prepare splits
    return macs * (3 * (images - validation) + validation) * spec.training.epochs / macs_per_second


def measured_macs_per_second(records) -> float | None:
    """This server's training speed (multiply-adds per second): the median over its last 20
    finished runs; None before the first."""
    rates = []
    for record in sorted(records, key=lambda r: r.created, reverse=True):
        speeds = record.model_result("cnn").get("images_per_second")
        speeds = [speeds] if isinstance(speeds, (int, float)) else speeds
        if record.status == "finished" and record.spec is not None and isinstance(speeds, list) and speeds \
                and all(isinstance(v, (int, float)) and 0 < v < math.inf for v in speeds):
            with contextlib.suppress(SpecError):  # an imported run's spec the calculator cannot follow
                rates.append(statistics.median(speeds) * 3 * summarize_spec(record.spec).total_macs)
    return statistics.median(rates[:RECENT_RUNS]) if rates else None


@dataclass(frozen=True)
class SweepCheck:
    trials: list[Trial]
    estimated_seconds: float         # every trial's, summed (its fixed cost included)
    per_trial_seconds: list[float]

    def __repr__(self) -> str:
        return f"SweepCheck({len(self.trials)} trials, about {self.estimated_seconds / 60:.1f} min)"


def check_sweep(sweep: SweepSpec, *, macs_per_second: float | None = None) -> SweepCheck:
    """Every trial checked and its time estimated, within this server's caps (trials, minutes)."""
    s = settings.get()
    configurations, seeds = sweep.configuration_count(), len(sweep.seed_list)
    total = configurations * seeds
    blamed = "seeds" if seeds > 1 and configurations <= s.max_sweep_trials else sweep.scope_field()
    if total > s.max_sweep_trials:  # counted before a single spec is built
        raise SpecError(blamed, f"{configurations:,} configuration{'s' * (configurations != 1)} × {seeds} "
                                f"seed{'s' * (seeds != 1)} = {total:,} trials; this server allows {s.max_sweep_trials:,} "
                                f"(CNNKIT_MAX_SWEEP_TRIALS)")
    trials = sweep.trials()
    rate = macs_per_second or DEFAULT_MACS_PER_SECOND
    per_trial = [estimate_seconds(trial.spec, rate) + TRIAL_OVERHEAD_SECONDS for trial in trials]
    if s.max_sweep_minutes > 0 and sum(per_trial) > 60 * s.max_sweep_minutes:
        raise SpecError(blamed, f"{total:,} trial{'s' * (total != 1)} would take about {sum(per_trial) / 60:,.0f} min; this "
                                f"server allows {s.max_sweep_minutes:g} min (CNNKIT_MAX_SWEEP_MINUTES)")
    return SweepCheck(trials, sum(per_trial), per_trial)
