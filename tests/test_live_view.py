"""The live monitor's data (cnnkit.views.live): hand-counted paces, thinning and curves, and the
Train page handing it to the browser (AppTest keeps a components.v2 element as its JSON)."""

from __future__ import annotations

import math

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs import control
from cnnkit.runs.store import RunStore, atomic_write_json, this_process
from cnnkit.views.live import MAX_BATCH_POINTS, curves_view, progress_pace, status_view, thinned
from tests.oracles import live_views
from tests.test_app_steering import ROOT, TRAIN, live_run
from tests.test_training import tiny_spec


def test_thinned_keeps_evenly_spaced_points_and_always_the_newest():
    assert thinned([1, 2, 3], 5) == [1, 2, 3]
    kept = thinned(list(range(1000)), 10)
    assert kept == [0, 100, 200, 300, 400, 500, 600, 700, 800, 999]  # 1000/10 apart, and the last


def running(store: RunStore, baseline: str | None = None, batch_size: int = 100):
    run_id = store.create(tiny_spec(baseline=baseline, batch_size=batch_size)).run_id
    store.update(run_id, status="running", **this_process(), data_summary={"train": 5000})
    return store.get(run_id)


def test_progress_pace_is_the_share_of_the_bar_one_second_fills(runs_dir):
    store = RunStore(runs_dir)
    progress = {"phase": "training", "model": "cnn", "epochs": 2, "batches": 50, "epoch": 1, "batch": 10,
                "images_per_second": 1000.0}
    # 1,000 images/s in batches of 100 = 10 batches/s, of 2 × 50 = 100 batches: 10% of the model a second
    assert progress_pace(running(store), progress) == pytest.approx(0.10)
    assert progress_pace(running(store, "dense-128"), progress) == pytest.approx(0.05)  # half the bar is the baseline's
    assert progress_pace(running(store), {**progress, "paused": True}) == 0.0
    assert progress_pace(running(store), {**progress, "phase": "validating"}) == 0.0
    assert progress_pace(running(store), None) == 0.0


def test_status_view_says_where_the_run_is(runs_dir):
    store = RunStore(runs_dir)
    record = running(store)
    progress = {"phase": "training", "model": "cnn", "epochs": 2, "batches": 50, "epoch": 2, "batch": 25,
                "images_per_second": 1000.0, "eta_seconds": 2.5}
    view = status_view(record, progress, 2.0)["status"]
    assert view["fraction"] == pytest.approx(0.75)  # 50 + 25 of 100 batches
    assert view["text"] == "Training the CNN (1 of 1): epoch 2/2, batch 25/50"
    assert view["details"] == "1,000 images/s · about 2.5 s left for the CNN"
    assert view["caption"] == f"🏃 running · run {record.run_id}" and view["poll"] == 2.0


def test_curves_view_draws_each_model_kind_and_marks_the_steering(runs_dir):
    store = RunStore(runs_dir)
    record = running(store, "dense-128")  # 5,000 images / 100 = 50 batches an epoch
    batches = [{"model": "cnn", "epoch": 1, "batch": b, "loss": 2.0 - b / 50, "accuracy": b / 60} for b in (10, 25, 50)]
    history = [{"model": "cnn", "epoch": 1, "loss": 1.0, "accuracy": 0.8, "val_loss": 1.1, "val_accuracy": 0.78},
               {"model": "baseline", "epoch": 1, "loss": 1.5, "accuracy": 0.7}]
    events = [{"event": "pause", "model": "cnn", "epoch": 1, "batch": 25},
              {"event": "lr", "model": "cnn", "epoch": 1, "batch": 25, "from": 0.001, "to": 0.0003}]
    curves = curves_view(record, history, batches, events)["curves"]
    loss, accuracy = curves["charts"]
    assert (loss["title"], loss["percent"], accuracy["percent"]) == ("Loss", False, True)
    lines = {line["label"]: line for line in loss["series"]}
    assert list(lines) == ["CNN train, per batch", "CNN train", "CNN validation", "Dense baseline train"]
    assert lines["CNN train, per batch"]["x"] == [0.2, 0.5, 1.0] and lines["CNN train, per batch"]["y"] == [1.8, 1.5, 1.0]
    assert lines["CNN validation"]["dashed"] and lines["CNN validation"]["dots"] == "hollow"
    assert not lines["CNN train, per batch"]["legend"]
    assert lines["Dense baseline train"]["color"] != lines["CNN train"]["color"]
    # pause and the new rate at batch 25 of 50: one mark at epoch 0.5, both labels on it
    assert loss["marks"] == [{"x": 0.5, "label": "⏸ paused · lr → 0.0003", "color": "#7c3aed", "dash": "dash"}]
    assert curves["events"] == ["Learning rate of the CNN 0.001 → 0.0003 from epoch 1, batch 25.",
                                "⏸ The run has been paused since epoch 1, batch 25."]


