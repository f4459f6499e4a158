"""Statistics of a sweep: each configuration's mean test accuracy with a Student-t 95% interval,
and A against B as paired differences over the seeds both finished, in words.

Accuracies come in as fractions (0.9812); the verdicts speak in percentage points ("0.41 pt").
Pure Python: the t quantile is the regularized incomplete beta function inverted by bisection,
because scipy is not a dependency.
"""

from __future__ import annotations

import functools
import json
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass

from cnnkit.runs.sweeps import config_label

# Differences that agree to this (fractions) are the same difference: b − a in floats leaves
# noise in the last bits (0.99 − 0.98 ≠ 0.97 − 0.96), which would make a zero std look like 1e-17.
SAME = 1e-12
TOO_FEW = "too few seeds to compare (need at least 2 paired seeds)"


# ---------------------------------------------------------------------------
# The Student t quantile


def _beta_fraction(x: float, a: float, b: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz), for x < (a+1)/(a+b+2)."""
    tiny, c, d = 1e-300, 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 10_000):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularized incomplete beta function I_x(a, b), for 0 ≤ x ≤ 1 and a, b > 0."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - (math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(x, a, b) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(1.0 - x, b, a) / b  # the fraction converges there


@functools.lru_cache(maxsize=256)
def t_critical(df: int, confidence: float = 0.95) -> float:
    """The two-sided Student t quantile: P(|T| ≤ t) = confidence with `df` degrees of freedom
    (t_critical(4) = 2.7764). P(|T| > t) = I_x(df/2, 1/2) with x = df / (df + t²), and I_x grows
    with x, so x is found by bisection and t read back from it."""
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, not {df}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    tail, low, high = 1.0 - confidence, 0.0, 1.0
    for _ in range(200):  # to the last bit of x (relative, as x is tiny for few df and high confidence)
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if incomplete_beta(middle, df / 2, 0.5) < tail:
            low = middle
        else:
            high = middle
    x = (low + high) / 2
    return math.sqrt(df * (1.0 - x) / x)


# ---------------------------------------------------------------------------
# One configuration's accuracies


@dataclass(frozen=True)
class Summary:
    n: int
    mean: float
    std: float                           # the sample std (ddof=1); 0.0 for one value
    ci95: tuple[float, float] | None     # mean ± t(0.975, n−1)·std/√n; None for one value

    def __repr__(self) -> str:
        interval = "" if self.ci95 is None else f", 95% CI {self.ci95[0]:.4f}–{self.ci95[1]:.4f}"
        return f"Summary(n={self.n}, mean={self.mean:.4f}, std={self.std:.4f}{interval})"

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "std": self.std,
                "ci95": None if self.ci95 is None else list(self.ci95)}


def _interval(mean: float, std: float, n: int) -> tuple[float, float] | None:
    if n < 2:
        return None
    half = t_critical(n - 1) * std / math.sqrt(n)
    return (mean - half, mean + half)


def summarize(values) -> Summary:
    """n, mean, sample std and the t 95% interval of some accuracies (at least one)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("nothing to summarize: no values")
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return Summary(len(values), mean, std, _interval(mean, std, len(values)))


# ---------------------------------------------------------------------------
# A against B


@dataclass(frozen=True)
class Comparison:
    a_label: str
    b_label: str
    n: int                               # the seeds both have
    mean_difference: float | None        # b − a (fractions); None without a paired seed
    std: float | None                    # of the differences (ddof=1)
    ci95: tuple[float, float] | None
    verdict: str

    def __repr__(self) -> str:
        return f"Comparison({self.b_label} − {self.a_label}, n={self.n}: {self.verdict})"

    def to_dict(self) -> dict:
        return {"a_label": self.a_label, "b_label": self.b_label, "n": self.n,
                "mean_difference": self.mean_difference, "std": self.std,
                "ci95": None if self.ci95 is None else list(self.ci95), "verdict": self.verdict}


def _pt(fraction: float) -> str:
    """A difference of fractions in percentage points, with a real minus sign: "−0.20"."""
    text = f"{fraction * 100:.2f}"
    return "−" + text[1:] if text.startswith("-") else text


