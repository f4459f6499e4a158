"""AppTests of Home, Data, Build and Compare: on an empty runs folder and on a prepared one.

The prepared folder holds one real finished run (chollet-cnn + dense baseline, 300 sample images,
1 epoch, trained once per module by the CLI in a subprocess) and a damaged folder. Expected
numbers are hand counts or come from cnnkit's own functions on the same data, never from the page.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.data.prepare import normalize, pixel_statistics, prepare
from cnnkit.data.sources import load_raw
from cnnkit.presets import PRESETS, get_preset
from cnnkit.runs import jobs
from cnnkit.runs.store import RunStore, read_json
from cnnkit.shapes import summarize_spec
from cnnkit.specs import ExperimentSpec

ROOT = Path(__file__).resolve().parent.parent
HOME, DATA, BUILD, COMPARE = "app.py", "app_pages/data.py", "app_pages/build.py", "app_pages/compare.py"



def layer_boxes(at) -> list:
    """Build's layer expanders ("**1** · Conv2D …"), not the recipe's schedule expander."""
    return [box for box in at.expander if box.label.startswith("**")]

def unmark(text: str) -> str:
    """A message as a person reads it: the page escapes markdown in text it did not write."""
    return re.sub(r"\\(.)", r"\1", text)


def app(page: str, timeout: float = 30) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=timeout)


def texts(at: AppTest) -> list[str]:
    return [unmark(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "success", "subheader")
            for e in getattr(at, kind)]


def metric(at: AppTest, label: str) -> str:
    values = [m.value for m in at.metric if m.label == label]
    assert values, f"no metric {label!r}; have {[m.label for m in at.metric]}"
    return values[0]


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """One finished run (CNN + dense baseline) and one damaged folder."""
    root = tmp_path_factory.mktemp("prepared")
    env = {k: v for k, v in os.environ.items() if k != "CNNKIT_DATA_DIR"}
    env.update(CNNKIT_OFFLINE="1", KERAS_HOME=str(root / "keras"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--preset", "chollet-cnn", "--train-limit",
                           "300", "--epochs", "1", "--validation-split", "0.1", "--baseline", "dense-128",
                           "--runs-dir", str(root / "runs")], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    (root / "runs" / "broken-run").mkdir()
    (root / "runs" / "broken-run" / "run.json").write_text("{this is not json")
    return root / "runs"


@pytest.fixture
def runs(prepared, runs_dir) -> RunStore:
    """A private copy of the prepared folder (tests rename and delete), as CNNKIT_RUNS_DIR."""
    shutil.copytree(prepared, runs_dir)
    return RunStore(runs_dir)


# ---------------------------------------------------------------- Home


def test_home_on_an_empty_runs_dir(runs_dir):
    at = app(HOME).run()
    assert not at.exception
    assert metric(at, "Runs in this workspace") == "0"
    assert metric(at, "CPU cores") == str(len(os.sched_getaffinity(0)))
    shown = "\n".join(texts(at))
    assert "**MNIST**: bundled SAMPLE (4,000 train / 1,000 test" in shown
    assert "**CIFAR-10**: not available offline" in shown
    assert len(at.get("page_link")) == 3  # Build, Train, Draw


def test_home_counts_the_prepared_runs(runs):
    at = app(HOME).run()
    assert not at.exception
    assert metric(at, "Runs in this workspace") == "2"
    assert any("finished 1" in t and "damaged 1" in t for t in texts(at))


def test_home_counts_every_run_and_the_statuses_of_the_newest(runs, monkeypatch):
    from cnnkit.views import ledger

    monkeypatch.setattr(ledger, "STATUS_RUNS", 1)  # a long ledger: only the newest runs are read
    at = app(HOME).run()
    assert not at.exception
    assert metric(at, "Runs in this workspace") == "2"
    assert any(t.startswith("The newest 1: ") for t in texts(at))


def test_home_versions_are_a_row_each(runs_dir):
    # one row with a column per library was cut off on the right of its narrow column
    from cnnkit import sysinfo

    at = app(HOME).run()
    (table,) = at.table
    assert table.value.index.tolist() == list(sysinfo.versions())
    assert table.value.iloc[:, 0].tolist() == list(sysinfo.versions().values())


def test_home_paints_without_importing_tensorflow(runs_dir):
    # A fresh interpreter: this pytest process may have imported TensorFlow already.
    code = ("import sys; from streamlit.testing.v1 import AppTest; "
            f"at = AppTest.from_file({str(ROOT / HOME)!r}, default_timeout=30).run(); "
            "assert not at.exception, at.exception; print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["False", "False"]


# ---------------------------------------------------------------- Data


def test_data_page_shows_the_sample_flagged_and_its_statistics(runs_dir):
    at = app(DATA).run()
    assert not at.exception
    assert any("SAMPLE" in w.value for w in at.warning)
    expected = pixel_statistics(load_raw("mnist").x_train)
    assert metric(at, "Mean") == f"{expected['mean']:.1f}"
    assert metric(at, "Std") == f"{expected['std']:.1f}"
    grid, counts = charts(at)[:2]
    assert len(grid["data"]) == 32
    assert {a["text"] for a in grid["layout"]["annotations"]} <= set("0123456789")
    assert [t["name"] for t in counts["data"]] == ["train", "test"]
    assert counts["data"][0]["y"] == [400] * 10 and counts["data"][1]["y"] == [100] * 10


def test_data_class_filter_and_reshuffle(runs_dir):
    at = app(DATA).run()
    classes_widget(at).set_value([3]).run()
    grid = charts(at)[0]
    assert {a["text"] for a in grid["layout"]["annotations"]} == {"3"}
    before = [a["text"] for a in charts(classes_widget(at).set_value([3, 7]).run())[0]
              ["layout"]["annotations"]]
    at.button(key="data_shuffle").click().run()
    assert at.number_input(key="data_seed").value == 1
    after = [a["text"] for a in charts(at)[0]["layout"]["annotations"]]
    assert not at.exception and set(after) <= {"3", "7"} and before != after


def test_data_normalization_numbers_match_cnnkit(runs_dir):
    at = app(DATA).run()
    at.radio(key="data_norm").set_value("standardize").run()
    assert not at.exception
    raw = load_raw("mnist")
    data = prepare(raw, validation_split=0.0, normalization="standardize")
    after = normalize(raw.x_train[:500], "standardize", data.mean, data.std)
    assert any(f"After 'standardize': mean {after.mean():.3g}, std {after.std():.3g}" in c.value for c in at.caption)
    histograms = charts(at)[2]
    assert histograms["layout"]["annotations"][1]["text"] == "after 'standardize'"


def test_data_cifar10_offline_is_a_clear_error(runs_dir):
    at = app(DATA).run()
    at.selectbox(key="data_name").set_value("cifar10").run()
    assert not at.exception
    (error,) = at.error
    assert "No CIFAR-10 data found" in unmark(error.value) and "internet" in unmark(error.value)
    assert not at.get("plotly_chart")


def classes_widget(at: AppTest):
    return next(m for m in at.multiselect if m.label == "Classes")


def test_data_class_chips_are_a_new_widget_for_each_dataset(runs_dir):
    # A keyed widget keeps its state, and in the browser its chips, while its key stays: with one key
    # for every dataset, Fashion-MNIST's chips read 0–9 and MNIST's then "Sandal, Shirt…".
    at = app(DATA).run()
    mnist = classes_widget(at)
    at.selectbox(key="data_name").set_value("fashion_mnist").run()
    fashion = classes_widget(at)
    assert fashion.id != mnist.id
    assert fashion.options == list(load_raw("fashion_mnist").info.class_names) and fashion.value == list(range(10))
    at.selectbox(key="data_name").set_value("mnist").run()
    again = classes_widget(at)
    assert again.id == mnist.id and again.options == [str(k) for k in range(10)]


def test_data_fashion_mnist_shows_class_names(runs_dir):
    at = app(DATA).run()
    at.selectbox(key="data_name").set_value("fashion_mnist").run()
    names = set(load_raw("fashion_mnist").info.class_names)
    assert {a["text"] for a in charts(at)[0]["layout"]["annotations"]} <= names
    assert any("Fashion-MNIST" in w.value and "SAMPLE" in w.value for w in at.warning)


# ---------------------------------------------------------------- Build


def layer_key(at: AppTest, index: int, name: str) -> str:
    return f"build_{at.session_state['_build_rev']}_{index}_{name}"


def test_build_shows_the_default_preset_and_loads_others(runs_dir):
    at = app(BUILD).run()
    assert not at.exception
    assert metric(at, "Parameters") == "96,844"          # chollet-cnn, counted by hand in test_shapes
    at.selectbox(key="build_preset").set_value("kruse-conv")
    at.button(key="build_load").click().run()
    assert metric(at, "Parameters") == "70,698"
    assert unmark(at.success[0].value) == "Loaded preset Kruse: two conv blocks."
    saved = ExperimentSpec.from_dict(read_json(runs_dir / "draft.json"))  # the draft survives a reload
    assert saved.layers == get_preset("kruse-conv").layers
    table = at.dataframe[0].value
    assert table["params"].tolist()[-1] == 70_698 and table["#"].tolist()[-1] == "Σ"


def test_build_editing_filters_changes_params_by_hand_count(runs_dir):
    at = app(BUILD).run()
    at.number_input(key=layer_key(at, 0, "filters")).set_value(16).run()
    # conv1: 9*16+16 fewer; conv2 sees 16 input channels: 9*16*64 fewer
    assert metric(at, "Parameters") == f"{96_844 - (9 * 16 + 16) - 9 * 16 * 64:,}" == "87,468"
    assert layer_boxes(at)[0].label.startswith("**1** · Conv2D 16 × 3×3")


def test_build_impossible_edit_is_shown_inline_with_the_valid_prefix(runs_dir):
    at = app(BUILD).run()
    at.number_input(key=layer_key(at, 4, "kernel_size")).set_value(31).run()
    assert not at.exception
    (error,) = at.error
    assert "cannot be built" in unmark(error.value) and "layer 5" in unmark(error.value)
    assert "31×31 window but its input is only 5×5" in unmark(error.value)
    assert at.dataframe[0].value["layer"].tolist() == ["conv2d_1", "maxpool2d_2", "conv2d_3", "maxpool2d_4"]
    assert not [m for m in at.metric if m.label == "Parameters"]
    # fixing it with 'same' padding makes it buildable again: 3*3 → 31*31 weights on 64×64 channels
    at.selectbox(key=layer_key(at, 4, "padding")).set_value("same").run()
    assert not at.error
    assert metric(at, "Parameters") == f"{96_844 - 36_928 + (31 * 31 * 64 * 64 + 64) - 40_390 + (1600 * 70 + 70):,}"


def test_build_shows_this_servers_caps_inline(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "50000")
    at = app(BUILD).run()
    assert not at.exception
    (error,) = at.error
    assert "Over this server's limits" in unmark(error.value) and "96,844 parameters" in unmark(error.value)
    assert "50,000" in unmark(error.value)
    assert metric(at, "Parameters") == "96,844"  # the table still shows what the network would be


def test_build_add_move_remove_and_from_scratch(runs_dir):
    at = app(BUILD).run()
    at.selectbox(key="build_new_type").set_value("avgpool2d")
    at.selectbox(key=f"build_new_at_{at.session_state['_build_rev']}").set_value(1)
    at.button(key="build_add").click().run()
    assert [e.label.split(" · ")[1] for e in layer_boxes(at)][:3] == [
        "Conv2D 32 × 3×3, stride 1, valid, relu", "AvgPool 2×2, stride 2, valid", "MaxPool 2×2, stride 2, valid"]
    at.selectbox(key=layer_key(at, 1, "strides")).set_value(1).run()  # stride None → 1
    assert layer_boxes(at)[1].label.endswith("AvgPool 2×2, stride 1, valid")
    at.button(key=f"build_down_{at.session_state['_build_rev']}_1").click().run()
    assert layer_boxes(at)[2].label.endswith("AvgPool 2×2, stride 1, valid")
    at.button(key=f"build_remove_{at.session_state['_build_rev']}_2").click().run()
    assert metric(at, "Parameters") == "96,844" and len(layer_boxes(at)) == 7
    at.button(key="build_scratch").click().run()
    # conv 3*3*16+16 = 160; 13*13*16 = 2704 → dense 64: 173,120; output 64*10+10 = 650
    assert metric(at, "Parameters") == "173,930"


def test_build_from_scratch_starts_from_the_default_recipe(runs_dir):
    # after the Kruse preset (raw 0–255 pixels, 10 epochs, no validation split) "From scratch" kept
    # that recipe silently: the dense baseline then trained on raw pixels (96.95% → 91.65%)
    from cnnkit.specs import AugmentationSpec, DatasetSpec, TrainingSpec
    from cnnkit.views.editing import starter_layers

    at = app(BUILD).run()
    at.selectbox(key="build_preset").set_value("kruse-conv")
    at.button(key="build_load").click().run()
    at.button(key="build_scratch").click().run()
    assert not at.exception
    saved = ExperimentSpec.from_dict(read_json(runs_dir / "draft.json"))
    assert saved.training == TrainingSpec() and saved.dataset == DatasetSpec("mnist")
    assert saved.augmentation == AugmentationSpec() and saved.layers == starter_layers()
    assert metric(at, "Parameters") == "173,930"
    assert saved.baseline == "dense-128"  # the comparison the visitor chose is not part of the recipe
    assert not [b for b in at.button if b.key == "build_recipe_reset"]  # nothing kept, nothing to reset


def test_build_says_which_recipe_it_keeps_and_resets_it(runs_dir):
    from cnnkit.specs import DatasetSpec, TrainingSpec

    at = app(BUILD).run()
    at.selectbox(key="build_preset").set_value("kruse-conv")
    at.button(key="build_load").click().run()
    kept = next(c.value for c in at.caption if "recipe" in c.value.lower())
    # Kruse's recipe against the defaults (scale, validation 0.1, 5 epochs): batch 128 is the default
    assert "none" in kept and "10" in kept and "Validation split" in kept and "Batch size" not in kept
    at.button(key="build_recipe_reset").click().run()
    saved = ExperimentSpec.from_dict(read_json(runs_dir / "draft.json"))
    assert saved.training == TrainingSpec() and saved.dataset == DatasetSpec("mnist")
    assert saved.layers == get_preset("kruse-conv").layers and metric(at, "Parameters") == "70,698"
    assert not [b for b in at.button if b.key == "build_recipe_reset"]


def test_build_layer_buttons_are_icons_that_say_what_they_do(runs_dir):
    at = app(BUILD).run()
    rev = at.session_state["_build_rev"]
    up, down, remove = (at.button(key=f"build_{action}_{rev}_2") for action in ("up", "down", "remove"))
    assert (up.label, down.label, remove.label) == ("↑", "↓", "✕")  # "↑ Up" was cut to "↑ …" at 1,400 px
    assert "Up" in up.help and "layer 3" in up.help and "Remove" in remove.help


def test_build_layer_buttons_are_disabled_where_they_do_nothing(runs_dir):
    at = app(BUILD).run()
    rev, last = at.session_state["_build_rev"], len(get_preset("chollet-cnn").layers) - 1
    assert at.button(key=f"build_up_{rev}_0").disabled and not at.button(key=f"build_down_{rev}_0").disabled
    assert at.button(key=f"build_down_{rev}_{last}").disabled and not at.button(key=f"build_up_{rev}_{last}").disabled
    assert not any(at.button(key=f"build_remove_{rev}_{i}").disabled for i in (0, last))
    at.button(key=f"build_up_{rev}_1").click().run()  # the pool before the first convolution
    assert [e.label.split(" · ")[1].split()[0] for e in layer_boxes(at)][:2] == ["MaxPool", "Conv2D"]


def test_build_upload_good_and_bad_json(runs_dir):
    at = app(BUILD).run()
    bad = json.dumps({"layers": [{"type": "conv2d", "filters": 0}, {"type": "flatten"}]}).encode()
    at.file_uploader(key="build_upload").set_value(("bad.json", bad, "application/json")).run()
    assert not at.exception
    assert any("bad.json was not loaded" in unmark(e.value) and "layers[0].filters" in unmark(e.value) for e in at.error)
    assert metric(at, "Parameters") == "96,844"  # the draft is untouched
    good = get_preset("kruse-conv").experiment().to_json().encode()
    at.file_uploader(key="build_upload").set_value(("kruse.json", good, "application/json")).run()
    assert metric(at, "Parameters") == "70,698"
    assert ExperimentSpec.from_dict(read_json(runs_dir / "draft.json")).preset == "kruse-conv"


def test_build_cifar10_changes_the_input_and_the_counts(runs_dir):
    at = app(BUILD).run()
    at.selectbox(key=f"build_dataset_{at.session_state['_build_rev']}").set_value("cifar10").run()
    assert not at.exception
    # 32×32×3 input: conv1 3*3*3*32+32 = 896; maps 30→15→13→6→4: flatten 4*4*64 = 1024
    expected = 896 + 18_496 + 36_928 + (1024 * 70 + 70) + 710
    assert metric(at, "Parameters") == f"{expected:,}"


# ---------------------------------------------------------------- Compare


def test_compare_on_an_empty_runs_dir(runs_dir):
    at = app(COMPARE).run()
    assert not at.exception
    assert "No runs yet" in at.info[0].value


def test_compare_lists_the_run_and_the_damaged_folder(runs):
    at = app(COMPARE).run()
    assert not at.exception
    table = at.dataframe[0].value.set_index("run_id")
    record = next(r for r in runs.list() if r.status == "finished")
    row = table.loc[record.run_id]
    assert row["params"] == 96_844 and row["test accuracy"] == record.test_accuracy
    assert row["baseline accuracy"] == record.model_result("baseline")["test_accuracy"]
    assert row["data"] == "SAMPLE" and row["architecture"] == "chollet-cnn"
    assert "damaged" in table.loc["broken-run", "status"] and "unreadable" in table.loc["broken-run", "problem"]
    accuracy, loss, vs_params, vs_time = charts(at)
    history = runs.history(record.run_id)
    val = {h["model"]: h["val_accuracy"] for h in history}
    assert [t["y"] for t in accuracy["data"]] == [[val["cnn"]], [val["baseline"]]]
    assert vs_params["data"][0]["x"] == [96_844] and vs_params["data"][1]["x"] == [101_770]


def run_select(at: AppTest):
    return next(s for s in at.selectbox if s.label == "Run")


def overlay(at: AppTest):
    return next(m for m in at.multiselect if m.label == "Runs to overlay")


def copy_run(runs: RunStore, run_id: str, new_id: str, history=None) -> str:
    """A second run folder from the finished one (same name), optionally with another history."""
    shutil.copytree(runs.path(run_id), runs.root / new_id)
    meta = read_json(runs.root / new_id / "run.json")
    (runs.root / new_id / "run.json").write_text(json.dumps({**meta, "run_id": new_id}))
    if history is not None:
        (runs.root / new_id / "history.json").write_text(json.dumps(history))
    return new_id


def test_compare_runs_with_the_same_name_have_distinct_legend_entries(runs):
    finished = next(r for r in runs.list() if r.status == "finished")
    twin = copy_run(runs, finished.run_id, "20200101-000000-chollet-cnn-beef")
    at = app(COMPARE).run()
    overlay(at).set_value([finished.run_id, twin]).run()
    accuracy = charts(at)[0]
    names = [t["name"] for t in accuracy["data"]]
    tail = finished.run_id.rsplit("-", 1)[-1]
    assert names == [f"{finished.name} · {tail}", f"{finished.name} · {tail} · baseline",
                     f"{finished.name} · beef", f"{finished.name} · beef · baseline"]
    assert len(set(overlay(at).options)) == 2


def test_compare_chips_follow_a_rename(runs):
    # the run chips kept a run's old name after a rename: the widget's key now carries the labels
    finished = next(r for r in runs.list() if r.status == "finished").run_id
    at = app(COMPARE).run()
    before = overlay(at)
    assert before.value == [finished]
    run_select(at).set_value(finished).run()
    at.text_input(key=f"compare_name_{finished}").set_value("renamed CNN").run()
    at.button(key="compare_rename").click().run()
    after = overlay(at)
    assert after.id != before.id and after.value == [finished]  # a new widget, the same runs chosen
    assert after.options[0].startswith("renamed CNN (")
    select = run_select(at)
    assert select.value == finished and any(o.startswith("renamed CNN (") for o in select.options)


def test_compare_says_which_runs_have_no_validation_curves(runs):
    finished = next(r for r in runs.list() if r.status == "finished")
    history = [{k: v for k, v in h.items() if not k.startswith("val_")} for h in runs.history(finished.run_id)]
    no_val = copy_run(runs, finished.run_id, "20200101-000000-chollet-cnn-0a0a", history)
    runs.rename(no_val, "trained without a split")
    at = app(COMPARE).run()
    overlay(at).set_value([finished.run_id, no_val]).run()
    notes = [c.value for c in at.caption if "validation" in c.value and "trained without a split" in c.value]
    assert len(notes) == 1 and "training curves" in notes[0]
    accuracy = charts(at)[0]
    train_values = [h["accuracy"] for h in history if h["model"] == "cnn"]
    assert [t["y"] for t in accuracy["data"] if t["name"].startswith("trained without")][0] == train_values


def test_compare_draws_no_empty_chart(runs):
    at = app(COMPARE).run()
    overlay(at).set_value([]).run()
    assert not at.exception
    assert [c["layout"]["title"]["text"] for c in charts(at)] == ["Test accuracy vs parameters",
                                                                  "Test accuracy vs training time (s)"]
    assert sum("Nothing to plot" in c.value for c in at.caption) == 2


def test_compare_rename_and_delete_exactly_one_run(runs):
    at = app(COMPARE).run()
    finished = next(r for r in runs.list() if r.status == "finished").run_id
    run_select(at).set_value(finished).run()
    at.text_input(key=f"compare_name_{finished}").set_value("my first CNN").run()
    at.button(key="compare_rename").click().run()
    assert runs.get(finished).name == "my first CNN"
    assert "my first CNN" in at.dataframe[0].value["name"].tolist()
    run_select(at).set_value("broken-run").run()
    assert at.button(key="compare_delete").disabled  # not before the confirmation
    at.checkbox(key="compare_sure_broken-run").check().run()
    at.button(key="compare_delete").click().run()
    assert not at.exception
    assert [r.run_id for r in runs.list()] == [finished]
    assert at.dataframe[0].value["run_id"].tolist() == [finished]


def test_compare_rerun_starts_the_same_spec(runs):
    at = app(COMPARE).run()
    original = next(r for r in runs.list() if r.status == "finished")
    run_select(at).set_value(original.run_id).run()
    at.button(key="compare_rerun").click().run()
    assert not at.exception
    new = next(r for r in runs.list() if r.run_id not in (original.run_id, "broken-run"))
    try:
        assert new.spec == original.spec and new.name == f"{original.name} (re-run)"
        assert at.session_state["train_run"] == new.run_id
        assert unmark(at.success[0].value) == f"Started {new.name}."
    finally:
        jobs.stop(runs, new.run_id)  # no need to train it: stop and wait, leaving no process behind
        jobs.wait(runs, new.run_id, timeout=120)


def test_compare_rerun_over_this_servers_caps_is_refused_with_the_reason(runs, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "50000")  # the run's CNN has 96,844
    at = app(COMPARE).run()
    original = next(r for r in runs.list() if r.status == "finished")
    run_select(at).set_value(original.run_id).run()
    at.button(key="compare_rerun").click().run()
    assert not at.exception
    (error,) = at.error
    assert unmark(error.value).startswith("Could not start the re-run: ") and "50,000" in unmark(error.value)
    assert len(runs.list()) == 2 and "train_run" not in at.session_state and not at.success


@pytest.mark.realdata
def test_data_page_on_the_real_mnist_gives_the_known_statistics(runs_dir, real_data_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_DATA_DIR", real_data_dir)
    at = app(DATA, timeout=60).run()
    assert not at.exception and not at.warning  # the real files: no SAMPLE warning
    # MNIST's training pixels are known: mean 33.32, std 78.57 (0-255 units)
    assert (metric(at, "Mean"), metric(at, "Std")) == ("33.3", "78.6")
    assert any("real MNIST from data directory" in c.value for c in at.caption)


def test_session_workspaces_keep_visitors_apart(runs, monkeypatch):
    # Community Cloud mode: a new visitor gets a key in the URL and sees none of the shared runs
    monkeypatch.setenv("CNNKIT_WORKSPACES", "session")
    at = app(HOME).run()
    assert not at.exception
    key = at.query_params["ws"][0] if isinstance(at.query_params["ws"], list) else at.query_params["ws"]
    assert metric(at, "Runs in this workspace") == "0"
    assert any("workspace mode **session**" in c.value for c in at.caption)
    # no server path on a public server: it would show the visitor's workspace key too
    assert not any(key in c.value or str(runs) in c.value for c in at.caption)
    build = app(BUILD).run()
    build.button(key="build_scratch").click().run()
    drafts = list(runs.root.glob(".sessions/*/draft.json"))
    assert len(drafts) == 1 and not (runs.root / "draft.json").exists()
    assert len(key) >= 22


@pytest.mark.parametrize("content, why", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),          # raised RecursionError on Build and Train
    ('{"name": "\\ud800", "layers": [{"type": "flatten"}]}', "lone surrogate"),  # crashed four pages
], ids=["100,000 deep", "a lone surrogate in the name"])
def test_a_damaged_shared_draft_is_set_aside_with_a_message(runs_dir, content, why):
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "draft.json").write_text(content)
    at = app(BUILD).run()
    assert not at.exception
    assert any("could not be read" in unmark(w.value) and why in unmark(w.value) for w in at.warning)
    kept = list(runs_dir.glob("draft.damaged-*.json"))
    assert len(kept) == 1 and kept[0].read_text() == content
    again = app(BUILD).run()  # the next visitor gets the preset, and no warning
    assert not again.exception and not any("could not be read" in w.value for w in again.warning)


# ---------------------------------------------------------------- an experiment by link (issue 11, part 2)


def test_a_shared_link_opens_its_experiment_on_build_once(runs_dir):
    from cnnkit.views.links import experiment_url, link_value

    spec = PRESETS["kruse-conv"].experiment(baseline="matched").updated({"name": "Lesson 3"})
    at = app(BUILD)
    at.query_params["exp"] = link_value(spec)
    at.run()
    assert not at.exception
    assert any("Opened the linked experiment: Lesson 3" in unmark(s.value) for s in at.success)
    assert ExperimentSpec.from_dict(json.loads((runs_dir / "draft.json").read_text())) == spec  # the draft
    totals = [m.value for m in at.metric if m.label == "Parameters"]
    assert totals == [f"{summarize_spec(spec).total_params:,}"]
    assert "exp" not in at.query_params  # a reload keeps the visitor's edits
    # and the page offers the link of what it shows, to copy
    assert experiment_url(spec, "http://localhost:8501/") in [c.value for c in at.code]


@pytest.mark.parametrize("value, why", [
    ("1.AAAA", "damaged"), ("9.eJyrVgIAAUABAA", "version '9'"), ("1." + "A" * 7000, "characters long")])
def test_a_bad_link_leaves_the_draft_untouched(runs_dir, value, why):
    at = app(BUILD).run()  # the default draft
    before = (runs_dir / "draft.json").read_text() if (runs_dir / "draft.json").exists() else None
    at = app(BUILD)
    at.query_params["exp"] = value
    at.run()
    assert not at.exception
    assert any("could not be opened" in unmark(e.value) and why in unmark(e.value) for e in at.error)
    after = (runs_dir / "draft.json").read_text() if (runs_dir / "draft.json").exists() else None
    assert after == before
