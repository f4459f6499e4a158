"""cnnkit.views.steering against hand-computed values: the schedule's rates, where events sit on
the curves, one marker per place, and the events in words."""

import math

import plotly.graph_objects as go
import pytest

from cnnkit.specs import TrainingSpec
from cnnkit.views import steering


def test_schedule_points_by_hand():
    step = TrainingSpec(learning_rate=0.1, epochs=5, schedule="step", decay_rate=0.5, decay_epochs=2)
    assert steering.schedule_points(step) == ([1, 2, 3, 4, 5], pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025]))
    cosine = TrainingSpec(learning_rate=1.0, epochs=4, schedule="cosine")
    expected = [0.5 * (1 + math.cos(math.pi * e / 4)) for e in range(4)]  # 1, 0.854, 0.5, 0.146
    assert steering.schedule_points(cosine)[1] == pytest.approx(expected)
    assert steering.schedule_note(cosine) == ""
    assert "not improved for 3 epochs" in steering.schedule_note(
        TrainingSpec(schedule="plateau", decay_epochs=3))


def test_schedule_figure_uses_a_log_axis_only_for_a_wide_range():
    assert steering.schedule_figure(TrainingSpec(epochs=3)).layout.yaxis.type == "linear"
    wide = TrainingSpec(epochs=10, schedule="exponential", decay_rate=0.5)  # 1 → 1/512
    assert steering.schedule_figure(wide).layout.yaxis.type == "log"


def test_event_places_on_the_epoch_axis():
    assert steering.event_x({"event": "pause", "epoch": 2, "batch": 50}, 100) == 1.5
    assert steering.event_x({"event": "continue", "epoch": 3, "batch": 0}, 100) == 3.0
    assert steering.event_x({"event": "lr", "epoch": "x"}, 100) is None


def test_events_at_one_place_share_one_marker_and_label():
    cnn = {"model": "cnn", "epoch": 1, "batch": 27}
    events = [{"event": "pause", **cnn}, {"event": "lr", **cnn, "from": 0.001, "to": 0.0003},
              {"event": "resume", **cnn, "paused_seconds": 4.0},
              {"event": "continue", "model": "baseline", "epoch": 3, "batch": 0}, {"event": "stop", "epoch": 3}]
    fig = steering.mark_events(go.Figure(), events, 225)
    assert [shape.x0 for shape in fig.layout.shapes] == pytest.approx([27 / 225, 3.0])
    assert [a.text for a in fig.layout.annotations] == ["⏸ paused · lr → 0.0003", "▶ continued"]
    assert steering.event_lines(events) == [
        "Learning rate of the CNN 0.001 → 0.0003 from epoch 1, batch 27.",
        "⏸ The CNN paused at epoch 1, batch 27 for 4.0 s.",
        "▶ The dense baseline continued after epoch 3."]
