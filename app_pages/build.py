"""Build: a preset or a blank start, a layer editor, and the live table of shapes and costs."""

import pandas as pd
import streamlit as st

import ui
from cnnkit.data.catalog import get_dataset_info
from cnnkit.errors import CnnkitError
from cnnkit.limits import check_spec
from cnnkit.model.uploads import read_spec_upload
from cnnkit.presets import PRESETS
from cnnkit.shapes import format_shape
from cnnkit.specs import LAYER_TYPES, OUTPUTS, ExperimentSpec
from cnnkit.views import editing, recipe, text

# --- Helpers: a structural change, one layer's editor, the live table --------------------------


def replace(spec: ExperimentSpec, message: str = "") -> None:
    """A structural change: save it and draw the page again from it."""
    ui.save_draft(spec)
    ui.rerun_with(message, "build_flash")


def layer_box(draft: ExperimentSpec, layers: tuple, i: int, rev: int) -> tuple:
    """Layer i's parameters and its Up / Down / Remove buttons; returns the layers as edited."""
    layer = draft.layers[i]
    with st.expander(f"**{i + 1}** · {layer.describe()}", key=f"build_box_{rev}_{i}"):
        fields = editing.FIELDS[layer.type]  # three to a row: readable in a narrow column
        values = ui.field_grid(fields, editing.layer_values(layer), 3, key_prefix=f"build_{rev}_{i}_")
        if values != editing.layer_values(layer):
            layers = editing.edit_layer(layers, i, values)
        *buttons, note = st.columns([1, 1, 1, 2], vertical_alignment="center")
        note.caption("" if fields else f"{editing.TYPE_TITLES[layer.type]} has no parameters.")
        for column, (action, label) in zip(buttons, editing.LAYER_ACTIONS.items(), strict=True):
            # the arrow alone: "↑ Up" was cut to "↑ …" in the narrow column; the words are the help
            if column.button(label.split()[0], key=f"build_{action}_{rev}_{i}", help=f"{label} (layer {i + 1})",
                             width="stretch", disabled=not editing.action_allowed(layers, i, action)):
                replace(editing.with_layers(draft, editing.rearrange(layers, i, action)))
    return layers


def shapes_and_costs(spec: ExperimentSpec) -> None:
    """Every layer's output shape, parameters and cost, or why the network cannot be built."""
    info = get_dataset_info(spec.dataset.name)
    st.subheader(f"Shapes and costs on {info.title} ({format_shape(info.input_shape, spaced=True)})")
    summary, rows, problem = editing.summarize_or_prefix(spec.layers, info.input_shape, info.num_classes)
    if problem:
        st.error(f"**This network cannot be built.** {text.plain(problem)}", icon="🚫")
        st.caption("The layers before the problem:" if rows else "")
    if summary is not None:
        ui.metric_row(editing.summary_metrics(summary, spec.training.batch_size))
        try:
            check_spec(spec)
        except CnnkitError as exc:
            st.error(f"**Over this server's limits.** {text.plain(exc)}", icon="🚫")
    if rows:
        st.dataframe(pd.DataFrame(editing.shape_table(rows, summary)), hide_index=True, key="build_table",
                     height="content", column_config={"params": ui.COUNT_COLUMN, "multiply-adds": ui.COUNT_COLUMN})
        st.caption("Receptive field: the input patch one unit of the layer sees (stride: how far apart "
                   "neighbouring units look). After Flatten every unit sees the whole image.")
    if summary is not None:
        ui.next_steps(spec)  # Train this →, or keep it as variant A or B of an A/B sweep


# --- The page ---------------------------------------------------------------------------------

ui.page("Build", "🧱")
draft = ui.load_draft()
rev = ui.draft_revision(draft)  # in widget keys: a replaced draft gets fresh widgets
st.title("🧱 Build")
st.caption("Start from a classic architecture or from scratch, then edit it: the table on the right "
           "follows every change, and an impossible network is refused here, before anything trains.")
