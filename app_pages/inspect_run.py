"""Inspect: a trained run's confusion matrix, mistakes, feature maps and filters."""

import streamlit as st

import ui
from cnnkit.data.catalog import get_dataset_info
from cnnkit.views import analysis, charts, explain, ledger, text

# --- Helpers: the test images, then one function per tab ------------------------------------


def matching_dataset(dataset: str, preds):
    """The run's test images, or None (with a note) when this server loads other ones (the sample)."""
    raw = ui.load_dataset(dataset)
    if not analysis.same_test_set(preds, raw.y_test):
        st.warning(f"This run's test set is not the one this server loads now ({raw.source.describe()}): "
                   "its images cannot be shown.")
        return None
    return raw


def select_cell(names) -> None:
    """A click on the heatmap picks that cell: copied into the two selectboxes before they render."""
    if cell := analysis.clicked_cell(st.session_state["inspect_cm"].selection, names):
        st.session_state["inspect_true"], st.session_state["inspect_pred"] = cell


def results_tab(record, preds, names) -> None:
    counts = analysis.confusion_matrix(preds.y_true, preds.y_pred, preds.num_classes)
    st.markdown(analysis.results_summary(counts, preds.accuracy))
    worst = analysis.worst_cell(counts)
    left, right = st.columns([3, 2], gap="large")
    with right:
        st.markdown("**Pick a cell** (or click one in the matrix)")
        true_class = st.selectbox("True class", range(len(names)), index=worst[0],
                                  format_func=names.__getitem__, key="inspect_true")
        pred_class = st.selectbox("Predicted as", range(len(names)), index=worst[1],
                                  format_func=names.__getitem__, key="inspect_pred")
        st.plotly_chart(charts.class_accuracy_bars(analysis.per_class_accuracy(counts), names), key="inspect_class_acc")
    left.plotly_chart(charts.confusion_heatmap(counts, names, (true_class, pred_class)), key="inspect_cm",
                      on_select=lambda: select_cell(names), selection_mode="points")
    raw = matching_dataset(record.dataset, preds)
    st.subheader(f"True {names[true_class]}, predicted {names[pred_class]}: {int(counts[true_class, pred_class]):,} images")
    ui.test_image_grid(analysis.cell_examples(preds, true_class, pred_class, limit=24), preds, raw, names, "cell")
    st.subheader("The most confident mistakes")
    ui.test_image_grid(analysis.mistakes(preds, 16), preds, raw, names, "mistakes")
    if raw is not None:
        ui.explain_test_image(record, preds, raw, [*analysis.cell_examples(preds, true_class, pred_class, 24),
                                                   *analysis.mistakes(preds, 16)], names)


def feature_maps_tab(record, preds, names) -> None:
    raw = matching_dataset(record.dataset, preds)
    if raw is None:
        return
    mistake_rows = analysis.mistakes(preds, 50)
    c1, c2 = st.columns([1, 3])
    source = c1.radio("Image", ["A mistake", "Any test image"], key="inspect_image_source",
                      index=0 if len(mistake_rows) else 1)
    if source == "A mistake" and len(mistake_rows):
        row = int(c1.selectbox("Mistake", mistake_rows, key="inspect_mistake",
                               format_func=lambda r: analysis.row_caption(preds, names, r, confidence=False)))
    else:
        row = int(c1.number_input("Test image #", 0, len(preds.y_true) - 1, 0, key="inspect_image"))
    image = raw.x_test[preds.test_indices[row]]
    c1.image(charts.enlarge(image[..., 0], 5), output_format="PNG",
             caption=analysis.image_caption(preds, names, row))
    with c2:
        st.caption("One tile per channel, each scaled to its own range: white = the strongest response.")
        for name, maps in ui.load_predictor(record, "cnn").feature_maps(image):
            st.plotly_chart(charts.feature_maps_figure(name, maps), key=f"inspect_map_{name}")


def filters_tab(record, convs: list[str]) -> None:
    c1, c2 = st.columns([1, 3])
    layer = c1.selectbox("Convolution layer", convs, key="inspect_filter_layer")
    name, kernel = ui.load_predictor(record, "cnn").filters(layer)
    channel = None  # a first layer's filters have one input channel; a deeper one's, one per map
    if kernel.shape[2] > 1:
        channel = c1.selectbox("Input channel", [None, *range(kernel.shape[2])], key="inspect_filter_in",
                               format_func=lambda c: "mean over all" if c is None else str(c),
                               help="A deeper filter has one k×k slice per input channel")
    c1.caption(analysis.filters_caption(kernel.shape))
    c2.plotly_chart(charts.filters_figure(name, kernel, channel), key="inspect_filters")


def dense_weights_tab(record) -> None:
    """A dense model has no filters: its first layer's weights, one per pixel, are pictures too."""
    dense = next(layer for layer in explain.numpy_model(ui.load_predictor(record, "baseline")).layers
                 if layer.class_name == "Dense")  # a baseline is Flatten → Dense: numpy runs it
    shape, units = get_dataset_info(record.dataset).input_shape, dense.weights[0].shape[1]
    st.caption(f"A dense network has no convolution filters. Each of its first layer's {units} units weighs every pixel: "
               f"its {shape[0]}×{shape[1]} weights (red +, blue −) are the pattern it looks for, in that one place only.")
    st.plotly_chart(charts.dense_weights_figure(dense.name, dense.weights[0], shape), key="inspect_dense_weights")


# --- The page ---------------------------------------------------------------------------------

ui.page("Inspect", "🔬")
store = ui.store()
st.title("🔬 Inspect")
ui.show_flash("inspect_flash")
runs = ledger.RunChoices(store, analysis.is_inspectable)  # read as far as the picker looks
if not runs:
    st.info("No trained runs yet: train one on the Train page, or use the one-click quick train on Draw.")
    ui.page_link("app_pages/train.py", "Go to Train", "🏋️")
    st.stop()

c1, c2 = st.columns([3, 1])
with c1:
    record = ui.select_run("Run", runs, st.query_params.get("run"), key="inspect_run")
st.query_params["run"] = record.run_id  # a reload or a shared link shows the same run
model = c2.radio("Model", analysis.inspectable_models(record), horizontal=True, key="inspect_model",
                 format_func=lambda key: text.model_title(key, capital=True))
names = list(get_dataset_info(record.dataset).class_names)
ui.show_data_source(record)
preds = ui.test_predictions(record, model)
with st.expander("⬇️ Take this model away (Keras, Python script, SavedModel, ONNX)"):
    ui.export_buttons(record, "inspect_export")
tab_results, tab_maps, tab_filters = st.tabs(["📊 Test results", "🧠 Feature maps", "🔍 Filters"],
                                             key="inspect_tab", on_change="rerun")

if tab_results.open and preds is not None:
    with tab_results:
        results_tab(record, preds, names)
if tab_maps.open:
    with tab_maps:
        if preds is None or model != "cnn":
            st.info("Feature maps are for the CNN's test images: pick the CNN model of a run with test results.")
            st.stop()
        feature_maps_tab(record, preds, names)
if tab_filters.open:
    with tab_filters:
        convs = analysis.conv_layer_names(record)
        if model == "baseline":
            dense_weights_tab(record)
        elif not convs:
            st.info("This network has no convolution layers, so it has no filters to show.")
        else:
            filters_tab(record, convs)
