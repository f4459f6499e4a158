"""Streamlit helpers shared by the pages: the only module outside app_pages/ that imports streamlit.

Pages stay short top-down scripts: read widgets, call cnnkit, render. What they share lives
here: the workspace (which runs folder this browser session sees), the experiment draft
being edited (kept in the workspace, so a reload keeps it), cached data and models, and the
widgets and messages the pages share. Only Streamlit glue: what they say is worked out in
cnnkit.views (the formatters are in cnnkit/views/text.py). TensorFlow is only imported inside
the functions that need a model.
"""

from __future__ import annotations

import contextlib
import functools
import time
from pathlib import Path

import numpy as np
import streamlit as st

from cnnkit import settings
from cnnkit.errors import CnnkitError
from cnnkit.runs.store import RunRecord, RunStore, atomic_write_json, read_json
from cnnkit.specs import ExperimentSpec
from cnnkit.views import text

DRAFT_FILE = "draft.json"
COUNT_COLUMN = st.column_config.NumberColumn(format="localized")  # a count in a table: 96,844


def page(title: str, icon: str, runs_panel: bool = True) -> None:
    """Call first on every page. `runs_panel=False`: the page calls active_runs_panel itself, once
    it knows which run it shows."""
    st.set_page_config(page_title=f"{title} · cnnkit", page_icon=icon, layout="wide")
    try:
        settings.get()
    except CnnkitError as exc:  # a server setting that must not be guessed (CNNKIT_WORKSPACES)
        st.error(f"This server is misconfigured: {text.plain(exc)}", icon="🛑")
        st.stop()
    workspace_key()  # before anything of the page: a link's workspace is asked about first
    _watch_visibility()
    if runs_panel:
        active_runs_panel()


TAB_KEY = "_tab"  # the visibility reporter's state: {"hidden": bool}


def _watch_visibility() -> None:
    """A component that draws nothing and tells the server when the browser hides or shows this
    tab (components/visibility.js); the change reruns the page, so `poll_every` takes effect."""
    reporter = st.components.v2.component("cnnkit_visibility", js=_component_file("visibility.js"))
    reporter(data={"hidden": tab_hidden()}, key=TAB_KEY, default={"hidden": False}, on_hidden_change=lambda: None)


def tab_hidden() -> bool:
    return (st.session_state.get(TAB_KEY) or {}).get("hidden") is True  # the browser's message: only a real true


def poll_every(seconds: float) -> float | None:
    """A polling fragment's `run_every`: None (no polling at all) while the tab is hidden.
    Streamlit's timer polled a hidden tab as often as a visible one (Chromium slows a hidden
    tab's timers only after 5 minutes), and each poll of a live run costs the server and the
    browser (docs/PERFORMANCE.md §12). Shown again, the page reruns and draws the run as it is."""
    return None if tab_hidden() else seconds


# ---------------------------------------------------------------------------
# Workspace: which runs this session sees


def runs_root() -> Path:
    return Path(settings.get().runs_dir)


def workspace_key() -> str | None:
    """In "session" mode each browser session has its own key, kept in the URL (?ws=…) so a
    reload finds the same runs. In "shared" mode (local default) there is none.

    A link's key is never taken silently: a visitor who opens someone's ?ws= link would work in
    their workspace, and its owner would see everything (session fixation). A fresh session that
    arrives with an existing key is asked first; a key this server never issued is not honoured."""
    if settings.get().workspaces != "session":  # validated: a typo is refused, never "shared"
        return None
    from cnnkit.runs.workspaces import SESSION_KEY_PATTERN, new_session_key, workspace_root

    key = st.session_state.get("_workspace")
    if key is None:
        offered = st.query_params.get("ws")
        if offered and SESSION_KEY_PATTERN.fullmatch(offered) \
                and workspace_root(runs_root(), "session", offered).is_dir():
            offer_workspace(offered)  # stops the page until the visitor has chosen
        key = st.session_state["_workspace"] = new_session_key()
    if st.query_params.get("ws") != key:
        st.query_params["ws"] = key
    return key


def _choose_workspace(key: str) -> None:
    st.session_state["_workspace"] = key
    st.query_params["ws"] = key


def offer_workspace(offered: str) -> None:
    """Ask a fresh session whether the workspace of its link is its own, then stop the page."""
    from cnnkit.runs.workspaces import new_session_key

    st.warning("This link opens an existing workspace, with its runs and drafts. If it is yours (you "
               "reloaded, or opened your own link), continue in it. If someone sent it to you, start your "
               "own: they would see everything you do in theirs.", icon="🔑")
    own, theirs = st.columns(2)
    own.button("Start my own workspace", type="primary", key="ws_new", on_click=_choose_workspace,
               args=(new_session_key(),), width="stretch")
    theirs.button("Continue in this one", key="ws_join", on_click=_choose_workspace, args=(offered,),
                  width="stretch")
    st.stop()


def runs_place(runs: RunStore) -> str:
    """Where the runs are, for a caption: the folder on a private server; on a public one (session
    workspaces) no server path, which would also show the visitor's workspace key."""
    return "this session's workspace" if workspace_key() else f"`{runs.root}`"  # the server's own setting


def store() -> RunStore:
    key = workspace_key()
    if key is None:
        return RunStore(runs_root())
    from cnnkit.runs.workspaces import open_workspace

    prune_abandoned_sessions()
    return open_workspace(runs_root(), "session", key)


PRUNE_EVERY_SECONDS = 24 * 3600


@st.cache_resource
def _last_prune() -> dict:
    return {"at": 0.0}  # one per server process: the first visitor after a start prunes


def prune_abandoned_sessions() -> None:
    """Delete session workspaces idle for CNNKIT_SESSION_DAYS (7), at server start and then daily:
    on a public server every visitor gets a folder, and closed tabs never come back for theirs."""

    from cnnkit.runs.workspaces import prune_sessions

    last = _last_prune()
    if time.time() - last["at"] < PRUNE_EVERY_SECONDS:
        return
    last["at"] = time.time()
    prune_sessions(runs_root(), settings.get().session_days * 24 * 3600)


def data_dir() -> str | None:
    return settings.get().data_dir


# ---------------------------------------------------------------------------
# The experiment being edited (Build → Train)


def default_experiment() -> ExperimentSpec:
    from cnnkit.presets import get_preset

    return get_preset("chollet-cnn").experiment(baseline="dense-128")


def load_draft() -> ExperimentSpec:
    """The experiment draft: a shared link's (?exp=) first, then session state, then the
    workspace's draft.json, else a preset."""
    linked = draft_from_link()
    if linked is not None:
        return linked
    if "experiment" in st.session_state:
        return st.session_state["experiment"]
    spec = None
    path = store().root / DRAFT_FILE
    try:
        spec = ExperimentSpec.from_dict(read_json(path))
    except FileNotFoundError:
        pass
    except (OSError, ValueError, CnnkitError) as exc:
        # A damaged draft (in shared mode, every visitor's) is set aside, not silently dropped.
        kept = path.with_name(f"draft.damaged-{time.strftime('%Y%m%d-%H%M%S')}.json")
        with contextlib.suppress(OSError):
            path.replace(kept)
        st.warning(f"The saved draft could not be read ({text.plain(exc)}); it was set aside as "
                   f"{kept.name} and a preset loaded instead.", icon="🗂️")
    spec = spec or default_experiment()
    st.session_state["experiment"] = spec
    return spec


