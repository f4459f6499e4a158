"""Sweeps: one experiment many times (seeds, a grid, random draws, or A against B from Build),
watched as one, and read with statistics: each configuration's mean and 95% interval, a verdict."""

import json

import pandas as pd
import streamlit as st

import ui
from cnnkit.errors import CnnkitError
from cnnkit.runs import sweeping
from cnnkit.runs.stats import summarize_trials
from cnnkit.runs.sweeps import SweepSpec, check_sweep, measured_macs_per_second
from cnnkit.views import sweep_form, sweeps, text
from cnnkit.views.links import link_value

ui.page("Sweeps", "🎲")
store = ui.store()
draft = ui.load_draft()
st.title("🎲 Sweeps")
st.caption("One accuracy is one draw of the seed. A sweep trains the experiment several times: over seeds, a grid "
           "or random draws of settings, or A against B. Every trial is an ordinary run (Compare lists it).")
ui.show_flash("sweeps_flash")

# --- 1. Define: what varies and over how many seeds; the trials and the time, before anything starts
with st.container(border=True):
    st.subheader("1 · Define")
    how, many = st.columns([3, 1], vertical_alignment="bottom")
    mode = sweep_form.MODES[how.radio("Sweep over", list(sweep_form.MODES), horizontal=True, key="sweeps_mode")]
    seeds = int(many.number_input("Seeds", 1, 10, 3, key="sweeps_seeds",
                                  help="Each configuration trains this many times: the base's seed, +1, +2, …"))
    if mode != "variants":  # A/B's base is A, shown with B below
        st.caption(f"Base: your draft, **{text.plain(draft.name or draft.preset or 'custom network')}** "
                   f"({text.plain(sweep_form.value_text([layer.to_dict() for layer in draft.layers]))})")
        ui.page_link("app_pages/build.py", "Change the base on Build", "🧱")
    document = sweep = None
    try:
        if mode == "variants":
            document = ui.sweep_variants(seeds)
        elif mode == "seeds":
            document = sweep_form.seeds_document(draft, seeds)
        else:
            document = ui.sweep_axes_document(draft, mode, seeds)
        if document is not None:
            sweep = SweepSpec.from_dict(document)
            check = check_sweep(sweep, macs_per_second=measured_macs_per_second(store.recent(20)))
            st.markdown(f"**{sweep_form.plan_text(check)}**")
    except CnnkitError as exc:
        sweep = None
        ui.show_error(exc, "This sweep cannot start")
    engine = ui.engine_choice()
    launch, download = st.columns(2)
    if launch.button("🚀 Launch", type="primary", key="sweeps_launch", disabled=sweep is None, width="stretch"):
        try:
            record = sweeping.start_sweep(store, sweep, engine=engine, data_dir=ui.data_dir())
        except (CnnkitError, OSError) as exc:
            ui.show_error(exc, "Could not launch the sweep")
        else:
            st.query_params["sweep"] = record.sweep_id
            ui.rerun_with(f"Launched {text.plain(record.name)}: {len(record.trials)} trials.", "sweeps_flash")
    download.download_button("⬇️ The sweep as JSON (for `cnnkit sweep`)", json.dumps(document or {}, indent=2),
                             file_name="sweep.json", mime="application/json", key="sweeps_download",
                             on_click="ignore", disabled=sweep is None, width="stretch")

# --- 2. Watch: the chosen sweep's trials, live while any trains
st.subheader("2 · Watch")
wanted = ui.sweep_from_link()  # a link's ?sweep= is checked before it names a file
found = sweeping.list_sweeps(store)
if not found:
    st.info("No sweeps yet: define one above and press **Launch**. Its trials appear here as they train.")
    st.stop()
record = ui.select_sweep(found, wanted)
trials = sweeping.trial_rows(store, record)
live = any(trial["status"] in ("queued", "running") for trial in trials)
st.caption(f"{record.engine} engine · sweep `{record.sweep_id}`"
           + (f" · estimated {text.fmt_seconds(record.estimated_seconds)}" if record.estimated_seconds else ""))
st.fragment(ui.sweep_trials, run_every=ui.poll_every(2.0) if live else None)(record.sweep_id, live)

# --- 3. Read: each configuration's mean and interval, A against B, the settings against accuracy
st.subheader("3 · Read")
summaries, comparison = summarize_trials(trials)
if not summaries:
    st.info("No trial has finished yet: each configuration's accuracy appears here with its first finished trial.")
    st.stop()
if live:
    st.caption("So far: a trial counts once it has finished (this part is drawn again when the last one ends).")
st.dataframe(pd.DataFrame(sweeps.summary_rows(summaries)), hide_index=True, key="sweeps_summary")
if comparison is not None:
    verdict, *more = sweeps.verdict_lines(comparison, summaries)
    st.success(text.plain(verdict), icon="⚖️")
    for line in more:
        st.caption(text.plain(line))
axes, figure = sweeps.axes_of(trials), sweeps.parallel_coordinates_figure(trials)
if figure is not None and axes != ["variant"]:  # A/B: the chart by variant below says it better
    st.plotly_chart(figure, key="sweeps_parallel")
if 1 <= len(axes) <= 2:
    for column, axis in zip(st.columns(len(axes)), axes, strict=True):
        column.plotly_chart(sweeps.accuracy_by_value_figure(summaries, axis), key=f"sweeps_by_{axis}")
best = sweeps.best_configuration(summaries)
if best is not None and len(summaries) > 1:
    st.markdown(f"**Best configuration**: {text.plain(best.label or 'the base')}, "
                f"{text.fmt_pct(best.summary.mean)} mean test accuracy over {best.summary.n} seeds")
    try:  # the base with the configuration applied, as its trial trained
        spec = sweep_form.config_spec(record.document, best.config)
    except CnnkitError as exc:  # e.g. this server's limits were lowered since
        ui.show_error(exc, "It cannot be opened in Build")
    else:
        ui.page_link("app_pages/build.py", "Open it in Build", "🧱", query_params={"exp": link_value(spec)})
