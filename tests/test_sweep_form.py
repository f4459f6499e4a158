"""The Sweeps page's form as data (cnnkit/views/sweep_form.py): typed values and ranges become the
axis values worked out here by hand, bad input names the axis's field, two specs from Build become
the changes between them, and the documents have the shape `cnnkit sweep` reads."""

from __future__ import annotations

import math
import time
from types import SimpleNamespace

import pytest

from cnnkit.errors import SpecError
from cnnkit.specs import Conv2D, Dense, Dropout, ExperimentSpec, Flatten, MaxPool2D
from cnnkit.views import sweep_form
from cnnkit.views.sweep_form import Axis

TINY = ExperimentSpec((Conv2D(4, 3), MaxPool2D(2), Flatten(), Dense(10)), name="tiny")
LR = "training.learning_rate"


# ---------------------------------------------------------------- typed values


def test_typed_values_split_on_commas_semicolons_and_spaces():
    assert sweep_form.typed_values("0.001, 0.003, 0.01", "float", LR) == [0.001, 0.003, 0.01]
    assert sweep_form.typed_values("1e-3;3e-3  1e-2", "float", LR) == [0.001, 0.003, 0.01]
    assert sweep_form.typed_values("8, 16, 32.0", "int", "layers[0].filters") == [8, 16, 32]
    assert sweep_form.typed_values("true, FALSE", "bool", "augmentation.flip") == [True, False]
    assert sweep_form.typed_values("none, 200", "optional int", "dataset.train_limit") == [None, 200]
    # a whole value (here two layer stacks) is one JSON list
    assert sweep_form.typed_values('[[{"type": "flatten"}], []]', "layers", "layers") == [[{"type": "flatten"}], []]


@pytest.mark.parametrize(("text", "kind", "message"), [
    ("0.001, abc", "float", "'abc' is not a number"),
    ("0.001, inf", "float", "'inf' is not a finite number"),
    ("8, 12.5", "int", "'12.5' is not a whole number"),
    ("yes", "bool", "'yes': type true or false"),
    ("", "float", "give at least one value"),
    (", ,", "int", "give at least one value"),
    (", ".join(["1"] * 21), "int", "21 values; at most 20 on one axis"),
])
def test_bad_typed_values_name_the_axis(text, kind, message):
    with pytest.raises(SpecError) as caught:
        sweep_form.typed_values(text, kind, LR)
    assert caught.value.field == LR
    assert str(caught.value) == f"{LR}: {message}"


def test_a_whole_value_must_be_a_json_list():
    with pytest.raises(SpecError, match=r"^layers: type a JSON list"):
        sweep_form.typed_values('{"type": "flatten"}', "layers", "layers")
    with pytest.raises(SpecError, match=r"^layers: .* is not a JSON value"):
        sweep_form.typed_values("[oops", "layers", "layers")


# ---------------------------------------------------------------- ranges


def test_linear_ranges_by_hand():
    # (0.5 - 0) / 2 = 0.25 apart
    assert sweep_form.range_values(0, 0.5, 3, "linear", "float", "layers[3].rate") == [0.0, 0.25, 0.5]
    # (32 - 8) / 3 = 8 apart
    assert sweep_form.range_values(8, 32, 4, "linear", "int", "layers[0].filters") == [8, 16, 24, 32]
    # 0.1 + 0.2 * 1/2 = 0.2 exactly, not 0.20000000000000004
    assert sweep_form.range_values(0.1, 0.3, 3, "linear", "float", "x") == [0.1, 0.2, 0.3]
    assert sweep_form.range_values(5, 9, 1, "linear", "int", "x") == [5]          # one value: the start


def test_log_ranges_by_hand():
    # ratio (0.1 / 0.001) ** (1/2) = 10
    assert sweep_form.range_values(0.001, 0.1, 3, "log", "float", LR) == [0.001, 0.01, 0.1]
    # ratio 100 ** (1/4) = sqrt(10) = 3.16227766…: six significant digits
    assert sweep_form.range_values(1e-4, 1e-2, 5, "log", "float", LR) == [1e-4, 3.16228e-4, 1e-3, 3.16228e-3, 1e-2]
    assert math.isclose(3.16228e-4, 10 ** -3.5, rel_tol=1e-5)
    # 8 · 2^i
    assert sweep_form.range_values(8, 64, 4, "log", "int", "layers[0].filters") == [8, 16, 32, 64]
    # 1, 1.41, 2, 2.83, 4 rounded: 1, 1, 2, 3, 4 → the repeat dropped
    assert sweep_form.range_values(1, 4, 5, "log", "int", "layers[0].kernel_size") == [1, 2, 3, 4]