def draft_from_link() -> ExperimentSpec | None:
    """The experiment of a shared link, made this visitor's draft, once: the parameter leaves the
    URL, so a reload keeps the visitor's own edits. A bad link is a message; the draft stays."""
    from cnnkit.views.links import spec_from_link

    value = st.query_params.get("exp")
    if value is None:
        return None
    del st.query_params["exp"]
    try:
        spec = spec_from_link(value)
    except CnnkitError as exc:
        st.error(f"The experiment link could not be opened: {text.plain(exc)}. Your draft is unchanged.",
                 icon="🔗")
        return None
    save_draft(spec)
    st.success(f"Opened the linked experiment: {text.plain(spec.name or spec.preset or 'a custom network')}.",
               icon="🔗")
    return spec


def app_base_url() -> str:
    """This app's address as the visitor reached it, without the page (for links to it)."""
    from urllib.parse import urlsplit

    from cnnkit.views.links import DEFAULT_BASE_URL

    parts = urlsplit(st.context.url or "")
    if not parts.scheme or not parts.netloc:
        return DEFAULT_BASE_URL
    return f"{parts.scheme}://{parts.netloc}{parts.path.rsplit('/', 1)[0]}/"


def share_box(spec: ExperimentSpec, where=st) -> None:
    """A link that opens `spec` as the draft of whoever opens it, ready to copy (in `where`: a
    column or container; the page by default)."""
    from cnnkit.views.links import experiment_url

    with where.popover("🔗 Share this experiment", width="stretch"):
        st.code(experiment_url(spec, app_base_url()), language=None, wrap_lines=True)
        st.caption("Whoever opens the link gets this network and recipe as their own draft. It holds the "
                   "settings, not trained weights: a run's zip (on Compare) carries those.")


def save_draft(spec: ExperimentSpec) -> None:
    st.session_state["experiment"] = spec
    root = store().root
    try:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / DRAFT_FILE, spec.to_dict())
    except OSError:
        pass  # a read-only disk loses only the draft, never a run


# ---------------------------------------------------------------------------
# Cached data and models


@st.cache_resource(show_spinner=False, max_entries=4)
def raw_dataset(name: str, data_dir: str | None):
    """The uint8 dataset, loaded once per server process and shared by all sessions."""
    from cnnkit.data.sources import load_raw

    return load_raw(name, data_dir)


def load_dataset(name: str):
    """The raw dataset with a spinner; a clear message and st.stop() if it cannot be had."""
    try:
        with st.spinner(f"Loading {name}…"):
            return raw_dataset(name, data_dir())
    except CnnkitError as exc:
        st.error(f"Could not load {name}: {text.plain(exc)}")
        st.stop()


@st.cache_resource(show_spinner=False, max_entries=6)
def _predictor(model_path: str, output: str, mtime: float):
    from cnnkit.model.predictor import (
        load_predictor,  # numpy; TensorFlow only for models numpy cannot run
    )

    return load_predictor(model_path, output)


def predictor(record: RunRecord, key: str = "cnn"):
    """A cached predictor for a run's model (numpy forward pass, no TensorFlow in the server);
    re-loaded when the checkpoint changes."""
    path = record.model_path(key)
    output = record.spec.output if (key == "cnn" and record.spec) else "softmax"
    return _predictor(str(path), output, path.stat().st_mtime)


def draw_canvas(side: int, brush: int, key: str) -> np.ndarray | None:
    """The Draw page's canvas (components/draw_canvas.js): its ink as a (side, side) uint8 array
    after each stroke, None while it is empty. The browser's message is checked before anything
    is decoded (cnnkit.data.drawing.load_canvas_pixels: ValueError with a message)."""
    from cnnkit.data.drawing import load_canvas_pixels

    canvas = st.components.v2.component("cnnkit_draw_canvas", js=_component_file("draw_canvas.js"),
                                        css=_component_file("draw_canvas.css"))
    drawn = (st.session_state.get(key) or {}).get("drawing") is not None
    result = canvas(data={"side": side, "brush": brush, "drawn": drawn}, key=key, width="content",
                    default={"drawing": None}, on_drawing_change=lambda: None)
    return load_canvas_pixels(result.drawing, side)


def test_predictions(record: RunRecord, key: str):
    """The model's stored test predictions (cnnkit.views.analysis.Predictions), or None with the
    reason and, when the model is there, a button that evaluates it again."""
    from cnnkit.views.analysis import load_predictions

    try:
        return load_predictions(record.path, key)
    except CnnkitError as exc:
        show_error(exc)
    if record.has_model(key) and st.button("🔁 Evaluate again on the test set", key="inspect_reevaluate",
                                           help="Runs the saved model on the test images and stores its "
                                                "predictions again"):
        reevaluate(record, key)
    return None


def reevaluate(record: RunRecord, key: str) -> None:
    """Store a model's test predictions again (a damaged or missing file), then redraw the page."""
    from cnnkit.model.predictor import reevaluate as run_again

    try:
        with st.spinner("Running the model on the test images…"):
            accuracy, _, count = run_again(record, key, data_dir())
    except Exception as exc:  # a damaged model or missing data: a message, not a crash
        show_error(exc, "Could not evaluate it again")
        return
    rerun_with(f"Evaluated again: {text.fmt_pct(accuracy)} on {count:,} test images.", "inspect_flash")


def load_predictor(record: RunRecord, key: str = "cnn"):
    """`predictor` with a spinner; a damaged model file (bad zip, h5) is a message, then st.stop()."""
    try:
        with st.spinner("Loading the model…"):
            return predictor(record, key)
    except Exception as exc:
        show_error(exc, "Could not load the model")
        st.stop()


# ---------------------------------------------------------------------------
# Starting and watching runs (Train, Compare, Draw)


def ready_worker(dataset: str) -> None:
    """Have a warm worker, with `dataset` loaded, wait for this server's next job (cheap when one is waiting)."""
    from cnnkit.runs.jobs import prepare_spare

    try:
        prepare_spare(store(), data_dir(), dataset)
    except OSError:
        pass  # no spare: Start launches a fresh worker, as always


def start_job(spec: ExperimentSpec, failure: str, name: str | None = None,
              queue_another: bool = True) -> RunRecord | None:
    """Check this server's caps and start the training process. If it cannot start: the reason
    after `failure` ("Could not start the training: …"), and None. With queue_another=False a
    run of this workspace that is still active refuses it (jobs.ActiveRunError), and the refusal
    is kept for `start_offer`."""
    from cnnkit.limits import check_spec
    from cnnkit.runs.jobs import ActiveRunError, start

    try:
        check_spec(spec)
        return start(store(), spec, name=name, data_dir=data_dir(), queue_another=queue_another)
    except ActiveRunError as exc:
        st.session_state["start_offer"] = {"active": [r.run_id for r in exc.active], "spec": spec.to_dict()}
        return None
    except (CnnkitError, OSError) as exc:
        show_error(exc, failure)
        return None


def start_run(spec: ExperimentSpec, session_key: str = "train_run", queue_another: bool = False) -> RunRecord | None:
    """`start_job`, then remember the run in the session and the URL (?run=…), so a reload
    re-attaches. Shows the reason and returns None if it cannot start. A second Start while a
    run trains is refused until the person chooses, in `start_offer`, to open it or queue another."""
    record = start_job(spec, "Could not start the training", queue_another=queue_another)
    if record is not None:
        st.session_state.pop("start_offer", None)
        open_run(record.run_id, session_key)
    return record


def open_run(run_id: str, session_key: str = "train_run") -> None:
    st.session_state[session_key] = run_id
    st.query_params["run"] = run_id


