"""`python -m cnnkit bench` and `reproduce`: their arithmetic by hand, and the quick modes end to
end on the bundled sample. Timings are printed by those commands, never asserted here."""

import argparse
import os
import re

import numpy as np
import pytest

from cnnkit.errors import DataError, SpecError
from cnnkit.lab import bench, reproduce
from cnnkit.lab.bench import latency as latency_bench
from cnnkit.lab.bench import memory as memory_bench
from cnnkit.lab.bench import starting, wholerun
from cnnkit.presets import PRESETS
from cnnkit.runs.store import RunStore

# ---------------------------------------------------------------------------
# The statistics


def test_median_by_hand():
    assert bench.median([3, 1, 2]) == 2
    assert bench.median([4, 1, 3, 2]) == 2.5
    assert bench.median([None, 5]) == 5  # a missing measurement is left out, not counted as 0
    assert bench.median([]) is None


@pytest.mark.parametrize("q", [0, 50, 95, 100])
def test_percentile_matches_numpy_linear(q):
    values = [12.0, 0.5, 3.0, 7.0, 100.0, 1.0, 2.5]
    assert bench.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_percentile_by_hand():
    # 0..100 step 10: p95 sits halfway between 90 and 100
    assert bench.percentile(list(range(0, 101, 10)), 95) == pytest.approx(95.0)
    assert bench.percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert bench.percentile([], 50) is None


def test_steady_leaves_out_the_first_epoch():
    assert bench.steady([100.0, 200.0, 300.0]) == 250.0  # the first epoch traces the graph
    assert bench.steady([100.0]) == 100.0                # one epoch: all there is


def test_keras_step_times_are_read_from_the_scripts_epoch_lines():
    out = ("Epoch 1/2\n422/422 - 11s - 26ms/step - accuracy: 0.9456 - loss: 0.1781\n"
           "Epoch 2/2\n422/422 - 9s - 21ms/step - accuracy: 0.9832 - loss: 0.0551\n"
           "5/5 - 0s - 900us/step\n")
    steps = [(int(n), int(per)) for _, n, per, _ in wholerun.MS_PER_STEP.findall(out)]
    assert steps == [(422, 26), (422, 21), (5, 900)]
    run = {"steps": [(422, 0.021)], "batch_size": 128}
    assert wholerun._script_images_per_second(run) == pytest.approx(128 / 0.021)


def test_a_cloned_ledger_lists_every_copy_and_shares_the_model_bytes(tmp_path):
    from cnnkit.runs.store import RunStore

    store = RunStore(tmp_path / "made")
    template = store.path(store.create(PRESETS["chollet-cnn"].experiment()).run_id)
    (template / "model.keras").write_bytes(b"model")
    store.update(template.name, status="finished", models={"cnn": {"test_accuracy": 0.9, "epochs_completed": 1}})
    (tmp_path / "ledger").mkdir()
    starting.clone_runs(template, tmp_path / "ledger", 7)
    listed = RunStore(tmp_path / "ledger").list()
    assert len(listed) == 7 and {r.status for r in listed} == {"finished"}
    assert [r.name for r in listed] == [f"run {i}" for i in range(6, -1, -1)]  # newest first
    assert {r.test_accuracy for r in listed} == {round(0.95 + i / 10_000, 4) for i in range(7)}
    assert os.stat(template / "model.keras").st_nlink == 8  # hard links: one copy of the bytes
    measured = starting.listing_child(str(tmp_path / "ledger"))  # the pickers' reading, then list()
    assert measured["runs"] == 7 and set(measured["pickers"]) == {"inspect", "draw"}


def test_markdown_table_shape():
    lines = bench.table(["a", "b"], [[1.23456, None], [12345.6, "x"]])
    assert lines[:2] == ["| a | b |", "|---|---|"]
    assert lines[2:] == ["| 1.23 | – |", "| 12,346 | x |"]


def test_benchmark_selection():
    assert bench.selected(None) == list(bench.BENCHES)
    assert bench.selected(["all"]) == list(bench.BENCHES)
    assert bench.selected(["latency", "memory"]) == ["latency", "memory"]
    assert bench.selected(["all", "levers"]) == [*bench.BENCHES, "levers"]  # an extra runs only when named
    assert "levers" not in bench.selected(["all"])
    with pytest.raises(SpecError, match="unknown benchmark 'speed'"):
        bench.selected(["latency", "speed"])


