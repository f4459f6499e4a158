"""Draw: a digit on a canvas → the 28×28 image the model sees → what the CNN (and its baseline) read."""

import streamlit as st

import ui
from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.drawing import load_canvas_png
from cnnkit.views import charts, demo, text

# --- Helpers: the quick train while it runs, the canvas and what the models read -------------

CANVAS_SIDE = 280


@st.fragment(run_every=1.0)
def quick_progress(run_id: str) -> None:
    record = ui.live_run(run_id, "draw_quick_stop")  # once it has ended: the canvas, with the new model
    ui.show_curves(record, "draw_quick")  # something to watch while it learns


def clear_canvas() -> None:
    # A changed initial drawing empties the canvas in place (a new key would remount it, and a
    # fresh canvas ignores strokes until it has loaded). Until the empty canvas reports back, the
    # last drawing is still the component's value: remember it as stale.
    st.session_state["draw_clears"] = st.session_state.get("draw_clears", 0) + 1
    st.session_state["draw_stale"] = st.session_state.get("draw_last")


def probability_figure(probs: dict, run_id: str, names: list):
    """The bar chart, built once per session and model; a stroke only swaps its bar heights
    (building a plotly figure costs ~70 ms here, updating one well under 1 ms)."""
    fig_key = (run_id, tuple(probs))
    if st.session_state.get("draw_fig_key") != fig_key:
        st.session_state["draw_fig"] = charts.probability_bars(probs, names, height=250)
        st.session_state["draw_fig_key"] = fig_key
    return charts.update_bars(st.session_state["draw_fig"], probs)


@st.fragment
def drawing(predictors: dict, run_id: str, names: list) -> None:
    """Only this part reruns on a stroke: canvas → 28×28 → predictions, nothing else."""
    # Importing it registers its component, which works only inside a running app.
    from streamlit_drawable_canvas import st_canvas

    left, middle, right = st.columns([1.15, 0.85, 1.7], gap="medium")
    with left:
        clears = st.session_state.get("draw_clears", 0)
        canvas = st_canvas(stroke_width=st.session_state.get("draw_brush", 20), stroke_color="#FFFFFF",
                           background_color="#000000", height=CANVAS_SIDE, width=CANVAS_SIDE, drawing_mode="freedraw",
                           initial_drawing={"objects": [], "clears": clears} if clears else None,
                           return_image_data=True, key="draw_canvas")
        b1, b2 = st.columns([1, 2], vertical_alignment="bottom")
        b1.button("🧹 Clear", key="draw_clear", on_click=clear_canvas)
        b2.slider("Brush width", 6, 40, 20, key="draw_brush")
        show_maps = st.toggle("Show the feature maps of the drawing", key="draw_show_maps")
        show_strip = st.toggle("Shift, turn, zoom my drawing", key="draw_show_strip")
        show_why = st.toggle("Why? What each model looked at", key="draw_show_why")
    try:  # the browser's PNG is hostile: its size is checked before anything is decoded
        png = ui.canvas_png(canvas, CANVAS_SIDE)
        st.session_state["draw_last"], fresh = demo.canvas_report(png, st.session_state.get("draw_stale"))
        if fresh:
            st.session_state["draw_stale"] = None  # the canvas has reported since the Clear
        result = demo.read_drawing(load_canvas_png(png, CANVAS_SIDE, CANVAS_SIDE) if fresh else None, predictors)
    except ValueError as exc:
        ui.show_error(exc, "Could not read the drawing")
        return
    with middle:
        st.markdown("**What the model sees** (28×28)")
        if result.drawing.ok:
            st.image(charts.enlarge(result.drawing.as_uint8(), 7), width=196, output_format="PNG")
        else:
            st.caption("…appears here when you draw.")
    with right:
        if not result.ok:
            st.info(result.drawing.message, icon="✏️")
            return
        best, confidence = result.top("cnn")
        st.markdown(f"## Prediction: {names[best]}")
        st.markdown(f"CNN, **{confidence:.1%}** confident")
        if "baseline" in result.probs:
            other, other_conf = result.top("baseline")
            st.markdown(f"Dense baseline: **{names[other]}** ({other_conf:.1%})")
        st.plotly_chart(probability_figure(result.probs, run_id, names), key="draw_probs")
    if show_why:
        ui.explain_panel(result.drawing.as_uint8(), predictors, names, "draw")
    if show_strip:
        ui.transform_strip(result.drawing.as_uint8(), predictors, names)
    if show_maps:
        for name, maps in predictors["cnn"].feature_maps(result.drawing.as_uint8()):
            st.plotly_chart(charts.feature_maps_figure(name, maps), key=f"draw_map_{name}")


# --- The page ---------------------------------------------------------------------------------

ui.page("Draw", "✏️")
store = ui.store()
st.title("✏️ Draw a digit")
records = store.list()
runs = demo.drawable_runs(records)
quick_id = demo.quick_train_id(records, st.session_state.get("draw_quick_run"))
if quick_id and store.exists(quick_id):
    quick = store.get(quick_id)
    if quick.is_active:
        st.subheader("⚡ Quick train: a small CNN on MNIST, then its dense baseline")
        quick_progress(quick_id)
        st.stop()
    if quick.status != "finished" and quick_id == st.session_state.get("draw_quick_run"):
        st.error(f"The quick train ended {quick.status}: {text.plain(quick.meta.get('reason') or quick.problem)}")

latest_mnist = demo.newest_mnist(runs)
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
names = list(get_dataset_info(record.dataset).class_names)
drawing(predictors, record.run_id, names)
with st.expander("📷 Or read a photo or scan of a digit"):
    ui.picture_reader(predictors, names)
st.caption("Draw one digit, large and centred, like MNIST's handwriting. The model sees the 28×28 "
           "version in the middle: cropped, scaled to 20 px and centred by its mass, as MNIST was made.")
