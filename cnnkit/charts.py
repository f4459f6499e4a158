"""Plotly figures for the pages. No streamlit here: a page calls `st.plotly_chart(fig)`.

Each function takes plain data (numpy arrays, lists of history records) and returns a
`plotly.graph_objects.Figure`, so figures are testable without a browser.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

# One colour per model across every chart: the CNN and its dense baseline stay recognizable.
MODEL_COLORS = {"cnn": "#1f77b4", "baseline": "#ff7f0e"}
TEMPLATE = "plotly_white"


def base_layout(fig: go.Figure, title: str = "", height: int = 360) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title or None, height=height,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig


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
                        horizontal_spacing=0.01, vertical_spacing=0.12 / rows)
    for i, image in enumerate(images):
        fig.add_trace(go.Image(z=_rgb(image), hovertemplate="x %{x}, y %{y}: %{z[0]}<extra></extra>"),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=12)
    return base_layout(fig, height=rows * cell_px + 30)


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
    fig.update_yaxes(type="log", title_text="pixels", col=1)
    fig.update_yaxes(type="log", col=2)
    fig.update_layout(bargap=0)
    return base_layout(fig, height=300)


def image_before_after(raw_image: np.ndarray, normalized_image: np.ndarray, normalization: str) -> go.Figure:
    """One image as the model sees it before and after normalization; the colour bars show
    that only the numbers change, not the picture."""
    raw_2d = np.asarray(raw_image, dtype=np.float64)[..., 0]
    new_2d = np.asarray(normalized_image, dtype=np.float64)[..., 0]
    fig = make_subplots(rows=1, cols=2, subplot_titles=["raw", f"after '{normalization}'"],
                        horizontal_spacing=0.18)
    for col, z in enumerate((raw_2d, new_2d), start=1):
        fig.add_trace(go.Heatmap(z=z, colorscale="gray", showscale=True,
                                 colorbar=dict(x=0.41 if col == 1 else 1.0, len=0.9, thickness=12),
                                 hovertemplate="x %{x}, y %{y}: %{z:.3g}<extra></extra>"),
                      row=1, col=col)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", visible=False, row=1, col=1)
    fig.update_yaxes(autorange="reversed", scaleanchor="x2", visible=False, row=1, col=2)
    fig.update_xaxes(visible=False)
    return base_layout(fig, height=300)


# ---------------------------------------------------------------------------
# Compare page: curves of several runs, accuracy against cost


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


def overlay_curves(curves: list[dict], title: str, y_title: str, percent: bool = False) -> go.Figure:
    """One line per curve: dicts with label, epochs, values, color and dashed (a baseline)."""
    fig = go.Figure()
    for curve in curves:
        fig.add_trace(go.Scatter(
            x=list(curve["epochs"]), y=list(curve["values"]), name=curve["label"], mode="lines+markers",
            line=dict(color=curve["color"], dash="dot" if curve.get("dashed") else "solid", width=2),
            marker=dict(size=6)))
    fig.update_xaxes(title_text="epoch", dtick=1 if max((len(c["epochs"]) for c in curves), default=0) <= 12
                     else None)
    fig.update_yaxes(title_text=y_title, tickformat=".0%" if percent else None)
    fig = base_layout(fig, title, height=340)
    # Run names are long: a legend on the right keeps them readable, one per line.
    fig.update_layout(legend=dict(orientation="v", yanchor="top", y=1, xanchor="left", x=1.02))
    return fig


def accuracy_scatter(points: list[dict], x_key: str, x_title: str, log_x: bool = False) -> go.Figure:
    """Test accuracy against a cost (params or seconds): CNNs as circles, baselines as diamonds.

    `points` are dicts with label, kind ("cnn" | "baseline"), accuracy and the `x_key` value.
    """
    fig = go.Figure()
    for kind, symbol, title in (("cnn", "circle", "CNN"), ("baseline", "diamond", "dense baseline")):
        chosen = [p for p in points if p["kind"] == kind and p.get(x_key) is not None
                  and p.get("accuracy") is not None]
        if not chosen:
            continue
        fig.add_trace(go.Scatter(
            x=[p[x_key] for p in chosen], y=[p["accuracy"] for p in chosen], name=title, mode="markers",
            text=[p["label"] for p in chosen], marker=dict(symbol=symbol, size=11, color=MODEL_COLORS[kind],
                                                            line=dict(width=1, color="white")),
            hovertemplate="%{text}<br>%{x:,.3s}: %{y:.2%}<extra></extra>"))
    fig.update_xaxes(title_text=x_title, type="log" if log_x else None)
    fig.update_yaxes(title_text="test accuracy", tickformat=".0%")
    return base_layout(fig, f"Test accuracy vs {x_title}", height=320)
