"""cnnkit.editing: the Build page's layer edits and its table, checked against hand counts."""

from __future__ import annotations

from dataclasses import fields

import pytest

from cnnkit.errors import ArchitectureError, SpecError
from cnnkit.presets import get_preset
from cnnkit.shapes import summarize
from cnnkit.specs import LAYER_TYPES, Conv2D, Dense, Dropout, Flatten, MaxPool2D, layer_from_dict
from cnnkit.views.editing import (
    FIELDS,
    TRAINING_FIELDS,
    edit_layer,
    failing_index,
    human_count,
    insert_layer,
    layer_values,
    move_layer,
    new_layer,
    prefix_rows,
    remove_layer,
    spec_value,
    starter_layers,
    summarize_or_prefix,
    summary_rows,
    summary_totals,
    total_row,
)

MNIST = ((28, 28, 1), 10)
CHOLLET = get_preset("chollet-cnn").layers


def test_fields_cover_every_parameter_of_every_layer_type():
    assert set(FIELDS) == set(LAYER_TYPES)
    for kind, cls in LAYER_TYPES.items():
        assert {f.name for f in FIELDS[kind]} == {f.name for f in fields(cls)}, kind


def test_field_bounds_are_accepted_by_the_spec_reader():
    # The widgets' extreme values must be legal specs, or the editor could build a refused one.
    for kind, kind_fields in FIELDS.items():
        for field in kind_fields:
            values = list(field.choices) if field.kind == "choice" else [field.lo, field.hi]
            for value in values:
                if field.kind in ("int", "optional_int"):
                    value = int(value)
                layer = layer_from_dict({"type": kind, field.name: value})
                assert getattr(layer, field.name) == value


def test_insert_remove_move_round_trip():
    layers = (Conv2D(8), Flatten(), Dense(10))
    added = insert_layer(layers, 1, MaxPool2D())
    assert [layer.type for layer in added] == ["conv2d", "maxpool2d", "flatten", "dense"]
    assert insert_layer(layers, 99, Dropout())[-1] == Dropout()  # past the end appends
    assert remove_layer(added, 1) == layers
    moved = move_layer(layers, 0, +1)
    assert [layer.type for layer in moved] == ["flatten", "conv2d", "dense"]
    assert move_layer(moved, 1, -1) == layers
    assert move_layer(layers, 0, -1) == layers   # top can't go up
    assert move_layer(layers, 2, +1) == layers   # bottom can't go down


def test_remove_or_edit_a_missing_layer_is_a_clear_error():
    with pytest.raises(SpecError, match="no layer 4"):
        remove_layer((Flatten(), Dense(), Dense()), 3)


def test_edit_layer_validates_and_names_the_field():
    layers = (Conv2D(32), Flatten())
    assert edit_layer(layers, 0, {"filters": 16})[0] == Conv2D(16)
    with pytest.raises(SpecError, match=r"layers\[0\]\.kernel_size"):
        edit_layer(layers, 0, {"kernel_size": 0})
    with pytest.raises(SpecError, match=r"layers\[1\]\.units"):
        edit_layer(layers, 1, {"units": 3})  # Flatten has no units


def test_layer_values_and_new_layer_defaults():
    assert layer_values(MaxPool2D(3)) == {"pool_size": 3, "strides": None, "padding": "valid"}
    assert new_layer("dense") == Dense(128, "relu")
    with pytest.raises(SpecError):
        new_layer("lstm")


def test_starter_network_by_hand():
    # conv 3*3*1*16+16 = 160; 26x26 -> pool 13x13x16 = 2704; dense 2704*64+64 = 173,120; out 650
    summary = summarize(starter_layers(), *MNIST)
    assert summary.total_params == 160 + 173_120 + 650


def test_chollet_totals_and_rows():
    summary = summarize(CHOLLET, *MNIST)
    totals = summary_totals(summary, batch_size=64)
    assert totals["params"] == 96_844
    rows = summary_rows(summary.layers)
    assert [r["output shape"] for r in rows[:5]] == ["26 × 26 × 32", "13 × 13 × 32", "11 × 11 × 64",
                                                      "5 × 5 × 64", "3 × 3 × 64"]
    # receptive fields by hand: 3 → 4 (pool, jump 2) → 8 → 10 (jump 4) → 18
    assert [r["receptive field"] for r in rows[:5]] == [
        "3×3 (stride 1)", "4×4 (stride 2)", "8×8 (stride 2)", "10×10 (stride 4)", "18×18 (stride 4)"]
    assert rows[5]["receptive field"] == "whole image"
    assert rows[-1]["#"] == "out" and rows[-1]["params"] == 710
    # first conv: 26*26 positions * 9 weights * 32 filters
    assert rows[0]["multiply-adds"] == 26 * 26 * 9 * 32


