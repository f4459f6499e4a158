"""Robustness: does the CNN still read an image moved, turned, zoomed or noisy — and does the dense net?"""

import streamlit as st

import ui
from cnnkit.errors import CnnkitError
from cnnkit.views import analysis, charts, ledger, robustness, text

# --- Helpers ----------------------------------------------------------------------------------


def compute(record, store, limit: int) -> None:
    """The lab in a `cnnkit robustness` process, with a progress bar; it stores the report."""
    bar = st.progress(0.0, text="Starting (TensorFlow loads in its own process, ~3 s)…")
    try:
        robustness.compute_in_subprocess(record.run_id, store.root, ui.data_dir(), limit,
                                         lambda what, done: bar.progress(done, text=f"Measured: {what}"))
    except CnnkitError as exc:
        ui.show_error(exc, "The robustness lab failed")
        st.stop()
    st.rerun()


def show_report(record, report) -> None:
    tested = {key: record.model_result(key).get("test_accuracy") for key in ("cnn", "baseline")}
    st.caption(f"{report['n_images']:,} test images · measured in {report.get('seconds', 0):.1f} s · the hollow "
               "circles: each model's accuracy on the whole test split")
    columns = st.columns(2)
    for index, (name, transform) in enumerate(robustness.TRANSFORMS.items()):
        figure = charts.robustness_chart(transform.title, transform.unit, report[name]["values"],
                                         robustness.curves(report, name), tested)
        columns[index % 2].plotly_chart(figure, key=f"robustness_{name}")
    shift = report["shift"]
    if "baseline" in shift and len(shift["values"]) > 4:
        st.markdown(f"Moved by 4 px, the CNN keeps **{shift['cnn'][4]:.0%}** of the digits and the dense "
                    f"baseline **{shift['baseline'][4]:.0%}** (unmoved: {shift['cnn'][0]:.0%} and "
                    f"{shift['baseline'][0]:.0%}). Convolution and pooling look for the same pattern "
                    "everywhere; a dense layer learns each pixel position on its own.")


# --- The page ---------------------------------------------------------------------------------

ui.page("Robustness", "🧪")
store = ui.store()
st.title("🧪 Robustness lab")
st.caption("The same test images shifted (the mean of right, left, down and up; vacated pixels black), "
           "rotated, zoomed and made noisy, read by the run's CNN and its dense baseline.")
runs = ledger.RunChoices(store, analysis.is_robustness_ready)  # read as far as the picker looks
if not runs:
    st.info("No finished runs yet: train one (with a dense baseline, to compare), then come back.")
    ui.page_link("app_pages/train.py", "Go to Train", "🏋️")
    st.stop()
wanted = st.query_params.get("run")
if not wanted:  # the comparison is the point: the newest run with a baseline, among those a picker offers
    wanted = next((r.run_id for r in runs.newest(ledger.PICKER_RUNS) if r.has_baseline), None)
record = ui.select_run("Run", runs, wanted, key="robustness_run")
st.query_params["run"] = record.run_id
ui.show_data_source(record)
if record.spec and record.spec.augmentation.active:
    st.caption(f"Trained with data augmentation ({record.spec.augmentation.describe()}): compare it here with a "
               "run of the same network without.")
if not record.has_baseline:
    st.caption("This run has no dense baseline: only the CNN is measured. Train with a baseline to compare.")
report = robustness.load_report(record.path)
left, right = st.columns([1, 3], vertical_alignment="bottom")
limit = left.number_input("Test images", 100, 10_000, robustness.DEFAULT_LIMIT, step=100, key="robustness_limit",
                          help="The first N images of the test split")
label = "🔁 Measure again" if report else "🧪 Run the robustness lab"
if right.button(label, type="secondary" if report else "primary", key="robustness_compute"):
    compute(record, store, int(limit))
if report is None:
    st.info("Not measured yet for this run: about 10 s for 1,000 images and both models.")
    st.stop()
show_report(record, report)
ui.page_link("app_pages/draw.py", "Try it on your own drawing (Draw: shift and turn it)", "✏️")
st.caption(f"Measured on {text.plain(str((report.get('data_source') or {}).get('description', '')))[:160]}")
