"""Models: bring a model trained elsewhere in as a run, and take any run's model away."""

import pandas as pd
import streamlit as st

import ui
from cnnkit.errors import CnnkitError
from cnnkit.runs.imported import imported_runs
from cnnkit.views import imports, ledger, text

SCALES = {"unit": "0–1 (it was trained on x / 255, as the tutorials do)", "raw": "0–255 (raw pixel values)"}

# --- Helpers ----------------------------------------------------------------------------------


def import_form(store) -> None:
    """The upload and its three questions; the import itself is `cnnkit import` in a subprocess."""
    with st.form("models_import"):
        upload = st.file_uploader("A Keras 3 model file (.keras)", type=["keras"], key="models_upload",
                                  help="Saved with model.save('name.keras'). Checked before anything is built.")
        left, right = st.columns(2)
        with left:
            dataset = ui.dataset_select("It was trained on", "models_dataset")
        scale = right.radio("It expects pixels of", list(SCALES), format_func=SCALES.get, key="models_scale")
        name = st.text_input("Name (optional)", max_chars=120, key="models_name",
                             placeholder="imported <file name>")
        submitted = st.form_submit_button("📥 Import and evaluate", type="primary")
    if not submitted:
        return
    if upload is None:
        st.info("Choose a .keras file first.")
        return
    refusal = None
    with st.status(f"Checking {text.plain(upload.name)}, then evaluating it on the test split…",
                   expanded=True) as status:
        st.write("The file is checked before anything is built: its layers, sizes and weights.")
        try:
            result = imports.import_upload(upload.getvalue(), upload.name, dataset, scale, name, store.root,
                                           ui.data_dir())
            status.update(label=f"Imported: {result['test_accuracy']:.2%} test accuracy", state="complete")
        except CnnkitError as exc:
            refusal = str(exc)
            status.update(label="Refused: nothing was imported", state="error")
    if refusal is not None:  # outside the status box, which folds up when it ends
        st.error(f"{text.plain(upload.name)} was not imported: {text.plain(refusal)}")
        return
    st.session_state["models_run"] = result["run_id"]


def show_imported(record) -> None:
    """What came in: accuracy, size, whether cnnkit can rebuild it, and each layer's reading."""
    info = record.imported
    ui.metric_row([
        {"label": "Test accuracy", "value": f"{record.test_accuracy:.2%}",
         "help": "On the test split this server loads; the predictions are stored for Inspect"},
        {"label": "Parameters", "value": f"{record.model_result('cnn').get('params', 0):,}"},
        {"label": "Rebuildable in cnnkit", "value": "yes" if record.rebuildable else "no",
         "help": "Every layer maps to a cnnkit layer: Compare can train it again"},
    ])
    ui.show_data_source(record)
    if not record.rebuildable:
        st.caption(f"Not rebuildable: {text.plain(str(info.get('why_not_rebuildable', '')))}. Inspect, Draw "
                   "and Compare work on its weights all the same.")
    rows = [{"layer": r.get("name"), "Keras class": r.get("keras"), "output": "×".join(map(str, r.get("output_shape", []))),
             "params": r.get("params"), "cnnkit": r.get("cnnkit")} for r in info.get("layers", [])]
    st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={"params": ui.COUNT_COLUMN})
    links = st.columns(3)
    for column, (page, label, icon) in zip(links, [("app_pages/inspect_run.py", "Inspect it", "🔬"),
                                                    ("app_pages/draw.py", "Draw for it", "✏️"),
                                                    ("app_pages/compare.py", "Compare it", "📈")], strict=True):
        with column:
            ui.page_link(page, label, icon, query_params={"run": record.run_id})


# --- The page ---------------------------------------------------------------------------------

ui.page("Models", "🧳")
store = ui.store()
st.title("🧳 Models")
st.caption("Bring a model trained in a notebook or a tutorial script; take any run's model away "
           "as a Keras file, a training script, a TensorFlow SavedModel or ONNX.")

st.header("Bring a model")
import_form(store)
runs = ledger.RunChoices(store, ledger.is_finished)  # read as far as the pickers look
imported = ledger.RunChoices(store, imports.is_imported_model, imported_runs)  # from their index
if imported:
    record = ui.select_run("Imported model", imported, st.session_state.get("models_run"), "models_imported")
    show_imported(record)

st.header("Take a model away")
if not runs:
    st.info("No finished runs yet: train one, or import a model above.")
    st.stop()
record = ui.select_run("Run", runs, st.query_params.get("run") or st.session_state.get("models_run"),
                       "models_export")
st.caption("Weights do not travel in a share link: these files do. The script rebuilds and trains the "
           "architecture from scratch; the model files carry the trained weights (0–255 pixels in).")
ui.export_buttons(record, "models_export")