def start_offer(session_key: str = "train_run") -> None:
    """After a refused Start: say which run is still active; Open it, or Queue another."""
    offer = st.session_state.get("start_offer")
    if not offer:
        return
    runs = store()
    active = [run_id for run_id in offer["active"] if runs.exists(run_id) and runs.get(run_id).is_active]
    if not active:
        st.session_state.pop("start_offer", None)
        return
    record = runs.get(active[0])
    st.warning(f"'{text.plain(record.name)}' is still {record.status}. Open it, or queue this one after it.")
    left, right = st.columns(2)
    if left.button("👀 Open it", key="start_offer_open", width="stretch"):
        st.session_state.pop("start_offer", None)
        open_run(record.run_id, session_key)
        st.rerun()
    if right.button("➕ Queue another", key="start_offer_queue", width="stretch") and start_run(
            ExperimentSpec.from_dict(offer["spec"]), session_key, queue_another=True):
        st.rerun()


def show_progress(status, label: str = "", details: bool = True) -> None:
    """A cnnkit.views.monitor.LiveStatus: its sentence (after `label`) on a progress bar, then
    speed and time left."""
    st.progress(min(max(float(status.fraction), 0.0), 1.0), text=f"{label}{status.text}")
    if details and status.details:
        st.caption(status.details)


LIVE_POLL_SECONDS = 2.0  # a live run's poll: the bar glides on between polls at the run's own pace


@functools.cache
def _component_file(name: str) -> str:
    """A file of components/; a script comes with dom.js, what the components share, before it."""
    text = (settings.REPO_ROOT / "components" / name).read_text(encoding="utf-8")
    return _component_file("dom.js") + "\n" + text if name.endswith(".js") and name != "dom.js" else text


def live_monitor(view: dict, key: str) -> None:
    """A cnnkit.views.live view (status and progress, or curves) drawn in the browser: no plotly,
    no iframe; the same elements are updated on every poll (components/live_monitor.js)."""
    monitor = st.components.v2.component("cnnkit_live_monitor", js=_component_file("live_monitor.js"),
                                         css=_component_file("live_monitor.css"))
    monitor(data=view, key=key)


def live_run(run_id: str, stop_key: str, stop_help: str | None = None, key: str = "live") -> RunRecord:
    """The body of a page's polling fragment (every LIVE_POLL_SECONDS): the run's status and
    progress, Pause, the learning rate and Stop, then its curves and health. A run that has ended
    reruns the whole page once (it draws the results; the fragment stops polling)."""
    from cnnkit.runs.control import events
    from cnnkit.runs.jobs import stop
    from cnnkit.views.live import curves_view, status_view

    runs = store()
    record = runs.get(run_id)
    if not record.is_active:
        st.rerun()
    live_monitor(status_view(record, runs.progress(run_id), LIVE_POLL_SECONDS), f"{key}_status")
    steered = events(runs, run_id)  # read once for the controls and the curves
    pause, rate, end = st.columns([1, 1.6, 1], vertical_alignment="bottom")
    with pause:
        steer_pause(runs, record, steered)
    with rate:
        steer_learning_rate(runs, record, steered)
    if end.button("⏹️ Stop", key=stop_key, help=stop_help, width="stretch"):
        stop(runs, run_id)
        st.toast("Stopping…")
    live_monitor(curves_view(record, runs.history(run_id), runs.batches(run_id), steered), f"{key}_curves")
    return record


def steer(runs: RunStore, record: RunRecord, action: str, value: float | None = None) -> None:
    from cnnkit.runs.control import send

    try:
        send(runs, record.run_id, action, value)
    except CnnkitError as exc:  # it ended (or was queued) between the drawing and the click
        show_error(exc)


def steer_pause(runs: RunStore, record: RunRecord, steered: list[dict]) -> None:
    from cnnkit.runs.control import paused

    running = record.status == "running"
    if running and paused(steered):
        if st.button("▶️ Resume", key=f"resume_{record.run_id}", width="stretch"):
            steer(runs, record, "resume")
    elif st.button("⏸️ Pause", key=f"pause_{record.run_id}", width="stretch", disabled=not running,
                   help="The model waits in memory after the current batch; Resume goes on from there"):
        steer(runs, record, "pause")


def steer_learning_rate(runs: RunStore, record: RunRecord, steered: list[dict]) -> None:
    from cnnkit.runs.control import rate_in_use
    from cnnkit.specs import MAX_LEARNING_RATE

    # the rate in use: the last live change, else the last finished epoch's, else the spec's
    history = runs.history(record.run_id)
    current = rate_in_use(steered) or (history[-1].get("learning_rate") if history else None) or \
        record.spec.training.learning_rate
    field, button = st.columns([1.4, 1], vertical_alignment="bottom")
    value = field.number_input("New learning rate", min_value=1e-7, max_value=float(MAX_LEARNING_RATE),
                               value=float(current or 0.001), format="%.6g", step=None,
                               key=f"lr_{record.run_id}_{current:g}",  # a new rate in use: a box showing it
                               disabled=record.status != "running",
                               help="Takes effect from the next batch and replaces the schedule")
    if button.button("Set", key=f"lr_set_{record.run_id}", disabled=record.status != "running", width="stretch"):
        steer(runs, record, "lr", float(value))
        st.toast(f"Learning rate → {value:g} from the next batch")


def show_curves(record: RunRecord, key: str, metrics: tuple[str, ...] = ("loss", "accuracy")) -> None:
    """A run's live/final training curves (CNN and baseline overlaid), one chart per metric."""
    from cnnkit.runs.control import events
    from cnnkit.views.charts import CURVES_NOTE, NO_CURVES_YET, nothing_to_plot, training_curves
    from cnnkit.views.monitor import steps_per_epoch
    from cnnkit.views.steering import event_lines, mark_events

    runs = store()
    history, batches = runs.history(record.run_id), runs.batches(record.run_id)
    steered = events(runs, record.run_id)
    if not history and not batches:
        st.caption(NO_CURVES_YET)
        return
    for metric, column in zip(metrics, st.columns(len(metrics)), strict=True):
        figure = training_curves(history, batches, metric, steps_per_epoch(record))
        if figure is None:  # a diverged run's NaN: no empty chart with a made-up axis
            column.caption(nothing_to_plot(metric))
        else:
            column.plotly_chart(mark_events(figure, steered, steps_per_epoch(record)), key=f"{key}_{metric}")
    for line in event_lines(steered):
        st.caption(line)
    st.caption(CURVES_NOTE)


# ---------------------------------------------------------------------------
# Widgets and messages more than one page shows


def page_link(page: str, label: str, icon: str | None = None, **kwargs) -> None:
    """st.page_link that degrades to a caption when the page cannot be resolved: an AppTest of a
    single page file has that file as its entrypoint, so sibling pages are "not found" there."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(page, label=label, icon=icon, **kwargs)
    except StreamlitAPIException:
        st.caption(f"{icon or '→'} {label} (page: {page})")


def show_data_source(record: RunRecord) -> None:
    """Where a run's data came from; a bundled sample is flagged, never passed off as the real set."""
    source = record.meta.get("data_source") or {}
    summary = text.source_summary(source.get("description", ""))  # the note is long
    verb = "Evaluated" if record.kind == "imported" else "Trained"
    if source.get("is_sample"):
        st.warning(f"{verb} on a **SAMPLE**: {summary}", icon="🧪")
    elif source:
        st.caption(f"Data: {summary}")


