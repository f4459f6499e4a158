"""Draw: a digit (or a piece of clothing, for a Fashion-MNIST run) on a canvas → the 28×28 image the
model sees → what the CNN (and its baseline) read, and when not to trust it."""

import streamlit as st

import ui
from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.drawing import drawing_message, subject
from cnnkit.runs.jobs import active_runs
from cnnkit.views import charts, demo, ledger, text

# --- Helpers: the quick train while it runs, the canvas and what the models read -------------

CANVAS_SIDE = 280


@st.fragment(run_every=ui.poll_every(ui.LIVE_POLL_SECONDS))
def quick_progress(run_id: str) -> None:
    ui.live_run(run_id, "draw_quick_stop", key="draw_quick")  # once it has ended: the canvas, with the new model


@st.fragment
def drawing(predictors: dict, run_id: str, names: list, dataset: str) -> None:
    """Only this part reruns on a stroke: canvas → 28×28 → predictions, nothing else."""
    # Side by side while they fit, else one under the other: in a column narrower than itself the
    # canvas scrolled sideways.
    row = st.container(horizontal=True, gap="medium")
    left, middle, right = row.container(width=CANVAS_SIDE), row.container(width=200), row.container()
    with left:
        st.markdown("**Your drawing**")
        try:  # the browser's message is hostile: its length is checked before anything is decoded
            ink = ui.draw_canvas(CANVAS_SIDE, st.session_state.get("draw_brush", 20), "draw_canvas")
        except ValueError as exc:
            ui.show_error(exc, "Could not read the drawing")
            ink = None
        st.slider("Brush width", 6, 40, 20, key="draw_brush")
        show_maps = st.toggle("Show the feature maps of the drawing", key="draw_show_maps")
        show_strip = st.toggle("Shift, turn, zoom my drawing", key="draw_show_strip")
        show_why = st.toggle("Why? What each model looked at", key="draw_show_why")
    result = demo.read_drawing(ink, predictors)
    with middle:
        st.markdown("**What the model sees** (28×28)")
        if result.drawing.ok:
            st.image(charts.enlarge(result.drawing.as_uint8(), 7), width=196, output_format="PNG")
        else:
            st.caption("…appears here when you draw.")
    with right:
        if not result.ok:
            st.info(drawing_message(result.drawing.status, subject(dataset)), icon="✏️")
            return
        ui.drawing_reading(result, names, dataset, run_id)
    if show_why:
        ui.explain_panel(result.drawing.as_uint8(), predictors, names, "draw")
    if show_strip:
        ui.transform_strip(result.drawing.as_uint8(), predictors, names)
    if show_maps:
        for name, maps in predictors["cnn"].feature_maps(result.drawing.as_uint8()):
            st.plotly_chart(charts.feature_maps_figure(name, maps), key=f"draw_map_{name}")


# --- The page ---------------------------------------------------------------------------------

ui.page("Draw", "✏️", runs_panel=False)
store = ui.store()
title = st.empty()  # in the words of the chosen run's dataset, once it is chosen
title.title(f"✏️ {subject('mnist').title}")
runs = ledger.RunChoices(store, demo.is_drawable)  # read as far as the picker looks
quick_id = demo.quick_train_id(active_runs(store), st.session_state.get("draw_quick_run"))
ui.active_runs_panel(shown=quick_id)  # not the quick train this page shows live already
if quick_id and store.exists(quick_id):
    quick = store.get(quick_id)
    if quick.is_active:
        st.subheader("⚡ Quick train: a small CNN on MNIST, then its dense baseline")
        quick_progress(quick_id)
        st.stop()
    if quick.status != "finished" and quick_id == st.session_state.get("draw_quick_run"):
        st.error(f"The quick train ended {quick.status}: {text.plain(quick.meta.get('reason') or quick.problem)}")

latest_mnist = runs.first(demo.is_mnist)
if latest_mnist is None:
    st.info("There is no trained MNIST model yet. **Quick train** one — a small CNN (conv 16 → pool → "
            "conv 32 → pool → dense 64) and its dense baseline, about half a minute — then draw.")
    if st.button("⚡ Quick train a small CNN", type="primary", key="draw_quick_train"):
        available = len(ui.load_dataset("mnist").y_train)  # the bundled sample has fewer than the limit
        if ui.start_run(demo.quick_train_spec(available), session_key="draw_quick_run"):
            st.rerun()
    if not runs:
        st.stop()

top_left, top_right = st.columns([2, 3])
with top_left:
    record = ui.select_run("Model", runs, latest_mnist and latest_mnist.run_id, key="draw_run")
with top_right:
    ui.show_data_source(record)
# Load the models when the page opens (cached per server, see ui.predictor), not on the first stroke.
predictors = {"cnn": ui.load_predictor(record, "cnn")}
if record.has_baseline and record.has_model("baseline"):
    predictors["baseline"] = ui.load_predictor(record, "baseline")
names, about = list(get_dataset_info(record.dataset).class_names), subject(record.dataset)
title.title(f"✏️ {about.title}")
drawing(predictors, record.run_id, names, record.dataset)
with st.expander(f"📷 Or read {about.photo}"):
    ui.picture_reader(predictors, names, record.dataset)
st.caption(f"{about.advice} The model sees the 28×28 version in the middle: cropped, scaled to 20 px and "
           "centred by its mass, as MNIST was made.")
