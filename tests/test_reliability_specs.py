"""Hostile and random specs (issue 5): every document either becomes a model whose shapes and
parameter count equal the shape calculator's, or is refused with a SpecError/ArchitectureError
whose message names the field (and the layer). No other exception type, ever.

The pipeline under test is what the Build page, a spec upload and `cnnkit train --spec` do:
`ExperimentSpec.from_dict` (or `from_json`) → `shapes.summarize_spec` → `limits.check_spec`
→ (for a few hundred small ones) `models.build_model`. Outcomes are tallied and printed as
`RELIABILITY_TALLY specs {...}` (run pytest with -s to see them); docs/RELIABILITY.md quotes them.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnnkit.data.catalog import get_dataset_info
from cnnkit.errors import ArchitectureError, SpecError
from cnnkit.limits import Limits, check_spec
from cnnkit.presets import PRESETS
from cnnkit.shapes import summarize, summarize_spec
from cnnkit.specs import ExperimentSpec
from tests import oracles

# Megabyte-long strings are part of the attack; Hypothesis warns when it prints them.
pytestmark = pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisWarning")

TALLY: Counter = Counter()
MIN_EXAMPLES = 1000        # the floor, across this module's property tests
MAX_MESSAGE = 600          # a message people read; anything longer is a dump, not a reason
DATASETS = ("mnist", "fashion_mnist", "cifar10")


def examples_run() -> int:
    return sum(count for key, count in TALLY.items() if key.startswith(("valid", "hostile", "json")))


@pytest.fixture(scope="module", autouse=True)
def _report_tally():
    yield
    print(f"\nRELIABILITY_TALLY specs total={examples_run()} {dict(sorted(TALLY.items()))}")


# ---------------------------------------------------------------------------
# Strategies: plausible layers, and networks built from them (some impossible on purpose)

ACT = st.sampled_from(["relu", "sigmoid", "tanh", "elu", "selu", "linear"])
PAD = st.sampled_from(["valid", "same"])


def small_int(lo, hi, big):
    """Mostly small values, sometimes up to the spec's hard bound."""
    return st.integers(lo, hi) | st.integers(lo, big)


CONV = st.builds(lambda f, k, s, p, a: {"type": "conv2d", "filters": f, "kernel_size": k, "strides": s,
                                        "padding": p, "activation": a},
                 small_int(1, 16, 96), small_int(1, 5, 31), small_int(1, 2, 16), PAD, ACT)
POOL = st.builds(lambda t, k, s, p: {"type": t, "pool_size": k, "strides": s, "padding": p},
                 st.sampled_from(["maxpool2d", "avgpool2d"]), small_int(1, 3, 31),
                 st.none() | small_int(1, 3, 16), PAD)
DENSE = st.builds(lambda u, a: {"type": "dense", "units": u, "activation": a}, small_int(1, 64, 512), ACT)
DROPOUT = st.builds(lambda r: {"type": "dropout", "rate": r}, st.floats(0.0, 0.95))
PLAIN = st.sampled_from([{"type": "batchnorm"}, {"type": "flatten"}, {"type": "globalavgpool"}])
ANY_LAYER = st.one_of(CONV, POOL, DENSE, DROPOUT, PLAIN)


@st.composite
def networks(draw, sensible: float = 0.5):
    """Often a sensible stack (spatial → flatten/GAP → dense); otherwise any order."""
    if draw(st.floats(0, 1)) < sensible:
        spatial = draw(st.lists(st.one_of(CONV, POOL, DROPOUT, st.just({"type": "batchnorm"})), max_size=5))
        bridge = draw(st.sampled_from([{"type": "flatten"}, {"type": "globalavgpool"}]))
        head = draw(st.lists(st.one_of(DENSE, DROPOUT, st.just({"type": "batchnorm"})), max_size=3))
        return [*spatial, bridge, *head]
    return draw(st.lists(ANY_LAYER, max_size=7))