def test_editing_filters_changes_params_by_the_hand_computed_amount():
    edited = edit_layer(CHOLLET, 0, {"filters": 16})
    # conv1 loses 9*16 weights + 16 biases; conv2 loses 9*16*64 input weights
    delta = (9 * 16 + 16) + 9 * 16 * 64
    assert summarize(edited, *MNIST).total_params == 96_844 - delta == 87_468


def test_impossible_edit_names_the_layer_and_keeps_the_valid_prefix():
    edited = edit_layer(CHOLLET, 4, {"kernel_size": 31})
    with pytest.raises(ArchitectureError) as info:
        summarize(edited, *MNIST)
    assert "31×31 window but its input is only 5×5" in str(info.value)
    index = failing_index(info.value)
    assert index == 4
    rows = prefix_rows(edited, *MNIST, index)
    assert [r.name for r in rows] == ["conv2d_1", "maxpool2d_2", "conv2d_3", "maxpool2d_4"]
    assert rows[-1].output_shape == (5, 5, 64)


def test_prefix_of_a_flat_network_and_of_nothing():
    layers = (Flatten(), Dense(32), Conv2D(8))
    with pytest.raises(ArchitectureError) as info:
        summarize(layers, *MNIST)
    assert failing_index(info.value) == 2
    rows = prefix_rows(layers, *MNIST, 2)
    assert [r.output_shape for r in rows] == [(784,), (32,)]
    assert prefix_rows(layers, *MNIST, 0) == ()


def test_network_ending_in_a_map_has_no_failing_layer():
    with pytest.raises(ArchitectureError) as info:
        summarize((Conv2D(8),), *MNIST)
    assert failing_index(info.value) is None


def test_human_count():
    assert human_count(96_844) == "96,844"
    assert human_count(12_345_678) == "12.3 M"
    assert human_count(2_500_000_000) == "2.5 G"


def test_total_row_adds_up_the_rows():
    summary = summarize(CHOLLET, *MNIST)
    total, rows = total_row(summary), summary_rows(summary.layers)
    assert total["params"] == sum(r["params"] for r in rows) == 96_844
    assert total["multiply-adds"] == sum(r["multiply-adds"] for r in rows) == summary.total_macs


def test_summarize_or_prefix():
    summary, rows, problem = summarize_or_prefix(CHOLLET, *MNIST)
    assert problem is None and summary.total_params == 96_844 and rows == summary.layers
    summary, rows, problem = summarize_or_prefix(edit_layer(CHOLLET, 4, {"kernel_size": 31}), *MNIST)
    assert summary is None and isinstance(problem, ArchitectureError) and len(rows) == 4


# ---------------------------------------------------------------------------
# The Train page's settings table


def test_training_fields_cover_every_training_setting_once():
    from cnnkit.specs import TrainingSpec

    names = [f.name for f in TRAINING_FIELDS]
    assert len(names) == len(set(names)) and len({f.key for f in TRAINING_FIELDS}) == len(names)
    assert {n.split(".", 1)[1] for n in names if n.startswith("training.")} == {f.name for f in fields(TrainingSpec)}
    assert {n for n in names if n.startswith("dataset.")} == {
        "dataset.train_limit", "dataset.validation_split", "dataset.normalization"}
    # a condition names a field offered before it (the page decides in one pass, top to bottom)
    for index, field in enumerate(TRAINING_FIELDS):
        if field.shown_if:
            assert field.shown_if[0] in names[:index], field


def test_training_field_bounds_are_the_specs_own():
    # Each widget's extremes are legal, and one step past them is refused, naming the field.
    spec = get_preset("chollet-cnn").experiment()
    for field in TRAINING_FIELDS:
        if field.kind == "choice":
            for choice in field.choices:
                assert spec_value(spec.updated({field.name: choice}), field.name) == choice
            continue
        if field.kind == "bool":
            continue
        for value in (field.lo, field.hi):
            value = int(value) if field.kind in ("int", "count") else value
            if field.name in ("training.learning_rate", "training.decay_rate") and value == 0:
                continue  # the widget's floor; the spec wants a rate above 0 and says so inline
            assert spec_value(spec.updated({field.name: value}), field.name) == value, field
        beyond = field.hi + (1 if field.kind in ("int", "count") else 0.5)
        if field.name != "training.momentum":  # the widget stops at 0.9999, the spec below 1.0
            with pytest.raises(SpecError, match=field.name.replace(".", r"\.")):
                spec.updated({field.name: beyond})


def test_a_field_shows_and_is_labelled_by_the_choice_above_it():
    by_name = {f.name: f for f in TRAINING_FIELDS}
    momentum, every = by_name["training.momentum"], by_name["training.decay_epochs"]
    assert momentum.applies({"training.optimizer": "sgd"}) and not momentum.applies({"training.optimizer": "adam"})
    assert every.label_for({"training.schedule": "step"}) == "Every N epochs"
    assert every.label_for({"training.schedule": "plateau"}) == "Patience (epochs)"
    assert by_name["training.epochs"].applies({})  # no condition: always offered
    assert spec_value(get_preset("chollet-cnn").experiment(), "training.batch_size") == 64
