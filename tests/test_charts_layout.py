"""Issue 9: the figures' axes, legends and empty states, checked on the figures themselves; and the
Inspect and Train pages where a figure must not be drawn (AppTest). Where a chart sits on the
screen is tests/test_browser_layout.py's job (a real browser)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.views import charts

ROOT = Path(__file__).resolve().parent.parent


def percent_labels(axis) -> list[str]:
    """The tick labels plotly writes on a linear percent axis: tick0 + k·dtick inside the range,
    each formatted with the axis' d3 format ".N%" (N decimals of a percentage)."""
    assert axis.tickformat and axis.tickformat.startswith(".") and axis.tickformat.endswith("%"), axis.tickformat
    decimals = int(axis.tickformat[1:-1])
    low, high = axis.range
    first = math.ceil((low - (axis.tick0 or 0)) / axis.dtick - 1e-9)
    ticks = [(axis.tick0 or 0) + k * axis.dtick for k in range(first, first + 1000)]
    return [f"{t * 100:.{decimals}f}%" for t in ticks if t <= high + 1e-12]


def log_labels(axis) -> list[str]:
    """The tick labels of a log axis with explicit ticks, those inside its range (log10 units)."""
    low, high = axis.range
    return [text for value, text in zip(axis.tickvals, axis.ticktext, strict=True)
            if low <= math.log10(value) <= high]


# ---------------------------------------------------------------- accuracy axes: distinct ticks


def curves(values_by_run: list[list[float]]) -> list[dict]:
    return [{"label": f"run {i}", "epochs": list(range(1, len(v) + 1)), "values": v, "color": charts.run_color(i)}
            for i, v in enumerate(values_by_run)]


def test_a_narrow_accuracy_range_gets_distinct_tick_labels():
    # 97.5–98.5%: ".0%" printed "98%, 98%, 99%" at plotly's 0.5-point ticks
    fig = charts.overlay_curves(curves([[0.975, 0.979, 0.981], [0.978, 0.983, 0.985]]), "accuracy", "accuracy",
                                percent=True)
    labels = percent_labels(fig.layout.yaxis)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    low, high = fig.layout.yaxis.range
    assert low <= 0.975 and high >= 0.985  # every point is on the chart


def test_a_wide_accuracy_range_keeps_whole_percents():
    fig = charts.overlay_curves(curves([[0.30, 0.60, 0.90]]), "accuracy", "accuracy", percent=True)
    labels = percent_labels(fig.layout.yaxis)
    assert {"40%", "60%", "80%"} <= set(labels) and len(set(labels)) == len(labels), labels  # no decimals


def test_scatter_and_training_curves_use_the_same_distinct_percent_ticks():
    points = [{"label": "a", "kind": "cnn", "accuracy": 0.9812, "params": 96_844, "seconds": 20.0},
              {"label": "b", "kind": "cnn", "accuracy": 0.9841, "params": 693_962, "seconds": 61.0},
              {"label": "a · baseline", "kind": "baseline", "accuracy": 0.9768, "params": 101_770, "seconds": 7.0}]
    labels = percent_labels(charts.accuracy_scatter(points, "params", "parameters", log_x=True).layout.yaxis)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
    history = [{"model": "cnn", "epoch": e, "accuracy": a, "val_accuracy": a - 0.001}
               for e, a in ((1, 0.981), (2, 0.984), (3, 0.986))]
    labels = percent_labels(charts.training_curves(history, [], "accuracy").layout.yaxis)
    assert len(labels) >= 3 and len(set(labels)) == len(labels), labels


# ---------------------------------------------------------------- log axes: every label in full


def test_log_axes_write_every_tick_in_full():
    # plotly's minor log labels read "2, 5, 10, 2, 5, 100": a digit without its decade
    points = [{"label": "a", "kind": "cnn", "accuracy": 0.98, "params": 96_844, "seconds": 7.2},
              {"label": "b", "kind": "cnn", "accuracy": 0.97, "params": 693_962, "seconds": 61.0}]
    by_params = charts.accuracy_scatter(points, "params", "parameters", log_x=True).layout.xaxis
    assert log_labels(by_params) == ["100k", "200k", "500k", "1M"][:len(log_labels(by_params))]
    assert {"100k", "200k", "500k"} <= set(log_labels(by_params))
    by_time = charts.accuracy_scatter(points, "seconds", "training time (s)", log_x=True).layout.xaxis
    assert {"10", "20", "50"} <= set(log_labels(by_time))
    for axis in (by_params, by_time):
        labels = log_labels(axis)
        assert len(set(labels)) == len(labels)
        # each label is the tick's value: "200k" at 200,000, "20" at 20
        for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
            number = float(text.rstrip("kM")) * {"k": 1e3, "M": 1e6}.get(text[-1], 1)
            assert number == pytest.approx(value)


def test_pixel_count_histograms_label_decades_only():
    # 50 bins of 0–255: 100 or 120 pixels each (5 or 6 values × 20), 300,000 more zeros in the first
    raw = np.concatenate([np.zeros(300_000), np.arange(256).repeat(20)]).astype(np.uint8)
    fig = charts.normalization_histograms(raw, raw / 255.0, "scale")
    for axis in (fig.layout.yaxis, fig.layout.yaxis2):
        assert axis.type == "log"
        assert list(axis.ticktext) == ["100", "1k", "10k", "100k"]
        assert [math.log10(v) for v in axis.tickvals] == [2, 3, 4, 5]


# ---------------------------------------------------------------- nothing to draw: no figure