@st.composite
def spec_dicts(draw, sensible: float = 0.5):
    return {
        "dataset": {"name": draw(st.sampled_from(DATASETS)),
                    "normalization": draw(st.sampled_from(["none", "scale", "standardize"])),
                    "validation_split": draw(st.floats(0.0, 0.5)),
                    "train_limit": draw(st.none() | st.integers(10, 60_000))},
        "layers": draw(networks(sensible)),
        "training": {"optimizer": draw(st.sampled_from(["adam", "rmsprop", "sgd", "adagrad"])),
                     "learning_rate": draw(st.floats(1e-5, 10.0)),
                     "batch_size": draw(small_int(1, 256, 8192)),
                     "epochs": draw(small_int(1, 20, 1000)),
                     "seed": draw(st.integers(0, 2**31 - 1)),
                     "momentum": draw(st.floats(0.0, 0.99)),
                     "schedule": draw(st.sampled_from(["constant", "step", "exponential", "cosine", "plateau"]))},
        "output": draw(st.sampled_from(["softmax", "logits"])),
        "baseline": draw(st.sampled_from([None, "dense-128", "matched"])),
        # plain text: any script, but no control character or lone surrogate (those are refused)
        "name": draw(st.none() | st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)),
    }


# ---------------------------------------------------------------------------
# The oracle for a spec that passed validation


def check_architecture_error(exc: ArchitectureError, spec: ExperimentSpec) -> None:
    """An impossible network is refused naming the layer: "layers[i]: layer i+1 (Conv2D …) …"."""
    assert exc.field.startswith("layers"), exc.field
    message = str(exc)
    assert len(message) < MAX_MESSAGE
    if exc.field != "layers":
        index = int(exc.field[len("layers["):-1])
        assert f"layer {index + 1} ({spec.layers[index].describe()})" in message, message


def through_the_calculator(spec: ExperimentSpec, limits: Limits):
    """summarize_spec + check_spec: a summary, or None after checking the refusal's message."""
    try:
        summary = summarize_spec(spec)
    except ArchitectureError as exc:
        check_architecture_error(exc, spec)
        TALLY["valid → refused: impossible network"] += 1
        return None
    info = get_dataset_info(spec.dataset.name)
    assert summary.layers[-1].output_shape == (info.num_classes,)
    assert summary.total_params == sum(row.params for row in summary.layers)
    assert len(summary.layers) == len(spec.layers) + 1
    try:
        check_spec(spec, limits)
    except SpecError as exc:
        assert exc.field in ("training.epochs", "training.batch_size", "layers"), exc.field
        assert "this server" in str(exc) and len(str(exc)) < MAX_MESSAGE
        if exc.field == "layers":
            too_many = summary.total_params > limits.max_params
            assert ("parameters" in str(exc)) == too_many
        TALLY[f"valid → refused by a cap ({exc.field})"] += 1
        return None
    assert summary.total_params <= limits.max_params
    return summary


# ---------------------------------------------------------------------------
# 1. Random valid documents: validation, round trip, calculator, caps


@settings(max_examples=300, deadline=None)
@given(spec_dicts())
def test_valid_documents_round_trip_and_pass_the_calculator_or_are_refused_by_layer(doc):
    spec = ExperimentSpec.from_dict(doc)
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    assert ExperimentSpec.from_json(spec.to_json()) == spec
    summary = through_the_calculator(spec, Limits())
    if summary is not None:
        TALLY["valid → accepted (calculator)"] += 1


# ---------------------------------------------------------------------------
# 2. A few hundred small ones are really built: Keras agrees with the calculator layer by layer


@pytest.fixture(scope="module")
def keras_models():
    from cnnkit.model import models

    return models


SMALL_LIMITS = Limits(max_params=300_000, max_activation_mb=1e9, max_epochs=1000, max_batch_size=65536)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.filter_too_much])
@given(doc=spec_dicts(sensible=0.9))
def test_buildable_specs_match_keras_shapes_and_params(keras_models, doc):
    spec = ExperimentSpec.from_dict(doc)
    summary = through_the_calculator(spec, SMALL_LIMITS)  # small: building stays ~50 ms
    if summary is None:
        return
    info = get_dataset_info(spec.dataset.name)
    model = keras_models.build_model(spec.layers, info.input_shape, info.num_classes, output=spec.output,
                                     normalization="scale", weight_decay=spec.training.weight_decay)
    rows = {row.name: row for row in summary.layers}
    built = oracles.spec_layers(model)
    assert [layer.name for layer in built] == [row.name for row in summary.layers]
    for layer in built:
        row = rows[layer.name]
        assert tuple(layer.output.shape[1:]) == row.output_shape, layer.name
        assert layer.count_params() == row.params, layer.name
    assert model.count_params() == summary.total_params
    TALLY["valid → built, Keras == calculator"] += 1


# ---------------------------------------------------------------------------
# 3. Hostile documents: one targeted mutation, so we know which field must be named