def select_run(label: str, runs, wanted: str | None, key: str, limit: int | None = None) -> RunRecord:
    """A selectbox of runs (ledger.RunChoices: those a page can show, newest first, labelled by
    text.run_label) starting at the run chosen last, else at `wanted` when it is one of them, else
    at the newest; returns the chosen record. Call it only when `runs` has one. Its key is `key`
    and a hash of the labels (ui.labelled_key). With more runs than `limit` (ledger.PICKER_RUNS)
    it offers the newest `limit`, those a Find box below it matches, and always the chosen and the
    wanted run, and says how to find the others (run_options); it reads no more run.json files
    than it offers, unless the person searches."""
    chosen = runs.get(st.session_state.get(f"{key}_chosen"))  # kept when a rename gives the box a new key
    start = chosen or runs.get(wanted)
    box = st.container()  # the box above its Find field, filled once the field is read
    offered = {record.run_id: record for record in run_options(runs, [chosen and chosen.run_id, wanted], key, limit)}
    if not offered:  # the last of them deleted since the page looked
        st.info("There is no run to choose here any more.")
        st.stop()
    labels = {run_id: text.run_label(record) for run_id, record in offered.items()}
    ids = list(offered)
    run_id = box.selectbox(label, ids, index=ids.index(start.run_id) if start and start.run_id in ids else 0,
                           format_func=labels.get, key=labelled_key(key, labels.values()))  # a renamed run's new name shows
    st.session_state[f"{key}_chosen"] = run_id
    return offered[run_id]


def run_options(runs, keep: list, key: str, limit: int | None = None) -> list[RunRecord]:
    """The runs select_run offers: all of a short list; of a long one (10,000 runs took the pages
    1–2.4 s) the newest `limit` that its Find field (key `<key>_find`) matches, the runs of `keep`,
    and a caption with how to find the others (ledger.picker_window)."""
    from cnnkit.views import ledger

    limit = ledger.PICKER_RUNS if limit is None else limit
    newest = runs.newest(limit + 1)
    if len(newest) <= limit:
        return newest
    query = st.text_input(f"Find among the {runs.store.count():,} runs of this workspace", key=f"{key}_find",
                          placeholder=ledger.FIND_HINT)
    keep = [run_id for run_id in keep if run_id] or [newest[0].run_id]  # the box starts at the newest
    shown, note = ledger.picker_window(runs, query, limit, keep=keep, newest=newest[:limit])
    st.caption(f"🔎 {note}")
    return shown


def show_error(exc: Exception, what: str = "") -> None:
    """text.error_text as an error box."""
    st.error(text.error_text(exc, what))


def rerun_with(message: str, key: str) -> None:
    """Draw the page again, with `message` (if any) shown where it calls `show_flash(key)`."""
    if message:
        st.session_state[key] = message
    st.rerun()


def show_flash(key: str) -> None:
    """The message of the last `rerun_with(…, key)` as a success, once."""
    if message := st.session_state.pop(key, None):
        st.success(message)


def ledger_table(listed: list[RunRecord]) -> None:
    """Compare's ledger of the `listed` runs: the columns that fit a laptop's width; the optimizer,
    the baseline's size and time and the run id are in the table's 👁 menu (shown, they pushed the
    ledger off the right edge)."""
    import pandas as pd

    from cnnkit.views import ledger

    table = pd.DataFrame(ledger.ledger_rows(listed))
    table["status"] = table["status"].map(text.status_label)
    pct = st.column_config.NumberColumn(format="percent")
    columns = {"name": st.column_config.TextColumn(pinned=True), "test accuracy": pct, "baseline accuracy": pct,
               "params": COUNT_COLUMN, "time (s)": st.column_config.NumberColumn(format="%.1f"),
               "data": st.column_config.TextColumn(help="SAMPLE: trained on the bundled sample, not the full dataset"),
               "problem": st.column_config.TextColumn(width="medium") if table["problem"].astype(bool).any() else None,
               **dict.fromkeys(("optimizer", "baseline params", "baseline time (s)", "run_id"))}
    st.dataframe(table, hide_index=True, key="compare_table", column_config=columns)


def metric_row(metrics: list[dict]) -> None:
    """st.metric side by side, one column each; a metric is a dict of st.metric's arguments
    (label, value, and optionally delta and help), as cnnkit.views builds them."""
    for column, metric in zip(st.columns(len(metrics)), metrics, strict=True):
        column.metric(**metric)


# ---------------------------------------------------------------------------
# Data and Build pages


def dataset_select(label: str, key: str, current: str | None = None) -> str:
    """A selectbox of the datasets by title, starting at `current` (else the first)."""
    from cnnkit.data.catalog import DATASETS

    names = list(DATASETS)
    return st.selectbox(label, names, index=names.index(current) if current else 0,
                        format_func=lambda n: DATASETS[n].title, key=key)


def upload_once(upload, apply) -> str | None:
    """Call `apply(the file's bytes)` once per file of a st.file_uploader (which hands the same
    file to every rerun). Returns why the current file was refused (a CnnkitError's message,
    remembered across reruns), or None."""
    if upload is None:
        return None
    outcomes = st.session_state.setdefault("_uploads", {})  # file id → None (applied) or the error
    if upload.file_id not in outcomes:
        outcomes[upload.file_id] = None  # first: `apply` may rerun the page
        try:
            apply(upload.getvalue())
        except CnnkitError as exc:
            outcomes[upload.file_id] = str(exc)
    return outcomes[upload.file_id]


def show_dataset_source(source) -> None:
    """A cnnkit.data.catalog.DataSource: the bundled sample as a warning that says SAMPLE, else a caption."""
    if source.is_sample:
        what, _, why = source.describe().partition(" — ")
        st.warning(f"Showing a **SAMPLE**: {what}", icon="🧪")
        if why:  # why the full dataset was not found: long, but it tells how to get it
            st.caption(f"Sources tried first: {why}. The README says how to add the full dataset.")
    else:
        st.caption(f"Data: {source.describe()}")


def draft_revision(draft: ExperimentSpec) -> int:
    """A number that changes when the draft was replaced behind the Build page's widgets (a preset,
    an upload, another page): widget keys include it, so they start over from the new draft
    instead of keeping stale values. The page's own edits are remembered with `draft_seen`."""
    if st.session_state.get("_build_seen") != draft:
        st.session_state["_build_rev"] = st.session_state.get("_build_rev", 0) + 1
        st.session_state["_build_seen"] = draft
    return st.session_state["_build_rev"]


def draft_seen(spec: ExperimentSpec) -> None:
    st.session_state["_build_seen"] = spec


def field_input(field, value, key: str, label: str | None = None):
    """One widget for a cnnkit.views.editing.Field, starting at `value`; returns the chosen value."""
    label, help_text = label or field.label, field.help or None
    if field.kind == "choice":
        return st.selectbox(label, field.choices, index=field.choices.index(value), key=key, help=help_text)
    if field.kind == "bool":
        return st.checkbox(label, bool(value), key=key, help=help_text)
    if field.kind == "optional_int":  # None = "same as the pool size"
        options = [None, *range(int(field.lo), int(field.hi) + 1)]
        return st.selectbox(label, options, index=options.index(value), key=key, help=help_text,
                            format_func=lambda v: "= pool size" if v is None else str(v))
    if field.kind == "count":  # None = all of them
        return st.number_input(label, int(field.lo), int(field.hi), value, step=int(field.step), key=key,
                               placeholder="all", help=help_text)
    if field.kind == "float":
        return st.number_input(label, float(field.lo), float(field.hi), float(value), step=field.step,
                               format=field.fmt, key=key, help=help_text)
    return st.number_input(label, int(field.lo), int(field.hi), int(value), step=int(field.step), key=key,
                           help=help_text)


