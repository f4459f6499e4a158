"""Axis ticks the figures of cnnkit.views.charts compute themselves, where plotly's own would
repeat a label ("98%, 98%") or write half of it (a log axis' "2, 5, 10, 2, 5, 100")."""

from __future__ import annotations

import math


def _nice_step(rough: float) -> float:
    """The 1-2-5 step (…, 0.01, 0.02, 0.05, 0.1, …) at or above `rough` (> 0)."""
    decade = 10.0 ** math.floor(math.log10(rough))
    return next(m * decade for m in (1, 2, 5, 10) if m * decade >= rough * (1 - 1e-9))


def percent_axis(values) -> dict:
    """An accuracy axis fixed to the values: about five ticks a 1-2-5 step apart, with the decimals
    that step needs (".0%" on 97.5–98.5% wrote "98%, 98%, 99%"). {} without a finite value."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {}
    low, high = min(finite), max(finite)
    if high - low < 0.01:  # a single point or a flat line: one percentage point around it
        low, high = (low + high) / 2 - 0.005, (low + high) / 2 + 0.005
    step = _nice_step((high - low) / 5)  # with the padding below, at least three ticks
    pad = max((high - low) * 0.08, step / 2)
    decimals = max(0, -math.floor(math.log10(step * 100) + 1e-9))
    return dict(tickformat=f".{decimals}%", tick0=0, dtick=step, range=[low - pad, high + pad])


def _short_number(value: float) -> str:
    """200000 → "200k", 1000000 → "1M", 20 → "20", 0.5 → "0.5": a log axis' tick label."""
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:g}{suffix}"
    return f"{value:g}"


def log_ticks(low: float, high: float) -> dict:
    """Explicit ticks for a log axis shown from `low` to `high` (> 0), each label the whole number:
    decades, or 1-2-5 (then every digit) when fewer than three decades fall inside. plotly's own
    minor labels read "2, 5, 10, 2, 5, 100"."""
    exponents = range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1)
    for mantissas in ((1,), (1, 2, 5), tuple(range(1, 10))):
        ticks = [m * 10.0 ** e for e in exponents for m in mantissas if low <= m * 10.0 ** e <= high]
        if len(ticks) >= 3:
            break
    return dict(tickvals=ticks, ticktext=[_short_number(t) for t in ticks])
