"""Figures of the Data and Compare pages: the data inside them, checked against known values."""

from __future__ import annotations

import numpy as np

from cnnkit.views import charts


def test_image_grid_has_one_image_per_cell_with_its_title():
    images = np.arange(5 * 4 * 4, dtype=np.uint8).reshape(5, 4, 4, 1)
    fig = charts.image_grid(images, ["a", "b", "c", "d", "e"], cols=3)
    assert len(fig.data) == 5
    assert [a.text for a in fig.layout.annotations] == ["a", "b", "c", "d", "e"]
    # grey becomes RGB with the same value in every channel
    z = np.asarray(fig.data[4].z)
    assert z.shape == (4, 4, 3) and (z[..., 0] == images[4, ..., 0]).all() and (z[..., 2] == z[..., 0]).all()
    # the 5th image sits in row 2, column 2 of a 3-column grid
    assert fig.data[4].xaxis == "x5" and fig.layout.xaxis5.domain == fig.layout.xaxis2.domain


def test_colour_images_pass_through_unchanged():
    image = np.zeros((2, 2, 3), np.uint8)
    image[0, 0] = (255, 0, 0)
    fig = charts.image_grid(image[None], ["red"], cols=1)
    assert np.asarray(fig.data[0].z)[0, 0].tolist() == [255, 0, 0]


def test_class_counts_chart_shows_train_and_test():
    fig = charts.class_counts_chart(["0", "1", "2"], [5, 7, 9], np.array([1, 2, 3]))
    assert [trace.name for trace in fig.data] == ["train", "test"]
    assert list(fig.data[0].y) == [5, 7, 9] and list(fig.data[1].y) == [1, 2, 3]
    assert list(fig.data[1].x) == ["0", "1", "2"]


def test_value_histogram_counts_every_value():
    values = np.array([0, 0, 0, 255, 128], dtype=np.uint8)
    counts, centres = charts.value_histogram(values, bins=2)
    assert counts.tolist() == [3, 2]           # [0, 127.5) and [127.5, 255]
    assert centres.tolist() == [63.75, 191.25]


def test_normalization_histograms_before_and_after():
    raw = np.array([0, 0, 255, 255, 51], np.uint8)
    fig = charts.normalization_histograms(raw, raw / 255.0, "scale", bins=5)
    assert len(fig.data) == 2
    assert sum(fig.data[0].y) == sum(fig.data[1].y) == 5
    # /255 moves the bins but not the counts
    assert list(fig.data[0].y) == list(fig.data[1].y)
    assert max(fig.data[1].x) < 1.0 < max(fig.data[0].x)


def test_image_before_after_shows_both_value_ranges():
    raw = np.array([[0, 255], [51, 102]], np.uint8)[..., None]
    fig = charts.image_before_after(raw, raw / 255.0, "scale")
    assert np.asarray(fig.data[0].z).max() == 255
    assert np.asarray(fig.data[1].z).max() == 1.0
    assert np.asarray(fig.data[1].z)[1, 0] == 0.2


def test_overlay_curves_one_trace_per_curve_baseline_dotted():
    curves = [
        {"label": "run A", "epochs": [1, 2], "values": [0.5, 0.7], "color": charts.run_color(0)},
        {"label": "run A · baseline", "epochs": [1, 2], "values": [0.4, 0.5], "color": charts.run_color(0),
         "dashed": True},
        {"label": "run B", "epochs": [1], "values": [0.9], "color": charts.run_color(1)},
    ]
    fig = charts.overlay_curves(curves, "accuracy", "accuracy", percent=True)
    assert [t.name for t in fig.data] == ["run A", "run A · baseline", "run B"]
    assert [t.line.dash for t in fig.data] == ["solid", "dot", "solid"]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    assert list(fig.data[0].y) == [0.5, 0.7]


def test_accuracy_scatter_splits_cnn_and_baseline_and_skips_missing():
    points = [
        {"label": "a", "kind": "cnn", "accuracy": 0.98, "params": 96_844},
        {"label": "a", "kind": "baseline", "accuracy": 0.95, "params": 101_770},
        {"label": "b", "kind": "cnn", "accuracy": None, "params": 1000},   # unfinished: not drawn
    ]
    fig = charts.accuracy_scatter(points, "params", "parameters", log_x=True)
    assert [t.name for t in fig.data] == ["CNN", "dense baseline"]
    assert list(fig.data[0].x) == [96_844] and list(fig.data[1].y) == [0.95]
    assert fig.layout.xaxis.type == "log"


def test_accuracy_scatter_leaves_room_for_point_names():
    points = [{"label": "a", "kind": "cnn", "accuracy": 0.9, "params": 1_000},
              {"label": "b", "kind": "cnn", "accuracy": 0.95, "params": 100_000}]
    fig = charts.accuracy_scatter(points, "params", "parameters", log_x=True)
    low, high = fig.layout.xaxis.range  # log10 units: the data spans 3 → 5
    assert low < 3 and high > 5 + 0.4 * 2
    assert fig.data[0].mode == "markers+text"


def test_image_before_after_of_a_colour_image_shows_the_red_channel():
    image = np.zeros((2, 2, 3), np.uint8)
    image[..., 0], image[..., 1] = 200, 50
    fig = charts.image_before_after(image, image / 255.0, "scale")
    assert np.asarray(fig.data[0].z).tolist() == [[200, 200], [200, 200]]
    assert [a.text for a in fig.layout.annotations] == ["raw (red channel)", "after 'scale' (red channel)"]


def test_the_light_template_keeps_plotly_whites_look_for_these_charts():
    import plotly.io as pio

    full = pio.templates["plotly_white"]
    fig = charts.training_curves([{"model": "cnn", "epoch": 1, "loss": 0.5, "val_loss": 0.6}],
                                 [{"model": "cnn", "epoch": 1, "batch": 5, "loss": 0.9}], "loss", 10)
    layout = fig.layout.template.layout
    # the same background, grid and colour cycle as plotly_white ...
    assert layout.plot_bgcolor == full.layout.plot_bgcolor
    assert layout.xaxis.gridcolor == full.layout.xaxis.gridcolor
    assert layout.colorway == full.layout.colorway
    assert fig.layout.template.data.bar == full.data.bar
    # ... without the 3-D, polar and map parts these charts never use: less than half the JSON
    assert layout.scene.to_plotly_json() == {} and layout.polar.to_plotly_json() == {}
    assert len(fig.to_json()) < 0.6 * len(fig.update_layout(template="plotly_white").to_json())


def test_streamlit_config_turns_off_the_gc_after_every_rerun():
    # measured: a full gc.collect(2) after each fragment rerun was 70% of the server's CPU while
    # the live Train page polled (py-spy); the setting must stay off
    from pathlib import Path

    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["runner"]["postScriptGC"] is False