def field_grid(fields, start: dict, columns: int = 2, key_prefix: str | None = None) -> dict:
    """Widgets for a table of cnnkit.views.editing.Field, `columns` to a row, each starting at
    `start[field.name]`, keyed `field.key` (or `key_prefix` + the field's name). A field shows only
    when the choice made above it allows (a table lists a condition's field first). Returns
    {field name: value} of those shown."""
    values: dict = {}
    for field in fields:
        if not field.applies(values):
            continue
        if len(values) % columns == 0:
            row = st.columns(columns)
        with row[len(values) % columns]:
            key = f"{key_prefix}{field.name}" if key_prefix else field.key
            values[field.name] = field_input(field, start[field.name], key, field.label_for(values))
    return values


def spec_fields(fields, spec, columns: int = 2) -> dict:
    """`field_grid` for spec fields (cnnkit.views.editing.TRAINING_FIELDS), starting at the
    spec's values. Returns {dotted path: value} of those shown."""
    from cnnkit.views.editing import spec_value

    return field_grid(fields, {field.name: spec_value(spec, field.name) for field in fields}, columns)


# ---------------------------------------------------------------------------
# Models page and Inspect: taking a run's model away


def export_buttons(record: RunRecord, key: str) -> None:
    """A download for each export format. keras and python are ready at once; savedmodel and
    onnx take a `cnnkit export` process (~5 s), so they are prepared on a click, with a spinner."""
    from cnnkit.views import exports

    ready = st.session_state.setdefault("_exports", {})  # (run id, format) → bytes
    for column, fmt in zip(st.columns(len(exports.FORMATS)), exports.FORMATS.values(), strict=True):
        problem = exports.export_problem(record, fmt.name)
        data = ready.get((record.run_id, fmt.name))
        if fmt.name in ("keras", "python") or data is not None or problem:
            column.download_button(
                f"⬇️ {fmt.label}", data if data is not None else functools.partial(exports.export_bytes, record, fmt.name),
                file_name=exports.export_filename(record, fmt.name), mime=fmt.mime, on_click="ignore",
                disabled=problem is not None, help=problem or fmt.help, key=f"{key}_{fmt.name}")
        elif column.button(f"⚙️ Prepare {fmt.label}", key=f"{key}_{fmt.name}_make", help=fmt.help):
            with column, st.spinner(f"Exporting as {fmt.label} (a separate process)…"):
                try:
                    ready[(record.run_id, fmt.name)] = exports.export_bytes(record, fmt.name)
                except CnnkitError as exc:
                    show_error(exc, f"The {fmt.label} export failed")
                    continue
            st.rerun()


# ---------------------------------------------------------------------------
# Draw: a photo or scan instead of the canvas


