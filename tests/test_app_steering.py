"""AppTests of steering on the pages: a second Start, the active-runs panel, Pause/Resume/learning
rate on a live run, the stopped-run messages, Continue, and the learning-rate schedule chart.

The "live" runs here are run folders marked running by this (alive) test process, so the pages
treat them as training without a worker; starting processes is replaced where a click would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs import control, jobs
from cnnkit.runs.store import RunStore, atomic_write_json, this_process
from tests.oracles import live_texts, live_views
from tests.test_training import tiny_spec

ROOT = Path(__file__).resolve().parent.parent
TRAIN, COMPARE, BUILD = "app_pages/train.py", "app_pages/compare.py", "app_pages/build.py"


def app(page: str) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=30)


def live_run(store: RunStore, name="first run", **progress) -> str:
    run_id = store.create(tiny_spec(), name=name).run_id
    store.update(run_id, status="running", **this_process(), data_summary={"train": 200})
    jobs.mark_active(store, run_id)  # as jobs.start does
    atomic_write_json(store.path(run_id) / "progress.json", {
        "phase": "training", "model": "cnn", "epoch": 1, "epochs": 1, "batch": 3, "batches": 7, **progress})
    return run_id


def texts(at) -> str:
    """Every message as a person reads it (the pages escape markdown in text they did not write)."""
    shown = " ".join([*(str(e.value) for e in [*at.warning, *at.caption, *at.info, *at.markdown, *at.error]),
                      *live_texts(at)])
    return re.sub(r"\\(.)", r"\1", shown)


@pytest.fixture
def no_processes(monkeypatch):
    """Starting a job creates its run folder as usual, without its worker process."""
    launched = []
    monkeypatch.setattr(jobs, "launch", lambda store, run_id, data_dir=None: launched.append(run_id))
    return launched


def test_a_second_start_offers_the_active_run_instead_of_hiding_it(runs_dir, no_processes):
    store = RunStore(runs_dir)
    first = live_run(store)
    at = app(TRAIN).run()
    at.button(key="train_start").click().run()
    assert not at.exception
    assert len(store.list()) == 1 and no_processes == []  # refused: nothing queued behind the user's back
    assert "'first run' is still running. Open it, or queue this one after it." in texts(at)
    at.button(key="start_offer_open").click().run()
    assert at.query_params["run"] == first and at.session_state["train_run"] == first
    assert at.subheader[0].value == "first run"
    at.button(key="train_start").click().run()
    at.button(key="start_offer_queue").click().run()
    assert len(store.list()) == 2 and len(no_processes) == 1  # queued, on purpose
    assert [at.query_params["run"]] == no_processes


def test_active_runs_panel_lists_each_run_with_open_and_stop(runs_dir):
    store = RunStore(runs_dir)
    first, second = live_run(store, "alpha"), live_run(store, "beta")
    finished = store.create(tiny_spec(), name="done").run_id
    store.update(finished, status="finished")
    at = app(COMPARE).run()
    assert not at.exception
    bars = [bar.proto.text for bar in at.sidebar.get("progress")]
    assert sorted(bar.split(":")[0] for bar in bars) == ["alpha", "beta"]  # the finished run is not listed
    assert all("epoch 1/1, batch 3/7" in bar for bar in bars)
    at.sidebar.button(key=f"active_stop_{second}").click().run()
    assert (store.path(second) / "STOP").exists() and not (store.path(first) / "STOP").exists()


def test_no_active_run_no_panel(runs_dir):
    at = app(COMPARE).run()
    assert not at.exception and "Active runs" not in " ".join(m.value for m in at.sidebar.markdown)


def test_live_run_pause_resume_and_learning_rate(runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(), name="steered").run_id
    store.update(run_id, status="queued", **this_process())
    at = app(TRAIN).run()
    assert "⏳ queued" in texts(at) and at.button(key=f"pause_{run_id}").disabled
    store.update(run_id, status="running")
    at.run()
    assert "🏃 running" in texts(at) and "⏳ queued" not in texts(at)  # the caption follows the run
    assert "🏃 **steered** is on: [↓ its progress, Pause and Stop](#the-run)" in texts(at)  # a phone's way down
    at.button(key=f"pause_{run_id}").click().run()
    sent = [json.loads(line) for line in (store.path(run_id) / control.CONTROL_FILE).read_text().splitlines()]
    assert [c["action"] for c in sent] == ["pause"]
    control.record_event(store.path(run_id), "pause", model="cnn", epoch=1, batch=3, step=3)  # the job's answer
    atomic_write_json(store.path(run_id) / "progress.json", {"phase": "training", "model": "cnn", "epoch": 1,
                                                             "epochs": 1, "batch": 3, "batches": 7, "paused": True})
    at.run()
    assert any("Paused" in view["status"]["text"] for view in live_views(at) if "status" in view)
    at.number_input(key=f"lr_{run_id}_0.001").set_value(0.0003).run()
    at.button(key=f"lr_set_{run_id}").click().run()
    # The job applies it (here, by hand); then the CLI sets another: the box shows the rate in use.
    control.record_event(store.path(run_id), "lr", model="cnn", epoch=1, batch=3, step=3, **{"from": 0.001, "to": 0.0003})
    control.record_event(store.path(run_id), "lr", model="cnn", epoch=1, batch=3, step=3, **{"from": 0.0003, "to": 0.0005})
    at.run()
    assert at.number_input(key=f"lr_{run_id}_0.0005").value == pytest.approx(0.0005)
    at.button(key=f"resume_{run_id}").click().run()
    sent = [json.loads(line) for line in (store.path(run_id) / control.CONTROL_FILE).read_text().splitlines()]
    assert [(c["action"], c.get("value")) for c in sent] == [("pause", None), ("lr", 0.0003), ("resume", None)]


def test_cancelled_while_queued_says_nothing_trained(runs_dir):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(), name="never ran").run_id
    store.update(run_id, status="stopped", reason="Cancelled while waiting in the queue.")
    at = app(TRAIN).run()
    assert "Cancelled while it waited in the queue: nothing was trained." in texts(at)
    assert "0 epochs" not in texts(at) and "model after" not in texts(at)


def test_stopped_run_shows_its_test_result_and_continues(runs_dir, no_processes):
    store = RunStore(runs_dir)
    run_id = store.create(tiny_spec(epochs=5), name="halfway").run_id
    (store.path(run_id) / "model.keras").write_bytes(b"checkpoint")
    (store.path(run_id) / "optimizer_cnn.npz").write_bytes(b"state")
    store.update(run_id, status="stopped", reason="Stopped on request.", started=1.0, models={"cnn": {
        "epochs_completed": 4, "tested_epoch": 4, "test_accuracy": 0.9123, "test_loss": 0.3, "params": 1000}})
    at = app(TRAIN).run()
    assert ("Stopped on request. 4 epochs of the CNN finished; the model after epoch 4 is kept and tested on "
            "the test split: 91.23%.") in texts(at)
    assert {m.label: m.value for m in at.metric}["CNN test accuracy"] == "91.23%"
    at.number_input(key=f"continue_epochs_{run_id}").set_value(3).run()
    at.button(key=f"continue_{run_id}").click().run()
    record = store.get(run_id)
    assert no_processes == [run_id] and record.status == "queued"
    assert record.meta["continue_epochs"] == 3 and record.spec.training.epochs == 7


def test_the_schedule_chart_shows_the_rates_of_the_settings(runs_dir):
    from cnnkit.specs import ExperimentSpec

    draft = tiny_spec(epochs=6, schedule="step", decay_epochs=2, decay_rate=0.5, learning_rate=0.01).to_dict()
    runs_dir.mkdir(parents=True)
    (runs_dir / "draft.json").write_text(json.dumps(ExperimentSpec.from_dict(draft).to_dict()))
    at = app(TRAIN).run()
    assert not at.exception
    assert at.toggle(key="train_baseline").value is False  # the draft has no baseline: the toggle says so
    chart = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert chart["data"][0]["x"] == [1, 2, 3, 4, 5, 6]
    assert chart["data"][0]["y"] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.0025, 0.0025])
    build = app(BUILD).run()  # Build shows the same schedule
    assert json.loads(build.get("plotly_chart")[0].proto.spec)["data"][0]["y"] == chart["data"][0]["y"]