@pytest.mark.parametrize(("low", "high", "count", "scale", "message"), [
    (0.1, 0.01, 3, "linear", "the range runs from 0.1 up to 0.01: put the smaller number first"),
    (0.0, 0.1, 3, "log", "a log range needs numbers above 0, got 0"),
    (None, 0.1, 3, "linear", "a range needs two numbers, got None"),
    (0.001, 0.1, 0, "log", "the number of values must be between 1 and 20, got 0"),
    (0.001, 0.1, 21, "log", "the number of values must be between 1 and 20, got 21"),
    (0.001, 0.1, 3, "cubic", "the scale is one of linear, log, not 'cubic'"),
])
def test_bad_ranges_name_the_axis(low, high, count, scale, message):
    with pytest.raises(SpecError) as caught:
        sweep_form.range_values(low, high, count, scale, "float", LR)
    assert str(caught.value) == f"{LR}: {message}"


def test_axis_values_and_random_distributions():
    typed = Axis(LR, "float", text="0.001, 0.01")
    ranged = Axis(LR, "float", "range", low=0.001, high=0.1, count=3, scale="log")
    picked = Axis("training.optimizer", "choice", picked=("adam", "sgd"))
    assert sweep_form.axis_values(typed) == [0.001, 0.01]
    assert sweep_form.axis_values(ranged) == [0.001, 0.01, 0.1]
    assert sweep_form.axis_values(picked) == ["adam", "sgd"]
    assert sweep_form.distribution(ranged) == {"log_uniform": [0.001, 0.1]}
    assert sweep_form.distribution(Axis("layers[3].rate", how="range", low=0, high=0.5)) == {"uniform": [0.0, 0.5]}
    assert sweep_form.distribution(picked) == ["adam", "sgd"]  # choices to draw from
    with pytest.raises(SpecError, match="^training.optimizer: give at least one value"):
        sweep_form.axis_values(Axis("training.optimizer", "choice"))


# ---------------------------------------------------------------- documents


def test_grid_document():
    axes = [Axis(LR, "float", text="0.001, 0.01"), Axis("layers[0].filters", "int", "range", low=4, high=8, count=2)]
    document = sweep_form.grid_document(TINY, axes, 2)
    assert document == {"name": "tiny · training.learning_rate × layers[0].filters", "base": TINY.to_dict(),
                        "grid": {LR: [0.001, 0.01], "layers[0].filters": [4, 8]}, "seeds": 2}


def test_random_document():
    axes = [Axis(LR, "float", "range", low=1e-4, high=1e-2, scale="log"),
            Axis("training.optimizer", "choice", picked=("adam", "rmsprop"))]
    document = sweep_form.random_document(TINY, axes, 3, trials=8, seed=5)
    assert document["random"] == {"trials": 8, "seed": 5, "space": {
        LR: {"log_uniform": [1e-4, 1e-2]}, "training.optimizer": ["adam", "rmsprop"]}}
    assert document["seeds"] == 3 and document["base"] == TINY.to_dict()


def test_seeds_document_and_axis_rules():
    assert sweep_form.seeds_document(TINY, 3) == {"name": "tiny · 3 seeds", "base": TINY.to_dict(), "seeds": 3}
    with pytest.raises(SpecError, match="^axes: choose at least one setting to vary"):
        sweep_form.grid_document(TINY, [], 3)
    with pytest.raises(SpecError, match=r"^training.learning_rate: is chosen on two axes"):
        sweep_form.grid_document(TINY, [Axis(LR, text="0.1"), Axis(LR, text="0.2")], 3)
    with pytest.raises(SpecError, match="^axes: 4 axes; at most 3"):
        sweep_form.grid_document(TINY, [Axis(f"x{i}", text="1") for i in range(4)], 3)


