"""Build: a preset or a blank start, a layer editor, and the live table of shapes and costs."""

import pandas as pd
import streamlit as st

import ui
from cnnkit.data.catalog import DATASETS, get_dataset_info
from cnnkit.errors import CnnkitError
from cnnkit.limits import check_spec
from cnnkit.model.uploads import read_spec_upload
from cnnkit.presets import PRESETS
from cnnkit.shapes import format_shape
from cnnkit.specs import LAYER_TYPES, OUTPUTS, ExperimentSpec
from cnnkit.views import editing

ui.page("Build", "🧱")
draft = ui.load_draft()
rev = ui.draft_revision(draft)  # in widget keys: a replaced draft gets fresh widgets


def replace(spec: ExperimentSpec, message: str = "") -> None:
    """A structural change: save it and draw the page again from it."""
    ui.save_draft(spec)
    if message:
        st.session_state["build_flash"] = message
    st.rerun()


def with_layers(new_layers) -> ExperimentSpec:
    return draft.updated({"layers": [layer.to_dict() for layer in new_layers]})


st.title("🧱 Build")
st.caption("Start from a classic architecture or from scratch, then edit it: the table on the right "
           "follows every change, and an impossible network is refused here, before anything trains.")
if flash := st.session_state.pop("build_flash", None):
    st.success(flash)

# --- Where to start ---------------------------------------------------------------------------
with st.container(border=True):
    pick, about = st.columns([1, 2.2], gap="large")
    names = list(PRESETS)
    chosen = pick.selectbox("Preset", names, index=names.index(draft.preset) if draft.preset in PRESETS else 0,
                            format_func=lambda n: f"{PRESETS[n].title} ({n})", key="build_preset")
    preset = PRESETS[chosen]
    b1, b2 = pick.columns(2)
    if b1.button("Load preset", type="primary", key="build_load", width="stretch"):
        replace(preset.experiment(baseline=draft.baseline or "dense-128"), f"Loaded preset {preset.title}.")
    if b2.button("From scratch", key="build_scratch", width="stretch",
                 help="Conv2D → MaxPool → Flatten → Dense: the smallest CNN, to grow from"):
        replace(ExperimentSpec(editing.starter_layers(), draft.dataset, draft.training, baseline=draft.baseline,
                               name="my-cnn"), "Started a new network from scratch.")
    about.markdown(f"**{preset.title}** · {len(preset.layers)} layers · {preset.dataset.name} · "
                   f"{preset.training.optimizer}, batch {preset.training.batch_size}, "
                   f"{preset.training.epochs} epochs  \n**Published:** {preset.published.text}  \n"
                   f"**Source:** {preset.source}")
    if preset.notes:
        about.caption(preset.notes)

editor, table = st.columns([1, 1.4], gap="large")

# --- The experiment's frame and its layers ----------------------------------------------------
with editor:
    st.subheader("Layers")
    c1, c2, c3 = st.columns([1.2, 1, 1.2])
    dataset = c1.selectbox("Built for", list(DATASETS), index=list(DATASETS).index(draft.dataset.name),
                           format_func=lambda n: DATASETS[n].title, key=f"build_dataset_{rev}")
    output = c2.selectbox("Output", OUTPUTS, index=OUTPUTS.index(draft.output), key=f"build_output_{rev}",
                          help="softmax: the last layer gives probabilities; logits: raw scores "
                               "(the loss applies softmax)")
    name = c3.text_input("Name", draft.name or "", max_chars=120, key=f"build_name_{rev}").strip() or None

    layers = draft.layers
    for i, layer in enumerate(draft.layers):
        with st.expander(f"**{i + 1}** · {layer.describe()}", key=f"build_box_{rev}_{i}"):
            fields = editing.FIELDS[layer.type]
            values = {}
            for start in range(0, len(fields), 3):  # three to a row: readable in a narrow column
                for column, field in zip(st.columns(3), fields[start:start + 3], strict=False):
                    with column:
                        values[field.name] = ui.field_input(field, getattr(layer, field.name),
                                                            key=f"build_{rev}_{i}_{field.name}")
            if values != editing.layer_values(layer):
                layers = editing.edit_layer(layers, i, values)
            up, down, drop, note = st.columns([1, 1, 1, 2], vertical_alignment="center")
            note.caption("" if fields else f"{editing.TYPE_TITLES[layer.type]} has no parameters.")
            moved = None
            if up.button("↑ Up", key=f"build_up_{rev}_{i}", disabled=i == 0, width="stretch"):
                moved = editing.move_layer(layers, i, -1)
            if down.button("↓ Down", key=f"build_down_{rev}_{i}", disabled=i == len(layers) - 1, width="stretch"):
                moved = editing.move_layer(layers, i, +1)
            if drop.button("✕ Remove", key=f"build_remove_{rev}_{i}", width="stretch"):
                moved = editing.remove_layer(layers, i)
            if moved is not None:
                replace(with_layers(moved))
    st.caption(f"Output: Dense {get_dataset_info(dataset).num_classes} ({output}) — always added last.")

    a1, a2, a3 = st.columns([1.3, 1.3, 1], vertical_alignment="bottom")
    new_type = a1.selectbox("Add a layer", list(LAYER_TYPES), format_func=editing.TYPE_TITLES.get,
                            key="build_new_type")
    where = a2.selectbox("Where", list(range(len(layers), -1, -1)), key=f"build_new_at_{rev}",
                         format_func=lambda p: "at the end" if p == len(layers) else f"before layer {p + 1}")
    if a3.button("➕ Add", key="build_add", width="stretch"):
        try:
            replace(with_layers(editing.insert_layer(layers, where, editing.new_layer(new_type))))
        except CnnkitError as exc:
            ui.show_error(exc)

