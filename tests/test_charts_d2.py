"""Figures of the Train, Inspect and Draw pages: their data checked against hand-made values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnkit.views import charts


def batch(model, epoch, b, loss, acc=0.5):
    return {"model": model, "epoch": epoch, "batch": b, "loss": loss, "accuracy": acc}


def epoch(model, e, loss, val_loss=None, acc=0.5, val_acc=None):
    record = {"model": model, "epoch": e, "loss": loss, "accuracy": acc}
    if val_loss is not None:
        record.update(val_loss=val_loss, val_accuracy=val_acc)
    return record


# ---------------------------------------------------------------- training curves


def test_curve_points_put_batches_at_fractional_epochs():
    batches = [batch("cnn", 1, 2, 2.0), batch("cnn", 1, 4, 1.0), batch("cnn", 2, 1, 0.8)]
    history = [epoch("cnn", 1, 1.0, val_loss=1.2)]
    points = charts.curve_points(history, batches, "loss", steps_per_epoch=4)
    # batch 2 of 4 in epoch 1 is half-way through it; batch 1 of epoch 2 a quarter past 1
    assert points[("cnn", "batch")] == ([0.5, 1.0, 1.25], [2.0, 1.0, 0.8])
    assert points[("cnn", "epoch")] == ([1], [1.0])
    assert points[("cnn", "val")] == ([1], [1.2])


def test_curve_points_skip_nan_and_missing_validation():
    history = [epoch("cnn", 1, float("nan")), epoch("cnn", 2, 0.5)]
    points = charts.curve_points(history, [], "loss", steps_per_epoch=10)
    assert points[("cnn", "epoch")] == ([2], [0.5])
    assert ("cnn", "val") not in points


def test_curve_points_without_steps_use_largest_batch_seen():
    batches = [batch("cnn", 1, 5, 1.0), batch("cnn", 1, 10, 0.5)]
    points = charts.curve_points([], batches, "loss")
    assert points[("cnn", "batch")][0] == [0.5, 1.0]


def test_training_curves_three_traces_per_model_in_model_colours():
    batches = [batch("cnn", 1, 1, 2.0), batch("baseline", 1, 1, 2.2)]
    history = [epoch("cnn", 1, 1.0, 1.1, 0.7, 0.72), epoch("baseline", 1, 1.2, 1.3, 0.6, 0.61)]
    fig = charts.training_curves(history, batches, "accuracy", steps_per_epoch=1)
    assert len(fig.data) == 6
    by_name = {t.name: t for t in fig.data}
    assert by_name["CNN validation"].y == (0.72,)
    assert by_name["Dense baseline train"].y == (0.6,)
    assert by_name["CNN train, per batch"].line.color == charts.MODEL_COLORS["cnn"]
    assert by_name["Dense baseline validation"].line.color == charts.MODEL_COLORS["baseline"]
    assert by_name["Dense baseline validation"].line.dash == "dash"
    assert fig.layout.yaxis.tickformat == ".0%"


# ---------------------------------------------------------------- inspect


def test_confusion_heatmap_counts_shares_and_selection():
    counts = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])
    fig = charts.confusion_heatmap(counts, ["a", "b", "c"], selected=(0, 1))
    heat = fig.data[0]
    assert np.array_equal(np.asarray(heat.customdata), counts)
    assert np.asarray(heat.customdata).sum() == 14
    # colour = share of the true-class row; an empty row stays 0 instead of NaN
    assert np.allclose(np.asarray(heat.z), [[0.8, 0.2, 0.0], [0.25, 0.75, 0.0], [0, 0, 0]])
    rect = fig.layout.shapes[0]
    assert (rect.x0, rect.x1, rect.y0, rect.y1) == (0.5, 1.5, -0.5, 0.5)
    assert fig.layout.yaxis.range == (2.5, -0.5)                  # true classes read downwards
    # invisible markers, one per cell, make a click select a cell (Streamlit ignores heatmap clicks)
    cells = fig.data[1]
    assert len(cells.x) == 9 and (cells.x[1], cells.y[1]) == ("b", "a")
    assert np.asarray(cells.customdata)[1].tolist() == [2, 0.2]


def test_class_accuracy_bars_show_nan_as_missing():
    fig = charts.class_accuracy_bars(np.array([1.0, 0.5, np.nan]), ["0", "1", "2"])
    assert fig.data[0].y == (1.0, 0.5, None)
    assert fig.data[0].text == ("100.0%", "50.0%", "–")


def test_probability_bars_one_trace_per_model():
    probs = {"cnn": np.array([0.1, 0.9]), "baseline": np.array([0.6, 0.4])}
    fig = charts.probability_bars(probs, ["cat", "dog"])
    assert [t.name for t in fig.data] == ["CNN", "Dense baseline"]
    assert fig.data[0].y == (0.1, 0.9)
    assert fig.data[1].marker.color == charts.MODEL_COLORS["baseline"]


# ---------------------------------------------------------------- mosaics


def test_tile_channels_layout_and_per_tile_scaling():
    maps = np.zeros((2, 2, 3), np.float32)
    maps[..., 0] = [[0, 1], [2, 4]]          # min-max → /4
    maps[..., 1] = 7.0                       # constant → all 0
    maps[..., 2] = [[-1, 1], [1, -1]]
    mosaic = charts.tile_channels(maps, columns=2)
    # 2 columns, 2 rows of 2×2 tiles, one NaN line between: (2*3-1, 2*3-1)
    assert mosaic.shape == (5, 5)
    assert np.allclose(mosaic[0:2, 0:2], [[0, 0.25], [0.5, 1.0]])
    assert np.allclose(mosaic[0:2, 3:5], 0.0)
    assert np.allclose(mosaic[3:5, 0:2], [[0, 1], [1, 0]])
    assert np.isnan(mosaic[2]).all() and np.isnan(mosaic[:, 2]).all()
    assert np.isnan(mosaic[3:5, 3:5]).all()  # no fourth channel


def test_tile_channels_symmetric_keeps_zero_and_sign():
    maps = np.array([[[-2.0], [1.0]], [[0.0], [0.5]]])
    mosaic = charts.tile_channels(maps, symmetric=True)
    assert np.allclose(mosaic, [[-1.0, 0.5], [0.0, 0.25]])


def test_tile_channels_caps_the_tile_count():
    mosaic = charts.tile_channels(np.ones((3, 3, 40)), max_tiles=32, columns=8)
    assert mosaic.shape == (4 * 4 - 1, 8 * 4 - 1)


def test_kernel_channels_mean_or_one_input_channel():
    kernel = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 3, 4)
    assert np.allclose(charts.kernel_channels(kernel), kernel.mean(axis=2))
    assert np.array_equal(charts.kernel_channels(kernel, 1), kernel[:, :, 1, :])


def test_mosaic_figure_square_pixels_and_colour_scales():
    fig = charts.mosaic_figure(np.zeros((10, 20)), "maps")
    assert fig.layout.yaxis.scaleanchor == "x"
    assert fig.data[0].zmin == 0 and fig.data[0].zmax == 1
    weights = charts.mosaic_figure(np.zeros((3, 3)), symmetric=True)
    assert weights.data[0].zmid == 0 and weights.data[0].zmin == -1


@pytest.mark.parametrize("factor", [1, 3])
def test_enlarge_is_nearest_neighbour(factor):
    image = np.array([[0, 255], [10, 20]], np.uint8)
    big = charts.enlarge(image, factor)
    assert big.shape == (2 * factor, 2 * factor) and big.dtype == np.uint8
    assert big[factor * 2 - 1, 0] == 10 and big[0, factor * 2 - 1] == 255
    assert math.isclose(big.mean(), image.mean())


def test_update_bars_swaps_values_in_place():
    fig = charts.probability_bars({"cnn": np.array([0.1, 0.9]), "baseline": np.array([0.6, 0.4])}, ["a", "b"])
    same = charts.update_bars(fig, {"cnn": np.array([0.7, 0.3]), "baseline": np.array([0.2, 0.8])})
    assert same is fig
    assert fig.data[0].y == (0.7, 0.3) and fig.data[1].y == (0.2, 0.8)
    assert fig.data[0].marker.color == charts.MODEL_COLORS["cnn"]
    with pytest.raises(ValueError):
        charts.update_bars(fig, {"cnn": np.array([1.0, 0.0])})      # a different set of models


def test_feature_maps_figure_titles_and_tiles():
    fig = charts.feature_maps_figure("conv2d_1", np.random.default_rng(0).random((26, 26, 40)))
    assert fig.layout.title.text == "conv2d_1: 26×26×40 (the first 32 channels)"
    assert np.asarray(fig.data[0].z).shape == (4 * 27 - 1, 8 * 27 - 1)    # 32 tiles, 8 per row
    small = charts.feature_maps_figure("pool", np.ones((5, 5, 3)))
    assert small.layout.title.text == "pool: 5×5×3"
