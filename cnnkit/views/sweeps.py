"""What the Sweeps page (and `cnnkit sweep`) shows, without Streamlit: the trials' table, a row per
configuration, the verdict with what B costs, the best configuration, and the figures: a
parallel-coordinates chart of every finished trial and the mean accuracy against one setting.

Trials are the plain dicts of the sweeps contract; summaries are cnnkit.runs.stats.ConfigSummary.
"""

from __future__ import annotations

import json
import math

import plotly.graph_objects as go

from cnnkit.runs.stats import Comparison, ConfigSummary, config_key
from cnnkit.runs.sweeps import config_label, value_label
from cnnkit.views.axes import log_ticks
from cnnkit.views.charts import MODEL_COLORS, base_layout, run_color
from cnnkit.views.text import fmt_pct, fmt_seconds, plain_html

# A second axis splits the accuracy chart into one line per value only when its values repeat
# (a grid) and are few enough to tell apart by colour; random draws stay one line.
MAX_LINES = 10


# ---------------------------------------------------------------------------
# Tables and words


def _status_text(trial: dict) -> str:
    status = trial.get("status") or "?"
    progress = trial.get("progress")
    return f"{status} {progress:.0%}" if status == "running" and progress is not None else status


def trial_rows(trials: list[dict]) -> list[dict]:
    """The Watch table: one row per trial. "run_id" is for the page to link (and hide)."""
    return [{"#": trial.get("index", position) + 1, "configuration": config_label(trial.get("config") or {}) or "base",
             "seed": trial["seed"], "status": _status_text(trial), "test accuracy": fmt_pct(trial.get("test_accuracy")),
             "run_id": trial["run_id"]} for position, trial in enumerate(trials)]


def _points(fraction: float) -> str:
    return f"{fraction * 100:.2f}".replace("-", "−")  # a real minus: "−18.12–58.12", not "-18.12–58.12"


def summary_rows(summaries: list[ConfigSummary]) -> list[dict]:
    """A row per configuration: n, the mean accuracy, the std and the 95% interval in points."""
    return [{"configuration": s.label or "base", "n": s.summary.n, "mean": fmt_pct(s.summary.mean),
             "std (pt)": _points(s.summary.std) if s.summary.n > 1 else "–",
             "95% CI (pt)": "–" if s.summary.ci95 is None else " to ".join(_points(v) for v in s.summary.ci95),
             "mean time (s)": "–" if s.seconds is None else f"{s.seconds:.1f}",
             "params": "–" if s.params is None else f"{s.params:,}"} for s in summaries]


def cost_text(a: ConfigSummary, b: ConfigSummary) -> str | None:
    """What B costs against A: "B costs 1.3× the training time of A (41 s vs 31 s per run) and
    12,544 more parameters"; None when neither the time nor the parameters are known."""
    a_name, b_name = a.label or "base", b.label or "base"
    time = None
    if a.seconds and b.seconds is not None:
        time = (f"{b.seconds / a.seconds:.1f}× the training time of {a_name} "
                f"({fmt_seconds(b.seconds)} vs {fmt_seconds(a.seconds)} per run)")
    params = None
    if a.params is not None and b.params is not None:
        more = b.params - a.params
        params = ("the same number of parameters" if more == 0
                  else f"{abs(more):,} {'more' if more > 0 else 'fewer'} parameters")
    if time:
        return f"{b_name} costs {time}" + (f" and {params}" if params else "")
    if params:
        return f"{b_name} has {params} {'as' if b.params == a.params else 'than'} {a_name}"
    return None


def verdict_lines(comparison: Comparison, summaries: list[ConfigSummary]) -> list[str]:
    """The verdict, then what B costs beside it (when known). A and B are the first two summaries, as
    summarize_trials compares them (by position: two layer lists of one length share a label)."""
    cost = cost_text(summaries[0], summaries[1]) if len(summaries) >= 2 else None
    return [comparison.verdict] + ([cost] if cost else [])


def best_configuration(summaries: list[ConfigSummary]) -> ConfigSummary | None:
    """The highest mean accuracy; of equal means the one with fewer parameters (then the first)."""
    if not summaries:
        return None
    return min(summaries, key=lambda s: (-s.summary.mean, math.inf if s.params is None else s.params))


# ---------------------------------------------------------------------------
# Figures


def axes_of(trials: list[dict]) -> list[str]:
    """The dotted fields whose values differ between the trials' configurations, first seen first."""
    configs = {config_key(t.get("config") or {}): t.get("config") or {} for t in trials}.values()
    fields = list(dict.fromkeys(field for config in configs for field in config))
    return [field for field in fields if len({json.dumps(c.get(field), sort_keys=True) for c in configs}) > 1]


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(values: list) -> bool:
    return all(_is_number(v) for v in values)


def _codes(values: list) -> tuple[list[int], list[str]]:
    """Categorical values as integer codes (first seen first) and the text of each code."""
    keys = [json.dumps(value, sort_keys=True) for value in values]
    first = dict(zip(keys, values, strict=True))  # equal keys, equal values: any one names the code
    order = list(dict.fromkeys(keys))
    return [order.index(key) for key in keys], [value_label(first[key]) for key in order]


def _dimension(axis: str, values: list) -> dict:
    # parcoords writes its labels and ticks as plain SVG text: no HTML to escape ("&lt;" would show)
    if _numeric(values):
        return dict(label=axis, values=[float(v) for v in values])
    codes, texts = _codes(values)
    return dict(label=axis, values=codes, tickvals=list(range(len(texts))), ticktext=texts,
                range=[0, max(len(texts) - 1, 1)])


