"""Specs: the JSON round trip, and invalid documents refused with the field path and the value."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnnkit.errors import SpecError
from cnnkit.presets import PRESETS
from cnnkit.specs import (
    ACTIVATIONS,
    PADDINGS,
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    ExperimentSpec,
    Flatten,
    MaxPool2D,
    TrainingSpec,
)

# The example document of the issue (the specs module docstring), with its layers written out.
EXAMPLE = {
    "dataset": {"name": "mnist", "normalization": "scale", "validation_split": 0.1, "train_limit": None},
    "layers": [
        {"type": "conv2d", "filters": 32, "kernel_size": 3},
        {"type": "maxpool2d", "pool_size": 2},
        {"type": "dropout", "rate": 0.25},
        {"type": "flatten"},
        {"type": "dense", "units": 128, "activation": "relu"},
    ],
    "training": {"optimizer": "adam", "learning_rate": 0.001, "batch_size": 128, "epochs": 5, "seed": 42},
}


def spec_with_layer(layer: dict, position: int = 0) -> dict:
    """The example document with one layer replaced: for the invalid-value cases."""
    doc = json.loads(json.dumps(EXAMPLE))
    doc["layers"][position] = layer
    return doc


# ---------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("name", sorted(PRESETS))
@pytest.mark.parametrize("baseline", [None, "matched"])
def test_every_preset_round_trips_through_json(name, baseline):
    spec = PRESETS[name].experiment(baseline=baseline)
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    text = spec.to_json()
    assert ExperimentSpec.from_json(text) == spec
    # The document is plain JSON: dumping the parsed text again gives the same text.
    assert json.dumps(json.loads(text), indent=2) == text


def test_example_document_reads_with_defaults_and_round_trips():
    spec = ExperimentSpec.from_dict(EXAMPLE)
    # Missing optional keys take the dataclass defaults.
    assert spec.layers == (Conv2D(32, 3, 1, "valid", "relu"), MaxPool2D(2, None, "valid"), Dropout(0.25),
                           Flatten(), Dense(128, "relu"))
    assert spec.layers[1].effective_strides == 2
    assert spec.dataset.name == "mnist" and spec.dataset.test_limit is None
    assert spec.training == TrainingSpec("adam", 0.001, 128, 5, 42)
    assert spec.output == "softmax" and spec.baseline is None
    again = ExperimentSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    # Every key the example gave comes back with the same value.
    full = spec.to_dict()
    for section in ("dataset", "training"):
        for key, value in EXAMPLE[section].items():
            assert full[section][key] == value
    for given_layer, stored in zip(EXAMPLE["layers"], full["layers"], strict=True):
        assert {k: stored[k] for k in given_layer} == given_layer


def test_updated_changes_dotted_and_top_level_keys_and_validates():
    spec = ExperimentSpec.from_dict(EXAMPLE)
    changed = spec.updated({"training.epochs": 2, "dataset.train_limit": 300, "name": "tiny"})
    assert (changed.training.epochs, changed.dataset.train_limit, changed.name) == (2, 300, "tiny")
    assert changed.layers == spec.layers
    with pytest.raises(SpecError) as err:
        spec.updated({"training.epochs": -1})
    assert err.value.field == "training.epochs" and "-1" in str(err.value)


layer_dicts = st.one_of(
    st.builds(lambda f, k, s, p, a: {"type": "conv2d", "filters": f, "kernel_size": k, "strides": s,
                                     "padding": p, "activation": a},
              st.integers(1, 2048), st.integers(1, 31), st.integers(1, 16), st.sampled_from(PADDINGS),
              st.sampled_from(ACTIVATIONS)),
    st.builds(lambda t, k, s, p: {"type": t, "pool_size": k, "strides": s, "padding": p},
              st.sampled_from(["maxpool2d", "avgpool2d"]), st.integers(1, 31),
              st.one_of(st.none(), st.integers(1, 16)), st.sampled_from(PADDINGS)),
    st.builds(lambda r: {"type": "dropout", "rate": r},
              st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)),
    st.sampled_from([{"type": "batchnorm"}, {"type": "flatten"}, {"type": "globalavgpool"}]),
    st.builds(lambda u, a: {"type": "dense", "units": u, "activation": a}, st.integers(1, 16384),
              st.sampled_from(ACTIVATIONS)),
)


@settings(max_examples=60, deadline=None)
@given(layers=st.lists(layer_dicts, max_size=8), seed=st.integers(0, 2**31 - 1),
       lr=st.floats(1e-6, 10.0, allow_nan=False))
def test_any_valid_document_round_trips(layers, seed, lr):
    # Shapes are not checked here (that is the shape calculator's job): only the fields.
    doc = {"layers": layers, "training": {"seed": seed, "learning_rate": lr}}
    spec = ExperimentSpec.from_dict(doc)
    assert ExperimentSpec.from_json(spec.to_json()) == spec
    for given_layer, stored in zip(layers, spec.to_dict()["layers"], strict=True):
        assert {k: stored[k] for k in given_layer} == given_layer


# ---------------------------------------------------------------------------
# Invalid documents: one SpecError naming the field path and showing the value

INVALID = [
    # (document, field path, text that must appear: the value as the user wrote it)
    (spec_with_layer({"type": "conv2d", "filters": -3}), "layers[0].filters", "-3"),
    (spec_with_layer({"type": "conv2d", "filters": 0}), "layers[0].filters", "0"),
    (spec_with_layer({"type": "dropout", "rate": 1.5}, 2), "layers[2].rate", "1.5"),
    (spec_with_layer({"type": "dropout", "rate": -0.1}, 2), "layers[2].rate", "-0.1"),
    (spec_with_layer({"type": "dense", "units": 128, "activation": "swish"}, 4),
     "layers[4].activation", "'swish'"),
    (spec_with_layer({"type": "conv2d", "activation": "Relu"}), "layers[0].activation", "'Relu'"),
    (spec_with_layer({"type": "conv2d", "fliters": 32}), "layers[0].fliters", "unknown key"),
    (spec_with_layer({"type": "convolution"}), "layers[0].type", "'convolution'"),
    (spec_with_layer({"type": "conv2d", "filters": "32"}), "layers[0].filters", "'32'"),
    (spec_with_layer({"type": "conv2d", "filters": 2.5}), "layers[0].filters", "2.5"),
    (spec_with_layer({"type": "conv2d", "filters": True}), "layers[0].filters", "True"),
    (spec_with_layer({"type": "conv2d", "filters": float("nan")}), "layers[0].filters", "nan"),
    (spec_with_layer({"type": "conv2d", "padding": "full"}), "layers[0].padding", "'full'"),
    (spec_with_layer({"type": "maxpool2d", "strides": 0}, 1), "layers[1].strides", "0"),
    (spec_with_layer("conv2d"), "layers[0]", "'conv2d'"),
    ({**EXAMPLE, "training": {"learning_rate": float("nan")}}, "training.learning_rate", "nan"),
    ({**EXAMPLE, "training": {"learning_rate": float("inf")}}, "training.learning_rate", "inf"),
    ({**EXAMPLE, "training": {"learning_rate": 0}}, "training.learning_rate", "0"),
    ({**EXAMPLE, "training": {"epochs": "5"}}, "training.epochs", "'5'"),
    ({**EXAMPLE, "training": {"optimizer": "adamw"}}, "training.optimizer", "'adamw'"),
    ({**EXAMPLE, "training": {"nesterov": "yes"}}, "training.nesterov", "'yes'"),
    ({**EXAMPLE, "dataset": {"name": "svhn"}}, "dataset.name", "'svhn'"),
    ({**EXAMPLE, "dataset": {"validation_split": 0.9}}, "dataset.validation_split", "0.9"),
    ({**EXAMPLE, "dataset": {"train_limit": 5}}, "dataset.train_limit", "5"),
    ({**EXAMPLE, "dataset": []}, "dataset", "[]"),
    ({**EXAMPLE, "output": "sigmoid"}, "output", "'sigmoid'"),
    ({**EXAMPLE, "baseline": "resnet"}, "baseline", "'resnet'"),
    ({**EXAMPLE, "name": 7}, "name", "7"),
    ({**EXAMPLE, "layer": []}, "layer", "unknown key"),
    ({**EXAMPLE, "layers": {"type": "flatten"}}, "layers", "{'type': 'flatten'}"),
    ({"dataset": {}}, "layers", "is required"),
]


@pytest.mark.parametrize("doc, field, shown", INVALID, ids=[f"{f}={s}" for _, f, s in INVALID])
def test_invalid_value_names_the_field_and_the_value(doc, field, shown):
    with pytest.raises(SpecError) as err:
        ExperimentSpec.from_dict(doc)
    assert err.value.field == field
    message = str(err.value)
    assert message.startswith(f"{field}: ")
    assert shown in message


def test_nan_in_json_text_is_refused():
    # Python's json module accepts the non-standard NaN literal: validation must still catch it.
    text = json.dumps(EXAMPLE).replace('"rate": 0.25', '"rate": NaN')
    with pytest.raises(SpecError) as err:
        ExperimentSpec.from_json(text)
    assert err.value.field == "layers[2].rate" and "nan" in str(err.value)


@pytest.mark.parametrize("text", ["{", "[1, 2", "", "not json"])
def test_malformed_json_is_a_spec_error(text):
    with pytest.raises(SpecError, match="not valid JSON"):
        ExperimentSpec.from_json(text)


def test_a_huge_document_is_refused_before_parsing():
    with pytest.raises(SpecError, match="at most"):
        ExperimentSpec.from_json(" " * 1_000_001)


def test_too_many_layers_names_the_count():
    with pytest.raises(SpecError) as err:
        ExperimentSpec.from_dict({"layers": [{"type": "batchnorm"}] * 65})
    assert err.value.field == "layers" and "65" in str(err.value)


def test_learning_rate_schedules_by_hand():
    step = TrainingSpec(learning_rate=0.1, schedule="step", decay_rate=0.5, decay_epochs=2, epochs=6)
    assert [step.learning_rate_at(e) for e in range(5)] == [0.1, 0.1, 0.05, 0.05, 0.025]
    exp = TrainingSpec(learning_rate=1.0, schedule="exponential", decay_rate=0.5)
    assert [exp.learning_rate_at(e) for e in range(3)] == [1.0, 0.5, 0.25]
    cosine = TrainingSpec(learning_rate=1.0, schedule="cosine", epochs=4)
    # 0.5 * (1 + cos(pi * e / 4)) for e = 0, 2, 4 is 1, 1/2, 0
    assert [cosine.learning_rate_at(e) for e in (0, 2)] == [1.0, pytest.approx(0.5)]
    assert math.isclose(cosine.learning_rate_at(4), 0.0, abs_tol=1e-12)
    assert TrainingSpec(learning_rate=0.3, schedule="plateau").learning_rate_at(7) == 0.3


def test_describe_and_defaults_of_pools():
    assert AvgPool2D(3).effective_strides == 3
    assert MaxPool2D(3, 1).effective_strides == 1
    assert "2×2" in MaxPool2D().describe()


# ---------------------------------------------------------------------------
# Names are plain text (issue 12, item 3)


@pytest.mark.parametrize("name, why", [
    ("\ud800", "lone surrogate"),               # valid JSON ("\\ud800"); crashed every page that drew it
    ("a\nb", "control character"),
    ("bell\x07", "control character"),
    ("x" * 121, "121 characters long"),
])
def test_a_name_that_is_not_plain_text_is_refused_naming_the_field(name, why):
    doc = json.loads(PRESETS["chollet-cnn"].experiment().to_json())
    doc["name"] = name
    with pytest.raises(SpecError, match=f"^name: .*{why}"):
        ExperimentSpec.from_dict(doc)
    text = json.dumps(doc)  # through JSON too, as an upload or a draft arrives
    with pytest.raises(SpecError, match=why):
        ExperimentSpec.from_json(text)


def test_names_in_any_script_are_fine():
    for name in ("Réseau à 3 couches", "卷积网络", "مرحبا", "CNN 🧠", "x" * 120):
        assert ExperimentSpec.from_dict({**PRESETS["dense-128"].experiment().to_dict(), "name": name}).name == name