def test_a_long_name_is_cut_to_what_a_name_may_be():
    long = ExperimentSpec(TINY.layers, name="n" * 120)
    assert len(sweep_form.seeds_document(long, 3)["name"]) == 120


# ---------------------------------------------------------------- A against B


def test_changes_between_a_new_rate_and_the_same_stack():
    a = TINY.to_dict()
    b = TINY.updated({"training.learning_rate": 0.003, "training.seed": 99, "name": "other"}).to_dict()
    assert sweep_form.changes_between(a, b) == {LR: 0.003}  # seed and name are not changes
    assert sweep_form.change_rows(a, b) == [{"setting": LR, "A": "0.001", "B": "0.003"}]


def test_changes_between_a_layer_field_and_another_stack():
    a = TINY.to_dict()
    wider = ExperimentSpec((Conv2D(8, 3), MaxPool2D(2), Flatten(), Dense(10)), name="tiny").to_dict()
    assert sweep_form.changes_between(a, wider) == {"layers[0].filters": 8}
    dropout = ExperimentSpec((Conv2D(4, 3), MaxPool2D(2), Flatten(), Dropout(0.5), Dense(10)), name="tiny").to_dict()
    changes = sweep_form.changes_between(a, dropout)
    assert list(changes) == ["layers"] and changes["layers"] == dropout["layers"]
    (row,) = sweep_form.change_rows(a, dropout)
    assert row["setting"] == "layers" and row["B"].count(" → ") == 4 and "Dropout" in row["B"]
    assert "Dropout" not in row["A"] and row["A"].count(" → ") == 3


def test_changes_between_sections_and_top_level_fields():
    a = TINY.to_dict()
    b = TINY.updated({"augmentation.shift": 0.1, "dataset.train_limit": 400, "baseline": "matched"}).to_dict()
    # augmentation is absent from A's JSON (off): it still compares field by field against the defaults
    assert sweep_form.changes_between(a, b) == {"dataset.train_limit": 400, "augmentation.shift": 0.1,
                                                "baseline": "matched"}
    assert sweep_form.changes_between(a, a) == {}


def test_variants_document():
    a = TINY.to_dict()
    b = TINY.updated({"training.learning_rate": 0.003}).to_dict()
    document = sweep_form.variants_document(a, b, 2)
    assert document == {"name": "tiny · A/B: training.learning_rate", "base": a, "seeds": 2,
                        "variants": [{"name": "A", "changes": {}}, {"name": "B", "changes": {LR: 0.003}}]}
    with pytest.raises(SpecError, match="^variants: A and B are the same experiment"):
        sweep_form.variants_document(a, TINY.updated({"name": "renamed"}).to_dict(), 2)


# ---------------------------------------------------------------- what the form shows


def choice(path, value, kind):
    return SimpleNamespace(path=path, value=value, kind=kind, choices=None)


def test_labels_and_suggested_values():
    assert sweep_form.field_label(choice(LR, 0.001, "float")) == "training.learning_rate (now 0.001)"
    assert sweep_form.field_label(choice("layers", TINY.to_dict()["layers"], "layers")) == "layers (now 4 layers)"
    assert sweep_form.field_label(choice("baseline", None, "choice")) == "baseline (now none)"
    # a third, itself, three times: 0.000333…, 0.001, 0.003
    assert sweep_form.suggested_values(choice(LR, 0.001, "float")) == "0.000333, 0.001, 0.003"
    assert sweep_form.suggested_values(choice("layers[0].filters", 32, "int")) == "16, 32, 64"
    assert sweep_form.suggested_values(choice("augmentation.flip", False, "bool")) == "false, true"
    assert sweep_form.suggested_values(choice("dataset.train_limit", None, "optional int")) == "none"
    assert sweep_form.suggested_values(choice("dataset.train_limit", 400, "optional int")) == "200, 400, 800"
    assert sweep_form.suggested_range(choice(LR, 0.001, "float")) == (0.0001, 0.01)
    assert sweep_form.suggested_range(choice("layers[3].rate", 0.0, "float")) == (0.0, 0.5)
    assert sweep_form.suggested_range(choice("layers[0].filters", 5, "int")) == (2, 10)  # 5 // 2 = 2
    assert sweep_form.value_text([]) == "no layers" and sweep_form.value_text(0.5) == "0.5"


