"""Data: what the images look like, how the classes are spread, and what normalization does."""

import numpy as np
import streamlit as st

import ui
from cnnkit.data.catalog import DATASETS
from cnnkit.data.prepare import class_counts, normalize, pixel_statistics, prepare
from cnnkit.errors import CnnkitError
from cnnkit.shapes import format_shape
from cnnkit.specs import NORMALIZATIONS
from cnnkit.views import charts

GRID = 32  # images in the grid: 4 rows of 8 fit a laptop screen

# --- Helpers: cached statistics --------------------------------------------------------------


@st.cache_data(show_spinner="Computing pixel statistics…", max_entries=8)
def statistics(name: str, data_dir: str | None, source: str) -> dict:
    # `source` is part of the key: the same name from another source is other data
    raw = ui.raw_dataset(name, data_dir)
    return pixel_statistics(raw.x_train)


@st.cache_resource(show_spinner="Computing the normalization statistics…", max_entries=4)
def prepared(name: str, data_dir: str | None, normalization: str):
    # the training set's mean/std, as the training job computes them (validation split 0)
    return prepare(ui.raw_dataset(name, data_dir), validation_split=0.0, normalization=normalization)


# --- The page ---------------------------------------------------------------------------------

ui.page("Data", "📊")
st.title("📊 Data")
pick, blurb = st.columns([1, 2.6], gap="large", vertical_alignment="bottom")
with pick:
    name = ui.dataset_select("Dataset", "data_name")
info = DATASETS[name]
blurb.caption(f"{info.description} Licence: {info.license}.")
raw = ui.load_dataset(name)  # a dataset that cannot be had: a clear error, then the page stops
ui.show_dataset_source(raw.source)

# --- A grid of images -------------------------------------------------------------------------
st.subheader("Sample images")
c1, c2, c3, c4 = st.columns([3, 1, 1, 1], vertical_alignment="bottom")
# one widget per dataset: with one key, the browser kept the last dataset's class chips ("0–9" on Fashion-MNIST)
shown = c1.multiselect("Classes", list(range(info.num_classes)), default=list(range(info.num_classes)),
                       format_func=lambda k: info.class_names[k], key=f"data_classes_{name}")
split = c2.radio("Split", ["train", "test"], horizontal=True, key="data_split")
st.session_state.setdefault("data_seed", 0)  # the widget's value lives in the session (see below)
seed = c3.number_input("Seed", 0, 1_000_000, key="data_seed")
# A callback, because a widget's value can only be changed before the widget is drawn.
c4.button("🔀 Reshuffle", key="data_shuffle", width="stretch",
          on_click=lambda: st.session_state.update(data_seed=st.session_state["data_seed"] + 1))
x, y = (raw.x_train, raw.y_train) if split == "train" else (raw.x_test, raw.y_test)
candidates = np.flatnonzero(np.isin(y, shown))
if not len(candidates):
    st.info("Pick at least one class to see its images.")
    st.stop()
picked = np.random.default_rng(int(seed)).choice(candidates, size=min(GRID, len(candidates)), replace=False)
st.plotly_chart(charts.image_grid(x[picked], [info.class_names[int(y[i])] for i in picked]),
                key="data_grid", config={"displayModeBar": False})

# --- Classes and pixels -----------------------------------------------------------------------
left, right = st.columns([1.4, 1], gap="large")
train_counts = class_counts(raw.y_train, info.num_classes)
left.plotly_chart(charts.class_counts_chart(info.class_names, train_counts,
                                            class_counts(raw.y_test, info.num_classes)), key="data_counts")
with right:
    st.subheader("Pixel statistics (training set)")
    stats = statistics(name, ui.data_dir(), raw.source.location)
    m1, m2, m3 = st.columns(3)
    m1.metric("Mean", f"{stats['mean']:.1f}")
    m2.metric("Std", f"{stats['std']:.1f}")
    m3.metric("Zero pixels", f"{stats['zero_fraction']:.0%}")
    st.caption(f"Values {stats['min']}–{stats['max']} over {stats['num_pixels']:,} pixels "
               f"({len(raw.y_train):,} training images of {format_shape(info.input_shape, spaced=True)}); "
               f"classes from {train_counts.min():,} to {train_counts.max():,} images.")

# --- Normalization ----------------------------------------------------------------------------
st.subheader("Normalization: what the network really receives")
norm = st.radio("Normalization", NORMALIZATIONS, index=1, horizontal=True, key="data_norm",
                format_func={"none": "none (0–255)", "scale": "scale (÷ 255)",
                             "standardize": "standardize ((x − mean) / std per pixel)"}.get)
try:
    data = prepared(name, ui.data_dir(), norm)
    before = raw.x_train[:500]  # 500 images are plenty for the shape of the histogram
    after = normalize(before, norm, data.mean, data.std)
except CnnkitError as exc:
    ui.show_error(exc, "Could not normalize")
    st.stop()
st.caption(f"After '{norm}': mean {after.mean():.3g}, std {after.std():.3g}, range {after.min():.3g} … "
           f"{after.max():.3g} (first 500 training images). Same pictures, other numbers: gradient steps "
           f"behave best when inputs are small and centred.")
h1, h2 = st.columns([1.6, 1], gap="large")
h1.plotly_chart(charts.normalization_histograms(before, after, norm), key="data_hist")
h2.plotly_chart(charts.image_before_after(x[picked[0]], normalize(x[picked[0]], norm, data.mean, data.std), norm),
                key="data_before_after")
