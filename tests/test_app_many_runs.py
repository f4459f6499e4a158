"""A ledger longer than the pages list: Compare's table and pickers and ui.select_run show the
newest runs, say how many are left out, find any other by its name, and keep the chosen run and
the URL's run. The limits are made small (ledger.LEDGER_ROWS, ledger.PICKER_RUNS) so a dozen
runs written by hand stand for 10,000; the expected rows are hand counts of those runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.presets import PRESETS
from cnnkit.runs.store import RunStore, atomic_write_json
from cnnkit.views import ledger

ROOT = Path(__file__).resolve().parent.parent
COMPARE = str(ROOT / "app_pages/compare.py")
SPEC = PRESETS["chollet-cnn"].experiment()
# Oldest first. Letters no run id holds (ids are a date, "chollet-cnn" and four hex digits), and
# no name holds another: each finds its run alone.
NAMES = ["ant", "bison", "camel", "dingo", "emu", "ferret", "gecko", "hyena", "iguana", "jackal", "koala", "llama"]
LIMIT = 5


def unmark(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def captions(at: AppTest) -> list[str]:
    return [unmark(c.value) for c in at.caption]


@pytest.fixture
def zoo(runs_dir, monkeypatch) -> list[str]:
    """Twelve finished runs (model file, one epoch of history), created in NAMES' order: their
    ids, oldest first. Both limits at 5."""
    monkeypatch.setattr(ledger, "LEDGER_ROWS", LIMIT)
    monkeypatch.setattr(ledger, "PICKER_RUNS", LIMIT)
    store = RunStore(runs_dir)
    ids = []
    for n, name in enumerate(NAMES):
        run_id = store.create(SPEC, name=name).run_id
        (store.path(run_id) / "model.keras").write_bytes(b"stand-in")
        atomic_write_json(store.path(run_id) / "history.json",
                          [{"model": "cnn", "epoch": 1, "loss": 0.5, "accuracy": 0.9, "val_accuracy": 0.9}])
        store.update(run_id, status="finished", created=1_000_000 + n,  # a definite order, newest last
                     models={"cnn": {"epochs_completed": 1, "test_accuracy": 0.9, "params": 1000, "seconds": 2.0}})
        ids.append(run_id)
    return ids


def newest(ids: list[str], n: int = LIMIT) -> list[str]:
    return ids[::-1][:n]


# ---------------------------------------------------------------- Compare


def one_run(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Run")


def overlay(at: AppTest):
    return next(m for m in at.multiselect if m.label == "Runs to overlay")


def test_compare_lists_the_newest_and_says_how_many_are_not(zoo):
    at = AppTest.from_file(COMPARE, default_timeout=30).run()
    assert not at.exception
    assert at.dataframe[0].value["run_id"].tolist() == newest(zoo)
    assert at.dataframe[0].value["name"].tolist() == NAMES[::-1][:LIMIT]
    assert any(c.startswith("🔎 The newest 5 of 12 runs are listed; 7 older ones are not") for c in captions(at))
    assert overlay(at).options and len(overlay(at).options) == LIMIT  # every listed run has curves
    assert overlay(at).value == newest(zoo, 3)
    assert one_run(at).options == [f"{name} (mnist, finished · 90.00%) · {run_id}"
                                   for name, run_id in zip(NAMES[::-1][:LIMIT], newest(zoo), strict=True)]


def test_compare_finds_an_old_run_and_keeps_it_chosen_afterwards(zoo):
    at = AppTest.from_file(COMPARE, default_timeout=30).run()
    at.text_input(key="compare_find").set_value("bison").run()
    assert not at.exception
    assert at.dataframe[0].value["run_id"].tolist() == [zoo[1]]  # the table: what was found, only
    assert any(c.startswith("🔎 1 of 12 runs match “bison”; 11 not listed.") for c in captions(at))
    assert overlay(at).value == newest(zoo, 3)  # the runs chosen before stay chosen, and offered
    assert [o.split(" (")[0] for o in overlay(at).options] == ["bison", "llama", "koala", "jackal"]
    assert [o.split(" (")[0] for o in one_run(at).options] == ["bison", "llama"]  # found; the run chosen
    one_run(at).set_value(zoo[1]).run()
    overlay(at).set_value([zoo[1], zoo[-1]]).run()
    at.text_input(key="compare_find").set_value("").run()  # the newest again, and the one chosen
    assert not at.exception
    assert at.dataframe[0].value["run_id"].tolist() == newest(zoo)
    assert one_run(at).value == zoo[1] and one_run(at).options[-1].startswith("bison (")
    assert overlay(at).value == [zoo[1], zoo[-1]]
    # the note is the table's: the pickers offer the chosen runs too, the table lists the newest
    assert any(c.startswith("🔎 The newest 5 of 12 runs are listed; 7 older ones are not") for c in captions(at))
    assert at.text_input(key=f"compare_name_{zoo[1]}").value == "bison"  # its actions, for that run


def test_compare_when_nothing_matches(zoo):
    at = AppTest.from_file(COMPARE, default_timeout=30).run()
    at.text_input(key="compare_find").set_value("zebra").run()
    assert not at.exception and not at.dataframe
    assert any(c.startswith("🔎 0 of 12 runs match “zebra”; 12 not listed.") for c in captions(at))


def test_compare_within_the_limit_has_no_find_box(zoo, monkeypatch):
    monkeypatch.setattr(ledger, "LEDGER_ROWS", len(NAMES))
    at = AppTest.from_file(COMPARE, default_timeout=30).run()
    assert not at.exception
    assert not [t for t in at.text_input if t.key == "compare_find"]
    assert at.dataframe[0].value["run_id"].tolist() == zoo[::-1]
    assert not any(c.startswith("🔎") for c in captions(at))


# ---------------------------------------------------------------- ui.select_run


def picker_page(limit) -> None:
    import streamlit as st

    import ui
    from cnnkit.views.ledger import RunChoices

    runs = RunChoices(ui.store())
    record = ui.select_run("Run", runs, st.query_params.get("run"), key="zoo_run", limit=limit)
    st.markdown(f"chosen {record.run_id}")


def picker(at: AppTest):
    return next(box for box in at.selectbox if box.key.startswith("zoo_run_"))


def chosen(at: AppTest) -> str:
    return next(m.value for m in at.markdown if m.value.startswith("chosen ")).removeprefix("chosen ")


def picked_names(at: AppTest) -> list[str]:
    return [label.split(" (")[0] for label in picker(at).options]


def test_a_picker_offers_the_newest_and_says_how_to_find_the_others(zoo):
    at = AppTest.from_function(picker_page, args=(None,)).run()  # ledger.PICKER_RUNS: 5
    assert not at.exception
    assert picked_names(at) == NAMES[::-1][:LIMIT] and chosen(at) == zoo[-1]
    assert any(c.startswith("🔎 The newest 5 are listed: find any other by") for c in captions(at))
    assert at.text_input(key="zoo_run_find").label == "Find among the 12 runs of this workspace"


def test_a_picker_offers_the_urls_run_even_when_it_is_old(zoo):
    at = AppTest.from_function(picker_page, args=(None,))
    at.query_params["run"] = zoo[0]
    at.run()
    assert not at.exception
    assert chosen(at) == zoo[0] and picker(at).value == zoo[0]
    assert picked_names(at) == [*NAMES[::-1][:LIMIT], "ant"]
    assert any(c.startswith("🔎 The newest 5 are listed: find any other by") for c in captions(at))


def test_a_picker_finds_an_old_run_and_keeps_it_chosen(zoo):
    at = AppTest.from_function(picker_page, args=(None,)).run()
    at.text_input(key="zoo_run_find").set_value("camel").run()
    assert picked_names(at) == ["camel", "llama"]  # what was found, and the run still chosen
    assert any(c.startswith("🔎 1 of 12 runs match “camel”.") for c in captions(at))
    assert chosen(at) == zoo[-1]
    picker(at).set_value(zoo[2]).run()
    assert chosen(at) == zoo[2]
    at.text_input(key="zoo_run_find").set_value("").run()
    assert not at.exception
    assert chosen(at) == zoo[2] and picked_names(at) == [*NAMES[::-1][:LIMIT], "camel"]


def test_a_picker_within_the_limit_is_every_run_and_no_find_box(zoo):
    at = AppTest.from_function(picker_page, args=(len(NAMES),)).run()
    assert not at.exception
    assert picked_names(at) == NAMES[::-1] and not at.text_input
    assert not any(c.startswith("🔎") for c in captions(at))


@pytest.fixture
def ledger_of_300(runs_dir, monkeypatch) -> list[str]:
    """300 finished runs, each created in a second of its own (as a long-lived server's are):
    their ids, oldest first. A picker's limit of 5."""
    from cnnkit.lab.bench.starting import clone_runs

    monkeypatch.setattr(ledger, "PICKER_RUNS", LIMIT)
    template_store = RunStore(Path(runs_dir).parent / "template")
    template = template_store.create(SPEC, name="template")
    (template.path / "model.keras").write_bytes(b"stand-in")
    template_store.update(template.run_id, status="finished", models={"cnn": {"epochs_completed": 1}})
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    clone_runs(template.path, Path(runs_dir), 300)
    return sorted(folder.name for folder in Path(runs_dir).iterdir() if not folder.name.startswith("."))


def test_a_picker_reads_only_the_run_json_files_it_offers(ledger_of_300, monkeypatch):
    from cnnkit.runs import listing

    parsed = []
    real_parse = listing.parse_run_json
    monkeypatch.setattr(listing, "parse_run_json", lambda path: parsed.append(path) or real_parse(path))
    listing.forget()
    at = AppTest.from_function(picker_page, args=(None,)).run()
    assert not at.exception
    assert picked_names(at) == ["run 299", "run 298", "run 297", "run 296", "run 295"]  # clone_runs' names
    # the newest 5 and one more (to know there are more than 5), each run.json once: not 300
    assert len(parsed) == LIMIT + 1 and len(set(parsed)) == LIMIT + 1
    assert at.text_input(key="zoo_run_find").label == "Find among the 300 runs of this workspace"
    oldest = ledger_of_300[0]
    at.text_input(key="zoo_run_find").set_value(oldest).run()  # a search reads them all, once
    assert not at.exception
    assert len(parsed) == 300
    assert picked_names(at) == ["run 0", "run 299"]  # found; the run still chosen


def test_compare_reads_only_the_newest_it_lists(ledger_of_300, monkeypatch):
    from cnnkit.runs import listing

    monkeypatch.setattr(ledger, "LEDGER_ROWS", LIMIT)
    monkeypatch.setattr(ledger, "SCATTER_RUNS", LIMIT)
    parsed = []
    real_parse = listing.parse_run_json
    monkeypatch.setattr(listing, "parse_run_json", lambda path: parsed.append(path) or real_parse(path))
    listing.forget()
    at = AppTest.from_file(COMPARE, default_timeout=30).run()
    assert not at.exception
    assert at.dataframe[0].value["run_id"].tolist() == ledger_of_300[::-1][:LIMIT]
    assert any(c.startswith("🔎 The newest 5 of 300 runs are listed; 295 older ones are not") for c in captions(at))
    assert len(parsed) == LIMIT + 1  # the newest 5 and one more: not 300
    at.text_input(key="compare_find").set_value(ledger_of_300[0]).run()  # a search reads them all
    assert not at.exception and len(parsed) == 300
    assert at.dataframe[0].value["run_id"].tolist() == [ledger_of_300[0]]


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "x" * 5000, "20260101-000000-gone-0000", "a\nb"])
def test_a_picker_passes_over_a_hostile_or_stale_url_run(zoo, hostile):
    at = AppTest.from_function(picker_page, args=(None,))
    at.query_params["run"] = hostile
    at.run()
    assert not at.exception
    assert chosen(at) == zoo[-1] and picked_names(at) == NAMES[::-1][:LIMIT]  # the newest, nothing added