def picture_reader(predictors: dict, names: list, dataset: str = "mnist") -> None:
    """An uploaded picture of one digit (or item of `dataset`), through the canvas's preprocessing,
    shown step by step, then what the model reads and any reason to doubt it. The upload's size and
    pixel count are capped before decoding."""
    from cnnkit.data.drawing import subject
    from cnnkit.model.uploads import load_image_upload
    from cnnkit.views import charts, demo

    upload = st.file_uploader(f"{subject(dataset).photo.capitalize()} (PNG, JPEG, BMP, GIF)",
                              type=["png", "jpg", "jpeg", "bmp", "gif"], key="draw_upload")
    if upload is None:
        st.caption("Dark ink on light paper, or light on dark: the paper's level is taken from the border.")
        return
    try:
        result, steps = demo.read_picture(load_image_upload(upload), predictors)
    except (CnnkitError, ValueError) as exc:
        st.error(f"{text.plain(upload.name)} could not be read: {text.plain(str(exc))}")
        return
    for column, (caption, image) in zip(st.columns(len(steps)), steps, strict=True):
        scale = max(1, 140 // max(image.shape[:2]))  # small stages enlarged, crisp
        column.image(charts.enlarge(np.round(image * 255).astype(np.uint8), scale), caption=caption,
                     width="stretch", output_format="PNG")
    if not result.ok:
        st.info(demo.picture_message(result.drawing.status, subject(dataset)), icon="📷")
        return
    best, confidence = result.top("cnn")
    readings = [f"CNN: **{names[best]}** ({confidence:.1%})"]
    if "baseline" in result.probs:
        other, other_confidence = result.top("baseline")
        readings.append(f"dense baseline: **{names[other]}** ({other_confidence:.1%})")
    st.markdown("The picture reads as — " + " · ".join(readings))
    doubt_warning(result, names, dataset)


def transform_strip(image: np.ndarray, predictors: dict, names: list) -> None:
    """The drawing under each strength of one transformation, both models' readings under each
    picture (a wrong reading in red): the class watches the dense net fall apart at 3 px."""
    from cnnkit.views import charts, robustness

    name = st.radio("Transformation", list(robustness.TRANSFORMS), horizontal=True, key="draw_strip_kind",
                    format_func=lambda n: robustness.TRANSFORMS[n].title)
    probabilities = {key: predictor.probabilities for key, predictor in predictors.items()}
    strip = robustness.drawing_strip(image, name, probabilities)
    identity = robustness.TRANSFORMS[name].identity
    truth = next(item["cnn"][0] for item in strip if item["value"] == identity)  # the untouched drawing
    for column, item in zip(st.columns(len(strip)), strip, strict=True):
        column.image(charts.enlarge(item["image"], 3), caption=item["label"], output_format="PNG", width="stretch")
        for key in probabilities:
            label, confidence = item[key]
            colour = "green" if label == truth else "red"
            column.markdown(f"{'CNN' if key == 'cnn' else 'dense'}: :{colour}[**{names[label]}**] {confidence:.0%}")
    st.caption("Green: the class the CNN reads in the untouched drawing; red: anything else. "
               "A shift strip moves the drawing right, one pixel a picture.")


def explain_panel(image: np.ndarray, predictors: dict, names: list, key: str) -> None:
    """Heatmaps of what the CNN and the dense baseline looked at on one 28×28 image, for the
    class each predicts or for a class the person picks ("why not 1?"). numpy only."""
    from cnnkit.views import charts, explain

    models = {k: explain.numpy_model(p) for k, p in predictors.items()}
    if models.get("cnn") is None:
        st.info("Explanations run on cnnkit's numpy model, which cannot run this model's layers.")
        return
    left, right = st.columns(2)
    method = left.radio("Method", explain.methods_for(models["cnn"]), horizontal=True, key=f"{key}_why_method",
                        format_func=lambda m: explain.METHODS[m].title,
                        help="Gradient × input is the default: it passed the deletion test best (docs/RESULTS.md)")
    target = right.selectbox("For the class", [None, *range(len(names))], key=f"{key}_why_class",
                             format_func=lambda c: "each model's own answer" if c is None else f"{names[c]} (why, or why not?)")
    x = np.asarray(image, np.float32)[None, ..., None]
    for column, (model_key, model) in zip(st.columns(len(models)), models.items(), strict=False):
        title = "CNN" if model_key == "cnn" else "Dense baseline"
        if model is None or (explain.METHODS[method].needs_maps and not explain.map_layers(model)):
            column.caption(f"{title}: {explain.METHODS[method].title} needs conv maps, which a dense network "
                           "has none of: pick a gradient method to compare.")
            continue
        probs = predictors[model_key].probabilities(x)[0]
        cls = int(probs.argmax()) if target is None else int(target)
        heat = explain.heatmaps(model, x, method, cls)[0]
        column.image(charts.heat_overlay(image, heat), width=224, output_format="PNG",
                     caption=f"{title}: heat for {names[cls]} ({probs[cls]:.0%})")
    st.caption(explain.METHODS[method].help + " Red → yellow: more heat.")


def explain_test_image(record: RunRecord, preds, raw, rows: list, names: list) -> None:
    """Inspect: one image of the cell or of the mistakes above, with the model's heat for its
    true class and for the class it predicted: what made it say that, and what it missed."""
    from cnnkit.views import analysis, charts, explain

    key = st.session_state.get("inspect_model", "cnn")
    model = explain.numpy_model(load_predictor(record, key))
    if not rows or model is None:
        return
    st.subheader("Why? One of these images, explained")
    left, right = st.columns([2, 1])
    unique = list(dict.fromkeys(int(r) for r in rows))
    row = left.selectbox("Image", unique, key="inspect_why_row",
                         format_func=lambda r: analysis.row_caption(preds, names, r))
    method = right.selectbox("Method", explain.methods_for(model), key="inspect_why_method",
                             format_func=lambda m: explain.METHODS[m].title)
    image = raw.x_test[preds.test_indices[row]]
    x = np.asarray(image, np.float32)[None]
    true_class, predicted = int(preds.y_true[row]), int(preds.y_pred[row])
    columns = st.columns(2)
    for column, (cls, what) in zip(columns, [(true_class, "its true class"), (predicted, "what it predicted")],
                                   strict=True):
        heat = explain.heatmaps(model, x, method, cls)[0]
        column.image(charts.heat_overlay(image[..., 0], heat, 6), width=168, output_format="PNG",
                     caption=f"heat for {names[cls]} ({what}, {preds.probs[row, cls]:.0%})")
    st.caption(explain.METHODS[method].help)


# ---------------------------------------------------------------------------
# Train: data augmentation


def augmentation_fields(draft: ExperimentSpec) -> dict:
    """The augmentation settings (editing.AUGMENTATION_FIELDS) and a preview of what they do to
    a few training images, drawn with numpy (the training itself uses Keras' layers)."""
    from cnnkit.data.transforms import random_augment
    from cnnkit.specs import AugmentationSpec
    from cnnkit.views import charts, editing

    with st.expander(f"🎲 Data augmentation: {draft.augmentation.describe()}"):
        changes = spec_fields(editing.AUGMENTATION_FIELDS, draft)
        try:
            chosen = AugmentationSpec.from_dict({k.split(".", 1)[1]: v for k, v in changes.items()})
        except CnnkitError as exc:
            show_error(exc)
            return changes
        if chosen.active:
            raw = raw_dataset(draft.dataset.name, data_dir())
            images = raw.x_train[:12] if raw.x_train.ndim == 4 else raw.x_train[:12, ..., None]
            shown = np.clip(random_augment(images, chosen, seed=draft.training.seed), 0, 255).astype(np.uint8)
            grid = shown[..., 0] if shown.shape[-1] == 1 else shown
            st.plotly_chart(charts.image_grid(grid, [""] * len(grid), cols=6, cell_px=80), key="train_aug_preview")
            st.caption("A new draw every epoch: each training image is changed anew, validation and test images "
                       "never. The saved model is not changed.")
    return changes


def health_panel(record: RunRecord) -> None:
    """Train: the latest epoch's layer health of the CNN, as warnings with what to try and a table."""
    from cnnkit.views import health

    records = health.health_records(record.path, "cnn")
    if not records:
        return
    latest = records[-1]
    found = health.warnings_for(latest)
    title = f"🩺 Health after epoch {latest.get('epoch')}: " + (f"{len(found)} warning(s)" if found else "fine")
    with st.expander(title, expanded=bool(found)):
        for warning in found:
            st.warning(f"**{text.plain(warning.layer)}**: {warning.problem}. Try: {warning.suggestion}.")
        st.dataframe(health.health_table(latest), hide_index=True, column_config={
            "dead ReLU units": st.column_config.NumberColumn(format="percent"),
            "gradient norm": st.column_config.NumberColumn(format="%.2e"),
            "activation mean": st.column_config.NumberColumn(format="%.3f"),
            "activation std": st.column_config.NumberColumn(format="%.3f")})
        share = health.overhead(records, store().history(record.run_id))
        st.caption("Measured on 256 fixed training images at each epoch's end"
                   + (f"; it took {share:.1%} of the training time." if share is not None else "."))


def lr_finder_panel(spec: ExperimentSpec) -> None:
    """Train: the learning-rate finder on the draft (`cnnkit lrfind` in its own process, ~100
    batches), the loss against the rate, and one click to use the suggested rate."""
    import json
    import tempfile

    from cnnkit.views import charts
    from cnnkit.views.exports import run_cnnkit

    found = st.session_state.get("_lr_found")
    if st.button("🔎 Find a learning rate", key="train_lr_find",
                 help="About 100 batches with the rate growing from 1e-7 to 10; the weights are thrown away"):
        bar = st.progress(0.0, text="Starting (TensorFlow loads in its own process)…")

        def line(text_line: str) -> None:
            if text_line.startswith("lrfind: batch "):
                done, total = map(int, text_line.removeprefix("lrfind: batch ").split("/"))
                bar.progress(done / total, text=f"Batch {done} of at most {total}")

        with tempfile.NamedTemporaryFile("w", suffix=".json") as handle:
            handle.write(spec.to_json())
            handle.flush()
            args = ["lrfind", f"--spec={handle.name}", "--json"] + ([f"--data-dir={data_dir()}"] if data_dir() else [])
            try:
                stdout = run_cnnkit(args, 600, "learning-rate finder", on_line=line)
                found = json.loads(stdout.strip().splitlines()[-1])
            except (CnnkitError, ValueError, IndexError) as exc:
                show_error(exc, "The learning-rate finder failed")
                return
        st.session_state["_lr_found"] = found
        bar.empty()
    if not found:
        return
    st.plotly_chart(charts.lr_finder_chart(found["lrs"], found["losses"], found.get("suggested")), key="train_lr_chart")
    if found.get("suggested") and st.button(f"Use {found['suggested']:.2g}", key="train_lr_use"):
        save_draft(spec.updated({"training.learning_rate": float(f"{found['suggested']:.2g}")}))
        st.session_state.pop("train_lr", None)  # the Learning rate field starts again from the draft
        st.rerun()


def test_image_grid(rows, preds, raw, names, key: str, columns: int = 8) -> None:
    """Inspect: test images with true → predicted class and the confidence, eight to a row; the
    🔍 under one picks it for the explanation below ("Why? One of these images, explained")."""
    from cnnkit.views import analysis, charts

    if raw is None or not len(rows):
        st.caption("No images here." if raw is not None else "")
        return
    for start in range(0, len(rows), columns):
        for column, row in zip(st.columns(columns), rows[start:start + columns], strict=False):
            image = charts.enlarge(raw.x_test[preds.test_indices[row]][..., 0], 3)
            column.image(image, caption=analysis.row_caption(preds, names, int(row)), width=84, output_format="PNG")
            column.button("🔍 why?", key=f"inspect_{key}_why_{int(row)}", help="Explain this image below",
                          on_click=st.session_state.update, kwargs={"inspect_why_row": int(row)})


# ---------------------------------------------------------------------------
# Steering: the active runs of this workspace, continuing a run, the learning-rate schedule


def active_runs_panel(shown: str | None = None) -> None:
    """In the sidebar of every page while this workspace has a queued or running run: each with
    its progress, Open (on Train) and Stop. Nothing, and no polling, when none is active but the
    run `shown` live on the page itself (each poll costs the browser: docs/PERFORMANCE.md §12)."""
    from cnnkit.runs.jobs import active_runs

    if any(record.run_id != shown for record in active_runs(store())):
        with st.sidebar:
            st.fragment(_active_runs, run_every=poll_every(2.0))()


def _active_runs() -> None:
    from cnnkit.runs.jobs import active_runs, stop
    from cnnkit.views.monitor import live_status

    runs = store()
    active = active_runs(runs)
    st.markdown("**Active runs**")
    if not active:
        st.caption("None: every run has ended.")
        return
    for record in active:
        show_progress(live_status(record, runs.progress(record.run_id)), f"{text.plain(record.name)}: ", details=False)
        left, right = st.columns(2)
        with left:
            page_link("app_pages/train.py", "Open", "👀", query_params={"run": record.run_id})
        if right.button("⏹️ Stop", key=f"active_stop_{record.run_id}", width="stretch"):
            stop(runs, record.run_id)
            st.toast(f"Stopping '{record.name}'…")


def continue_panel(record: RunRecord) -> None:
    """Train a finished or stopped run N more epochs from its checkpoint (or say why it cannot)."""
    from cnnkit.runs.jobs import continue_problem, extend

    problem = continue_problem(record)
    if problem:
        if record.kind == "trained" and record.epochs_completed:
            st.caption(f"It cannot continue: {problem}.")
        return
    field, button = st.columns([1, 2], vertical_alignment="bottom")
    epochs = field.number_input("More epochs", 1, 100, 1, key=f"continue_epochs_{record.run_id}")
    if button.button(f"➕ Continue training for {epochs} more epoch{'s' if epochs != 1 else ''}",
                     key=f"continue_{record.run_id}", help="From the last checkpoint, with the optimizer's "
                     "state: the curves go on, and Compare shows the run as extended"):
        try:
            extend(store(), record.run_id, int(epochs), data_dir=data_dir())
        except (CnnkitError, OSError) as exc:
            show_error(exc, "Could not continue it")
            return
        open_run(record.run_id)
        st.rerun()


def schedule_chart(training, key: str) -> None:
    """The learning rate each epoch starts with under these settings, before anything trains."""
    from cnnkit.views.steering import schedule_figure, schedule_note

    st.plotly_chart(schedule_figure(training), key=key, config={"displayModeBar": False})
    if schedule_note(training):
        st.caption(schedule_note(training))


# ---------------------------------------------------------------------------
# Draw: a reading of a drawing, and when not to trust it


def doubt_warning(prediction, names: list, dataset: str) -> None:
    """Under a reading of a drawing or a photo: why not to trust it, when there is a reason (the
    CNN and the baseline disagree; the drawing is far from the training data: cnnkit.views.trust)."""
    from cnnkit.views import trust

    reasons = trust.doubts(prediction, names, dataset)
    if reasons:
        st.warning(text.plain(trust.warning(reasons)), icon="⚠️")


def drawing_reading(result, names: list, dataset: str, run_id: str) -> None:
    """What the models read in the canvas (a demo.DrawingPrediction that is ok): the CNN's class and
    confidence, the baseline's, the doubts, and the probability bars. The chart is built once per
    session and model and a stroke only swaps its bar heights (building a plotly figure costs
    ~70 ms here, updating one well under 1 ms)."""
    from cnnkit.views import charts

    best, confidence = result.top("cnn")
    st.markdown(f"## Prediction: {names[best]}")
    st.markdown(f"CNN, **{confidence:.1%}** confident")
    if "baseline" in result.probs:
        other, other_confidence = result.top("baseline")
        st.markdown(f"Dense baseline: **{names[other]}** ({other_confidence:.1%})")
    doubt_warning(result, names, dataset)
    figure_key = (run_id, tuple(result.probs))
    if st.session_state.get("draw_fig_key") != figure_key:
        st.session_state["draw_fig"] = charts.probability_bars(result.probs, names, height=250)
        st.session_state["draw_fig_key"] = figure_key
    st.plotly_chart(charts.update_bars(st.session_state["draw_fig"], result.probs), key="draw_probs")


# ---------------------------------------------------------------------------
# Build: the training recipe a draft keeps; widget keys that follow their options


def recipe_note(draft: ExperimentSpec, where=st) -> None:
    """The draft's training recipe: its learning-rate schedule, and, when it is not cnnkit's
    default (a preset's, an upload's, one set on Train), that it is kept, with a button back to
    the defaults (the layers stay)."""
    from cnnkit.presets import PRESETS
    from cnnkit.views.recipe import default_recipe, recipe_changes

    with where.expander("📉 Learning-rate schedule", expanded=draft.training.schedule != "constant"):
        schedule_chart(draft.training, "build_schedule_chart")
    changes = recipe_changes(draft)
    if not changes:
        return
    preset = PRESETS.get(draft.preset or "")
    kept = f"the preset {preset.title}'s" if preset and recipe_changes(preset.experiment()) == changes else "kept"
    where.caption(f"**Your draft's training recipe** is {kept}: {' · '.join(changes)} (the rest: cnnkit's "
                  "defaults). Train starts from it.")
    if where.button("↺ Default recipe", key="build_recipe_reset",
                    help="cnnkit's default training settings and data preparation; the layers stay"):
        save_draft(default_recipe(draft))
        rerun_with("The training recipe is cnnkit's default again.", "build_flash")


def labelled_key(prefix: str, labels) -> str:
    """A widget key that changes when its options' labels do. Streamlit keeps a keyed widget's state,
    and in the browser its chips' text, as long as the key stays: options whose labels changed (a
    renamed run) need a widget of their own, or the old names stay on screen."""
    import hashlib

    return f"{prefix}_{hashlib.sha1(chr(31).join(map(str, labels)).encode()).hexdigest()[:10]}"


# ---------------------------------------------------------------------------
# Sweeps: Build's variants A and B, a sweep's axes, its trials live

VARIANT_KEYS = {"A": "sweep_variant_a", "B": "sweep_variant_b"}  # session state: spec dicts


def next_steps(spec: ExperimentSpec) -> None:
    """Build, under a network that builds: Train it, or keep it as A or B of an A/B comparison
    (the Sweeps page trains both over the same seeds and says whether B is better)."""
    train, keep_a, keep_b = st.columns([1, 1, 1.3], vertical_alignment="center")
    with train:
        page_link("app_pages/train.py", "Train this →", "🏋️")
    keep_a.button("🅰 Keep as A", key="build_keep_a", on_click=_keep_variant, args=("A", spec), width="stretch",
                  help="This network and recipe as A of an A/B comparison on Sweeps")
    keep_b.button("🅱 Save as variant B", key="build_keep_b", on_click=_keep_variant, args=("B", spec),
                  width="stretch", help="This version as B: Sweeps trains A and B on the same seeds")
    kept = [name for name, key in VARIANT_KEYS.items() if key in st.session_state]
    if len(kept) == 2:
        page_link("app_pages/sweeps.py", "Compare A and B over several seeds on Sweeps →", "🎲")
    elif kept:
        st.caption(f"Variant {kept[0]} is kept. Change something, then save this as variant "
                   f"{'B' if kept[0] == 'A' else 'A'}.")


def _keep_variant(name: str, spec: ExperimentSpec) -> None:
    st.session_state[VARIANT_KEYS[name]] = spec.to_dict()
    st.session_state["build_flash"] = f"Kept as variant {name}: {text.plain(spec.name or 'this network')}."


def sweep_variants(seeds: int) -> dict | None:
    """Sweeps, A/B: Build's two versions, what changed between them, and the sweep of both (A is
    the base); without both, how to make them, and None."""
    import pandas as pd

    from cnnkit.views import sweep_form

    a, b = (st.session_state.get(key) for key in VARIANT_KEYS.values())
    if a is None or b is None:
        st.info("A/B trains two versions of a network on the same seeds and says whether B is really better. "
                "On Build, press **🅰 Keep as A**, change something (a layer, the learning rate…), then "
                "**🅱 Save as variant B**.", icon="🅰")
        page_link("app_pages/build.py", "Make A and B on Build", "🧱")
        return None
    for column, (name, spec) in zip(st.columns(2), (("A", a), ("B", b)), strict=True):
        column.markdown(f"**{name}**: {text.plain(spec.get('name') or 'custom network')}")
        column.caption(text.plain(sweep_form.value_text(spec["layers"])))
    rows = sweep_form.change_rows(a, b)
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, key="sweeps_changes")
    return sweep_form.variants_document(a, b, seeds)


