"""Inspect: a trained run's confusion matrix, mistakes, feature maps and filters."""

import numpy as np
import streamlit as st

import ui
from cnnkit.data.catalog import get_dataset_info
from cnnkit.errors import CnnkitError
from cnnkit.shapes import summarize_spec
from cnnkit.views import analysis, charts

ui.page("Inspect", "🔬")
store = ui.store()
st.title("🔬 Inspect")

runs = {r.run_id: r for r in store.list() if r.status in ("finished", "stopped", "interrupted") and r.has_model()}
if not runs:
    st.info("No trained runs yet: train one on the Train page, or use the one-click quick train on Draw.")
    ui.page_link("app_pages/train.py", "Go to Train", "🏋️")
    st.stop()
ids = list(runs)
wanted = st.query_params.get("run")
c1, c2 = st.columns([3, 1])
run_id = c1.selectbox("Run", ids, index=ids.index(wanted) if wanted in ids else 0,
                      format_func=lambda i: ui.run_label(runs[i]), key="inspect_run")
st.query_params["run"] = run_id  # a reload or a shared link shows the same run
record = runs[run_id]
models = [k for k in ("cnn", "baseline") if (record.path / f"predictions_{k}.npz").is_file() or
          (k == "cnn" and record.has_model())]
model = c2.radio("Model", models, format_func={"cnn": "CNN", "baseline": "Dense baseline"}.get,
                 horizontal=True, key="inspect_model")
names = list(get_dataset_info(record.dataset).class_names)
ui.show_data_source(record)


def test_images(rows: np.ndarray, preds, raw, per_row: int = 8) -> None:
    """A grid of test images with true → predicted class and the model's confidence."""
    if raw is None or not len(rows):
        st.caption("No images here." if raw is not None else "")
        return
    images = [charts.enlarge(raw.x_test[preds.test_indices[r]][..., 0], 3) for r in rows]
    captions = [f"#{r}: {names[preds.y_true[r]]} → {names[preds.y_pred[r]]} ({preds.confidence[r]:.0%})"
                for r in rows]
    st.image(images, caption=captions, width=92, output_format="PNG")  # PNG: crisp, not JPEG-smeared


def matching_dataset(preds):
    """The test images of the run's own dataset, or None (with a note) when this server's data
    differs from what the run was trained on (e.g. trained on the real set, now only the sample)."""
    raw = ui.load_dataset(record.dataset)
    idx = preds.test_indices
    if len(idx) and (idx.max() >= len(raw.y_test) or not np.array_equal(raw.y_test[idx], preds.y_true)):
        st.warning(f"This run's test set is not the one this server loads now ({raw.source.describe()}): "
                   "its images cannot be shown.")
        return None
    return raw


def select_cell() -> None:
    # A click on the heatmap picks that cell: copy it into the two selectboxes before they render.
    points = st.session_state["inspect_cm"].selection.get("points") or []
    if points:
        st.session_state["inspect_true"] = names.index(str(points[0]["y"]))
        st.session_state["inspect_pred"] = names.index(str(points[0]["x"]))


try:
    preds = analysis.load_predictions(record.path, model)
except CnnkitError as exc:
    preds = None
    ui.show_error(exc)
tab_results, tab_maps, tab_filters = st.tabs(["📊 Test results", "🧠 Feature maps", "🔍 Filters"],
                                             key="inspect_tab", on_change="rerun")

