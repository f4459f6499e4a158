"""AppTests of the Sweeps page and of Build's A/B buttons: the define form, the trial count and the
time estimate before a launch, a bad value named and Launch disabled, A/B without variants, a
launch (its driver process replaced), a finished sweep read back, and a hostile ?sweep=.

Nothing trains: a finished sweep is made with sweeping.create_sweep and its runs' results written
by hand, so every number on the page is worked out here from those hand-written accuracies.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs import sweeping
from cnnkit.runs.store import RunStore
from cnnkit.runs.sweeps import SweepSpec
from cnnkit.specs import ExperimentSpec

ROOT = Path(__file__).resolve().parent.parent
SWEEPS, BUILD = "app_pages/sweeps.py", "app_pages/build.py"
LR = "training.learning_rate"
TINY = {"dataset": {"name": "mnist", "train_limit": 200, "test_limit": 100, "validation_split": 0.1},
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d", "pool_size": 2},
                   {"type": "flatten"}],  # the output Dense 10 is always added last
        "training": {"epochs": 1, "batch_size": 50, "seed": 7}, "name": "tiny"}
WITH_DROPOUT = {**TINY, "layers": [*TINY["layers"], {"type": "dropout", "rate": 0.5}]}


def app(page: str = SWEEPS) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=30)


def unmark(text: str) -> str:
    """A message as a person reads it: the page escapes markdown in text it did not write."""
    return re.sub(r"\\(.)", r"\1", text)


def texts(at: AppTest) -> str:
    return "\n".join(unmark(str(e.value)) for kind in ("markdown", "caption", "info", "warning", "error", "success")
                     for e in getattr(at, kind))


def table(at: AppTest, column: str):
    """The dataframe that has this column."""
    found = [frame.value for frame in at.dataframe if column in frame.value.columns]
    assert found, f"no table with a {column!r} column"
    return found[0]


@pytest.fixture
def tiny_draft(runs_dir) -> Path:
    """The workspace's draft is the tiny network (the page starts from the draft)."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "draft.json").write_text(json.dumps(ExperimentSpec.from_dict(TINY).to_dict()))
    return runs_dir


# ---------------------------------------------------------------- Define


def test_without_sweeps_the_page_shows_the_form(tiny_draft):
    at = app().run()
    assert not at.exception
    assert at.radio(key="sweeps_mode").options == ["Seeds only", "Grid", "Random", "A/B (from Build)"]
    assert at.number_input(key="sweeps_seeds").value == 3
    # seeds only: the base 3 times; each trial ≈ 20 s of fixed cost (a process, TensorFlow, the data)
    # plus 31,096 multiply-adds × 560 image passes / 2e10 per second ≈ 0.001 s: 3 × 20 s = 60 s
    assert "**3 trials · about 1 min 00 s (20 s a trial)**" in [m.value for m in at.markdown]
    assert "No sweeps yet" in texts(at)
    assert not at.button(key="sweeps_launch").disabled
    from cnnkit.runs import ray_engine

    assert bool([r for r in at.radio if r.key == "sweeps_engine"]) == ray_engine.available()  # Ray: a choice


def test_a_grid_of_two_values_over_two_seeds_is_four_trials(tiny_draft):
    at = app().run()
    at.radio(key="sweeps_mode").set_value("Grid").run()
    at.selectbox(key="sweeps_axis_0").set_value(LR).run()
    at.text_input(key=f"sweeps_0_{LR}_text").set_value("0.001, 0.003").run()
    at.number_input(key="sweeps_seeds").set_value(2).run()
    assert not at.exception
    # 2 values × 2 seeds = 4 trials of 20 s each (see above): 80 s
    assert "**4 trials · about 1 min 20 s (20 s a trial)**" in [m.value for m in at.markdown]
    assert not at.button(key="sweeps_launch").disabled and not at.error


def test_a_log_range_axis(tiny_draft):
    at = app().run()
    at.radio(key="sweeps_mode").set_value("Grid").run()
    at.selectbox(key="sweeps_axis_0").set_value(LR).run()
    at.radio(key=f"sweeps_0_{LR}_how").set_value("range").run()
    # the draft's 0.001: a tenth to ten times, log spacing, 3 values → 0.0001, 0.001, 0.01; × 3 seeds
    assert at.number_input(key=f"sweeps_0_{LR}_low").value == pytest.approx(0.0001)
    assert at.radio(key=f"sweeps_0_{LR}_scale").value == "log"
    assert "**9 trials" in "\n".join(m.value for m in at.markdown)


@pytest.mark.parametrize(("typed", "field", "why"), [
    ("0.001, abc", LR, "'abc' is not a number"),
    ("0.001, 0.001", f"grid.{LR}", "has 0.001 twice"),
])
def test_a_bad_value_names_the_field_and_disables_launch(tiny_draft, typed, field, why):
    at = app().run()
    at.radio(key="sweeps_mode").set_value("Grid").run()
    at.selectbox(key="sweeps_axis_0").set_value(LR).run()
    at.text_input(key=f"sweeps_0_{LR}_text").set_value(typed).run()
    assert not at.exception
    (error,) = at.error
    assert unmark(error.value).startswith(f"This sweep cannot start: {field}: ") and why in unmark(error.value)
    assert at.button(key="sweeps_launch").disabled
    assert not any("trials ·" in m.value for m in at.markdown)  # no count for a sweep that cannot start