def test_curves_view_thins_long_runs_and_says_when_nothing_is_finite(runs_dir):
    store = RunStore(runs_dir)
    record = running(store)
    batches = [{"model": "cnn", "epoch": 1 + b // 50, "batch": 1 + b % 50, "loss": 1.0, "accuracy": 0.5}
               for b in range(5000)]
    loss = curves_view(record, [], batches, [])["curves"]["charts"][0]
    assert len(loss["series"][0]["x"]) == MAX_BATCH_POINTS and loss["series"][0]["x"][-1] == 100.0
    diverged = curves_view(record, [{"model": "cnn", "epoch": 1, "loss": math.nan, "accuracy": 0.1}], [], [])["curves"]
    assert [chart["title"] for chart in diverged["charts"]] == ["Accuracy"]
    assert diverged["empty"] == ["Nothing to plot for the loss: the run recorded no finite value of it."]
    assert curves_view(record, [], [], [])["curves"]["note"] == "The curves start with the first batches."


def test_train_page_sends_the_live_run_to_the_monitor_and_no_plotly_chart_of_it(runs_dir):
    store = RunStore(runs_dir)
    run_id = live_run(store, "watched")
    (store.path(run_id) / "batches.jsonl").write_text(
        '{"model": "cnn", "epoch": 1, "batch": 2, "step": 2, "loss": 2.1, "accuracy": 0.3}\n')
    control.record_event(store.path(run_id), "lr", model="cnn", epoch=1, batch=2, step=2, to=0.01)
    atomic_write_json(store.path(run_id) / "progress.json", {"phase": "training", "model": "cnn", "epoch": 1,
                                                             "epochs": 1, "batch": 3, "batches": 7})
    at = AppTest.from_file(str(ROOT / TRAIN), default_timeout=30).run()
    assert not at.exception
    status, curves = (view.get("status") or view.get("curves") for view in live_views(at))
    assert status["text"] == "Training the CNN (1 of 1): epoch 1/1, batch 3/7" and status["fraction"] == pytest.approx(3 / 7, abs=1e-5)
    assert [line["y"] for line in curves["charts"][0]["series"]] == [[2.1]]
    assert curves["charts"][0]["marks"][0]["label"] == "lr → 0.01"
    # the schedule chart is the page's only plotly chart: the run's curves are the monitor's
    assert len(at.get("plotly_chart")) == 1
    assert not at.sidebar.get("progress")  # the only active run is on the page: no second bar polling for it


@pytest.mark.parametrize("state, hidden", [(None, False), ({}, False), ({"hidden": False}, False),
                                           ({"hidden": True}, True), ({"hidden": "true"}, False),
                                           ({"hidden": 1}, False), ({"hidden": [True]}, False)])
def test_only_a_real_true_from_the_browser_stops_the_polling(monkeypatch, state, hidden):
    import ui

    monkeypatch.setattr(ui.st, "session_state", {} if state is None else {ui.TAB_KEY: state})
    assert ui.tab_hidden() is hidden
    assert ui.poll_every(2.0) == (None if hidden else 2.0)