if tab_results.open and preds is not None:
    with tab_results:
        counts = analysis.confusion_matrix(preds.y_true, preds.y_pred, preds.num_classes)
        st.markdown(f"**{counts.sum():,} test images**, accuracy **{preds.accuracy:.2%}**, "
                    f"{int(counts.sum() - np.trace(counts)):,} mistakes.")
        off = counts - np.diag(np.diag(counts))
        worst = np.unravel_index(int(off.argmax()), off.shape)
        left, right = st.columns([3, 2], gap="large")
        with right:
            st.markdown("**Pick a cell** (or click one in the matrix)")
            true_class = st.selectbox("True class", range(len(names)), index=int(worst[0]),
                                      format_func=names.__getitem__, key="inspect_true")
            pred_class = st.selectbox("Predicted as", range(len(names)), index=int(worst[1]),
                                      format_func=names.__getitem__, key="inspect_pred")
            st.plotly_chart(charts.class_accuracy_bars(analysis.per_class_accuracy(counts), names),
                            key="inspect_class_acc")
        with left:
            st.plotly_chart(charts.confusion_heatmap(counts, names, (true_class, pred_class)), key="inspect_cm",
                            on_select=select_cell, selection_mode="points")
        raw = matching_dataset(preds)
        rows = analysis.cell_examples(preds, true_class, pred_class, limit=24)
        st.subheader(f"True {names[true_class]}, predicted {names[pred_class]}: "
                     f"{int(counts[true_class, pred_class]):,} images")
        test_images(rows, preds, raw)
        st.subheader("The most confident mistakes")
        test_images(analysis.mistakes(preds, 16), preds, raw)


def load_predictor(key: str):
    try:
        with st.spinner("Loading the model…"):
            return ui.predictor(record, key)
    except Exception as exc:  # a damaged model file (bad zip, h5) is a message too
        ui.show_error(exc, "Could not load the model")
        st.stop()


if tab_maps.open:
    with tab_maps:
        if preds is None or model != "cnn":
            st.info("Feature maps are for the CNN's test images: pick the CNN model of a run with test results.")
            st.stop()
        raw = matching_dataset(preds)
        if raw is None:
            st.stop()
        mistake_rows = analysis.mistakes(preds, 50)
        c1, c2 = st.columns([1, 3])
        source = c1.radio("Image", ["A mistake", "Any test image"], key="inspect_image_source",
                          index=0 if len(mistake_rows) else 1)
        if source == "A mistake" and len(mistake_rows):
            row = int(c1.selectbox("Mistake", mistake_rows, key="inspect_mistake", format_func=lambda r:
                                   f"#{r}: {names[preds.y_true[r]]} → {names[preds.y_pred[r]]}"))
        else:
            row = int(c1.number_input("Test image #", 0, len(preds.y_true) - 1, 0, key="inspect_image"))
        image = raw.x_test[preds.test_indices[row]]
        c1.image(charts.enlarge(image[..., 0], 5), output_format="PNG", caption=f"true {names[preds.y_true[row]]}, "
                 f"predicted {names[preds.y_pred[row]]} ({preds.confidence[row]:.0%})")
        with c2:
            st.caption("One tile per channel, each scaled to its own range: white = the strongest response.")
            for name, maps in load_predictor("cnn").feature_maps(image):
                st.plotly_chart(charts.feature_maps_figure(name, maps), key=f"inspect_map_{name}")

if tab_filters.open:
    with tab_filters:
        convs = [r.name for r in summarize_spec(record.spec).layers if r.type == "conv2d"]
        if not convs:
            st.info("This network has no convolution layers, so it has no filters to show.")
            st.stop()
        c1, c2 = st.columns([1, 3])
        layer = c1.selectbox("Convolution layer", convs, key="inspect_filter_layer")
        name, kernel = load_predictor("cnn").filters(layer)
        k, _, c_in, n = kernel.shape
        channel = None
        if c_in > 1:
            choice = c1.selectbox("Input channel", ["mean over all"] + list(range(c_in)), key="inspect_filter_in",
                                  help="A deeper filter has one k×k slice per input channel")
            channel = None if choice == "mean over all" else int(choice)
        c1.caption(f"{n} filters of {k}×{k}×{c_in}. Red: positive weights, blue: negative; each filter "
                   "is scaled to its own largest weight.")
        tiles = charts.kernel_channels(kernel, channel)
        c2.plotly_chart(charts.mosaic_figure(charts.tile_channels(tiles, 64, 8, symmetric=True), name,
                                             symmetric=True, pixel=24, max_height=700), key="inspect_filters")
