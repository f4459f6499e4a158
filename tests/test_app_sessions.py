"""Three visitors of a public deployment press Start on the Train page at the same time.

Each AppTest is one browser session of the same server process, in `session` workspace mode
with one training slot: the pages must queue the jobs (showing the place in line), finish all
of them, keep each visitor's run to themselves, and leave the server's memory where it was.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs.store import RunStore, pid_alive
from cnnkit.runs.workspaces import workspace_root
from cnnkit.sysinfo import rss_mib
from tests.oracles import live_views

ROOT = Path(__file__).resolve().parent.parent
TRAIN = "app_pages/train.py"


def rss_mb() -> float:
    return rss_mib()["rss_mib"] or 0.0


def param(at: AppTest, name: str) -> str:
    value = at.query_params[name]
    return value[0] if isinstance(value, list) else value


def progress_texts(at: AppTest) -> list[str]:
    """The progress bars' sentences: the sidebar's, and the live monitor's on the page."""
    return [p.proto.text for p in at.get("progress")] + [v["status"]["text"] for v in live_views(at) if "status" in v]


def three_visitors_press_start(runs_dir) -> float:
    """Three new sessions start a tiny training each within a second; returns the server's RSS
    (MB) once all three finished and their pages show the results."""
    sessions = []
    for _ in range(3):
        at = AppTest.from_file(str(ROOT / TRAIN), default_timeout=30).run()
        at.number_input(key="train_limit").set_value(200)
        at.number_input(key="train_epochs").set_value(1)
        at.toggle(key="train_baseline").set_value(False)
        sessions.append(at.run())
    assert not any(at.exception for at in sessions)

    for at in sessions:  # three Start clicks within a second
        at.button(key="train_start").click().run()
    assert not any(at.exception or at.error for at in sessions)
    keys = [param(at, "ws") for at in sessions]
    run_ids = [param(at, "run") for at in sessions]
    assert len(set(keys)) == 3 and len(set(run_ids)) == 3
    stores = [RunStore(workspace_root(runs_dir, "session", key)) for key in keys]
    pids = {store.get(run_id).meta["pid"] for store, run_id in zip(stores, run_ids, strict=True)}

    shown_in_line, most_running = set(), 0
    deadline = time.monotonic() + 300
    while any(store.get(run_id).is_active for store, run_id in zip(stores, run_ids, strict=True)):
        assert time.monotonic() < deadline, "the three jobs did not finish in 5 minutes"
        statuses = [store.get(run_id).status for store, run_id in zip(stores, run_ids, strict=True)]
        most_running = max(most_running, statuses.count("running"))
        for at in sessions:
            at.run()
            assert not at.exception
            shown_in_line |= {t.split(" in line")[0] for t in progress_texts(at) if "in line" in t}
        time.sleep(0.5)

    assert most_running == 1, "two trainings ran at once with one slot"
    assert "Queued: number 2" in shown_in_line  # the last to press Start saw their place in line
    for at, store, run_id in zip(sessions, stores, run_ids, strict=True):
        at.run()
        assert store.get(run_id).status == "finished"
        assert [r.run_id for r in store.list()] == [run_id]  # each visitor sees their own run only
        assert {m.label for m in at.metric} >= {"CNN test accuracy", "Training time"}
    assert RunStore(runs_dir).list() == []  # and the shared ledger none of them

    deadline = time.monotonic() + 30
    while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(pid_alive(pid) for pid in pids)  # the workers, and TensorFlow's memory, are gone
    return rss_mb()


@pytest.mark.slow
def test_three_train_page_sessions_start_at_once_queue_finish_and_stay_apart(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_WORKSPACES", "session")
    monkeypatch.setenv("CNNKIT_MAX_JOBS", "1")
    monkeypatch.delenv("CNNKIT_SLOTS_DIR")  # the default: <runs>/.slots, one for the whole server
    server_start = rss_mb()
    # The first round also loads what the pages import (plotly, pandas, …) for good; the second
    # shows what three more trainings cost the server: nothing that stays.
    after_first = three_visitors_press_start(runs_dir)
    after_second = three_visitors_press_start(runs_dir)
    print(f"RELIABILITY_TALLY two rounds of three Train-page sessions at once, 1 slot: 6 finished, "
          f"'Queued: number 2' shown; server RSS {server_start:.0f} -> {after_first:.0f} (imports) "
          f"-> {after_second:.0f} MB")
    assert after_second - after_first < 30, (server_start, after_first, after_second)
