"""cnnkit.monitor (a run's live status) and cnnkit.demo (quick train, drawing → predictions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cnnkit.runs.store import RunRecord
from cnnkit.shapes import summarize_spec
from cnnkit.views import demo, monitor


def record(status="running", baseline="dense-128", run_id="r1", created=0.0, **meta) -> RunRecord:
    spec = demo.quick_train_spec()
    spec = spec.updated({"baseline": baseline})
    return RunRecord(run_id, Path("/nonexistent") / run_id, status, {"created": created, **meta}, spec)


# ---------------------------------------------------------------- live status


def test_training_fraction_counts_batches_over_both_models():
    progress = {"phase": "training", "model": "cnn", "epoch": 2, "epochs": 4, "batch": 5, "batches": 10,
                "images_per_second": 900.0, "eta_seconds": 12.0}
    status = monitor.live_status(record(), progress)
    # CNN: (1 full epoch of 10 + 5 batches) / 40 = 0.375 of the first of two models
    assert status.fraction == pytest.approx(0.1875)
    assert "epoch 2/4, batch 5/10" in status.text and "CNN (1 of 2)" in status.text
    assert (status.images_per_second, status.eta_seconds, status.model) == (900.0, 12.0, "cnn")


def test_baseline_half_way_without_baseline_counts_alone():
    progress = {"phase": "training", "model": "baseline", "epoch": 1, "epochs": 2, "batch": 10,
                "batches": 10}
    assert monitor.live_status(record(), progress).fraction == pytest.approx(0.75)
    cnn_only = {"phase": "training", "model": "cnn", "epoch": 1, "epochs": 2, "batch": 10, "batches": 10}
    assert monitor.live_status(record(baseline=None), cnn_only).fraction == pytest.approx(0.5)


def test_evaluating_and_loading_and_starting():
    evaluating = monitor.live_status(record(), {"phase": "evaluating", "model": "cnn"})
    assert evaluating.fraction == pytest.approx(0.5) and "Evaluating the CNN" in evaluating.text
    assert monitor.live_status(record(), {"phase": "loading data"}).text == "Loading the data…"
    assert "TensorFlow" in monitor.live_status(record(), None).text


def test_queued_shows_the_place_in_line():
    status = monitor.live_status(record("queued", queue_position=2), None)
    assert "number 2 in line" in status.text and status.fraction == 0.0


def test_finished_and_failed_are_not_live():
    assert monitor.live_status(record("finished"), None).fraction == 1.0
    failed = monitor.live_status(record("failed"), {"phase": "training", "model": "cnn"})
    assert (failed.text, failed.fraction) == ("Failed", 0.0)


def test_steps_per_epoch_from_the_reported_train_size():
    assert monitor.steps_per_epoch(record(data_summary={"train": 1000})) == 8   # ceil(1000 / 128)
    assert monitor.steps_per_epoch(record()) is None


def test_pick_run_order():
    runs = [record("finished", run_id="new-done", created=3), record("running", run_id="active", created=2),
            record("finished", run_id="old-done", created=1)]
    assert monitor.pick_run(runs, [None, "old-done"]).run_id == "old-done"
    assert monitor.pick_run(runs, ["missing", None]).run_id == "active"
    assert monitor.pick_run(runs[:1] + runs[2:], []).run_id == "new-done"
    assert monitor.pick_run([record("failed", run_id="f")], []).run_id == "f"
    assert monitor.pick_run([], ["x"]) is None


# ---------------------------------------------------------------- quick train


def test_quick_train_spec_is_the_small_cnn_with_hand_counted_params():
    spec = demo.quick_train_spec()
    # conv 16: 9*16+16 = 160; conv 32: 9*16*32+32 = 4,640; 5*5*32 = 800 → dense 64: 800*64+64 = 51,264;
    # output: 64*10+10 = 650
    assert summarize_spec(spec).total_params == 160 + 4640 + 51264 + 650
    assert (spec.dataset.name, spec.dataset.train_limit, spec.training.epochs) == ("mnist", 12000, 2)
    assert (spec.training.optimizer, spec.training.batch_size, spec.baseline) == ("adam", 128, "dense-128")
    assert spec.name == demo.QUICK_TRAIN_NAME


def test_quick_train_spec_shrinks_for_tests(monkeypatch):
    monkeypatch.setenv("CNNKIT_QUICK_TRAIN_LIMIT", "2000")
    monkeypatch.setenv("CNNKIT_QUICK_TRAIN_EPOCHS", "1")
    spec = demo.quick_train_spec()
    assert (spec.dataset.train_limit, spec.training.epochs) == (2000, 1)
    assert demo.quick_train_spec(available=4000).dataset.train_limit == 2000
    assert demo.quick_train_spec(available=2000).dataset.train_limit is None   # all of them
    monkeypatch.setenv("CNNKIT_QUICK_TRAIN_LIMIT", "lots")
    assert demo.quick_train_spec().dataset.train_limit == demo.QUICK_TRAIN_LIMIT
    assert demo.quick_train_spec(available=4000).training.epochs == 1       # set epochs are kept


def test_quick_train_on_the_sample_uses_all_images_for_as_many_steps():
    # the bundled sample has 4,000 training images, fewer than 12,000: all are used, and
    # 2 epochs of 12,000 become ceil(2 * 12,000 / 4,000) = 6 epochs of the sample
    spec = demo.quick_train_spec(available=4000)
    assert (spec.dataset.train_limit, spec.training.epochs) == (None, 6)
    assert demo.quick_train_spec(available=60000).dataset.train_limit == 12000


# ---------------------------------------------------------------- drawing → predictions


class FakePredictor:
    """Records what it was given; "probabilities" put all mass on the class = ink share * 10."""

    def __init__(self):
        self.calls = []

    def probabilities(self, pixels):
        self.calls.append(np.array(pixels))
        probs = np.zeros((1, 10), np.float32)
        probs[0, min(int((pixels > 0).mean() * 10), 9)] = 1.0
        return probs


def canvas_with_stroke(width: int = 24) -> np.ndarray:
    """A 280×280 RGBA canvas, black background, a white vertical bar (a "1")."""
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[40:240, 140 - width // 2:140 + width // 2, :3] = 255
    return canvas


def test_empty_canvas_gives_the_hint_and_calls_no_model():
    fake = FakePredictor()
    for image in (None, np.zeros((280, 280, 4), np.uint8)):
        result = demo.read_drawing(image, {"cnn": fake})
        assert not result.ok and result.probs == {}
        assert result.drawing.message.startswith("Nothing drawn yet")
    assert fake.calls == []


def test_drawing_reaches_every_model_as_mnist_pixels():
    cnn, baseline = FakePredictor(), FakePredictor()
    result = demo.read_drawing(canvas_with_stroke(), {"cnn": cnn, "baseline": baseline})
    assert result.ok and set(result.probs) == {"cnn", "baseline"}
    seen = cnn.calls[0]
    assert seen.shape == (28, 28) and seen.dtype == np.float32
    assert seen.max() == 255.0                                  # raw 0–255 pixels: the model scales
    assert np.array_equal(seen, result.drawing.as_uint8().astype(np.float32))
    assert np.array_equal(baseline.calls[0], seen)
    best, p = result.top("cnn")
    assert p == 1.0 and best == min(int((seen > 0).mean() * 10), 9)


def test_result_rows_one_per_model_with_mean_epoch_time():
    models = {"cnn": {"test_accuracy": 0.95, "test_loss": 0.2, "params": 56714, "epochs_completed": 2,
                      "seconds_per_epoch": [3.0, 1.0], "seconds": 4.5},
              "baseline": {"test_accuracy": 0.9, "params": 101770}}
    rows = monitor.result_rows(record("finished", models=models))
    assert [r["model"] for r in rows] == ["CNN", "dense baseline"]
    assert rows[0]["seconds_per_epoch"] == 2.0 and rows[0]["epochs"] == 2 and rows[0]["seconds"] == 4.5
    assert rows[1]["test_loss"] is None and rows[1]["seconds_per_epoch"] is None and rows[1]["epochs"] == 0
    assert len(monitor.result_rows(record("finished", baseline=None, models=models))) == 1


def test_attach_run_reads_the_wanted_run_without_listing_and_else_picks_as_pick_run(tmp_path, monkeypatch):
    from cnnkit.runs import jobs
    from cnnkit.runs.store import RunStore, this_process
    from tests.test_training import tiny_spec

    store = RunStore(tmp_path)
    assert monitor.attach_run(store, [None]) is None  # no runs yet
    failed, done, newer_failed = (store.create(tiny_spec(), name=name).run_id for name in ("a", "b", "c"))
    for run_id, status in ((failed, "failed"), (done, "finished"), (newer_failed, "failed")):
        store.update(run_id, status=status)
    (store.path(done) / "model.keras").write_bytes(b"a model")  # a finished run without one is damaged
    everything = store.list()
    monkeypatch.setattr(store, "list", lambda: pytest.fail("read every run to show one"))
    assert monitor.attach_run(store, ["../../etc", None, failed]).run_id == failed  # a hostile URL id is passed over
    # none wanted: as pick_run, the newest finished run (not the newer failed one)
    assert monitor.attach_run(store, ["gone-run", None]).run_id == monitor.pick_run(everything, []).run_id == done
    running = store.create(tiny_spec(), name="d").run_id
    store.update(running, status="running", **this_process())
    jobs.mark_active(store, running)
    assert monitor.attach_run(store, [None]).run_id == running  # an active run comes first
    assert store.newest().run_id == running and store.newest("failed").run_id == newer_failed