def test_curves_without_a_finite_point_are_no_figure():
    nan = float("nan")
    diverged = [{"model": "cnn", "epoch": 1, "loss": nan, "accuracy": nan, "val_loss": nan, "val_accuracy": nan}]
    assert charts.training_curves(diverged, [{"model": "cnn", "epoch": 1, "batch": 3, "loss": nan}], "loss") is None
    assert charts.training_curves([], [], "accuracy") is None
    assert charts.overlay_curves(curves([[nan, nan]]), "accuracy", "accuracy", percent=True) is None
    assert charts.overlay_curves([], "loss", "loss") is None


# ---------------------------------------------------------------- runs with the same name


def test_runs_with_the_same_name_get_distinct_labels():
    labels = charts.distinct_names({"20261202-053842-chollet-cnn-1e94": "chollet-cnn",
                                    "20261202-061002-chollet-cnn-77ab": "chollet-cnn",
                                    "20261202-070000-mnist-0c0c": "mine"})
    assert labels == {"20261202-053842-chollet-cnn-1e94": "chollet-cnn · 1e94",
                      "20261202-061002-chollet-cnn-77ab": "chollet-cnn · 77ab",
                      "20261202-070000-mnist-0c0c": "mine"}
    # the same random tail too: the whole id tells them apart
    same_tail = charts.distinct_names({"a-1e94": "x", "b-1e94": "x"})
    assert same_tail == {"a-1e94": "x · a-1e94", "b-1e94": "x · b-1e94"}


# ---------------------------------------------------------------- a dense layer's weights as pictures


def test_dense_weights_show_each_unit_as_a_picture_of_the_input():
    # 2 units reading a flattened 3×2×1 image: unit 0's weights are 0..5 in Flatten's (row, column) order
    kernel = np.stack([np.arange(6.0), -np.ones(6)], axis=1)
    fig = charts.dense_weights_figure("dense_1", kernel, (3, 2, 1))
    mosaic = np.asarray(fig.data[0].z, dtype=float)
    assert mosaic.shape == (3, 2 * 2 + 1)  # two 3×2 tiles side by side, a NaN column between
    np.testing.assert_allclose(mosaic[:, :2], np.arange(6.0).reshape(3, 2) / 5.0)
    np.testing.assert_allclose(mosaic[:, 3:], -1.0)
    assert np.isnan(mosaic[:, 2]).all()
    assert "2 units" in fig.layout.title.text and "3×2" in fig.layout.title.text


# ---------------------------------------------------------------- pages: Inspect's filters, Train's curves


@pytest.fixture(scope="module")
def run_with_baseline(tmp_path_factory):
    """A tiny finished run (a conv, a pool, a dense; its dense-128 baseline), trained in this process."""
    from tests.oracles import trained_run

    folder = tmp_path_factory.mktemp("layout_runs") / "runs"
    trained_run(folder, {"layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d"},
                                    {"type": "flatten"}],
                         "dataset": {"name": "mnist", "train_limit": 300, "validation_split": 0.1},
                         "training": {"epochs": 1, "batch_size": 64}, "baseline": "dense-128"})
    return folder


@pytest.fixture
def layout_runs(run_with_baseline, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(run_with_baseline))
    monkeypatch.setenv("CNNKIT_SLOTS_DIR", str(tmp_path / "slots"))
    from cnnkit.runs.store import RunStore

    return RunStore(run_with_baseline)


def test_inspect_filters_of_the_dense_baseline_are_its_first_layers_weights(layout_runs):
    from cnnkit.model.lite import LiteModel

    record = next(r for r in layout_runs.list() if r.status == "finished")
    at = AppTest.from_file(str(ROOT / "app_pages/inspect_run.py"), default_timeout=60)
    at.session_state["inspect_tab"] = "🔍 Filters"
    at.run()
    at.radio(key="inspect_model").set_value("baseline").run()
    assert not at.exception and not at.error
    (spec,) = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert "conv" not in spec["layout"]["title"]["text"]  # was: the CNN's conv2d filters
    dense = next(layer for layer in LiteModel.from_file(record.model_path("baseline")).layers
                 if layer.class_name == "Dense")
    kernel = dense.weights[0]  # (784, 128): Flatten's order is row, column, channel
    first = kernel[:, 0].reshape(28, 28)
    z = np.asarray(charts_array(spec["data"][0]["z"]), dtype=float)
    np.testing.assert_allclose(z[:28, :28], first / np.abs(first).max(), atol=1e-6)
    assert any("128" in c.value and "28×28" in c.value for c in at.caption)


def charts_array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or {"bdata", "dtype", "shape"} for numpy data."""
    import base64

    if isinstance(value, dict) and "bdata" in value:
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def test_train_shows_a_message_not_empty_charts_for_a_failed_run_without_points(layout_runs):
    from cnnkit.runs.store import RunWriter
    from cnnkit.specs import ExperimentSpec

    record = layout_runs.create(ExperimentSpec.from_dict({"layers": [{"type": "flatten"}]}), name="diverged")
    writer = RunWriter(layout_runs, record.run_id)
    nan = float("nan")
    writer.append_batch({"model": "cnn", "epoch": 1, "batch": 1, "step": 1, "loss": nan, "accuracy": nan})
    writer.update(status="failed", reason="The training loss became NaN/infinite: the model diverged.")
    try:
        at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=60)
        at.query_params["run"] = record.run_id
        at.run()
        assert not at.exception
        # was: two empty charts, the accuracy axis at −50%… (other charts of the page are not the curves)
        assert not [chart for chart in at.get("plotly_chart") if chart.key.startswith("final_")]
        assert sum("nothing to plot" in c.value.lower() for c in at.caption) == 2  # loss and accuracy
    finally:
        layout_runs.delete(record.run_id)
