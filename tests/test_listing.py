"""Listing many runs: each run.json is read once while it stays the same file, and Compare reads
the history of the runs it draws, not of every run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.presets import PRESETS
from cnnkit.runs import listing
from cnnkit.runs.store import RunStore, atomic_write_json
from cnnkit.views import ledger

ROOT = Path(__file__).resolve().parent.parent
SPEC = PRESETS["chollet-cnn"].experiment()


@pytest.fixture
def parses(monkeypatch):
    """The run.json files parsed (not answered from memory), in order."""
    listing.forget()
    seen: list[str] = []
    parse = listing.parse_run_json

    def counting(path):
        seen.append(Path(path).parent.name)
        return parse(path)

    monkeypatch.setattr(listing, "parse_run_json", counting)
    return seen


def finished_run(store: RunStore, name: str, accuracy: float) -> str:
    run_id = store.create(SPEC, name=name).run_id
    (store.path(run_id) / "model.keras").write_bytes(b"stand-in")
    atomic_write_json(store.path(run_id) / "history.json",
                      [{"model": "cnn", "epoch": 1, "loss": 0.5, "accuracy": accuracy}])
    store.update(run_id, status="finished", models={"cnn": {"epochs_completed": 1, "test_accuracy": accuracy,
                                                            "params": 1000, "seconds": 2.0}})
    return run_id


def test_a_second_listing_parses_nothing_and_a_changed_run_is_read_again(runs_dir, parses):
    store = RunStore(runs_dir)
    ids = [store.create(SPEC, name=f"run {i}").run_id for i in range(5)]
    listing.forget()  # as a new server process
    parses.clear()
    assert sorted(r.run_id for r in store.list()) == sorted(ids)
    assert sorted(parses) == sorted(ids)  # the first listing reads each once
    parses.clear()
    store.list()
    assert parses == []
    store.rename(ids[2], "renamed")  # an atomic rewrite: a new file
    records = {r.run_id: r for r in store.list()}
    assert parses == [ids[2]] and records[ids[2]].name == "renamed"


def test_a_hand_edit_in_place_of_the_same_size_is_seen(runs_dir, parses):
    store = RunStore(runs_dir)
    run_id = store.create(SPEC, name="aaaa").run_id
    path = store.path(run_id) / "run.json"
    assert store.get(run_id).name == "aaaa"
    before = os.stat(path)
    path.write_text(path.read_text().replace('"aaaa"', '"bbbb"'))  # same inode, same size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))  # a later edit, however coarse the clock
    assert os.stat(path).st_ino == before.st_ino and os.stat(path).st_size == before.st_size
    assert store.get(run_id).name == "bbbb"


def test_live_corrections_are_not_remembered(runs_dir, parses):
    store = RunStore(runs_dir)
    run_id = finished_run(store, "kept", 0.9)
    assert store.get(run_id).status == "finished"
    parses.clear()
    (store.path(run_id) / "model.keras").unlink()  # run.json is unchanged: only the model went
    assert store.get(run_id).status == "damaged"
    assert parses == []  # answered from memory, and still corrected


def test_compare_reads_the_history_of_the_runs_it_draws_only(runs_dir, monkeypatch):
    store = RunStore(runs_dir)
    ids = [finished_run(store, f"run {i}", 0.8 + i / 100) for i in range(6)]
    untrained = store.create(SPEC, name="never trained").run_id
    read: list[str] = []
    history = RunStore.history

    def counting(self, run_id):
        read.append(run_id)
        return history(self, run_id)

    monkeypatch.setattr(RunStore, "history", counting)
    monkeypatch.setattr(ledger, "SCATTER_RUNS", 4)
    at = AppTest.from_file(str(ROOT / "app_pages/compare.py"), default_timeout=30).run()
    assert not at.exception
    overlay = next(m for m in at.multiselect if m.label == "Runs to overlay")
    assert untrained not in overlay.options and len(overlay.options) == 6  # run.json says which have curves
    newest_three = ids[::-1][:3]
    assert overlay.value == newest_three
    assert sorted(read) == sorted(newest_three)
    scatters = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "Test accuracy vs" in json.dumps(json.loads(c.proto.spec)["layout"].get("title"))]
    assert len(scatters) == 2
    for figure in scatters:  # the newest four runs only (the untrained one has no point), by their accuracies
        assert sorted(figure["data"][0]["y"]) == pytest.approx(sorted(0.8 + i / 100 for i in range(3, 6)))
