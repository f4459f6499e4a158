"""Plotly figures for the pages. No streamlit here: a page calls `st.plotly_chart(fig)`.

Each function takes plain data (numpy arrays, lists of history records) and returns a
`plotly.graph_objects.Figure`, so figures are testable without a browser.
"""

from __future__ import annotations

import plotly.graph_objects as go

# One colour per model across every chart: the CNN and its dense baseline stay recognizable.
MODEL_COLORS = {"cnn": "#1f77b4", "baseline": "#ff7f0e"}
TEMPLATE = "plotly_white"


def base_layout(fig: go.Figure, title: str = "", height: int = 360) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title or None, height=height,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="right", x=1))
    return fig