HUGE_TEXT = "A" * 1_000_000


def deep(levels: int):
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


HOSTILE_VALUES = st.one_of(
    st.sampled_from([None, True, False, 0, -1, -10**9, 10**18, 2**63, 10**400, 1e308, -1e308,
                     float("nan"), float("inf"), float("-inf"), 0.5, -0.0, 1e-320, "", "0", "relu ",
                     "ADAM", "mnist\x00", "🙂" * 50, [], {}, [1, 2], {"type": "conv2d"}, HUGE_TEXT,
                     "\u202e", "<script>alert(1)</script>", "../../etc/passwd"]),
    st.integers(), st.floats(), st.text(max_size=30),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.integers(50, 3000).map(deep),
)

SECTION_FIELDS = {
    "dataset": ["name", "normalization", "validation_split", "train_limit", "test_limit"],
    "training": ["optimizer", "learning_rate", "batch_size", "epochs", "seed", "momentum", "nesterov",
                 "schedule", "decay_rate", "decay_epochs", "weight_decay"],
}
TOP_FIELDS = ["output", "baseline", "name", "preset"]
REQUIRED = {"": {"layers"}}


def _base_docs():
    return [preset.experiment().to_dict() for preset in PRESETS.values()]


@st.composite
def mutations(draw):
    """(document, the field the error must name or None if it may be valid, what was done)."""
    # A JSON round trip, not deepcopy: strategies reuse dict objects, and deepcopy keeps them shared.
    doc = json.loads(json.dumps(draw(st.sampled_from(_base_docs()) | spec_dicts())))
    kind = draw(st.sampled_from(["value", "value", "value", "layer value", "layer value", "unknown key",
                                 "missing key", "section", "layer", "layers", "document"]))
    value = draw(HOSTILE_VALUES)
    if kind == "value":
        section = draw(st.sampled_from(["dataset", "training", ""]))
        key = draw(st.sampled_from(SECTION_FIELDS.get(section, TOP_FIELDS)))
        (doc[section] if section else doc)[key] = value
        return doc, f"{section}.{key}" if section else key, kind
    if kind == "layer value" and doc["layers"]:
        index = draw(st.integers(0, len(doc["layers"]) - 1))
        layer = doc["layers"][index]
        key = draw(st.sampled_from(sorted(layer)))
        layer[key] = value
        return doc, f"layers[{index}].{key}", kind
    if kind == "unknown key":
        key = draw(st.text(min_size=1, max_size=30) | st.just("x" * 100_000))
        where = draw(st.sampled_from(["", "dataset", "training", "layer"]))
        if where == "layer":
            if not doc["layers"]:
                return doc, None, kind
            index = draw(st.integers(0, len(doc["layers"]) - 1))
            if key in doc["layers"][index]:
                return doc, None, kind
            doc["layers"][index][key] = value
            return doc, f"layers[{index}]", kind      # the error is "layers[i].<key>: unknown key"
        target = doc[where] if where else doc
        if key in target:
            return doc, None, kind
        target[key] = value
        return doc, where, kind
    if kind == "missing key":
        del doc["layers"]
        return doc, "layers", kind
    if kind == "section":
        section = draw(st.sampled_from(["dataset", "training"]))
        doc[section] = value
        return doc, section, kind
    if kind == "layer" and doc["layers"]:
        index = draw(st.integers(0, len(doc["layers"]) - 1))
        doc["layers"][index] = value
        return doc, f"layers[{index}]", kind
    if kind == "layers":
        doc["layers"] = draw(st.sampled_from([value, [{"type": "flatten"}] * 65, [{"type": "dense"}] * 10_000]))
        return doc, "layers", kind
    return value, "", "document"


def run_pipeline(doc):
    """What the app does with a document; returns the outcome name. Only spec errors may escape."""
    spec = ExperimentSpec.from_dict(doc)
    try:
        summarize_spec(spec)
        check_spec(spec, Limits())
    except ArchitectureError as exc:
        check_architecture_error(exc, spec)
        return "valid document, refused: impossible network"
    except SpecError as exc:
        assert "this server" in str(exc)
        return "valid document, refused by a cap"
    return "valid document, accepted"


