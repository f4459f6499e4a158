"""Train: the draft experiment's training settings, Start, live curves, and the final results."""

import streamlit as st

import ui
from cnnkit import jobs, monitor
from cnnkit.errors import CnnkitError, SpecError
from cnnkit.limits import check_spec
from cnnkit.specs import MAX_BATCH_SIZE, MAX_EPOCHS, MAX_SEED, NORMALIZATIONS, OPTIMIZERS, SCHEDULES

ui.page("Train", "🏋️")
store = ui.store()
draft = ui.load_draft()
tr, ds = draft.training, draft.dataset
st.title("🏋️ Train")

settings, view = st.columns([1, 2.2], gap="large")

# --- Settings: prefilled from the draft, every change saved back into it. The widgets accept any
# value a spec may hold (an uploaded draft can hold any); this server's caps are checked below, inline.
with settings:
    st.markdown(f"#### {draft.name or draft.preset or 'Custom network'} on {ds.name}")
    st.caption(" → ".join(layer.describe() for layer in draft.layers))
    ui.page_link("pages/2_🧱_Build.py", "Edit the network on Build", "🧱")
    top = st.container()  # the check and the Start button, filled in below the settings they need
    c1, c2 = st.columns(2)
    optimizer = c1.selectbox("Optimizer", OPTIMIZERS, index=OPTIMIZERS.index(tr.optimizer), key="train_optimizer")
    lr = c2.number_input("Learning rate", 0.0, 1e6, tr.learning_rate, step=1e-4, format="%g", key="train_lr")
    changes = {"training.optimizer": optimizer, "training.learning_rate": lr}
    if optimizer == "sgd":
        changes["training.momentum"] = c1.number_input("Momentum", 0.0, 0.9999, tr.momentum, step=0.1,
                                                       key="train_momentum")
        changes["training.nesterov"] = c2.checkbox("Nesterov", tr.nesterov, key="train_nesterov")
    schedule = c1.selectbox("LR schedule", SCHEDULES, index=SCHEDULES.index(tr.schedule), key="train_schedule",
                            help="step: × rate every N epochs · exponential: × rate per epoch · cosine: "
                                 "to 0 over the run · plateau: × rate when validation loss stalls")
    changes["training.schedule"] = schedule
    if schedule in ("step", "exponential", "plateau"):
        changes["training.decay_rate"] = c2.number_input("Decay factor", 0.0, 1.0, tr.decay_rate, step=0.05,
                                                         key="train_decay_rate")
    if schedule in ("step", "plateau"):
        label = "Patience (epochs)" if schedule == "plateau" else "Every N epochs"
        changes["training.decay_epochs"] = c1.number_input(label, 1, MAX_EPOCHS, tr.decay_epochs, key="train_decay_epochs")
    c1, c2 = st.columns(2)
    changes["training.batch_size"] = c1.number_input("Batch size", 1, MAX_BATCH_SIZE, tr.batch_size, step=32, key="train_batch")
    changes["training.epochs"] = c2.number_input("Epochs", 1, MAX_EPOCHS, tr.epochs, key="train_epochs")
    changes["training.seed"] = c1.number_input("Seed", 0, MAX_SEED, tr.seed, key="train_seed")
    changes["training.weight_decay"] = c2.number_input("Weight decay (L2)", 0.0, 1.0, tr.weight_decay,
                                                       step=1e-4, format="%g", key="train_weight_decay")
    changes["dataset.train_limit"] = c1.number_input(
        "Training images", 10, 10_000_000, ds.train_limit, step=1000, placeholder="all", key="train_limit",
        help="A random subset (class proportions kept); empty = all of them")
    changes["dataset.validation_split"] = c2.number_input("Validation split", 0.0, 0.5, ds.validation_split,
                                                          step=0.05, key="train_val_split")
    changes["dataset.normalization"] = c1.selectbox(
        "Normalization", NORMALIZATIONS, index=NORMALIZATIONS.index(ds.normalization), key="train_norm",
        help="none: raw 0–255 · scale: /255 · standardize: (x − mean) / std of the training pixels")
    with_baseline = st.toggle("Train the dense baseline too", True, key="train_baseline",
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
        (st.warning if raw.source.is_sample else st.caption)(f"Data: {raw.source.describe().split(' — ')[0]}")
        if (spec.dataset.train_limit or 0) > len(raw.y_train):
            raise SpecError("dataset.train_limit", f"{spec.dataset.train_limit:,} is more than the "
                                                   f"{len(raw.y_train):,} training images available here")
        st.caption(f"{summary.total_params:,} parameters · {summary.total_macs:,} multiply-adds per image")
    except CnnkitError as exc:
        spec = None
        ui.show_error(exc, "This experiment cannot train")
    if st.button("▶️ Start training", type="primary", disabled=spec is None, key="train_start",
                 width="stretch") and ui.start_run(spec):
        st.rerun()

# --- The run: live while it trains, its results afterwards ------------------------------------


@st.fragment(run_every=1.0)
def live_progress(run_id: str) -> None:
    record = store.get(run_id)
    if not record.is_active:
        st.rerun()  # the whole page once: it draws the results and these fragments stop polling
    ui.show_progress(monitor.live_status(record, store.progress(run_id)))
    if st.button("⏹️ Stop", key=f"train_stop_{run_id}", help="Stops within one batch (or leaves the queue)"):
        jobs.stop(store, run_id)
        st.toast("Stopping…")


# Redrawing the two charts is most of what a live page costs the machine it trains on (the
# browser re-plots them): every 2 s instead of every second cut that by about a third.
@st.fragment(run_every=2.0)
def live_curves(run_id: str) -> None:
    ui.show_curves(store.get(run_id), "live")


def results(record) -> None:
    rows = monitor.result_rows(record)
    cnn, base = rows[0], (rows[1] if len(rows) > 1 else {})
    delta = None
    if cnn["test_accuracy"] is not None and base.get("test_accuracy") is not None:
        delta = f"{(cnn['test_accuracy'] - base['test_accuracy']) * 100:+.1f} pp vs dense"
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("CNN test accuracy", ui.fmt_pct(cnn["test_accuracy"]), delta,
              help="pp: percentage points, CNN minus the dense baseline")
    m2.metric("Baseline test accuracy", ui.fmt_pct(base.get("test_accuracy")))
    m3.metric("CNN parameters", f"{cnn['params'] or 0:,}")
    m4.metric("Training time", ui.fmt_seconds(sum(r["seconds"] or 0 for r in rows)))
    st.dataframe([{"model": r["model"], "test accuracy": ui.fmt_pct(r["test_accuracy"]),
                   "test loss": "–" if r["test_loss"] is None else f"{r['test_loss']:.4f}",
                   "parameters": f"{r['params'] or 0:,}", "epochs": r["epochs"],
                   "time per epoch": ui.fmt_seconds(r["seconds_per_epoch"]),
                   "total time": ui.fmt_seconds(r["seconds"])} for r in rows], hide_index=True, key="train_table")


with view:
    record = monitor.pick_run(store.list(), [st.session_state.get("train_run"), st.query_params.get("run")])
    if record is None:
        st.info("No training runs yet: check the settings on the left and press **Start training**.")
        st.stop()
    st.subheader(f"{record.name}")
    st.caption(f"{ui.status_label(record.status)} · run `{record.run_id}`")
    if record.is_active:
        live_progress(record.run_id)
        live_curves(record.run_id)
        st.stop()
    if record.status == "finished":
        results(record)
        ui.show_data_source(record)
        c1, c2 = st.columns(2)
        with c1:
            ui.page_link("pages/5_🔬_Inspect.py", "Inspect this run", "🔬",
                         query_params={"run": record.run_id})
        with c2:
            ui.page_link("pages/6_✏️_Draw.py", "Draw a digit for it", "✏️")
    elif record.status == "failed":
        st.error(f"The training failed: {record.meta.get('reason') or record.problem}")
        if record.meta.get("suggestion"):
            st.info(f"💡 {record.meta['suggestion']}")
    elif record.status in ("stopped", "interrupted"):
        why = record.meta.get("reason") if record.status == "stopped" else f"Interrupted: {record.problem}."
        st.warning(f"{why} {record.epochs_completed} epochs of the CNN finished; the model after the "
                   "last one is kept (Draw and Inspect's feature maps can use it).")
        if record.meta.get("suggestion"):
            st.info(f"💡 {record.meta['suggestion']}")
    else:
        st.error(f"This run folder is damaged: {record.problem}")
    if record.spec and record.status != "finished" and st.button(
            "🔁 Re-run with the same settings", key="train_rerun") and ui.start_run(record.spec):
        st.rerun()
    ui.show_curves(record, "final")
