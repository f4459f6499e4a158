"""Plotly figures for the pages. No streamlit here: a page calls `st.plotly_chart(fig)`.

Each function takes plain data (numpy arrays, lists of history records) and returns a
`plotly.graph_objects.Figure`, so figures are testable without a browser.
"""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from cnnkit.views.axes import log_ticks, percent_axis
from cnnkit.views.text import model_title, plain_html

# One colour per model across every chart: the CNN and its dense baseline stay recognizable.
MODEL_COLORS = {"cnn": "#1f77b4", "baseline": "#ff7f0e"}


def _light_template(name: str = "plotly_white") -> go.layout.Template:
    """The named template cut to what these charts use (2-D axes; scatter, bar, heatmap traces with
    explicit colour scales). The full one is deep-copied into every figure and sent with it: 25 ms
    and 7 KB of JSON per chart, i.e. most of the Train page's redraw cost once a second."""
    full = pio.templates[name].to_plotly_json()
    unused = ("polar", "ternary", "scene", "geo", "colorscale", "shapedefaults", "annotationdefaults")
    layout = {key: value for key, value in full["layout"].items() if key not in unused}
    data = {kind: full["data"][kind] for kind in ("scatter", "bar", "heatmap", "histogram") if kind in full["data"]}
    return go.layout.Template(layout=layout, data=data)


TEMPLATE = _light_template()


# plotly's toolbar (the modebar) appears at a figure's top right on hover, over whatever is there:
# the top MODEBAR_BAND px of every figure stay empty for it, a title (or subplot titles) sits in the
# TITLE_ROOM under that band, left-aligned, and the legend goes to the bottom, under the axis title.
MODEBAR_BAND, TITLE_ROOM = 30, 28
MODEBAR_REMOVE = ("select2d", "lasso2d", "zoomIn2d", "zoomOut2d", "autoScale2d")  # zoom, pan, reset, PNG stay


def base_layout(fig: go.Figure, title: str = "", height: int = 360, top_labels: bool = False) -> go.Figure:
    """The look and the placement every figure shares; `top_labels`: subplot titles above the plot."""
    fig.update_layout(
        template=TEMPLATE, height=height, modebar=dict(remove=list(MODEBAR_REMOVE)),
        title=dict(text=title, x=0, xref="paper", xanchor="left", y=1, yref="paper", yanchor="bottom",
                   pad=dict(b=8)) if title else None,
        margin=dict(l=10, r=10, t=MODEBAR_BAND + (TITLE_ROOM if title or top_labels else 0), b=10),
        # anchored to the figure's bottom edge, plotly keeps the legend's room out of the plot area
        legend=dict(orientation="h", xref="paper", x=0, xanchor="left", yref="container", y=0, yanchor="bottom"))
    return fig


# ---------------------------------------------------------------------------
# Train, Inspect, Draw



def curve_points(history: list[dict], batches: list[dict], metric: str,
                 steps_per_epoch: int | None = None) -> dict[tuple[str, str], tuple[list, list]]:
    """Curve data per (model, kind): kind "batch" (train, per batch), "epoch" (train) or "val".

    x is in epochs: batch b of epoch e (1-based) sits at e - 1 + b / steps_per_epoch, an epoch's
    end at e. Keras' per-batch loss/accuracy is the running mean of the epoch, so the batch curve
    ends exactly on the epoch point.
    """
    points: dict[tuple[str, str], tuple[list, list]] = {}

    def add(key, x, y):
        if y is None or not np.isfinite(y):
            return  # a diverged run's NaN loss would break the axis range
        xs, ys = points.setdefault(key, ([], []))
        xs.append(x)
        ys.append(float(y))

    steps = steps_per_epoch or max([int(b.get("batch") or 1) for b in batches] or [1])
    for b in batches:
        add((b.get("model"), "batch"), int(b.get("epoch") or 1) - 1 + int(b.get("batch") or 0) / steps,
            b.get(metric))
    for h in history:
        add((h.get("model"), "epoch"), int(h.get("epoch") or 0), h.get(metric))
        add((h.get("model"), "val"), int(h.get("epoch") or 0), h.get(f"val_{metric}"))
    return points


CURVES_NOTE = ("Thin lines: every few batches (Keras' running mean over the epoch so far) · dots: epoch ends · "
               "hollow dots, dashed: validation. Blue: the CNN, orange: the dense baseline.")