@settings(max_examples=550, deadline=None)
@given(mutations())
def test_hostile_documents_are_refused_naming_the_field(case):
    doc, field, kind = case
    try:
        outcome = run_pipeline(doc)
    except SpecError as exc:
        message = str(exc)
        assert len(message) < MAX_MESSAGE, f"{len(message)}-character message for {kind}"
        assert isinstance(exc.field, str)
        if exc.field:
            assert message.startswith(exc.field)
        if field is not None and field != "":
            # The error names the mutated field, or a field inside it (a section → its key).
            assert exc.field == field or exc.field.startswith(field + ".") or \
                exc.field.startswith(field + "["), (kind, field, exc.field, message)
        TALLY[f"hostile → refused ({kind})"] += 1
        return
    TALLY[f"hostile → {outcome} ({kind})"] += 1


# ---------------------------------------------------------------------------
# 4. The same through JSON text, as an upload or `--spec FILE` arrives


@settings(max_examples=150, deadline=None)
@given(mutations())
def test_hostile_json_text_raises_only_spec_errors(case):
    doc, _, kind = case
    try:
        text = json.dumps(doc)
    except (ValueError, RecursionError):
        assume(False)  # not representable as JSON text (e.g. a 400-digit int): covered above
    try:
        spec = ExperimentSpec.from_json(text)
    except SpecError as exc:
        assert len(str(exc)) < MAX_MESSAGE
        TALLY[f"json → refused ({kind})"] += 1
        return
    assert ExperimentSpec.from_json(spec.to_json()) == spec
    TALLY["json → accepted"] += 1


def test_the_property_tests_above_ran_at_least_1000_examples():
    """Pytest keeps file order, so the four property tests above have run (unless deselected)."""
    if not all(any(key.startswith(prefix) for key in TALLY) for prefix in ("valid", "hostile", "json")):
        pytest.skip("run the whole module to count the examples")
    assert examples_run() >= MIN_EXAMPLES


# ---------------------------------------------------------------------------
# Hand-made nasties worth naming one by one


@pytest.mark.parametrize("doc, field", [
    ({"layers": [{"type": "conv2d", "filters": float("nan")}]}, "layers[0].filters"),
    ({"layers": [{"type": "conv2d", "filters": 10**5000}]}, "layers[0].filters"),
    ({"layers": [{"type": "dense", "units": -1}]}, "layers[0].units"),
    ({"layers": [], "training": {"learning_rate": float("inf")}}, "training.learning_rate"),
    ({"layers": [], "training": {"epochs": 1e308}}, "training.epochs"),
    ({"layers": [], "dataset": {"name": deep(5000)}}, "dataset.name"),
    ({"layers": [deep(5000)]}, "layers[0]"),
    ({"layers": [], "x" * 1_000_000: 1}, "x" * 20),
    ({"layers": [{"type": "dense", "y" * 1_000_000: 1}]}, "layers[0]"),
    ({"layers": [], "name": HUGE_TEXT}, "name"),
    ({"layers": [{"type": HUGE_TEXT}]}, "layers[0].type"),
    ({"layers": [{"type": "dense", "units": True}]}, "layers[0].units"),
])
def test_named_nasties(doc, field):
    with pytest.raises(SpecError) as caught:
        ExperimentSpec.from_dict(doc)
    assert caught.value.field.startswith(field)
    assert len(str(caught.value)) < MAX_MESSAGE


def test_an_impossible_network_names_the_layer():
    doc = {"layers": [{"type": "conv2d", "kernel_size": 5}, {"type": "maxpool2d", "pool_size": 2}] * 3
           + [{"type": "flatten"}]}
    spec = ExperimentSpec.from_dict(doc)
    with pytest.raises(ArchitectureError) as caught:
        summarize_spec(spec)
    # 28 → 24 → 12 → 8 → 4 → then a 5×5 window on a 4×4 map: layer 5.
    assert caught.value.field == "layers[4]"
    assert "layer 5 (Conv2D 32 × 5×5" in str(caught.value) and "only 4×4" in str(caught.value)


def test_the_caps_are_checked_with_the_calculator_before_building():
    doc = {"layers": [{"type": "flatten"}, {"type": "dense", "units": 16384},
                      {"type": "dense", "units": 16384}]}
    spec = ExperimentSpec.from_dict(doc)
    params = summarize(spec.layers, (28, 28, 1), 10).total_params
    assert params == 784 * 16384 + 16384 + 16384 * 16384 + 16384 + 16384 * 10 + 10
    with pytest.raises(SpecError, match=f"{params:,} parameters"):
        check_spec(spec, Limits())
    assert math.isclose(params / 1e6, 281.5, rel_tol=1e-3)
