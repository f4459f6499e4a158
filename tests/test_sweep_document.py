"""The sweep document (cnnkit/runs/sweeps.py): parsing, expansion into trials, dotted fields, cost.

Oracles: hand-counted grids, round trips, the same draws made again with numpy, hand-computed
multiply-adds. Nothing here trains or imports TensorFlow.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

from cnnkit.errors import SpecError
from cnnkit.runs import sweeps
from cnnkit.runs.store import RunRecord
from cnnkit.runs.sweeps import SweepSpec, check_sweep, config_label, get_field, set_field
from cnnkit.specs import MAX_NAME_CHARS, OPTIMIZERS, ExperimentSpec

TINY = {"dataset": {"name": "mnist", "train_limit": 200, "test_limit": 100, "validation_split": 0.1},
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "maxpool2d"}, {"type": "flatten"},
                   {"type": "dense", "units": 16}],
        "training": {"epochs": 1, "batch_size": 64, "seed": 7}, "name": "tiny"}


def sweep(**parts) -> SweepSpec:
    return SweepSpec.from_dict({"base": TINY, **parts})


def refusal(document) -> SpecError:
    with pytest.raises(SpecError) as caught:
        SweepSpec.from_dict(document)
    return caught.value


# ---------------------------------------------------------------------------
# Expansion


def test_a_grid_of_2_by_3_over_2_seeds_is_12_trials_first_axis_slowest_seeds_innermost():
    s = sweep(grid={"training.learning_rate": [0.001, 0.01], "layers[0].filters": [4, 8, 16]}, seeds=2)
    trials = s.trials()
    expected = [(lr, filters, seed) for lr in (0.001, 0.01) for filters in (4, 8, 16) for seed in (7, 8)]
    assert len(trials) == 12 == len(expected)
    assert [(t.config["training.learning_rate"], t.config["layers[0].filters"], t.seed) for t in trials] == expected
    assert [t.index for t in trials] == list(range(12))
    for trial, (lr, filters, seed) in zip(trials, expected, strict=True):
        assert trial.spec.training.learning_rate == lr
        assert trial.spec.layers[0].filters == filters
        assert trial.spec.training.seed == seed
        assert trial.spec.layers[3].units == 16 and trial.spec.dataset.train_limit == 200  # the rest is the base's
    assert trials[5].label == "training.learning_rate=0.001, layers[0].filters=16 · seed 8"
    assert trials[5].spec.name == "tiny · training.learning_rate=0.001, layers[0].filters=16 · seed 8"


def test_no_grid_is_the_base_alone_over_its_seeds():
    s = sweep(seeds=3)
    assert s.configs() == [{}]
    assert [(t.config, t.seed) for t in s.trials()] == [({}, 7), ({}, 8), ({}, 9)]
    assert s.trials()[0].spec.name == "tiny · seed 7" and s.trials()[0].label == "base · seed 7"


def test_seeds_as_a_count_start_at_the_base_seed_and_a_list_is_kept_in_order():
    assert sweep(seeds=3).seed_list == (7, 8, 9)
    assert sweep(seeds=[5, 1, 99]).seed_list == (5, 1, 99)
    assert sweep().seed_list == (7,)


def test_variants_are_their_changes_each_over_the_same_seeds():
    s = sweep(variants=[{"name": "A", "changes": {}},
                        {"name": "B", "changes": {"layers[0].filters": 8, "augmentation.shift": 0.1}}], seeds=2)
    trials = s.trials()
    assert [(t.config, t.seed) for t in trials] == [({"variant": "A"}, 7), ({"variant": "A"}, 8),
                                                    ({"variant": "B"}, 7), ({"variant": "B"}, 8)]
    a, b = trials[0].spec, trials[2].spec
    assert (a.layers[0].filters, a.augmentation.shift) == (4, 0.0)
    assert (b.layers[0].filters, b.augmentation.shift) == (8, 0.1)
    assert b.name == "tiny · B · seed 7" and config_label(trials[2].config) == "B"


def test_a_long_name_is_cut_to_the_spec_limit():
    s = sweep(name="n" * 110, grid={"training.learning_rate": [0.001]})
    name = s.trials()[0].spec.name
    assert len(name) == MAX_NAME_CHARS and name == ("n" * 110 + " · training.learning_rate=0.001")[:MAX_NAME_CHARS]


def test_random_draws_repeat_with_their_seed_and_are_numpys_log_uniform_draws():
    space = {"training.learning_rate": {"log_uniform": [1e-4, 1e-2]}}
    first = sweep(random={"trials": 50, "seed": 3, "space": space}).configs()
    again = sweep(random={"trials": 50, "seed": 3, "space": space}).configs()
    other = sweep(random={"trials": 50, "seed": 4, "space": space}).configs()
    rng = np.random.default_rng(3)
    expected = [float(f"{math.exp(rng.uniform(math.log(1e-4), math.log(1e-2))):.6g}") for _ in range(50)]
    assert [c["training.learning_rate"] for c in first] == expected
    assert first == again and first != other
    values = [c["training.learning_rate"] for c in first]
    assert all(1e-4 <= v <= 1e-2 for v in values)
    # log-uniform: as many draws below the geometric middle (1e-3) as above; uniform would put ~9% below
    assert 15 <= sum(v < 1e-3 for v in values) <= 35


def test_random_whole_number_fields_draw_whole_numbers_and_choices_draw_choices():
    s = sweep(random={"trials": 40, "seed": 0, "space": {"layers[0].filters": {"uniform": [8.0, 12.0]},
                                                         "training.optimizer": ["adam", "sgd"]}})
    configs = s.configs()
    assert {type(c["layers[0].filters"]) for c in configs} == {int}
    assert {c["layers[0].filters"] for c in configs} <= {8, 9, 10, 11, 12}
    assert {c["training.optimizer"] for c in configs} == {"adam", "sgd"}
    assert len(s.trials()) == 40


@pytest.mark.parametrize("parts", [
    {"grid": {"training.learning_rate": [0.001, 0.01], "layers": [TINY["layers"][:1] + TINY["layers"][2:]]},
     "seeds": [3, 4]},
    {"random": {"trials": 4, "seed": 9, "space": {"training.learning_rate": {"uniform": [0.001, 0.1]},
                                                  "baseline": [None, "dense-128"]}}, "seeds": 2, "name": "r"},
    {"variants": [{"name": "A", "changes": {}}, {"name": "B", "changes": {"training.optimizer": "sgd"}}]},
    {},
])
def test_to_dict_round_trips_through_from_dict_and_json(parts):
    s = sweep(**parts)
    assert SweepSpec.from_dict(s.to_dict()) == s
    assert SweepSpec.from_json(json.dumps(s.to_dict())) == s
    assert SweepSpec.from_dict(s.to_dict()).configs() == s.configs()


def test_config_labels_are_the_dotted_paths_as_typed():
    assert config_label({"training.learning_rate": 0.001, "layers[0].filters": 32}) == \
        "training.learning_rate=0.001, layers[0].filters=32"
    assert config_label({"layers": [{}, {}, {}], "baseline": None, "training.nesterov": True}) == \
        "layers=<3 layers>, baseline=none, training.nesterov=true"
    assert config_label({"variant": "B"}) == "B" and config_label({}) == ""


# ---------------------------------------------------------------------------
# Dotted fields


def test_set_field_changes_a_copy_and_get_field_reads_it_back():
    base = ExperimentSpec.from_dict(TINY).to_dict()
    assert "augmentation" not in base  # off: left out of the dict
    changed = set_field(base, "augmentation.shift", 0.2)
    assert changed["augmentation"] == {"shift": 0.2} and "augmentation" not in base
    assert get_field(base, "augmentation.shift") == 0.0 and get_field(changed, "augmentation.shift") == 0.2
    changed = set_field(base, "layers[0].filters", 12)
    assert changed["layers"][0]["filters"] == 12 and base["layers"][0]["filters"] == 4
    assert get_field(base, "training.learning_rate") == 0.001 and get_field(base, "baseline") is None
    assert set_field(base, "layers", [{"type": "flatten"}])["layers"] == [{"type": "flatten"}]
    assert set_field(base, "baseline", "matched")["baseline"] == "matched"
    # a setting the layer's dict leaves out reads as the layer's default
    assert get_field({"layers": [{"type": "conv2d"}]}, "layers[0].kernel_size") == 3
    assert get_field({"layers": [{"type": "dropout"}]}, "layers[0].rate") == 0.25


@pytest.mark.parametrize("path, message", [
    ("layers[9].filters", "the base has 4 layers (0–3)"),
    ("layers[1].filters", "layer 1 (maxpool2d) has no setting 'filters'"),
    ("training.lr", "training has no setting 'lr'"),
    ("layers[01].filters", "is not a setting"),
    ("training", "is not a setting"),
    ("name", "is not a setting"),
    (3, "is not a setting"),
])
def test_a_bad_path_is_refused_naming_where_it_came_from(path, message):
    with pytest.raises(SpecError) as caught:
        set_field(ExperimentSpec.from_dict(TINY).to_dict(), path, 1, where=f"grid.{path}")
    assert caught.value.field == f"grid.{path}" and message in str(caught.value)


# ---------------------------------------------------------------------------
# Every refusal names its field


BAD = [
    ({"grid": {"training.learning_rate": [0.1]}, "random": {"trials": 2, "space": {}}}, "random", "not both"),
    ({"grid": {"training.learning_rate": [0.1]}, "variants": []}, "variants", "not both"),
    ({"grid": {"training.lr": [0.1]}}, "grid.training.lr", "training has no setting 'lr'"),
    ({"grid": {"layers[9].filters": [8]}}, "grid.layers[9].filters", "the base has 4 layers (0–3)"),
    ({"grid": {"layers[0]filters": [8]}}, "grid.layers[0]filters", "is not a setting"),
    ({"grid": {"training.seed": [1, 2]}}, "grid.training.seed", 'seeds are set with "seeds"'),
    ({"grid": {}}, "grid", "settings to vary"),
    ({"grid": {"training.learning_rate": []}}, "grid.training.learning_rate", "1 to 100 values"),
    ({"grid": {"training.learning_rate": list(range(1, 102))}}, "grid.training.learning_rate", "1 to 100 values"),
    ({"grid": {"training.epochs": [1, 2, 1]}}, "grid.training.epochs", "has 1 twice"),
    ({"grid": {f"augmentation.{k}": [0.1] for k in ("shift", "rotation", "zoom", "noise")}
      | {f"training.{k}": [1] for k in ("epochs", "batch_size", "decay_epochs", "weight_decay", "momentum")}},
     "grid", "9 settings to vary; at most 8"),
    ({"random": {"trials": 0, "space": {"training.learning_rate": [0.1]}}}, "random.trials", "between 1 and 500"),
    ({"random": {"trials": 501, "space": {"training.learning_rate": [0.1]}}}, "random.trials", "between 1 and 500"),
    ({"random": {"trials": 2}}, "random.space", "is required"),
    ({"random": {"trials": 2, "space": {"training.learning_rate": {"log_uniform": [0, 1]}}}},
     "random.space.training.learning_rate.log_uniform", "above 0"),
    ({"random": {"trials": 2, "space": {"training.learning_rate": {"uniform": [0.1, 0.1]}}}},
     "random.space.training.learning_rate.uniform", "below the high end"),
    ({"random": {"trials": 2, "space": {"training.learning_rate": {"uniform": [0.1, float("inf")]}}}},
     "random.space.training.learning_rate.uniform", "finite"),
    ({"random": {"trials": 2, "space": {"training.learning_rate": {"normal": [0, 1]}}}},
     "random.space.training.learning_rate", "a list of choices"),
    ({"random": {"trials": 2, "space": {"training.seed": [1, 2]}}}, "random.space.training.seed", '"seeds"'),
    ({"variants": [{"name": "A"}]}, "variants", "2 to 10 variants"),
    ({"variants": [{"name": str(i)} for i in range(11)]}, "variants", "2 to 10 variants"),
    ({"variants": [{"name": "A"}, {"name": "A"}]}, "variants[1].name", "names two variants"),
    ({"variants": [{"name": "A"}, {"name": " "}]}, "variants[1].name", "non-empty"),
    ({"variants": [{"name": "A"}, {"name": "B\n"}]}, "variants[1].name", "control character"),
    ({"variants": [{"name": "A"}, {"name": "B", "changes": {"layers[3].rate": 0.5}}]},
     "variants[1].changes.layers[3].rate", "layer 3 (dense) has no setting 'rate'"),
    ({"variants": [{"name": "A"}, {"name": "B", "changes": {"training.seed": 3}}]},
     "variants[1].changes.training.seed", '"seeds"'),
    ({"seeds": 0}, "seeds", "between 1 and 50"),
    ({"seeds": 51}, "seeds", "between 1 and 50"),
    ({"seeds": "3"}, "seeds", "whole number"),
    ({"seeds": [1, 1]}, "seeds", "twice"),
    ({"seeds": []}, "seeds", "give 1 to 50"),
    ({"seeds": [1, -1]}, "seeds[1]", "between 0 and"),
    ({"name": 5}, "name", "must be text"),
    ({"grids": {}}, "grids", "unknown key"),
]


@pytest.mark.parametrize("parts, field, message", BAD)
def test_every_bad_document_is_refused_naming_its_field(parts, field, message):
    error = refusal({"base": TINY, **parts})
    assert error.field == field, str(error)
    assert message in str(error)


def test_a_bad_base_is_named_inside_the_base():
    error = refusal({"base": {**TINY, "layers": [{"type": "conv2d", "filters": 0}]}})
    assert error.field == "base.layers[0].filters"
    assert refusal({"grid": {}}).field == "base" and "is required" in str(refusal({}))


def test_a_bad_value_is_caught_at_trial_validation_with_its_configuration_number():
    s = sweep(grid={"layers[0].filters": [4, 8, 0]})
    with pytest.raises(SpecError) as caught:
        s.trials()
    assert caught.value.field == "grid.layers[0].filters"
    assert str(caught.value) == ("grid.layers[0].filters: configuration 3 (layers[0].filters=0): "
                                 "must be between 1 and 2048, got 0")


def test_a_bad_random_draw_names_its_axis_in_the_space():
    s = sweep(random={"trials": 3, "seed": 0, "space": {"layers[0].padding": ["same", "round"]}})
    with pytest.raises(SpecError) as caught:
        s.trials()
    first_bad = 1 + [c["layers[0].padding"] for c in s.configs()].index("round")
    assert caught.value.field == "random.space.layers[0].padding"
    assert f"configuration {first_bad} (layers[0].padding=round): must be one of valid, same" in str(caught.value)


def test_a_variant_that_breaks_the_limits_names_the_variant_and_its_change(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_EPOCHS", "3")
    s = sweep(variants=[{"name": "A"}, {"name": "long", "changes": {"training.epochs": 4}}])
    with pytest.raises(SpecError) as caught:
        s.trials()
    assert caught.value.field == "variants[1].changes.training.epochs"
    assert "configuration 2 (long): 4 is above this server's limit of 3 epochs" in str(caught.value)


def test_a_whole_network_too_big_for_the_server_blames_the_layer_axis(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "5000")
    with pytest.raises(SpecError) as caught:
        sweep(grid={"layers[3].units": [2, 64]}).trials()
    assert caught.value.field == "grid.layers[3].units"
    assert "configuration 2 (layers[3].units=64): layers: the network has" in str(caught.value)


def test_bad_json_and_oversize_json_are_refused_before_anything_else():
    with pytest.raises(SpecError, match="not valid JSON"):
        SweepSpec.from_json('{"base": ')
    with pytest.raises(SpecError, match="at most 1,000,000"):
        SweepSpec.from_json(" " * 1_000_001)
    with pytest.raises(SpecError, match="must be a JSON object"):
        SweepSpec.from_json("[1, 2]")


# ---------------------------------------------------------------------------
# Caps and cost


def test_more_trials_than_the_server_allows_are_refused_naming_the_seeds(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_SWEEP_TRIALS", "4")
    with pytest.raises(SpecError) as caught:
        check_sweep(sweep(grid={"training.learning_rate": [0.001, 0.003, 0.01]}, seeds=2))
    assert caught.value.field == "seeds"
    assert str(caught.value) == ("seeds: 3 configurations × 2 seeds = 6 trials; this server allows 4 "
                                 "(CNNKIT_MAX_SWEEP_TRIALS)")
    with pytest.raises(SpecError) as caught:  # the configurations alone are too many: the longest axis
        check_sweep(sweep(grid={"training.epochs": [1, 2], "layers[0].filters": [1, 2, 3, 4, 5]}))
    assert caught.value.field == "grid.layers[0].filters"  # 2 × 5: the 5-value axis
    assert "10 configurations × 1 seed = 10 trials" in str(caught.value)
    assert len(check_sweep(sweep(grid={"training.learning_rate": [0.001, 0.003]}, seeds=2)).trials) == 4


def test_a_huge_grid_is_refused_from_its_count_without_building_it():
    paths = ["layers[0].filters", "layers[0].kernel_size", "layers[3].units", "training.epochs",
             "training.batch_size", "training.decay_epochs", "dataset.train_limit", "dataset.test_limit"]
    s = sweep(grid={path: list(range(10, 110)) for path in paths})  # 100^8 = 10^16 configurations
    assert s.configuration_count() == 100 ** 8
    started = time.perf_counter()
    with pytest.raises(SpecError, match=r"10,000,000,000,000,000 configurations × 1 seed = "):
        check_sweep(s)
    with pytest.raises(SpecError, match="at most 10,000"):
        s.configs()
    assert time.perf_counter() - started < 1.0


def test_a_sweep_estimated_over_the_minutes_cap_is_refused(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_SWEEP_MINUTES", "1")
    s = sweep(seeds=4)  # four trials: at least 4 × 20 s of fixed cost
    with pytest.raises(SpecError) as caught:
        check_sweep(s, macs_per_second=1e12)
    assert caught.value.field == "seeds" and "CNNKIT_MAX_SWEEP_MINUTES" in str(caught.value)
    assert "4 trials would take about 1 min" in str(caught.value)
    assert len(check_sweep(sweep(seeds=2), macs_per_second=1e12).trials) == 2


def _hand_spec(**changes) -> ExperimentSpec:
    # Conv2D 4 3×3 on 28×28×1: 26·26·9·1·4 = 24,336 multiply-adds; Flatten 26·26·4 = 2,704; output 2,704·10
    data = {"dataset": {"name": "mnist", "train_limit": 1000, "validation_split": 0.1},
            "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "flatten"}],
            "training": {"epochs": 2}}
    return ExperimentSpec.from_dict(data).updated(changes)


def test_estimate_seconds_is_the_hand_computation():
    cnn = 26 * 26 * 9 * 4 + 2704 * 10
    # 1,000 images, 10% validation: 900 train (3 passes each), 100 validate (1 pass), 2 epochs
    assert sweeps.estimate_seconds(_hand_spec(), 1e9) == pytest.approx(cnn * (3 * 900 + 100) * 2 / 1e9)
    # the full MNIST: 60,000 − 6,000 validation
    full = _hand_spec(**{"dataset.train_limit": None})
    assert sweeps.estimate_seconds(full, 1e9) == pytest.approx(cnn * (3 * 54_000 + 6_000) * 2 / 1e9)
    # a dense-128 baseline: 784·128 + 128·10 more per image
    with_baseline = _hand_spec(baseline="dense-128")
    assert sweeps.estimate_seconds(with_baseline, 1e9) == pytest.approx(
        (cnn + 784 * 128 + 1280) * (3 * 900 + 100) * 2 / 1e9)


def test_check_sweep_adds_each_trials_fixed_cost_to_its_estimate():
    s = SweepSpec(_hand_spec(), seeds=(1, 2, 3))
    check = check_sweep(s, macs_per_second=1e9)
    each = sweeps.estimate_seconds(_hand_spec(), 1e9) + sweeps.TRIAL_OVERHEAD_SECONDS
    assert check.per_trial_seconds == pytest.approx([each] * 3)
    assert check.estimated_seconds == pytest.approx(3 * each)
    default = check_sweep(s)
    assert default.per_trial_seconds[0] == pytest.approx(
        sweeps.estimate_seconds(_hand_spec(), sweeps.DEFAULT_MACS_PER_SECOND) + sweeps.TRIAL_OVERHEAD_SECONDS)


def _record(tmp_path, i: int, status: str, speeds) -> RunRecord:
    meta = {"created": 1000.0 + i, "models": {"cnn": {"images_per_second": speeds}}}
    return RunRecord(f"run-{i}", tmp_path, status, meta, _hand_spec())


def test_the_measured_speed_is_the_median_over_the_last_20_finished_runs(tmp_path):
    macs = 26 * 26 * 9 * 4 + 2704 * 10
    assert sweeps.measured_macs_per_second([]) is None
    assert sweeps.measured_macs_per_second([_record(tmp_path, 0, "failed", [100.0])]) is None
    one = [_record(tmp_path, 0, "finished", [1000.0, 3000.0, 2000.0])]  # a run's speed: its epochs' median
    assert sweeps.measured_macs_per_second(one) == pytest.approx(2000 * 3 * macs)
    old = [_record(tmp_path, i, "finished", [1.0]) for i in range(10)]            # older: left out
    new = [_record(tmp_path, 10 + i, "finished", [100.0 * (i + 1)]) for i in range(20)]
    unfinished = [_record(tmp_path, 40 + i, "running", [1e9]) for i in range(3)]
    rate = sweeps.measured_macs_per_second(old + unfinished + new[::-1])
    assert rate == pytest.approx(np.median([100.0 * (i + 1) for i in range(20)]) * 3 * macs)


# ---------------------------------------------------------------------------
# What the page offers


def test_fields_of_lists_every_single_setting_but_the_seed_and_the_dataset_name():
    from cnnkit.presets import get_preset

    spec = get_preset("chollet-cnn").experiment()
    choices = {choice.path: choice for choice in sweeps.fields_of(spec)}
    assert "training.seed" not in choices and "dataset.name" not in choices
    assert (choices["layers[0].filters"].value, choices["layers[0].filters"].kind) == (32, "int")
    assert choices["layers[0].activation"].kind == "choice" and "relu" in choices["layers[0].activation"].choices
    assert "layers[5].units" not in choices and choices["layers[6].units"].value == 70  # layer 5 is Flatten
    assert choices["training.optimizer"].choices == OPTIMIZERS and choices["training.optimizer"].value == "rmsprop"
    assert choices["training.learning_rate"].kind == "float"
    assert choices["training.nesterov"].kind == "bool"
    assert choices["dataset.train_limit"].kind == "optional int" and choices["layers[1].strides"].kind == "optional int"
    assert choices["augmentation.shift"].value == 0.0  # offered while augmentation is off
    assert choices["baseline"].choices == (None, "dense-128", "matched")
    for choice in choices.values():  # each path reads back its value from the spec's dict
        assert get_field(spec.to_dict(), choice.path) == choice.value