def test_a_trial_the_server_refuses_names_its_axis(tiny_draft):
    at = app().run()
    at.radio(key="sweeps_mode").set_value("Grid").run()
    at.selectbox(key="sweeps_axis_0").set_value("layers[0].filters").run()
    at.text_input(key="sweeps_0_layers[0].filters_text").set_value("4, 0").run()
    (error,) = at.error
    assert unmark(error.value).startswith("This sweep cannot start: grid.layers[0].filters: configuration 2")
    assert at.button(key="sweeps_launch").disabled


def test_ab_without_variants_says_how_to_make_them(tiny_draft):
    at = app().run()
    at.radio(key="sweeps_mode").set_value("A/B (from Build)").run()
    assert not at.exception
    (info, *_) = at.info
    assert "Keep as A" in info.value and "Save as variant B" in info.value
    assert "Make A and B on Build" in texts(at)  # the page link (a caption when only this page is loaded)
    assert at.button(key="sweeps_launch").disabled


def test_ab_with_both_variants_shows_the_change_and_counts_the_trials(tiny_draft):
    at = app()
    at.session_state["sweep_variant_a"] = ExperimentSpec.from_dict(TINY).to_dict()
    at.session_state["sweep_variant_b"] = ExperimentSpec.from_dict(WITH_DROPOUT).to_dict()
    at.run()
    at.radio(key="sweeps_mode").set_value("A/B (from Build)").run()
    at.number_input(key="sweeps_seeds").set_value(2).run()
    assert not at.exception
    changes = table(at, "setting")
    assert changes["setting"].tolist() == ["layers"] and "Dropout" in changes["B"][0] and "Dropout" not in changes["A"][0]
    assert "**4 trials" in "\n".join(m.value for m in at.markdown)  # 2 variants × 2 seeds


def test_launch_creates_the_sweep_and_opens_it(tiny_draft, monkeypatch):
    launched = []
    monkeypatch.setattr(sweeping, "launch_driver", lambda store, sweep_id, data_dir=None: launched.append(sweep_id))
    at = app().run()
    at.number_input(key="sweeps_seeds").set_value(2).run()
    at.button(key="sweeps_launch").click().run()
    assert not at.exception
    (record,) = sweeping.list_sweeps(RunStore(tiny_draft))
    assert launched == [record.sweep_id] and at.query_params["sweep"] == record.sweep_id
    assert [t["seed"] for t in record.trials] == [7, 8]
    assert "Launched tiny · 2 seeds: 2 trials." in texts(at)
    (bar,) = [p for p in at.get("progress") if "trials finished" in p.proto.text]
    assert bar.proto.text == "0 of 2 trials finished · 2 to go"
    assert not at.button(key="sweeps_stop").disabled
    at.button(key="sweeps_stop").click().run()
    assert all((RunStore(tiny_draft).path(t["run_id"]) / "STOP").exists() for t in record.trials)


def test_the_download_is_the_document_cnnkit_sweep_reads(tiny_draft):
    at = app().run()
    (button,) = [b for b in at.get("download_button") if "sweep" in b.proto.label.lower()]
    assert not button.proto.disabled


# ---------------------------------------------------------------- Watch and Read


def finished_ab_sweep(root: Path, accuracies: dict, seconds: dict) -> sweeping.SweepRecord:
    """An A/B sweep whose four trials finished with these results ({(variant, seed): value}), by hand."""
    store = RunStore(root)
    document = {"name": "dropout or not", "base": TINY, "seeds": 2,
                "variants": [{"name": "A", "changes": {}}, {"name": "B", "changes": {"layers": WITH_DROPOUT["layers"]}}]}
    record = sweeping.create_sweep(store, SweepSpec.from_dict(document), engine="local")
    for trial in record.trials:
        key = (trial["config"]["variant"], trial["seed"])
        store.update(trial["run_id"], status="finished", models={"cnn": {
            "test_accuracy": accuracies[key], "params": 6_770, "seconds": seconds[key], "epochs_completed": 1}})
        (store.path(trial["run_id"]) / "model.keras").touch()
    return record


ACCURACY = {("A", 7): 0.90, ("A", 8): 0.92, ("B", 7): 0.95, ("B", 8): 0.965}
SECONDS = {("A", 7): 10.0, ("A", 8): 12.0, ("B", 7): 12.0, ("B", 8): 14.0}