NO_CURVES_YET = "The curves start with the first batches."


def nothing_to_plot(metric: str) -> str:
    """Why a run's chart of `metric` is not drawn: a diverged run's NaN, no made-up axis."""
    return f"Nothing to plot for the {metric}: the run recorded no finite value of it."


def training_curves(history: list[dict], batches: list[dict], metric: str = "loss",
                    steps_per_epoch: int | None = None, height: int = 330) -> go.Figure | None:
    """Loss or accuracy: per batch (thin), per epoch (dots) and validation (dashed), for the CNN
    and the baseline in their fixed colours. None when there is no finite point to draw."""
    points = curve_points(history, batches, metric, steps_per_epoch)
    if not points:
        return None
    fig = go.Figure()
    styles = {"batch": dict(mode="lines", line_width=1, opacity=0.5, suffix="train, per batch"),
              "epoch": dict(mode="lines+markers", line_width=2.5, opacity=1.0, suffix="train"),
              "val": dict(mode="lines+markers", line_width=2.5, opacity=1.0, suffix="validation")}
    for model in ("cnn", "baseline"):
        for kind, style in styles.items():
            if (model, kind) not in points:
                continue
            xs, ys = points[(model, kind)]
            fig.add_trace(go.Scatter(
                x=xs, y=ys, mode=style["mode"], opacity=style["opacity"], legendgroup=model,
                name=f"{model_title(model, capital=True)} {style['suffix']}", showlegend=kind != "batch",
                line=dict(color=MODEL_COLORS[model], width=style["line_width"],
                          dash="dash" if kind == "val" else "solid"),
                marker=dict(size=7, symbol="circle-open" if kind == "val" else "circle")))
    title = "Accuracy" if metric == "accuracy" else "Loss"
    base_layout(fig, title, height)
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    if metric == "accuracy":
        fig.update_yaxes(**percent_axis(y for _, ys in points.values() for y in ys))
    fig.update_layout(legend_font_size=11)  # four short entries; the per-batch lines share their model's
    return fig


