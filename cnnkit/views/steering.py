"""Steering, drawn: the learning-rate schedule before a run, and a run's pauses, live learning-rate
changes and continuations as markers on its curves. Plain Python and plotly, no Streamlit."""

from __future__ import annotations

import plotly.graph_objects as go

from cnnkit.specs import TrainingSpec
from cnnkit.views.charts import base_layout
from cnnkit.views.text import MODEL_TITLES, fmt_seconds

EVENT_STYLES = {"pause": ("#6b7280", "dot"), "lr": ("#7c3aed", "dash"), "continue": ("#059669", "solid")}


def schedule_points(training: TrainingSpec) -> tuple[list[int], list[float]]:
    """(epochs 1…N, the learning rate each epoch starts with) under the settings' schedule."""
    epochs = list(range(1, training.epochs + 1))
    return epochs, [training.learning_rate_at(epoch - 1) for epoch in epochs]


def schedule_note(training: TrainingSpec) -> str:
    """One sentence on what the chart cannot show, or ''."""
    if training.schedule == "plateau":
        return (f"Plateau: the rate starts at {training.learning_rate:g} and is multiplied by "
                f"{training.decay_rate:g} whenever the validation loss has not improved for "
                f"{training.decay_epochs} epochs, so when it drops is known only while training.")
    return ""


def schedule_figure(training: TrainingSpec, height: int = 220) -> go.Figure:
    epochs, rates = schedule_points(training)
    fig = go.Figure(go.Scatter(x=epochs, y=rates, mode="lines+markers", line_shape="hv",
                               line=dict(color="#7c3aed", width=2), name="learning rate",
                               hovertemplate="epoch %{x}: %{y:.3g}<extra></extra>"))
    base_layout(fig, f"Learning rate by epoch ({training.schedule})", height)
    fig.update_xaxes(title_text="epoch", dtick=max(1, len(epochs) // 10))
    spread = max(rates) / max(min(rates), 1e-30)
    fig.update_yaxes(title_text="learning rate", type="log" if spread > 20 else "linear", exponentformat="e")
    fig.update_layout(showlegend=False)
    return fig


def event_x(event: dict, steps_per_epoch: int | None) -> float | None:
    """Where an event sits on the curves' epoch axis (batch b of epoch e at e - 1 + b/steps)."""
    try:
        epoch, batch = int(event.get("epoch") or 0), int(event.get("batch") or 0)
    except (TypeError, ValueError):
        return None
    if event.get("event") == "continue":
        return float(epoch)  # it starts after that many finished epochs
    return epoch - 1 + batch / max(steps_per_epoch or batch or 1, 1)


def event_label(event: dict) -> str:
    kind = event.get("event")
    if kind == "lr":
        return f"lr → {float(event.get('to', 0)):.3g}"
    if kind == "pause":
        return "⏸ paused"
    if kind == "continue":
        return "▶ continued"
    return str(kind)


def event_marks(events: list[dict], steps_per_epoch: int | None) -> list[dict]:
    """Where pauses, learning-rate changes and continuations sit on the epoch axis (not resumes: a
    resume sits where its pause is, on a step axis): {x, label, color, dash} each. Events at one
    place share a mark and a label ("⏸ paused · lr → 0.0003"), so labels never print over each other."""
    places: dict[float, list[dict]] = {}
    for event in events:
        x = event_x(event, steps_per_epoch)
        if event.get("event") in EVENT_STYLES and x is not None:
            places.setdefault(round(x, 6), []).append(event)
    marks = []
    for x, here in places.items():
        color, dash = EVENT_STYLES[here[-1]["event"]]
        marks.append({"x": x, "label": " · ".join(dict.fromkeys(event_label(event) for event in here)),
                      "color": color, "dash": dash})
    return marks


def mark_events(fig: go.Figure, events: list[dict], steps_per_epoch: int | None) -> go.Figure:
    """`event_marks` as vertical lines with their labels on a plotly figure."""
    for mark in event_marks(events, steps_per_epoch):
        fig.add_vline(x=mark["x"], line=dict(color=mark["color"], dash=mark["dash"], width=1.5),
                      annotation_text=mark["label"], annotation_position="top left",
                      annotation_font=dict(size=10, color=mark["color"]))
    return fig


def event_lines(events: list[dict]) -> list[str]:
    """The events in words, for under the curves."""
    lines, paused_at = [], None
    for event in events:
        kind, model = event.get("event"), MODEL_TITLES.get(event.get("model"), "model")
        where = f"epoch {event.get('epoch')}, batch {event.get('batch')}"
        if kind == "pause":
            paused_at = where
        elif kind == "resume":
            lines.append(f"⏸ The {model} paused at {paused_at or where} for "
                         f"{fmt_seconds(float(event.get('paused_seconds') or 0))}.")
            paused_at = None
        elif kind == "lr":
            lines.append(f"Learning rate of the {model} {float(event.get('from', 0)):.3g} → "
                         f"{float(event.get('to', 0)):.3g} from {where}.")
        elif kind == "continue":
            lines.append(f"▶ The {model} continued after epoch {event.get('epoch')}.")
    if paused_at:
        lines.append(f"⏸ The run has been paused since {paused_at}.")
    return lines