def sweep_axes_document(draft: ExperimentSpec, mode: str, seeds: int) -> dict:
    """Sweeps, Grid or Random: up to three settings of the draft to vary, each with its values
    (typed, picked, or a range), and for Random how many draws; the sweep document."""
    from cnnkit.runs.sweeps import fields_of
    from cnnkit.views import sweep_form

    choices = {choice.path: choice for choice in fields_of(draft)}
    if mode == "random":
        count, draws, seed = st.columns(3)
    else:
        count, _ = st.columns([1, 2])
    axes = [sweep_axis(choices, i, mode == "random")
            for i in range(int(count.number_input("Settings to vary", 1, sweep_form.MAX_AXES, 1, key="sweeps_axes")))]
    if mode == "grid":
        return sweep_form.grid_document(draft, axes, seeds)
    trials = int(draws.number_input("Configurations to draw", 1, 100, 8, key="sweeps_draws"))
    return sweep_form.random_document(draft, axes, seeds, trials, int(seed.number_input(
        "Random seed", 0, 2**31 - 1, 0, key="sweeps_draw_seed", help="The same seed draws the same configurations")))


def sweep_axis(choices: dict, i: int, random: bool):
    """One axis: which setting (its value in the draft shown), then its values: picked for a
    choice, typed ("0.001, 0.003") or a range (from, to, how many, linear or log) for a number."""
    from cnnkit.views import sweep_form

    paths = list(choices)
    pick, how, values = st.columns([1.3, 0.7, 2], vertical_alignment="bottom")
    path = pick.selectbox(f"Setting {i + 1}", paths, index=min(i, len(paths) - 1), key=f"sweeps_axis_{i}",
                          format_func=lambda p: sweep_form.field_label(choices[p]))
    choice, key = choices[path], f"sweeps_{i}_{path}"
    if choice.kind == "choice":
        picked = values.multiselect("Values", list(choice.choices), key=f"{key}_picked", format_func=sweep_form.value_text,
                                    default=[choice.value] if choice.value in choice.choices else [])
        return sweep_form.Axis(path, choice.kind, picked=tuple(picked))
    numeric = choice.kind in sweep_form.NUMERIC
    if not numeric or how.radio("As", ["values", "range"], key=f"{key}_how", horizontal=True) == "values":
        typed = values.text_input("Values", sweep_form.suggested_values(choice), key=f"{key}_text",
                                  help="Separated by commas" + (" (none: all)" if choice.kind == "optional int" else "")
                                  if numeric else "true, false" if choice.kind == "bool" else "A JSON list of values")
        return sweep_form.Axis(path, choice.kind, text=typed)
    cells = values.columns(3 if random else 4)  # a random sweep draws between the two: no count
    start, end = sweep_form.suggested_range(choice)
    number = {} if choice.kind in sweep_form.WHOLE else {"format": "%g"}
    low = cells[0].number_input("From", value=start, key=f"{key}_low", **number)
    high = cells[1].number_input("To", value=end, key=f"{key}_high", **number)
    count = 3 if random else int(cells[2].number_input("How many", 1, sweep_form.MAX_VALUES, 3, key=f"{key}_count"))
    spacing = cells[-1].radio("Spacing", sweep_form.SCALES, index=int(start > 0), horizontal=True, key=f"{key}_scale")
    return sweep_form.Axis(path, choice.kind, "range", low=low, high=high, count=count, scale=spacing)