def parallel_coordinates_figure(trials: list[dict]) -> go.Figure | None:
    """Every finished trial as a line through its settings to its test accuracy, coloured by the
    accuracy. None with fewer than two finished trials or nothing that varies."""
    axes = axes_of(trials)
    done = [t for t in trials if t.get("status") == "finished" and t.get("test_accuracy") is not None]
    if len(done) < 2 or not axes:
        return None
    accuracy = [t["test_accuracy"] * 100 for t in done]
    dimensions = [_dimension(axis, [(t.get("config") or {}).get(axis) for t in done]) for axis in axes]
    dimensions.append(dict(label="test accuracy (%)", values=accuracy, tickformat=".2f"))
    # the axis names and top ticks are drawn above the lines: the lines end under the title's room
    fig = go.Figure(go.Parcoords(dimensions=dimensions, domain=dict(x=[0, 0.86], y=[0, 0.84]), line=dict(
        color=accuracy, colorscale="Viridis", showscale=True, colorbar=dict(title="accuracy (%)", thickness=12))))
    base_layout(fig, "Settings and test accuracy, one line per trial", height=400)
    fig.update_layout(margin=dict(l=60, r=40, b=30))  # the first and last axes' tick labels beside them
    return fig


def _split_axis(summaries: list[ConfigSummary], axis: str) -> str | None:
    """The one other setting that varies, when its values repeat across few lines (a grid)."""
    others = [a for a in axes_of([{"config": s.config} for s in summaries]) if a != axis]
    if len(others) != 1:
        return None
    distinct = {json.dumps(s.config.get(others[0]), sort_keys=True) for s in summaries}
    return others[0] if len(distinct) <= MAX_LINES and len(distinct) < len(summaries) else None


def _one_per_value(group: list[ConfigSummary], axis: str) -> bool:
    """Whether a line through the group's points is a curve (one mean per value), not a zigzag."""
    return len({json.dumps(s.config.get(axis)) for s in group}) == len(group)


def _groups(summaries: list[ConfigSummary], by: str | None) -> dict[str, list[ConfigSummary]]:
    groups: dict[str, list[ConfigSummary]] = {}
    for s in summaries:
        name = "" if by is None else f"{by}={value_label(s.config.get(by))}"
        groups.setdefault(name, []).append(s)
    return groups


def _points_range(summaries: list[ConfigSummary]) -> list[float] | None:
    """The y range in points around every mean and interval (grouped points would start it at 0)."""
    ends = [v * 100 for s in summaries for v in (s.summary.ci95 or (s.summary.mean,))]
    if not ends:
        return None
    pad = max((max(ends) - min(ends)) * 0.08, 0.5)
    return [min(ends) - pad, max(ends) + pad]


def _error_bars(group: list[ConfigSummary]) -> dict:
    """Each mean's 95% interval as asymmetric bars in points; none for a single seed."""
    above = [None if s.summary.ci95 is None else (s.summary.ci95[1] - s.summary.mean) * 100 for s in group]
    below = [None if s.summary.ci95 is None else (s.summary.mean - s.summary.ci95[0]) * 100 for s in group]
    return dict(type="data", symmetric=False, array=above, arrayminus=below)


def _means_trace(group: list[ConfigSummary], axis: str, numeric: bool, name: str, color: str) -> go.Scatter:
    if numeric:
        group = sorted(group, key=lambda s: s.config.get(axis))
    return go.Scatter(
        x=[s.config.get(axis) if numeric else value_label(s.config.get(axis)) for s in group],
        y=[s.summary.mean * 100 for s in group], name=plain_html(name), showlegend=bool(name),
        mode="lines+markers" if numeric and _one_per_value(group, axis) else "markers",
        line=dict(color=color, width=2), marker=dict(size=9), error_y=_error_bars(group),
        customdata=[[plain_html(s.label or "base"), s.summary.n] for s in group],
        hovertemplate="%{customdata[0]}<br>%{y:.2f}% mean over %{customdata[1]} seeds<extra></extra>")


def accuracy_by_value_figure(summaries: list[ConfigSummary], axis: str, by: str | None = None) -> go.Figure:
    """Mean test accuracy (%) against one setting's value, with each mean's 95% interval as error
    bars (none for a single seed). A second setting (`by`, or the one other that varies in a grid)
    draws one line per value of it. Numbers on a number axis (log when they span 20× or more),
    anything else on a category axis in first-seen order."""
    by = by or _split_axis(summaries, axis)
    values = [s.config.get(axis) for s in summaries]
    numeric = _numeric(values)
    fig = go.Figure([_means_trace(group, axis, numeric, name, run_color(index) if by else MODEL_COLORS["cnn"])
                     for index, (name, group) in enumerate(_groups(summaries, by).items())])
    if numeric and values and min(values) > 0 and max(values) / min(values) >= 20:
        fig.update_xaxes(type="log", **log_ticks(min(values), max(values)))
    elif not numeric:  # several lines: their points side by side at each category, not on top
        fig.update_xaxes(type="category")
        fig.update_layout(scattermode="group", scattergap=0.6)
    fig.update_xaxes(title_text=plain_html(axis))
    fig.update_yaxes(title_text="mean test accuracy (%)", range=_points_range(summaries))
    return base_layout(fig, f"Accuracy by {plain_html(axis)} (95% CI)", height=340)