def test_a_finished_ab_sweep_reads_as_the_hand_computation(tiny_draft):
    record = finished_ab_sweep(tiny_draft, ACCURACY, SECONDS)
    at = app()
    at.query_params["sweep"] = record.sweep_id
    at.run()
    assert not at.exception
    (bar,) = [p for p in at.get("progress") if "trials finished" in p.proto.text]
    assert bar.proto.text == "4 of 4 trials finished" and bar.proto.value == 100
    trials = table(at, "seed")
    assert trials["configuration"].tolist() == ["A", "A", "B", "B"] and trials["seed"].tolist() == [7, 8, 7, 8]
    assert trials["run"].tolist() == [f"http://localhost:8501/Inspect?run={t['run_id']}" for t in record.trials]
    summary = table(at, "mean")
    # A: (0.90 + 0.92) / 2 = 91.00%, std √((0.01² + 0.01²) / 1) = 1.41 pt; B: (0.95 + 0.965) / 2 = 95.75%, 1.06 pt
    assert summary["configuration"].tolist() == ["A", "B"]
    assert summary["mean"].tolist() == ["91.00%", "95.75%"] and summary["n"].tolist() == [2, 2]
    assert summary["std (pt)"].tolist() == ["1.41", "1.06"]
    # paired B − A: 0.05 and 0.045, mean 4.75 pt, std 0.35355 pt; t(0.975, 1 df) = 12.7062 (a table):
    # half width 12.7062 × 0.35355 / √2 = 3.1766 pt → 1.57 to 7.93 pt, all above 0
    (verdict,) = at.success
    assert unmark(verdict.value) == "B is better by 4.75 pt (95% CI 1.57–7.93) over 2 seeds"
    # mean seconds A (10 + 12) / 2 = 11, B (12 + 14) / 2 = 13: 13 / 11 = 1.18 → 1.2×
    assert "B costs 1.2× the training time of A (13 s vs 11 s per run) and the same number of parameters" in texts(at)
    assert "**Best configuration**: B, 95.75% mean test accuracy over 2 seeds" in texts(at)
    assert at.button(key="sweeps_stop").disabled  # nothing left to stop


def test_the_best_configuration_opens_in_build_as_its_trial(tiny_draft):
    # through app.py, so the page links resolve (a single page's AppTest shows them as captions)
    from urllib.parse import parse_qs

    from cnnkit.views.links import spec_from_link

    record = finished_ab_sweep(tiny_draft, ACCURACY, SECONDS)
    at = app("app.py")
    at.query_params["sweep"] = record.sweep_id
    at.run()
    at.switch_page(SWEEPS).run()
    assert not at.exception
    (link,) = [link for link in at.get("page_link") if link.proto.label == "Open it in Build"]
    assert link.proto.page == "Build"
    spec = spec_from_link(parse_qs(link.proto.query_string)["exp"][0])
    b_trial = next(t for t in record.trials if t["config"] == {"variant": "B"})
    assert spec == RunStore(tiny_draft).get(b_trial["run_id"]).spec  # B's first seed, as it trained
    assert len(spec.layers) == 4 and spec.layers[-1].type == "dropout"


def test_an_unfinished_sweep_says_nothing_finished_yet(tiny_draft):
    record = sweeping.create_sweep(RunStore(tiny_draft), SweepSpec.from_dict({"base": TINY, "seeds": 2}),
                                   engine="local")
    at = app()
    at.query_params["sweep"] = record.sweep_id
    at.run()
    assert not at.exception
    assert "No trial has finished yet" in texts(at)
    assert table(at, "seed")["status"].tolist() == ["queued", "queued"]
    assert table(at, "seed")["run"].tolist()[0].endswith(f"/Train?run={record.trials[0]['run_id']}")


@pytest.mark.parametrize("hostile", ["../../etc", "../../etc/passwd", "sweep-1", "x" * 500])
def test_a_hostile_sweep_link_is_refused_with_a_message(tiny_draft, hostile):
    finished_ab_sweep(tiny_draft, ACCURACY, SECONDS)
    at = app()
    at.query_params["sweep"] = hostile
    at.run()
    assert not at.exception
    (error,) = [e for e in at.error if "sweep" in e.value]
    assert "is not a sweep id" in unmark(error.value) and len(error.value) < 200  # a long value is cut
    assert "4 of 4 trials finished" in [p.proto.text for p in at.get("progress")]  # the newest sweep instead


# ---------------------------------------------------------------- Build's A and B


def test_build_keeps_variants_a_and_b_for_the_sweeps_page(runs_dir):
    at = app(BUILD).run()
    assert not at.exception
    at.button(key="build_keep_a").click().run()
    kept = at.session_state["sweep_variant_a"]
    from cnnkit.presets import get_preset

    assert ExperimentSpec.from_dict(kept) == get_preset("chollet-cnn").experiment(baseline="dense-128")  # the default draft
    assert "Kept as variant A" in texts(at) and "Variant A is kept" in texts(at)
    rev = at.session_state["_build_rev"]
    at.number_input(key=f"build_{rev}_0_filters").set_value(16).run()
    at.button(key="build_keep_b").click().run()
    from cnnkit.views.sweep_form import changes_between

    assert changes_between(kept, at.session_state["sweep_variant_b"]) == {"layers[0].filters": 16}
    assert "Compare A and B over several seeds on Sweeps" in texts(at)