def test_plan_text():
    check = SimpleNamespace(trials=[1, 2, 3, 4], estimated_seconds=125.0, per_trial_seconds=[30, 30, 32.5, 32.5])
    assert sweep_form.plan_text(check) == "4 trials · about 2 min 05 s (31 s a trial)"  # 125 / 4
    one = SimpleNamespace(trials=[1], estimated_seconds=4.25, per_trial_seconds=[4.25])
    assert sweep_form.plan_text(one) == "1 trial · about 4.2 s"
    unknown = SimpleNamespace(trials=[1, 2], estimated_seconds=None, per_trial_seconds=None)
    assert sweep_form.plan_text(unknown) == "2 trials · no time estimate yet"


def test_sweep_label_and_trial_links():
    created = 1_767_225_600.0  # 2026-01-01 00:00 UTC
    record = SimpleNamespace(name="tiny · 3 seeds", created=created, trials=[{}, {}, {}])
    day = time.strftime("%Y-%m-%d %H:%M", time.localtime(created))
    assert sweep_form.sweep_label(record) == f"tiny · 3 seeds · {day} · 3 trials"
    assert sweep_form.trial_link("http://h:8501/", "r-1", False) == "http://h:8501/Inspect?run=r-1"
    assert sweep_form.trial_link("http://h:8501/", "r 1", True, "k&y") == "http://h:8501/Train?run=r%201&ws=k%26y"


# ---------------------------------------------------------------- round trips through cnnkit.runs.sweeps


@pytest.mark.parametrize("b_changes", [
    {"training.learning_rate": 0.003},
    {"augmentation.shift": 0.1, "baseline": "matched", "dataset.train_limit": 400},
])
def test_variant_b_of_the_document_is_b_again(b_changes):
    from cnnkit.runs.sweeps import SweepSpec

    a = TINY.to_dict()
    for b in (TINY.updated(b_changes), ExperimentSpec((Conv2D(4, 3), MaxPool2D(2), Flatten(), Dropout(0.5),
                                                       Dense(10)), name="tiny").updated(b_changes)):
        trials = SweepSpec.from_dict(sweep_form.variants_document(a, b.to_dict(), 2)).trials()
        assert [(t.config, t.seed) for t in trials] == [({"variant": "A"}, 42), ({"variant": "A"}, 43),
                                                        ({"variant": "B"}, 42), ({"variant": "B"}, 43)]
        rebuilt = trials[2].spec  # B's first seed: A with the changes, named by the sweep
        assert rebuilt.updated({"name": b.name}) == b
        assert trials[0].spec.updated({"name": "tiny"}) == TINY


def test_config_spec_is_the_configurations_trial():
    document = sweep_form.grid_document(TINY, [Axis("layers[0].filters", "int", text="4, 8")], 2)
    spec = sweep_form.config_spec(document, {"layers[0].filters": 8})
    assert spec.layers[0] == Conv2D(8, 3) and spec.training.seed == 42  # the first seed: the base's own
    with pytest.raises(SpecError, match="^config: the sweep has no configuration"):
        sweep_form.config_spec(document, {"layers[0].filters": 16})


def test_every_field_of_a_draft_gets_a_working_first_guess():
    # what the page puts in an axis's boxes before anyone types parses, for every setting offered
    from cnnkit.presets import get_preset
    from cnnkit.runs.sweeps import SweepSpec, fields_of

    draft = get_preset("chollet-cnn").experiment(baseline="dense-128")
    for choice in fields_of(draft):
        if choice.kind == "choice":
            continue
        values = sweep_form.typed_values(sweep_form.suggested_values(choice), choice.kind, choice.path)
        assert choice.value in values, choice
        if choice.kind in sweep_form.NUMERIC and choice.value:
            low, high = sweep_form.suggested_range(choice)
            assert low <= choice.value <= high, choice
    grid = sweep_form.grid_document(draft, [Axis(LR, "float", text=sweep_form.suggested_values(
        next(c for c in fields_of(draft) if c.path == LR)))], 1)
    assert [c[LR] for c in SweepSpec.from_dict(grid).configs()] == [0.000333, 0.001, 0.003]
