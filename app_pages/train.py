"""Train: the draft experiment's training settings, Start, live curves, and the final results."""

import streamlit as st

import ui
from cnnkit.errors import CnnkitError
from cnnkit.limits import check_data_size, check_spec
from cnnkit.views import editing, monitor, text

# --- Helpers: the run live while it trains, its results afterwards ---------------------------


@st.fragment(run_every=ui.poll_every(ui.LIVE_POLL_SECONDS))
def live_progress(run_id: str) -> None:
    record = ui.live_run(run_id, f"train_stop_{run_id}", "Stops within one batch (or leaves the queue)")
    ui.health_panel(record)


def results(record) -> None:
    rows = monitor.result_rows(record)
    ui.metric_row(monitor.result_metrics(rows))
    st.dataframe(monitor.result_table(rows), hide_index=True, key="train_table")


# --- The page -------------------------------------------------------------------------------

ui.page("Train", "🏋️", runs_panel=False)
store = ui.store()
draft = ui.load_draft()
ds = draft.dataset
ui.ready_worker(ds.name)  # a warm worker waits for Start (runs/warm.py), unless this server has them off
st.title("🏋️ Train")
# the URL first: the sidebar's Open (and a shared link) name the run to show
record = monitor.attach_run(store, [st.query_params.get("run"), st.session_state.get("train_run")])
ui.active_runs_panel(shown=record and record.run_id)  # not the run this page shows live already
if record is not None and record.is_active:  # on a phone the run sits below all the settings
    # no status here: this line is not redrawn by the polling fragment, so "queued" would go stale
    st.markdown(f"🏃 **{text.plain(record.name)}** is on: [↓ its progress, Pause and Stop](#the-run)")

form, view = st.columns([1, 2.2], gap="large")

# --- Settings: prefilled from the draft, every change saved back into it. The widgets accept any
# value a spec may hold (an uploaded draft can hold any); this server's caps are checked below, inline.
with form:
    st.markdown(f"#### {text.plain(draft.name or draft.preset or 'Custom network')} on {ds.name}")
    st.caption(" → ".join(layer.describe() for layer in draft.layers))
    ui.page_link("app_pages/build.py", "Edit the network on Build", "🧱")
    ui.share_box(draft)
    top = st.container()  # the check and the Start button, filled in below the settings they need
    changes = ui.spec_fields(editing.TRAINING_FIELDS, draft)
    changes.update(ui.augmentation_fields(draft))
    ui.lr_finder_panel(draft)
    with_baseline = st.toggle("Train the dense baseline too", draft.baseline is not None, key="train_baseline",
                              help="Same data, seed and epochs: is the convolution worth it?")
    kind = st.radio("Baseline", ["dense-128", "matched"], index=int(draft.baseline == "matched"),
                    format_func={"dense-128": "Dense 128 (the classic MLP)",
                                 "matched": "Dense, same parameter count as the CNN"}.get,
                    horizontal=True, key="train_baseline_kind", disabled=not with_baseline)
    changes["baseline"] = kind if with_baseline else None
with top:
    try:
        spec = draft.updated(changes)
        summary = check_spec(spec)
        if spec != draft:
            ui.save_draft(spec)
        with st.spinner(f"Loading {ds.name}…"):  # not ui.load_dataset: missing data must not stop the page
            raw = ui.raw_dataset(ds.name, ui.data_dir())
        data_line = f"Data: {text.source_summary(raw.source.describe())}"
        (st.warning if raw.source.is_sample else st.caption)(data_line)
        check_data_size(spec, len(raw.y_train), len(raw.y_test), sample=raw.source.is_sample)
        st.caption(f"{summary.total_params:,} parameters · {summary.total_macs:,} multiply-adds per image")
    except CnnkitError as exc:
        spec = None
        ui.show_error(exc, "This experiment cannot train")
    if st.button("▶️ Start training", type="primary", disabled=spec is None, key="train_start",
                 width="stretch") and ui.start_run(spec):
        st.rerun()
    ui.start_offer()  # a run of this visitor is still active: open it, or queue this one after it
with form:
    if spec is not None:
        with st.expander("📉 Learning-rate schedule", expanded=spec.training.schedule != "constant"):
            ui.schedule_chart(spec.training, "train_schedule_chart")

with view:
    if record is None:
        st.info("No training runs yet: check the settings on the left and press **Start training**.")
        st.stop()
    st.subheader(text.plain(record.name), anchor="the-run")
    if record.is_active:
        live_progress(record.run_id)  # status, progress, controls, curves: redrawn as they change
        st.stop()
    st.caption(f"{text.status_label(record.status)} · run `{record.run_id}`")
    if record.status == "finished":
        results(record)
        ui.show_data_source(record)
        c1, c2 = st.columns(2)
        with c1:
            ui.page_link("app_pages/inspect_run.py", "Inspect this run", "🔬",
                         query_params={"run": record.run_id})
        with c2:
            ui.page_link("app_pages/draw.py", "Draw for it", "✏️")
    elif record.status == "failed":
        st.error(f"The training failed: {text.plain(record.meta.get('reason') or record.problem)}")
        if record.meta.get("suggestion"):
            st.info(f"💡 {text.plain(record.meta['suggestion'])}")
    elif record.status in ("stopped", "interrupted"):
        st.warning(text.plain(monitor.ended_early_text(record)))
        if record.test_accuracy is not None:
            results(record)
        if record.meta.get("suggestion"):
            st.info(f"💡 {text.plain(record.meta['suggestion'])}")
    else:
        st.error(f"This run folder is damaged: {text.plain(record.problem)}")
    ui.continue_panel(record)
    ui.health_panel(record)
    if record.spec and record.status != "finished" and st.button(
            "🔁 Re-run with the same settings", key="train_rerun") and ui.start_run(record.spec):
        st.rerun()
    ui.show_curves(record, "final")