def confusion_heatmap(counts: np.ndarray, class_names: list[str] | tuple[str, ...],
                      selected: tuple[int, int] | None = None, height: int = 480) -> go.Figure:
    """Rows: true class, columns: predicted. Colour is the share of the row (so a class with few
    test images reads the same as one with many); the number in each cell is the count."""
    counts = np.asarray(counts)
    totals = counts.sum(axis=1, keepdims=True)
    share = counts / np.maximum(totals, 1)
    names = [str(n) for n in class_names]
    fig = go.Figure(go.Heatmap(
        z=share, x=names, y=names, customdata=counts, text=counts, texttemplate="%{text}",
        colorscale="Blues", zmin=0, zmax=1, colorbar=dict(title="share of row", tickformat=".0%"),
        hoverinfo="skip"))
    # Streamlit's selection events ignore heatmaps: an invisible square marker on every cell makes
    # a click select that cell (and carries the hover text).
    rows, cols = np.indices(counts.shape)
    fig.add_trace(go.Scatter(
        x=[names[j] for j in cols.ravel()], y=[names[i] for i in rows.ravel()], mode="markers",
        marker=dict(symbol="square", size=max(12, 300 // max(len(names), 1)), opacity=0),
        selected=dict(marker=dict(opacity=0)), unselected=dict(marker=dict(opacity=0)),
        customdata=np.stack([counts.ravel(), share.ravel()], axis=1), showlegend=False,
        hovertemplate="true %{y}, predicted %{x}: %{customdata[0]} images (%{customdata[1]:.1%} of the row)"
                      "<extra></extra>"))
    if selected is not None:
        i, j = selected
        fig.add_shape(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                      line=dict(color="#d62728", width=3))
    base_layout(fig, "", height)
    # Fixed ranges: the cell markers would otherwise pad the axes; the true classes read downwards.
    fig.update_xaxes(title_text="predicted class", type="category", side="top", range=[-0.5, len(names) - 0.5])
    fig.update_yaxes(title_text="true class", type="category", range=[len(names) - 0.5, -0.5])
    return fig


def class_accuracy_bars(accuracy: np.ndarray, class_names: list[str] | tuple[str, ...],
                        height: int = 300) -> go.Figure:
    """Per-class accuracy (recall); NaN (no test images of that class) shows as a missing bar."""
    values = [None if not np.isfinite(a) else float(a) for a in np.asarray(accuracy, dtype=float)]
    fig = go.Figure(go.Bar(x=[str(n) for n in class_names], y=values, marker_color=MODEL_COLORS["cnn"],
                           text=["–" if v is None else f"{v:.1%}" for v in values], textposition="outside"))
    base_layout(fig, "Accuracy per class", height)
    fig.update_yaxes(range=[0, 1.12], tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


def probability_bars(probs: dict[str, np.ndarray], class_names: list[str] | tuple[str, ...],
                     height: int = 280) -> go.Figure:
    """Class probabilities of each model (CNN, baseline) as grouped bars."""
    fig = go.Figure()
    for model, p in probs.items():
        fig.add_trace(go.Bar(x=[str(n) for n in class_names], y=[float(v) for v in p],
                             name=model_title(model, capital=True), marker_color=MODEL_COLORS.get(model)))
    base_layout(fig, "Probabilities", height)
    fig.update_layout(barmode="group", showlegend=len(probs) > 1)
    fig.update_yaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(type="category")
    return fig


def tile_channels(maps: np.ndarray, max_tiles: int = 32, columns: int = 8,
                  symmetric: bool = False) -> np.ndarray:
    """(H, W, C) → one 2-D mosaic of the first `max_tiles` channels, a NaN line between tiles.

    Each tile is scaled on its own: to 0–1 by its min/max (activations; a constant channel is 0),
    or to -1…1 by its largest |value| (weights, so 0 stays 0)."""
    maps = np.asarray(maps, dtype=np.float32)
    count = min(maps.shape[-1], max_tiles)
    columns = max(1, min(columns, count))
    rows = -(-count // columns)
    h, w = maps.shape[:2]
    mosaic = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan, dtype=np.float32)
    for c in range(count):
        tile = maps[..., c]
        if symmetric:
            peak = float(np.abs(tile).max())
            tile = tile / peak if peak > 0 else np.zeros_like(tile)
        else:
            low, span = float(tile.min()), float(tile.max() - tile.min())
            tile = (tile - low) / span if span > 0 else np.zeros_like(tile)
        r, k = divmod(c, columns)
        mosaic[r * (h + 1): r * (h + 1) + h, k * (w + 1): k * (w + 1) + w] = tile
    return mosaic


def mosaic_figure(mosaic: np.ndarray, title: str = "", symmetric: bool = False,
                  pixel: int = 6, max_height: int = 520) -> go.Figure:
    """A tile mosaic as a heatmap with square pixels: gray for activations, red-blue for weights."""
    fig = go.Figure(go.Heatmap(
        z=mosaic, colorscale="RdBu" if symmetric else "gray", zmid=0 if symmetric else None,
        zmin=-1 if symmetric else 0, zmax=1, showscale=False, hoverongaps=False,
        hovertemplate="%{z:.2f}<extra></extra>"))
    height = int(min(max_height, max(120, mosaic.shape[0] * pixel + MODEBAR_BAND + (TITLE_ROOM if title else 0) + 10)))
    base_layout(fig, title, height)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x", constrain="domain")
    fig.update_layout(plot_bgcolor="#ffffff")
    return fig


def kernel_channels(kernel: np.ndarray, input_channel: int | None = None) -> np.ndarray:
    """A conv kernel (k, k, c_in, filters) as (k, k, filters): one input channel, or their mean."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if input_channel is None:
        return kernel.mean(axis=2)
    return kernel[:, :, input_channel, :]


def enlarge(image: np.ndarray, factor: int = 4) -> np.ndarray:
    """Nearest-neighbour upscaling, so a 28×28 digit shows as crisp pixels, not a blur."""
    image = np.asarray(image)
    return image.repeat(factor, axis=0).repeat(factor, axis=1)


# ---------------------------------------------------------------------------
# Data page: images, class counts, pixel values

# A qualitative palette for runs on the Compare page (one colour per run, baselines dotted).
RUN_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#bcbd22", "#7f7f7f", "#ff7f0e")


def _rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 1) or (H, W, 3) uint8 → (H, W, 3): go.Image draws colour images only."""
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image


def image_grid(images: np.ndarray, titles: list[str], cols: int = 8, cell_px: int = 110) -> go.Figure:
    """A grid of images with a title over each; hovering shows the pixel values (0–255)."""
    count = len(images)
    rows = max(1, -(-count // cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=list(titles),
                        horizontal_spacing=0.012, vertical_spacing=0.3 / rows)
    for i, image in enumerate(images):
        fig.add_trace(go.Image(z=_rgb(image), hovertemplate="x %{x}, y %{y}: %{z[0]}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font=dict(size=13, color="#1b2733"), yshift=-2)
    return base_layout(fig, height=rows * cell_px + MODEBAR_BAND + TITLE_ROOM, top_labels=True)


def class_counts_chart(class_names: list[str], train_counts, test_counts) -> go.Figure:
    """Images per class, train and test side by side: is the dataset balanced?"""
    fig = go.Figure([
        go.Bar(name="train", x=list(class_names), y=np.asarray(train_counts).tolist(), marker_color="#1f77b4"),
        go.Bar(name="test", x=list(class_names), y=np.asarray(test_counts).tolist(), marker_color="#9ecae1"),
    ])
    fig.update_layout(barmode="group", yaxis_title="images")
    return base_layout(fig, "Images per class", height=320)


def value_histogram(values: np.ndarray, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """(counts, bin centres) of all values: the chart gets 50 bars, not millions of points."""
    counts, edges = np.histogram(np.asarray(values, dtype=np.float64).ravel(), bins=bins)
    return counts, (edges[:-1] + edges[1:]) / 2


def normalization_histograms(raw_values: np.ndarray, normalized_values: np.ndarray,
                             normalization: str, bins: int = 50) -> go.Figure:
    """Pixel-value histograms before (0–255) and after normalization, with a log count axis
    (most MNIST pixels are 0, which would flatten everything else)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["raw pixels (0–255)", f"after '{normalization}'"])
    for col, values in enumerate((raw_values, normalized_values), start=1):
        counts, centres = value_histogram(values, bins)
        fig.add_trace(go.Bar(x=centres, y=counts, marker_color="#1f77b4" if col == 1 else "#2ca02c",
                             showlegend=False, hovertemplate="value ≈ %{x:.3g}: %{y:,} pixels<extra></extra>"),
                      row=1, col=col)
        fig.update_yaxes(type="log", **log_ticks(max(1, counts[counts > 0].min()), max(1, counts.max())), row=1, col=col)
    fig.update_yaxes(title_text="pixels", col=1)
    fig = base_layout(fig, height=300, top_labels=True)  # the subplot titles over the plots
    fig.update_layout(bargap=0)
    return fig


def image_before_after(raw_image: np.ndarray, normalized_image: np.ndarray, normalization: str) -> go.Figure:
    """One image as the model sees it before and after normalization; the colour bars show
    that only the numbers change, not the picture. A colour image shows its red channel: the
    normalized values of three channels have no colour of their own."""
    raw_2d = np.asarray(raw_image, dtype=np.float64)[..., 0]
    new_2d = np.asarray(normalized_image, dtype=np.float64)[..., 0]
    which = " (red channel)" if np.shape(raw_image)[-1] == 3 else ""
    fig = make_subplots(rows=1, cols=2, subplot_titles=[f"raw{which}", f"after '{normalization}'{which}"],
                        horizontal_spacing=0.18)
    for col, z in enumerate((raw_2d, new_2d), start=1):
        fig.add_trace(go.Heatmap(z=z, colorscale="gray", showscale=True,
                                 colorbar=dict(x=0.41 if col == 1 else 1.0, len=0.9, thickness=12),
                                 hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"),
                      row=1, col=col)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False, row=1, col=1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x2", visible=False, row=1, col=2)
    fig.update_xaxes(visible=False)
    return base_layout(fig, height=300, top_labels=True)


# ---------------------------------------------------------------------------
# Compare page: curves of several runs, accuracy against cost


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def distinct_names(names: dict[str, str]) -> dict[str, str]:
    """{run id: name} → {run id: label}, a name that several runs share followed by its run id's
    random tail ("chollet-cnn · 1e94"), or by the whole id when the tails are the same too."""
    twins: dict[str, list[str]] = {}
    for run_id, name in names.items():
        twins.setdefault(name, []).append(run_id)
    labels = {}
    for name, ids in twins.items():
        tails = [run_id.rsplit("-", 1)[-1] for run_id in ids]
        unique = len(set(tails)) == len(tails)
        labels.update({run_id: name if len(ids) == 1 else f"{name} · {tail if unique else run_id}"
                       for run_id, tail in zip(ids, tails, strict=True)})
    return labels


def overlay_curves(curves: list[dict], title: str, y_title: str, percent: bool = False) -> go.Figure | None:
    """One line per curve: dicts with label, epochs, values, color and dashed (a baseline).
    None when no curve has a finite value: an empty chart would only show a made-up axis."""
    values = [v for curve in curves for v in curve["values"] if v is not None and math.isfinite(v)]
    if not values:
        return None
    fig = go.Figure()
    for curve in curves:
        fig.add_trace(go.Scatter(
            x=list(curve["epochs"]), y=list(curve["values"]), name=plain_html(curve["label"]), mode="lines+markers",
            line=dict(color=curve["color"], dash="dot" if curve.get("dashed") else "solid", width=2),
            marker=dict(size=6)))
    fig.update_xaxes(title_text="epoch", dtick=1 if max((len(c["epochs"]) for c in curves), default=0) <= 12
                     else None)
    fig.update_yaxes(title_text=y_title, **(percent_axis(values) if percent else {}))
    return base_layout(fig, title, height=380)  # long run names wrap across the width, under the chart


def accuracy_scatter(points: list[dict], x_key: str, x_title: str, log_x: bool = False) -> go.Figure:
    """Test accuracy against a cost (params or seconds): CNNs as circles, baselines as diamonds.

    `points` are dicts with label, kind ("cnn" | "baseline"), accuracy and the `x_key` value.
    """
    fig = go.Figure()
    for kind, symbol in (("cnn", "circle"), ("baseline", "diamond")):
        title = model_title(kind)
        chosen = [p for p in points if p["kind"] == kind and p.get(x_key) is not None
                  and p.get("accuracy") is not None]
        if not chosen:
            continue
        # a few runs get their names written beside the points; many would only make a smudge
        fig.add_trace(go.Scatter(
            x=[p[x_key] for p in chosen], y=[p["accuracy"] for p in chosen], name=title,
            mode="markers+text" if len(points) <= 8 else "markers", textposition="middle right",
            text=[plain_html(p["label"]) for p in chosen], textfont=dict(size=11),
            marker=dict(symbol=symbol, size=11, color=MODEL_COLORS[kind], line=dict(width=1, color="white")),
            hovertemplate="%{text}<br>%{x:,.3s}: %{y:.2%}<extra></extra>"))
    fig.update_xaxes(title_text=x_title, type="log" if log_x else None)
    drawn = [p for p in points if p.get(x_key) and p.get("accuracy") is not None]
    xs = [p[x_key] for p in drawn]
    if xs:
        lo, hi = (np.log10(min(xs)), np.log10(max(xs))) if log_x else (min(xs), max(xs))
        span = max(hi - lo, 0.3 if log_x else abs(hi) * 0.1 or 1.0)
        # room on the right for the names written beside a few points
        lo, hi = lo - 0.08 * span, hi + (0.45 if len(points) <= 8 else 0.08) * span
        fig.update_xaxes(range=[lo, hi], **(log_ticks(10 ** lo, 10 ** hi) if log_x else {}))
    fig.update_yaxes(title_text="test accuracy", **percent_axis(p["accuracy"] for p in drawn))
    return base_layout(fig, f"Test accuracy vs {x_title}", height=320)


def update_bars(fig: go.Figure, probs: dict[str, np.ndarray]) -> go.Figure:
    """Put new values into a `probability_bars` figure of the same models, in place: the Draw page
    reuses one figure per session, as building a plotly figure costs far more than a stroke may."""
    for trace, p in zip(fig.data, probs.values(), strict=True):
        trace.y = [float(v) for v in p]
    return fig


def feature_maps_figure(name: str, maps: np.ndarray, max_tiles: int = 32, columns: int = 8) -> go.Figure:
    """One layer's activations (H, W, C) as a titled mosaic, tiles about 80 px tall whatever H is."""
    h, w, c = maps.shape
    title = f"{name}: {h}×{w}×{c}" + (f" (the first {max_tiles} channels)" if c > max_tiles else "")
    return mosaic_figure(tile_channels(maps, max_tiles, columns), title, pixel=max(3, 84 // max(h, 1)))


def filters_figure(name: str, kernel: np.ndarray, input_channel: int | None = None) -> go.Figure:
    """A conv layer's filters (k, k, c_in, filters): the first 64 as red-blue tiles, 8 to a row, of
    one input channel or of their mean, each scaled to its own largest weight."""
    tiles = kernel_channels(kernel, input_channel)
    return mosaic_figure(tile_channels(tiles, 64, 8, symmetric=True), name, symmetric=True, pixel=24,
                         max_height=700)


def dense_weights_figure(name: str, kernel: np.ndarray, image_shape: tuple[int, int, int],
                         max_units: int = 64) -> go.Figure:
    """A dense layer reading the flattened image (kernel (H·W·C, units), Flatten's row, column,
    channel order): each unit's weights as an H×W picture (channels averaged), red-blue, each
    scaled to its own largest weight; the first `max_units`, 8 to a row."""
    h, w, c = image_shape
    kernel = np.asarray(kernel, dtype=np.float32)
    tiles = kernel.reshape(h, w, c, kernel.shape[-1]).mean(axis=2)
    title = f"{name}: {kernel.shape[-1]} units, each a {h}×{w} picture of weights"
    return mosaic_figure(tile_channels(tiles, max_units, 8, symmetric=True), title, symmetric=True,
                         pixel=max(2, 84 // max(h, 1)), max_height=900)


def robustness_chart(title: str, unit: str, values: list, curves: list[dict],
                     test_accuracy: dict | None = None) -> go.Figure:
    """Accuracy against one transformation's strength: the CNN solid, the dense baseline dotted,
    and each model's own test accuracy as a hollow marker at strength 0 (where the lines start)."""
    fig = go.Figure()
    for curve in curves:
        key = "baseline" if curve.get("dashed") else "cnn"
        fig.add_trace(go.Scatter(x=list(values), y=list(curve["values"]), name=plain_html(curve["label"]),
                                 mode="lines+markers", line=dict(color=MODEL_COLORS[key], width=2,
                                                                 dash="dot" if curve.get("dashed") else "solid")))
        if test_accuracy and test_accuracy.get(key) is not None and 0 in values:
            fig.add_trace(go.Scatter(x=[0], y=[test_accuracy[key]], mode="markers", showlegend=False,
                                     name=f"{model_title(key)}: whole test split",
                                     marker=dict(symbol="circle-open", size=14, color=MODEL_COLORS[key])))
    fig.update_xaxes(title_text=f"strength ({unit.strip()})")
    fig.update_yaxes(title_text="accuracy", tickformat=".0%", range=[0, 1.02])
    return base_layout(fig, title, height=330)


def heat_overlay(image: np.ndarray, heat: np.ndarray, factor: int = 8) -> np.ndarray:
    """The 28×28 the model saw in grey, with the heat (0–1) laid over it in red → yellow, as an
    enlarged RGB uint8 picture: where the heat is 0 the digit shows through unchanged."""
    grey = np.asarray(image, np.float32) / 255.0 * 0.75
    heat = np.clip(np.asarray(heat, np.float32), 0.0, 1.0)
    colour = np.stack([np.ones_like(heat), heat, np.zeros_like(heat)], axis=-1)  # red, then yellow when hot
    alpha = np.sqrt(heat)[..., None]  # faint heat still visible
    rgb = (1 - alpha) * grey[..., None] + alpha * colour
    return enlarge(np.round(rgb * 255).astype(np.uint8), factor)


def lr_finder_chart(lrs: list[float], losses: list[float], suggested: float | None) -> go.Figure:
    """The learning-rate finder: smoothed loss against the rate (log scale), the suggestion marked."""
    fig = go.Figure(go.Scatter(x=list(lrs), y=list(losses), mode="lines", name="loss",
                               line=dict(color=MODEL_COLORS["cnn"], width=2)))
    if suggested:
        fig.add_vline(x=suggested, line=dict(color=MODEL_COLORS["baseline"], dash="dot"))
        fig.add_annotation(x=math.log10(suggested), y=max(losses), text=f"suggested {suggested:.2g}",
                           showarrow=False, yanchor="bottom", font=dict(color=MODEL_COLORS["baseline"]))
    fig.update_xaxes(type="log", title_text="learning rate")
    fig.update_yaxes(title_text="training loss (smoothed)")
    return base_layout(fig, "Learning-rate finder", height=300)
