"""Compare: the run ledger, chosen runs' curves overlaid, accuracy against cost, and run actions."""

import functools

import streamlit as st

import ui
from cnnkit.errors import CnnkitError
from cnnkit.views import charts, exports, ledger, text

# --- Helpers: the actions on one run ---------------------------------------------------------


def run_actions(store, record) -> None:
    """Rename, delete (after a confirmation), re-run and download one run, side by side."""
    rename, delete, rerun, download = st.columns(4, gap="medium", vertical_alignment="bottom")
    with rename:
        new_name = st.text_input("New name", record.name, max_chars=120, key=f"compare_name_{record.run_id}")
        if st.button("✏️ Rename", key="compare_rename",
                     disabled=record.status == "damaged" or new_name == record.name):
            try:
                store.rename(record.run_id, new_name)
                ui.rerun_with(f"Renamed to {new_name.strip()}.", "compare_flash")
            except CnnkitError as exc:
                ui.show_error(exc)
    with delete:
        sure = st.checkbox("Yes, delete this run's folder", key=f"compare_sure_{record.run_id}")
        if st.button("🗑️ Delete", key="compare_delete", disabled=not sure or record.is_active,
                     help="Only this run; stop a running run first"):
            try:
                store.delete(record.run_id)
                ui.rerun_with(f"Deleted {text.plain(record.name)} ({record.run_id}).", "compare_flash")
            except CnnkitError as exc:
                ui.show_error(exc)
    with rerun:
        st.caption("Same spec, same seed: a new run")
        if st.button("🔁 Re-run", key="compare_rerun", disabled=not record.rebuildable):
            new = ui.start_job(record.spec, "Could not start the re-run", name=f"{record.name} (re-run)")
            if new is not None:
                st.session_state["train_run"] = st.session_state["compare_started"] = new.run_id
                ui.rerun_with(f"Started {text.plain(new.name)}.", "compare_flash")
    with download:
        st.caption("model.keras, baseline, spec, results, train.py")
        st.download_button("⬇️ Download (zip)", functools.partial(ledger.run_zip_bytes, record.path,
                                                                 exports.script_text(record)),
                           file_name=f"{record.run_id}.zip", mime="application/zip", key="compare_download",
                           on_click="ignore", disabled=not ledger.has_files(record.path))


# --- The page ---------------------------------------------------------------------------------

ui.page("Compare", "📈")
store = ui.store()
st.title("📈 Compare")
ui.show_flash("compare_flash")
if started := st.session_state.get("compare_started"):
    ui.page_link("app_pages/train.py", "Watch the re-run train", "🏋️", query_params={"run": started})
# --- Find: past LEDGER_ROWS runs the page reads and lists the newest that match (10,000 rows took the browser
# seconds); the chosen runs stay listed. A small ledger is listed whole, no box ----------------------------
total = store.count()
query = st.text_input("Find runs", key="compare_find", placeholder=ledger.FIND_HINT) \
    if total > ledger.LEDGER_ROWS else ""
records = ledger.compare_records(store, query, [*(st.session_state.get("_compare_chosen") or []),
                                                st.session_state.get("_compare_one")])
if not records:
    st.info("No runs yet. Build a network and train it: every run lands here, with its curves and results.")
    ui.page_link("app_pages/train.py", "Go to Train", "🏋️")
    st.stop()
by_id = {r.run_id: r for r in records}
names = charts.distinct_names({r.run_id: r.name for r in records})  # two runs of one name: + their id's tail
listed, hidden_note = ledger.run_window(records, query, total=total)
listed_ids = [r.run_id for r in listed]
chip = functools.cache(lambda run_id: ledger.run_chip(by_id[run_id], names[run_id]))  # only for the runs offered


# --- The ledger (the listed runs), how many there are, and how many are not listed -----------------
if listed:
    ui.ledger_table(listed)
st.caption(f"{total} runs in {ui.runs_place(store)} · time: seconds the CNN trained · accuracy on the test "
           "split · more columns in the table's 👁 menu")
if hidden_note:
    st.caption(f"🔎 {hidden_note}")

# --- Curves of chosen runs --------------------------------------------------------------------
st.subheader("Curves")
with_history, kept = ledger.overlay_choices(records, listed, st.session_state.get("_compare_chosen"))
if not with_history:
    st.info(ledger.no_curves_note(len(records), total))
else:
    c1, c2, c3 = st.columns([3, 1, 1], vertical_alignment="bottom")
    chosen = st.session_state["_compare_chosen"] = c1.multiselect(  # a rename is a new widget: its chips
        "Runs to overlay", with_history, default=kept, format_func=chip, max_selections=len(charts.RUN_COLORS),
        key=ui.labelled_key("compare_runs", map(chip, with_history)))
    validation = c2.radio("Curves of", ["validation", "training"], horizontal=True,
                          key="compare_split") == "validation"
    baselines = c3.toggle("Dense baselines", True, key="compare_baselines", help="dotted, in the run's colour")
    histories = {run_id: store.history(run_id) for run_id in chosen}
    left, right = st.columns(2)
    for metric, column in (("accuracy", left), ("loss", right)):
        curves = ledger.chosen_curves(chosen, names, histories, metric, validation, baselines, charts.run_color)
        figure = charts.overlay_curves(curves, metric, metric, percent=metric == "accuracy")
        if figure is None:
            column.caption(f"Nothing to plot for the {metric}: "
                           + ("the chosen runs recorded no finite value of it." if chosen else "pick runs above."))
        else:
            column.plotly_chart(figure, key=f"compare_curves_{metric}")
    if validation and (no_split := ledger.without_validation(histories)):
        st.caption(f"No validation split in {', '.join(text.plain(names[i]) for i in no_split)}: its training "
                   "curves are shown instead, marked (train).")

# --- Accuracy against cost --------------------------------------------------------------------
points, drawn = ledger.scatter_window(records, query)  # SVG markers: 10,000 runs kept the browser busy ~6 s
if points:
    st.subheader("Accuracy against cost", help=drawn)
    left, right = st.columns(2)
    left.plotly_chart(charts.accuracy_scatter(points, "params", "parameters", log_x=True), key="compare_vs_params")
    right.plotly_chart(charts.accuracy_scatter(points, "seconds", "training time (s)", log_x=True),
                       key="compare_vs_time")

# --- One run: rename, delete, re-run, download ------------------------------------------------
st.subheader("One run")
kept_id = st.session_state.get("_compare_one")
ids = listed_ids + ([kept_id] if kept_id in by_id and kept_id not in listed_ids else [])
if not ids:
    st.caption("No run listed: change what Find runs holds, above.")
    st.stop()
run_id = st.session_state["_compare_one"] = st.selectbox(  # the same: a renamed run's label, a new widget
    "Run", ids, index=ids.index(kept_id) if kept_id in ids else 0, format_func=lambda i: f"{chip(i)} · {i}",
    key=ui.labelled_key("compare_selected", map(chip, ids)))
record = by_id[run_id]
if record.problem:
    st.warning(f"{text.status_label(record.status)}: {text.plain(record.problem)}")
run_actions(store, record)
