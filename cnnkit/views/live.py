"""A run while it trains, as the data of the live monitor (ui.live_monitor, components/live_monitor.js):
its status, progress and curves as plain JSON, drawn in the browser without a plotting library.

Redrawing two plotly charts and a progress bar every second was most of what watching a run cost
the machine it trains on (docs/PERFORMANCE.md §12): the monitor is polled every few seconds, the
browser moves the bar on between polls at the run's own measured pace, and the curves are a few
hundred points on a canvas. The finished run's curves are still plotly (ui.show_curves).
"""

from __future__ import annotations

from cnnkit.runs.store import RunRecord
from cnnkit.views.charts import (
    CURVES_NOTE,
    MODEL_COLORS,
    NO_CURVES_YET,
    curve_points,
    nothing_to_plot,
)
from cnnkit.views.monitor import live_status, model_keys, steps_per_epoch
from cnnkit.views.steering import event_lines, event_marks
from cnnkit.views.text import model_title, status_label

MAX_BATCH_POINTS = 600  # per model and metric: more than a chart's width in pixels adds nothing
# kind → how it is drawn: line width, opacity, dashed, its dots, its name after the model's
KIND_STYLES = {"batch": (1.0, 0.5, False, None, "train, per batch"),
               "epoch": (2.5, 1.0, False, "filled", "train"),
               "val": (2.5, 1.0, True, "hollow", "validation")}


def thinned(values: list, most: int) -> list:
    """At most `most` of `values`, evenly spaced, always with the last (the newest point)."""
    if len(values) <= most:
        return list(values)
    step = len(values) / most
    kept = [values[int(i * step)] for i in range(most - 1)]
    return kept + [values[-1]]


def series(history: list[dict], batches: list[dict], metric: str, steps: int | None) -> list[dict]:
    """One metric's lines, CNN first: {label, color, width, opacity, dashed, dots, legend, x, y}."""
    points = curve_points(history, batches, metric, steps)
    lines = []
    for model in ("cnn", "baseline"):
        for kind, (width, opacity, dashed, dots, suffix) in KIND_STYLES.items():
            if (model, kind) not in points:
                continue
            xs, ys = points[(model, kind)]
            index = thinned(list(range(len(xs))), MAX_BATCH_POINTS) if kind == "batch" else range(len(xs))
            lines.append({"label": f"{model_title(model, capital=True)} {suffix}", "color": MODEL_COLORS[model],
                          "width": width, "opacity": opacity, "dashed": dashed, "dots": dots,
                          "legend": kind != "batch", "x": [round(xs[i], 4) for i in index],
                          "y": [round(ys[i], 5) for i in index]})
    return lines


def progress_pace(record: RunRecord, progress: dict | None) -> float:
    """How much of the whole run's progress bar one second of training fills now (0 when it is not
    training a batch after another: queued, paused, validating, testing)."""
    progress = progress or {}
    keys = model_keys(record)
    rate = progress.get("images_per_second")
    if (record.status != "running" or progress.get("phase") != "training" or progress.get("paused")
            or not rate or not record.spec or progress.get("model") not in keys):
        return 0.0
    batches_per_second = float(rate) / record.spec.training.batch_size
    total_batches = max(int(progress.get("epochs") or 1), 1) * max(int(progress.get("batches") or 1), 1)
    return batches_per_second / total_batches / len(keys)


def status_view(record: RunRecord, progress: dict | None, poll_seconds: float) -> dict:
    """The monitor's top: the run's status, its progress bar (now, and how fast it fills, so the
    browser can move it on until the next poll) and speed. JSON-ready; every text plain (the
    browser sets it as text, never as markup)."""
    status = live_status(record, progress)
    return {"status": {"caption": f"{status_label(record.status)} · run {record.run_id}", "text": status.text,
                       "fraction": round(min(max(float(status.fraction), 0.0), 1.0), 5),
                       "details": status.details, "pace": progress_pace(record, progress), "poll": poll_seconds}}


def curves_view(record: RunRecord, history: list[dict], batches: list[dict], events: list[dict]) -> dict:
    """The monitor's curves: loss and accuracy of the CNN and its baseline (per batch, per epoch,
    validation), the steering events marked on them and told in words."""
    steps = steps_per_epoch(record)
    marks = event_marks(events, steps)
    charts, empty = [], []
    for metric in ("loss", "accuracy"):
        lines = series(history, batches, metric, steps)
        if lines:
            charts.append({"title": "Accuracy" if metric == "accuracy" else "Loss", "percent": metric == "accuracy",
                           "series": lines, "marks": marks})
        elif history or batches:  # a diverged run's NaN: no empty chart with a made-up axis
            empty.append(nothing_to_plot(metric))
    note = CURVES_NOTE if charts else "" if empty else NO_CURVES_YET
    return {"curves": {"charts": charts, "empty": empty, "events": event_lines(events), "note": note}}