ui.show_flash("build_flash")

# --- Where to start: a preset, or the smallest CNN to grow from
with st.container(border=True):
    pick, about = st.columns([1, 2.2], gap="large")
    names = list(PRESETS)
    preset = PRESETS[pick.selectbox("Preset", names, index=names.index(draft.preset) if draft.preset in PRESETS else 0,
                                    format_func=lambda n: f"{PRESETS[n].title} ({n})", key="build_preset")]
    b1, b2 = pick.columns(2)
    if b1.button("Load preset", type="primary", key="build_load", width="stretch"):
        replace(preset.experiment(baseline=draft.baseline or "dense-128"), f"Loaded preset {preset.title}.")
    if b2.button("From scratch", key="build_scratch", width="stretch",
                 help="Conv2D → MaxPool → Flatten → Dense, the smallest CNN, with cnnkit's default recipe"):
        replace(editing.from_scratch(recipe.default_recipe(draft)), "Started a new network from scratch.")
    about.markdown(editing.preset_about(preset))
    about.caption(preset.notes or "")
    ui.recipe_note(draft, about)

# --- The experiment's frame and its layers, then the live table of the edited spec
editor, table = st.columns([1, 1.4], gap="large")
with editor:
    st.subheader("Layers")
    c1, c2, c3 = st.columns([1.2, 1, 1.2])
    with c1:
        dataset = ui.dataset_select("Built for", f"build_dataset_{rev}", draft.dataset.name)
    output = c2.selectbox("Output", OUTPUTS, index=OUTPUTS.index(draft.output), key=f"build_output_{rev}",
                          help="softmax: the last layer gives probabilities; logits: raw scores "
                               "(the loss applies softmax)")
    name = c3.text_input("Name", draft.name or "", max_chars=120, key=f"build_name_{rev}").strip() or None
    layers = draft.layers
    for i in range(len(draft.layers)):
        layers = layer_box(draft, layers, i, rev)
    st.caption(f"Output: Dense {get_dataset_info(dataset).num_classes} ({output}) — always added last.")
    a1, a2, a3 = st.columns([1.3, 1.3, 1], vertical_alignment="bottom")
    new_type = a1.selectbox("Add a layer", list(LAYER_TYPES), format_func=editing.TYPE_TITLES.get,
                            key="build_new_type")
    where = a2.selectbox("Where", list(range(len(layers), -1, -1)), key=f"build_new_at_{rev}",
                         format_func=lambda p: editing.position_label(p, len(layers)))
    if a3.button("➕ Add", key="build_add", width="stretch"):
        try:
            replace(editing.with_layers(draft, editing.insert_layer(layers, where, editing.new_layer(new_type))))
        except CnnkitError as exc:
            ui.show_error(exc)

spec = editing.with_layers(draft, layers).updated({"dataset.name": dataset, "output": output, "name": name})
ui.draft_seen(spec)  # before a rerun: this page's own edit must not reset its widgets
if spec != draft:
    ui.save_draft(spec)
    if spec.layers != draft.layers:
        st.rerun()  # the layer titles above were drawn before the edit
with table:
    shapes_and_costs(spec)

# --- Save and load
st.divider()
save, load = st.columns(2, gap="large")
save.download_button("⬇️ Download the experiment (JSON)", spec.to_json(), file_name=f"{spec.name or 'experiment'}.json",
                     mime="application/json", key="build_download", on_click="ignore")
ui.share_box(spec, save)
upload = load.file_uploader("Load an experiment (JSON)", type=["json"], key="build_upload",
                            help="A file downloaded here or written by `python -m cnnkit`")
if failed := ui.upload_once(upload, lambda data: replace(read_spec_upload(data), f"Loaded {text.plain(upload.name)}.")):
    load.error(f"{text.plain(upload.name)} was not loaded: {text.plain(failed)}. Your network is unchanged.")
