"""cnnkit's Home page (the entry point `app.py` declares the pages and opens this one first).

It must paint at once: no TensorFlow, no datasets loaded here (cheap file checks only).
"""

import streamlit as st

import ui
from cnnkit import settings, sysinfo
from cnnkit.data import sources
from cnnkit.data.catalog import DATASETS
from cnnkit.errors import CnnkitError
from cnnkit.views import text
from cnnkit.views.ledger import STATUS_RUNS

# --- The page ---------------------------------------------------------------------------------

ui.page("Home", "🧠")
st.title("🧠 cnnkit: convolutional networks, hands on")
st.markdown(
    "Build a CNN layer by layer, train it next to a plain dense network on the same images, watch both "
    "learn live, then **draw a digit and see what each one thinks it is**. Everything runs on this "
    "machine; MNIST and Fashion-MNIST work offline from a bundled sample.")

# --- Quick start ------------------------------------------------------------------------------
st.subheader("Quick start: three steps")
steps = (
    ("app_pages/build.py", "🧱", "1 · Build", "Pick a classic architecture (or start from scratch) and "
     "see each layer's output shape, parameters and receptive field."),
    ("app_pages/train.py", "🏋️", "2 · Train", "Train it with its dense baseline: live loss and accuracy "
     "curves, a Stop button, test accuracy of both at the end."),
    ("app_pages/draw.py", "✏️", "3 · Draw", "Draw a digit with the mouse and get the prediction of the "
     "CNN and of the baseline, with the feature maps of your drawing."),
)
for column, (page, icon, title, blurb) in zip(st.columns(3, gap="medium"), steps, strict=True):
    with column.container(border=True, height="stretch"):
        st.markdown(f"#### {title}")
        st.write(blurb)
        ui.page_link(page, f"Open {title.split(' · ')[1]}", icon)
st.caption("In a hurry? The Draw page has a one-click quick train (a small CNN, well under a minute). "
           "Also here: 📊 Data (what the images look like), 📈 Compare (every run side by side) and "
           "🔬 Inspect (confusion matrix, feature maps, filters).")

# --- Where data and runs come from ------------------------------------------------------------
data_col, runs_col, machine_col = st.columns([1.4, 1, 1], gap="large")
with data_col:
    st.subheader("Data")
    for name in DATASETS:
        hint = sources.source_hint(name, ui.data_dir())
        icon = {"sample": "🧪", "missing": "⛔", "download": "🌐"}.get(hint.kind, "✅")
        st.markdown(f"{icon} **{DATASETS[name].title}**: {hint.text}")
    st.caption("Order tried: the data directory (CNNKIT_DATA_DIR), Keras' download cache, a Keras "
               "download (unless CNNKIT_OFFLINE=1), then the bundled sample. Results on a SAMPLE are "
               "labelled as such everywhere.")

with runs_col:
    st.subheader("Runs")
    try:
        store = ui.store()
        total, records = store.count(), store.recent(STATUS_RUNS)  # 10,000 run.json files took a new server 2–3 s
    except (CnnkitError, OSError) as exc:
        ui.show_error(exc, "The runs folder cannot be read")
        records, store = [], None
    if store is not None:
        st.metric("Runs in this workspace", total)
        if records:
            newest = f"The newest {len(records):,}: " if total > len(records) else ""
            st.caption(newest + text.status_counts(record.status for record in records))
        mode = settings.get().workspaces
        st.caption(f"Folder {ui.runs_place(store)} (CNNKIT_RUNS_DIR) · workspace mode **{mode}**: "
                   + ("every visitor has their own runs." if mode == "session" else
                      "everyone using this server sees the same runs."))

with machine_col:
    st.subheader("This machine")
    gpu = sysinfo.gpu_description()
    tf_build = sysinfo.tensorflow_build()
    st.metric("CPU cores", sysinfo.cpu_count())
    if gpu and "cpu" not in tf_build:
        st.markdown(f"🟢 GPU: {gpu}")
    elif gpu:
        st.markdown(f"🟡 GPU found ({gpu}), but **{tf_build}** trains on the CPU only.")
    else:
        st.markdown("⚪ No GPU found: training runs on the CPU (fine for these small images).")
    with st.expander("Library versions"):
        st.table({"version": sysinfo.versions()})  # a row per library: the narrow column fits two columns