# ---------------------------------------------------------------------------
# reproduce: rows and table


def test_unscaled_presets_get_a_scaled_twin_row():
    rows = reproduce.rows_for(["kruse-conv", "moroney-cnn"], quick=False)
    assert [(r.label, r.spec.dataset.normalization) for r in rows] == [
        ("kruse-conv", "none"), ("kruse-conv (scaled /255)", "scale"), ("moroney-cnn", "scale")]
    assert rows[0].spec.training == PRESETS["kruse-conv"].training  # the published recipe, untouched
    assert rows[1].published_accuracy is None  # the article never trained the scaled one


def test_all_presets_and_quick_sizes():
    rows = reproduce.rows_for(None, quick=True)
    unscaled = [p for p in PRESETS.values() if p.dataset.normalization == "none"]
    assert len(rows) == len(PRESETS) + len(unscaled)
    for row in rows:
        assert row.spec.training.epochs == reproduce.QUICK_EPOCHS
        assert row.spec.dataset.train_limit == reproduce.QUICK_TRAIN_LIMIT


def test_row_delta_and_median_by_hand():
    row = reproduce.rows_for(["moroney-cnn"], quick=False)[0]  # published test 90.71%
    row.test_accuracy, row.status = 0.9123, "finished"
    assert row.delta == pytest.approx(91.23 - 90.71)
    row.seconds_per_epoch = [40.0, 10.0, 30.0, 20.0]
    assert row.median_seconds_per_epoch == 25.0
    cells = reproduce.row_cells(row)
    assert cells[:6] == ["moroney-cnn", "fashion_mnist", "5", "test 90.71%", "91.23%", "+0.52"]
    table = reproduce.markdown_table([row]).splitlines()
    assert len(table) == 3 and table[2].count("|") == len(reproduce.HEADER) + 1


def test_a_failed_row_says_why():
    row = reproduce.rows_for(["dense-128"], quick=False)[0]
    row.status, row.reason = "failed", "The training loss became NaN/infinite"
    assert reproduce.row_cells(row)[4] == "failed: The training loss became NaN/infinite"
    assert row.delta is None


def test_full_reproduction_refuses_the_sample():
    rows = reproduce.rows_for(["dense-128"], quick=False)
    with pytest.raises(DataError, match="needs the full Fashion-MNIST dataset"):
        reproduce.check_full_data(rows, None)


# ---------------------------------------------------------------------------
# The quick modes, end to end on the bundled sample (TensorFlow in child processes)


def test_reproduce_quick_end_to_end(tmp_path, monkeypatch):
    monkeypatch.delenv("CNNKIT_PRECISION", raising=False)
    out = tmp_path / "table.md"
    args = argparse.Namespace(preset=["dense-32-32"], quick=True, data_dir=None, runs_dir=str(tmp_path / "runs"),
                              output=str(out))
    assert reproduce.main(args) == 0
    text = out.read_text()
    assert "QUICK smoke run" in text and "bundled SAMPLE of MNIST" in text
    assert "Precision: float32, as the articles trained" in text  # the default, not the app's bf16
    assert "CNNKIT_PRECISION" not in os.environ  # set for the runs only
    rows = [line for line in text.splitlines() if line.startswith("| dense-32-32")]
    assert len(rows) == 2  # the article's unscaled recipe and the scaled twin
    for line in rows:
        accuracy = float(re.search(r"\| (\d+\.\d\d)% \|", line).group(1))
        assert 0.0 <= accuracy <= 100.0
    # the runs are real run folders, kept in --runs-dir
    assert RunStore(tmp_path / "runs").count() == 2