def engine_choice() -> str | None:
    """Where a sweep's trials train: a choice only where Ray is installed; else None (the server's default)."""
    from cnnkit.runs.ray_engine import available

    if not available():
        return None
    engines = ["local", "ray"]
    return st.radio("Engine", engines, index=engines.index(settings.get().engine), horizontal=True, key="sweeps_engine",
                    format_func={"local": "this machine's queue", "ray": "Ray"}.get)


def sweep_from_link() -> str | None:
    """The sweep a URL names (?sweep=…), only if it is a sweep id: the value comes from a link, so
    it is checked before it names any file. A bad one is a message, and None."""
    from cnnkit.errors import shown
    from cnnkit.runs.sweeping import SWEEP_ID_PATTERN

    wanted = st.query_params.get("sweep")
    if wanted is None or SWEEP_ID_PATTERN.fullmatch(wanted):
        return wanted
    st.error(f"The link's sweep {text.plain(shown(wanted))} is not a sweep id; pick a sweep below.", icon="🔗")
    del st.query_params["sweep"]
    return None


def select_sweep(sweeps: list, wanted: str | None):
    """A selectbox of the workspace's sweeps (name, date, size), at `wanted` if it is one; the
    choice goes into the URL (?sweep=), so a reload and a shared link open the same sweep."""
    from cnnkit.views import sweep_form

    by_id = {record.sweep_id: record for record in sweeps}
    ids = list(by_id)
    chosen = st.selectbox("Sweep", ids, index=ids.index(wanted) if wanted in by_id else 0,
                          format_func=lambda i: sweep_form.sweep_label(by_id[i]), key=labelled_key("sweeps_pick", ids))
    st.query_params["sweep"] = chosen
    return by_id[chosen]


def sweep_trials(sweep_id: str, live: bool) -> None:
    """The Sweeps page's polling fragment: how many trials have ended, every trial with a link to
    its run (Train while it trains, Inspect after), and Stop all. When the last trial ends, the
    whole page draws again once (with the results)."""
    import pandas as pd

    from cnnkit.runs import sweeping
    from cnnkit.views import sweep_form, sweeps

    runs = store()
    trials = sweeping.trial_rows(runs, sweeping.load_sweep(runs, sweep_id))
    active = [t for t in trials if t["status"] in ("queued", "running")]
    if live and not active:
        st.rerun()
    finished = sum(t["status"] == "finished" for t in trials)
    ended = len(trials) - len(active)
    st.progress(ended / max(len(trials), 1), text=f"{finished} of {len(trials)} trials finished"
                + (f" · {len(active)} to go" if active else "") + (f" · {ended - finished} ended early"
                                                                    if ended > finished else ""))
    table = pd.DataFrame(sweeps.trial_rows(trials))
    table.insert(1, "run", [sweep_form.trial_link(app_base_url(), t["run_id"], t in active, workspace_key())
                            for t in trials])
    st.dataframe(table, hide_index=True, key="sweeps_trials", column_config={
        "run": st.column_config.LinkColumn(display_text=r"run=([^&]*)", help="Opens the run: Train while it "
                                           "trains, Inspect after"), "run_id": None})
    if st.button("⏹️ Stop all", key="sweeps_stop", disabled=not active,
                 help="Every trial that has not ended: a queued one at once, a running one within a batch"):
        st.toast(f"Stopping {sweeping.stop_sweep(runs, sweep_id)} trials…")
