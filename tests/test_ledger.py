"""cnnkit.ledger: ledger rows from run folders written by hand, curves, and the zip round trip."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest

from cnnkit.errors import RunError
from cnnkit.presets import get_preset
from cnnkit.runs.store import RunStore, atomic_write_json
from cnnkit.specs import Dense
from cnnkit.views import ledger

HISTORY = [
    {"model": "cnn", "epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.8, "val_accuracy": 0.75},
    {"model": "cnn", "epoch": 2, "loss": 0.5, "accuracy": 0.85, "val_loss": 0.6, "val_accuracy": 0.8},
    {"model": "baseline", "epoch": 1, "loss": 1.1, "accuracy": 0.6},
]


def finished_run(store: RunStore, spec, **models) -> str:
    record = store.create(spec, name="my run")
    run_dir = store.path(record.run_id)
    (run_dir / "model.keras").write_bytes(b"PK fake model")
    atomic_write_json(run_dir / "history.json", HISTORY)
    store.update(record.run_id, status="finished", models=models,
                 data_source={"kind": "sample", "is_sample": True})
    return record.run_id


def test_row_of_a_finished_preset_run(tmp_path):
    store = RunStore(tmp_path)
    spec = get_preset("chollet-cnn").experiment(baseline="dense-128")
    finished_run(store, spec, cnn={"params": 96_844, "test_accuracy": 0.98, "seconds": 12.5,
                                   "epochs_completed": 5},
                 baseline={"params": 101_770, "test_accuracy": 0.95, "seconds": 4.0})
    (row,) = ledger.ledger_rows(store.list())
    assert row["name"] == "my run" and row["status"] == "finished" and row["dataset"] == "mnist"
    assert row["architecture"] == "chollet-cnn" and row["params"] == 96_844
    assert row["optimizer"] == "rmsprop 0.001" and row["epochs"] == "5/5"
    assert (row["test accuracy"], row["baseline accuracy"], row["time (s)"]) == (0.98, 0.95, 12.5)
    assert row["data"] == "SAMPLE"


def test_an_extended_run_says_so(tmp_path):
    store = RunStore(tmp_path)
    spec = get_preset("chollet-cnn").experiment().updated({"training.epochs": 8})
    run_id = finished_run(store, spec, cnn={"epochs_completed": 8})
    store.update(run_id, extensions=[{"from_epoch": 5, "epochs": 2}, {"from_epoch": 7, "epochs": 1}])
    (row,) = ledger.ledger_rows(store.list())
    assert row["epochs"] == "8/8 (extended +3)"


def test_edited_preset_and_unstarted_run_params_come_from_the_spec(tmp_path):
    store = RunStore(tmp_path)
    spec = get_preset("chollet-cnn").experiment()
    spec = spec.updated({"layers": [*[layer.to_dict() for layer in spec.layers[:-1]], Dense(10).to_dict()]})
    store.create(spec)
    (row,) = ledger.ledger_rows(store.list())
    assert row["architecture"] == "chollet-cnn, edited (3 conv, 1 dense)"
    # 96,844 - (576*70+70) - (70*10+10) + (576*10+10) + (10*10+10): dense 70 → 10
    assert row["params"] == 96_844 - 40_390 - 710 + 5_770 + 110 == 61_624
    assert row["test accuracy"] is None and row["epochs"] == "0/5"


def test_damaged_run_is_a_row_with_its_problem(tmp_path):
    (tmp_path / "broken-run").mkdir()
    (tmp_path / "broken-run" / "run.json").write_text("{not json")
    (row,) = ledger.ledger_rows(RunStore(tmp_path).list())
    assert row["status"] == "damaged" and "unreadable" in row["problem"]
    assert row["params"] is None and row["architecture"] == "?"


def test_epoch_curve_and_metric_fallback():
    assert ledger.epoch_curve(HISTORY, "cnn", "val_accuracy") == ([1, 2], [0.75, 0.8])
    assert ledger.epoch_curve(HISTORY, "baseline", "val_accuracy") == ([], [])
    assert ledger.best_metric(HISTORY, "cnn", "val_accuracy", "accuracy") == "val_accuracy"
    assert ledger.best_metric(HISTORY, "baseline", "val_accuracy", "accuracy") == "accuracy"


def test_zip_round_trip(tmp_path):
    store = RunStore(tmp_path)
    run_id = finished_run(store, get_preset("dense-128").experiment(), cnn={"params": 1})
    data = ledger.run_zip_bytes(store.path(run_id))
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"{run_id}/{n}" for n in ("model.keras", "spec.json", "run.json",
                                                          "history.json"))
        assert archive.read(f"{run_id}/model.keras") == b"PK fake model"
        assert json.loads(archive.read(f"{run_id}/history.json")) == HISTORY


def test_zip_of_an_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunError, match="none of"):
        ledger.run_zip_bytes(tmp_path / "empty")


def test_rows_follow_the_store_order_newest_first(tmp_path):
    store = RunStore(tmp_path)
    first = store.create(get_preset("dense-128").experiment(), name="old").run_id
    time.sleep(0.01)
    second = store.create(get_preset("dense-128").experiment(), name="new").run_id
    assert [r["run_id"] for r in ledger.ledger_rows(store.list())] == [second, first]


def test_run_curves_prefer_validation_and_say_when_they_fall_back():
    curves = ledger.run_curves("A", HISTORY, "accuracy")
    assert [c["label"] for c in curves] == ["A", "A · baseline (train)"]
    assert curves[0]["values"] == [0.75, 0.8] and curves[1]["values"] == [0.6]
    assert [c["dashed"] for c in curves] == [False, True]
    train = ledger.run_curves("A", HISTORY, "loss", validation=False, baselines=False)
    assert train == [{"label": "A", "epochs": [1, 2], "values": [0.9, 0.5], "dashed": False}]
    assert ledger.run_curves("empty", [], "loss") == []


def test_the_chosen_runs_curves_take_the_colour_of_their_place_and_say_which_have_no_validation():
    no_val = [{"model": "cnn", "epoch": 1, "loss": 0.7, "accuracy": 0.8}]
    histories = {"b": HISTORY, "a": no_val}  # chosen in this order
    curves = ledger.chosen_curves(["b", "a"], {"a": "A", "b": "B"}, histories, "accuracy", True, True,
                                  lambda n: f"colour {n}")
    assert [(c["label"], c["color"]) for c in curves] == [
        ("B", "colour 0"), ("B · baseline (train)", "colour 0"), ("A (train)", "colour 1")]
    assert ledger.without_validation(histories) == ["a"]
    assert ledger.without_validation({"b": HISTORY}) == []


def test_scatter_points_only_for_models_with_a_test_accuracy(tmp_path):
    store = RunStore(tmp_path)
    finished_run(store, get_preset("chollet-cnn").experiment(baseline="dense-128"),
                 cnn={"params": 96_844, "test_accuracy": 0.98, "seconds": 12.5},
                 baseline={"params": 101_770, "seconds": 4.0})  # baseline stopped before its test
    store.create(get_preset("dense-128").experiment())         # not trained yet
    assert ledger.scatter_points(store.list()) == [
        {"label": "my run", "kind": "cnn", "accuracy": 0.98, "params": 96_844, "seconds": 12.5}]


def test_has_files(tmp_path):
    assert not ledger.has_files(tmp_path)
    (tmp_path / "spec.json").write_text("{}")
    assert ledger.has_files(tmp_path)


# ---------------------------------------------------------------- the window of a long ledger


def listed_runs(names_statuses: list[tuple[str, str]], dataset: str = "mnist") -> list:
    """RunRecords as RunStore.list() gives them, newest first (ids "r00", "r01", … oldest first)."""
    from pathlib import Path

    from cnnkit.runs.store import RunRecord

    spec = get_preset("chollet-cnn").experiment().updated({"dataset.name": dataset})
    records = [RunRecord(f"r{i:02d}", Path(f"/nowhere/r{i:02d}"), status, {"name": name, "created": 1000 + i}, spec)
               for i, (name, status) in enumerate(names_statuses)]
    return records[::-1]


def test_find_runs_matches_every_word_in_name_id_status_or_dataset():
    records = listed_runs([("Wide CNN", "finished"), ("wide baseline", "failed"), ("narrow", "failed"),
                           ("deep", "finished")])
    assert [r.run_id for r in ledger.find_runs(records, "")] == ["r03", "r02", "r01", "r00"]
    assert [r.run_id for r in ledger.find_runs(records, "WIDE")] == ["r01", "r00"]  # any case
    assert [r.run_id for r in ledger.find_runs(records, "wide failed")] == ["r01"]  # every word
    assert [r.run_id for r in ledger.find_runs(records, "r02")] == ["r02"]  # the run id
    assert [r.run_id for r in ledger.find_runs(records, "mnist deep")] == ["r03"]  # the dataset
    assert ledger.find_runs(records, "fashion") == []


def test_a_ledger_within_the_limit_is_listed_whole_without_a_note():
    records = listed_runs([(f"run {i}", "finished") for i in range(5)])
    shown, note = ledger.run_window(records, "", limit=5)
    assert shown == records and note == ""


def test_the_newest_are_listed_and_the_note_counts_the_others():
    records = listed_runs([(f"run {i}", "finished") for i in range(12)])
    shown, note = ledger.run_window(records, "", limit=5)
    assert [r.run_id for r in shown] == ["r11", "r10", "r09", "r08", "r07"]
    assert note.startswith("The newest 5 of 12 runs are listed; 7 older ones are not: find any run by ")


def test_kept_runs_stay_listed_and_are_not_counted_as_hidden():
    records = listed_runs([(f"run {i}", "finished") for i in range(12)])
    shown, note = ledger.run_window(records, "", limit=5, keep=["r02", None, "r10", "gone"])
    assert [r.run_id for r in shown] == ["r11", "r10", "r09", "r08", "r07", "r02"]  # r10 once; "gone" is no run
    assert "; 6 older ones are not" in note
    shown, note = ledger.run_window(records, "run 3", limit=5, keep=["r02"])  # kept whatever was typed
    assert [r.run_id for r in shown] == ["r03", "r02"]
    assert note.startswith("1 of 12 runs match “run 3”; 10 not listed. Find: ")


def test_a_query_with_more_matches_than_the_limit_says_so():
    records = listed_runs([(f"run {i}", "failed" if i % 2 else "finished") for i in range(12)])
    shown, note = ledger.run_window(records, "failed", limit=4)
    assert [r.run_id for r in shown] == ["r11", "r09", "r07", "r05"]
    assert note.startswith("6 of 12 runs match “failed”, the newest 4 of them listed; 8 not listed.")
    shown, note = ledger.run_window(records, "nothing like it", limit=4)
    assert shown == [] and note.startswith("0 of 12 runs match “nothing like it”; 12 not listed.")


def test_the_note_shows_a_query_as_plain_text():
    records = listed_runs([(f"run {i}", "finished") for i in range(3)])
    query = "![x](http://a/b.png)"
    note = ledger.run_window(records, query, limit=1)[1]
    assert "![x](" not in note and f"match “{query}”" in re.sub(r"\\(.)", r"\1", note)  # escaped, not lost


def test_overlay_choices_keep_what_was_chosen_and_start_at_the_newest_three():
    from types import SimpleNamespace

    def run(run_id, epochs):
        return SimpleNamespace(run_id=run_id, models={"cnn": {"epochs_completed": epochs}})

    records = [run("e", 1), run("d", 0), run("c", 2), run("b", 1), run("a", 3)]  # newest first; d has no curves
    assert ledger.overlay_choices(records, records, None) == (["e", "c", "b", "a"], ["e", "c", "b"])
    # a Find listed only e and d; "a", chosen before, stays offered and chosen; "d" (no curves) is dropped
    assert ledger.overlay_choices(records, records[:2], ["a", "d", "gone"]) == (["e", "a"], ["a"])
    assert ledger.overlay_choices([run("x", 0)], [run("x", 0)], None) == ([], [])


def test_no_curves_note_says_whether_only_the_newest_were_looked_at():
    assert ledger.no_curves_note(201, 10_000).startswith("None of the newest 201 runs has finished an epoch")
    assert ledger.no_curves_note(3, 3) == "No run has finished an epoch yet: curves appear here after the first one."