def test_bench_quick_throughput_in_child_processes(tmp_path):
    out = tmp_path / "bench.md"
    args = argparse.Namespace(which=["throughput"], data_dir=None, quick=True, output=str(out))
    assert bench.main(args) == 0
    text = out.read_text()
    assert "QUICK" in text and "1. Training throughput" in text
    # both sides trained the same 600 images for 2 epochs, one run each, Keras first
    runs = re.findall(r"- dense-128 (keras|cnnkit) #1 \(seed 42\): [\d,]+, [\d,]+; acc (\d+\.\d\d)%", text)
    assert [side for side, _ in runs] == ["keras", "cnnkit"]
    assert all(0.0 <= float(acc) <= 100.0 for _, acc in runs)
    assert re.search(r"\| dense-128 \| 2 \| 600 \|", text)


def test_bench_quick_latency_and_memory(tmp_path, monkeypatch):
    # The children's code, run in this process (TensorFlow is already loaded here): same paths,
    # without paying a TensorFlow start-up per child.
    for module in (latency_bench, memory_bench):  # the two benchmarks' own run_child
        monkeypatch.setattr(module, "run_child", lambda kind, params: bench.CHILDREN[kind](**params))
    out = tmp_path / "bench.md"
    args = argparse.Namespace(which=["latency", "memory"], data_dir=None, quick=True, output=str(out))
    assert bench.main(args) == 0
    text = out.read_text()
    latency = re.findall(r"\| quick-train \| (.+?) \| (\d+) \| ([\d.,]+) \| ([\d.,]+) \|", text)
    assert [(path, int(calls)) for path, calls, _, _ in latency] == [
        ("app: LitePredictor.probabilities", 50), ("app: canvas → read_drawing", 50),
        ("TF: inspection.Predictor", 50), ("TF: model.predict", 10)]
    for _, _, p50, p95 in latency:
        assert float(p95.replace(",", "")) >= float(p50.replace(",", "")) > 0
    # two trainings of 300 images; the peak is never below the resident size
    memory = re.findall(r"\| (\d) \| 300 \| ([\d,.]+) \| ([\d,.]+) \|", text)
    assert [m[0] for m in memory] == ["1", "2"]
    for _, rss, peak in memory:
        assert float(peak.replace(",", "")) >= float(rss.replace(",", ""))


def test_the_simulated_run_writes_what_a_training_writes_at_its_pace(tmp_path):
    from cnnkit.lab.bench.livepage import simulated_run_child
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore
    from cnnkit.views.health import health_records
    from cnnkit.views.live import curves_view

    store = RunStore(tmp_path)
    run_id = store.create(get_preset("chollet-cnn").experiment()).run_id
    result = simulated_run_child(str(tmp_path), run_id, seconds=1.3, epoch_seconds=0.5)
    assert result["epochs"] == 2  # epochs end at 0.5 and 1.0 s of 1.3 s
    assert [h["epoch"] for h in store.history(run_id)] == [1, 2]
    assert [r["epoch"] for r in health_records(store.path(run_id))] == [1, 2]
    assert 4 <= result["batch_points"] == len(store.batches(run_id)) <= 6  # one every 0.25 s
    assert not store.get(run_id).is_active  # ended (without a model file: no page may open it as a result)
    # what the live monitor makes of it: the CNN's three kinds of line, on both charts
    curves = curves_view(store.get(run_id), store.history(run_id), store.batches(run_id), [])["curves"]
    assert [[s["label"] for s in chart["series"]] for chart in curves["charts"]] == \
        [["CNN train, per batch", "CNN train", "CNN validation"]] * 2


def test_the_phase_probe_accounts_for_a_whole_run(tmp_path):
    # One small `cnnkit train` (600 bundled images, 2 epochs) in the probe's own process. Its fit,
    # less the health probes, is what the run's own clock (run.json's epoch seconds) measured.
    from cnnkit.lab.bench.common import run_child

    result = run_child("phases", {"data_dir": None, "runs_dir": str(tmp_path), "seed": 42, "train_limit": 600})
    phases = result["phases"]
    assert set(phases) == {key for key, _ in wholerun.PHASES}
    assert all(seconds >= 0 for seconds in phases.values()), phases
    assert sum(phases.values()) == pytest.approx(result["total"])
    assert phases["import"] > 0.5 and phases["first_call"] > 0 and phases["test"] > 0
    assert len(result["epoch_seconds"]) == 2
    assert result["fit"] - phases["health"] == pytest.approx(sum(result["epoch_seconds"]), abs=0.3)