spec = with_layers(layers).updated({"dataset.name": dataset, "output": output, "name": name})
ui.draft_seen(spec)  # before a rerun: this page's own edit must not reset its widgets
if spec != draft:
    ui.save_draft(spec)
    if spec.layers != draft.layers:
        st.rerun()  # the layer titles above were drawn before the edit

# --- The live table ---------------------------------------------------------------------------
with table:
    info = get_dataset_info(spec.dataset.name)
    st.subheader(f"Shapes and costs on {info.title} ({format_shape(info.input_shape, spaced=True)})")
    summary, rows, problem = editing.summarize_or_prefix(spec.layers, info.input_shape, info.num_classes)
    if problem:
        st.error(f"**This network cannot be built.** {problem}", icon="🚫")
        st.caption("The layers before the problem:" if rows else "")
    if summary is not None:
        totals = editing.summary_totals(summary, spec.training.batch_size)
        m1, m2, m3 = st.columns(3)
        m1.metric("Parameters", f"{totals['params']:,}", help=f"{totals['trainable_params']:,} trainable")
        m2.metric("Multiply-adds / image", editing.human_count(totals["macs"]))
        m3.metric(f"Activations / batch of {spec.training.batch_size}", f"{totals['activation_mb']:,.1f} MB",
                  help="float32 activations and their gradients kept for one training batch")
        try:
            check_spec(spec)
        except CnnkitError as exc:
            st.error(f"**Over this server's limits.** {exc}", icon="🚫")
    if rows:
        table_rows = editing.summary_rows(rows) + ([editing.total_row(summary)] if summary else [])
        st.dataframe(pd.DataFrame(table_rows).drop(columns="what"), hide_index=True, key="build_table",
                     column_config={"params": st.column_config.NumberColumn(format="localized"),
                                    "multiply-adds": st.column_config.NumberColumn(format="localized")})
        st.caption("Receptive field: the input patch one unit of the layer sees (stride: how far apart "
                   "neighbouring units look). After Flatten every unit sees the whole image.")
    if summary is not None:
        ui.page_link("app_pages/train.py", "Train this →", "🏋️")

# --- Save and load ----------------------------------------------------------------------------
st.divider()
save, load = st.columns(2, gap="large")
save.download_button("⬇️ Download the experiment (JSON)", spec.to_json(), file_name=f"{spec.name or 'experiment'}.json",
                     mime="application/json", key="build_download", on_click="ignore")
upload = load.file_uploader("Load an experiment (JSON)", type=["json"], key="build_upload",
                            help="A file downloaded here or written by `python -m cnnkit`")
if upload is not None and st.session_state.get("build_upload_done") != upload.file_id:
    st.session_state["build_upload_done"] = upload.file_id  # apply each file once, not on every rerun
    try:
        replace(read_spec_upload(upload.getvalue()), f"Loaded {upload.name}.")
    except CnnkitError as exc:
        st.session_state["build_upload_error"] = (upload.file_id, str(exc))
failed = st.session_state.get("build_upload_error")
if upload is not None and failed and failed[0] == upload.file_id:
    load.error(f"{upload.name} was not loaded: {failed[1]}. Your network is unchanged.")