def verdict_text(a_label: str, b_label: str, n: int, mean: float, ci95: tuple[float, float] | None) -> str:
    """What the paired differences b − a say, in words (see the module's contract)."""
    if n < 2 or ci95 is None:
        return TOO_FEW
    low, high = ci95
    seeds = f"{n} seeds"
    if low == high:  # every seed gave the same difference: no spread, the interval is that point
        if abs(mean) <= SAME:
            return f"no difference at {seeds}: {a_label} and {b_label} scored the same on every seed"
        winner, loser = (b_label, a_label) if mean > 0 else (a_label, b_label)
        return (f"{winner} is better by {_pt(abs(mean))} pt on every one of the {seeds} (the same difference "
                f"each time, so the 95% CI is that one value)")
    if low > 0:
        return f"{b_label} is better by {_pt(mean)} pt (95% CI {_pt(low)}–{_pt(high)}) over {seeds}"
    if high < 0:
        return f"{a_label} is better by {_pt(-mean)} pt (95% CI {_pt(-high)}–{_pt(-low)}) over {seeds}"
    return f"no detectable difference at {seeds}: the interval spans 0 ({_pt(low)} to {_pt(high)} pt)"


def compare_paired(a: dict[int, float], b: dict[int, float], a_label: str = "A", b_label: str = "B") -> Comparison:
    """B against A over the seeds both have ({seed: accuracy}): the mean of b − a, its sample std
    and t interval. Pairing removes what a seed does to both (the data order, the initial weights)."""
    differences = [b[seed] - a[seed] for seed in a if seed in b]
    n = len(differences)
    if n == 0:
        return Comparison(a_label, b_label, 0, None, None, None, TOO_FEW)
    mean = statistics.fmean(differences)
    std = statistics.stdev(differences) if n > 1 else 0.0
    if n > 1 and max(differences) - min(differences) <= SAME:
        std = 0.0
    ci95 = _interval(mean, std, n)
    return Comparison(a_label, b_label, n, mean, std, ci95, verdict_text(a_label, b_label, n, mean, ci95))


# ---------------------------------------------------------------------------
# A sweep's trials


@dataclass(frozen=True)
class ConfigSummary:
    config: dict
    label: str
    summary: Summary
    seconds: float | None                # the mean training time of the CNN per finished trial
    params: int | None

    def __repr__(self) -> str:
        return f"ConfigSummary({self.label or 'base'}: {self.summary!r})"

    def to_dict(self) -> dict:
        return {"config": self.config, **self.summary.to_dict(), "seconds": self.seconds, "params": self.params}


def config_key(config: dict) -> str:
    """A configuration as a dict key (its values may be lists)."""
    return json.dumps(config, sort_keys=True)


def _config_summary(config: dict, trials: list[dict], label: str) -> ConfigSummary:
    seconds = [t["seconds"] for t in trials if t.get("seconds") is not None]
    params = next((t["params"] for t in trials if t.get("params") is not None), None)
    return ConfigSummary(config, label, summarize(t["test_accuracy"] for t in trials),
                         statistics.fmean(seconds) if seconds else None, params)


def summarize_trials(trials: list[dict], label_of: Callable[[dict], str] = config_label,
                     ) -> tuple[list[ConfigSummary], Comparison | None]:
    """A summary per configuration of the finished trials with a test accuracy, in first-seen
    order, and when the sweep has exactly two configurations, B (the second) against A (the first)."""
    configs: dict[str, dict] = {}
    finished: dict[str, list[dict]] = {}
    for trial in trials:
        key = config_key(trial.get("config") or {})
        configs.setdefault(key, trial.get("config") or {})
        if trial.get("status") == "finished" and trial.get("test_accuracy") is not None:
            finished.setdefault(key, []).append(trial)
    summaries = [_config_summary(configs[key], finished[key], label_of(configs[key])) for key in configs
                 if key in finished]
    # two configurations of the whole sweep: a third that has not finished anything yet is no A/B
    if len(configs) != 2 or len(summaries) != 2:
        return summaries, None
    a_trials, b_trials = (finished[key] for key in configs)
    comparison = compare_paired({t["seed"]: t["test_accuracy"] for t in a_trials},
                                {t["seed"]: t["test_accuracy"] for t in b_trials},
                                summaries[0].label, summaries[1].label)
    return summaries, comparison
