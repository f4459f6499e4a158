"""Uploads are hostile until proven otherwise: .keras models, spec JSON files, images, the canvas.

Each refusal must be an UploadError (or SpecError for spec content) whose message gives the
reason; nothing else may escape. Fuzzed cases are tallied into RELIABILITY_TALLY for
docs/RELIABILITY.md.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.drawing import preprocess_drawing
from cnnkit.errors import CnnkitError, SpecError
from cnnkit.lab import hostile
from cnnkit.model.keras_file import check_keras_archive, check_model_config
from cnnkit.model.uploads import (
    MAX_SPEC_BYTES,
    UploadError,
    load_image_upload,
    load_uploaded_model,
    output_kind,
    read_spec_upload,
    read_upload,
)
from cnnkit.presets import PRESETS
from cnnkit.specs import ExperimentSpec

MNIST = get_dataset_info("mnist")
CIFAR = get_dataset_info("cifar10")
TALLY: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_tally():
    yield
    print(f"\nRELIABILITY_TALLY uploads {dict(sorted(TALLY.items()))}")


# ---------------------------------------------------------------------------
# Model files, made once per module (building and saving a tiny model takes ~0.2 s)


def _save(model) -> bytes:
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = f"{folder}/m.keras"
        model.save(path)
        with open(path, "rb") as handle:
            return handle.read()


@pytest.fixture(scope="module")
def keras():
    from cnnkit.model.tf_import import keras

    return keras


@pytest.fixture(scope="module")
def good(keras):
    from cnnkit.model.models import build_model
    from cnnkit.specs import Conv2D, Dense, Flatten, MaxPool2D

    model = build_model((Conv2D(4, 3), MaxPool2D(), Flatten(), Dense(8)), (28, 28, 1), 10)
    return model, _save(model)


def _functional(keras, middle, input_shape=(28, 28, 1), classes=10):
    inputs = keras.Input(input_shape)
    x = middle(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


@pytest.fixture(scope="module")
def lambda_file(keras):
    return _save(_functional(keras, keras.layers.Lambda(lambda t: t * 2.0)))


@pytest.fixture(scope="module")
def custom_file(keras):
    @keras.saving.register_keras_serializable(package="cnnkit_test_evil")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2.0

    return _save(_functional(keras, Doubler()))


def _rezip(raw: bytes, edit=None, extra: dict | None = None) -> bytes:
    """A copy of a .keras archive with config.json edited and/or extra members added."""
    return hostile.rezip(raw, config=edit, extra=extra)


def _layers(config):
    return config["config"]["layers"]


def refused(raw, info=MNIST, **kwargs) -> str:
    with pytest.raises(UploadError) as caught:
        load_uploaded_model(raw, info, **kwargs)
    TALLY["model refused"] += 1
    return str(caught.value)


# ---------------------------------------------------------------------------
# A good model


def test_good_model_is_accepted_and_predicts_like_the_original(good):
    original, raw = good
    model = load_uploaded_model(raw, MNIST)
    pixels = np.random.default_rng(0).uniform(0, 255, (5, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(model.predict(pixels, verbose=0), original.predict(pixels, verbose=0),
                               rtol=1e-5, atol=1e-6)
    assert output_kind(model) == "softmax"
    TALLY["model accepted"] += 1


def test_accepts_a_file_object_and_a_path(good, tmp_path):
    _, raw = good
    path = tmp_path / "m.keras"
    path.write_bytes(raw)
    assert load_uploaded_model(io.BytesIO(raw), MNIST).count_params() == good[0].count_params()
    assert load_uploaded_model(str(path), MNIST).count_params() == good[0].count_params()


def test_logits_model_is_recognised(keras):
    from cnnkit.model.models import build_model
    from cnnkit.specs import Dense, Flatten

    model = build_model((Flatten(), Dense(4)), (28, 28, 1), 10, output="logits")
    assert output_kind(load_uploaded_model(_save(model), MNIST)) == "logits"


# ---------------------------------------------------------------------------
# Code and custom objects


def test_lambda_layer_is_refused_before_keras_sees_it(lambda_file):
    message = refused(lambda_file)
    assert "Lambda" in message and "layer 'lambda" in message


def test_keras_safe_mode_is_the_second_wall(lambda_file, tmp_path):
    # Even without our config check, loading with safe_mode=True refuses the Lambda's bytecode.
    from cnnkit.model.models import load_model

    path = tmp_path / "lambda.keras"
    path.write_bytes(lambda_file)
    with pytest.raises(ValueError, match="(?i)lambda|safe_mode"):
        load_model(path)


def test_custom_layer_is_refused(custom_file):
    message = refused(custom_file)
    assert "custom class 'Doubler'" in message and "cnnkit_test_evil>Doubler" in message


def test_foreign_module_is_refused(good):
    def poison(config):
        _layers(config)[2]["module"] = "os"
        _layers(config)[2]["class_name"] = "system"

    message = refused(_rezip(good[1], poison))
    assert "'system'" in message and "'os'" in message and "conv2d_1" in message


@pytest.mark.parametrize("class_name", ["TFSMLayer", "TextVectorization", "StringLookup", "TorchModuleWrapper"])
def test_builtin_layers_that_touch_files_or_code_are_refused(good, class_name):
    def swap(config):
        _layers(config)[3]["class_name"] = class_name

    message = refused(_rezip(good[1], swap))
    assert class_name in message and "not accepted" in message


def test_custom_initializer_is_refused(good):
    def swap(config):
        _layers(config)[2]["config"]["kernel_initializer"] = {
            "module": None, "class_name": "Evil", "config": {}, "registered_name": "x>Evil"}

    assert "custom class 'Evil'" in refused(_rezip(good[1], swap))


def test_compile_config_is_ignored_not_trusted(good):
    # Models load with compile=False, so Keras never reads compile_config; we don't either.
    def add(config):
        config["compile_config"] = {"loss": {"module": "os", "class_name": "system"}}

    assert load_uploaded_model(_rezip(good[1], add), MNIST) is not None


def test_top_level_must_be_a_model(good):
    def swap(config):
        config["class_name"] = "Dense"
        config["module"] = "keras.layers"

    assert "Sequential or Functional" in refused(_rezip(good[1], swap))


# ---------------------------------------------------------------------------
# Broken files


def test_truncated_files_are_refused_at_every_cut(good):
    raw = good[1]
    for cut in np.linspace(1, len(raw) - 1, 25).astype(int):
        message = refused(raw[:cut])
        assert "truncated" in message or "not a .keras model" in message


def test_a_flipped_byte_in_the_weights_fails_the_checksum(good):
    raw = bytearray(good[1])
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        info = archive.getinfo("model.weights.h5")
    middle = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    raw[middle] ^= 0xFF
    message = refused(bytes(raw))
    assert "damaged" in message or "truncated" in message


@pytest.mark.parametrize("raw, kind", [
    (b"just some text", "some other kind of file"),
    (b"\x89HDF\r\n\x1a\n" + bytes(100), "HDF5"),
    (b'{"layers": []}', "JSON text"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "an image"),
])
def test_non_zip_files_are_refused_with_what_they_look_like(raw, kind):
    message = refused(raw)
    assert "not a .keras model" in message and kind in message


def test_empty_and_oversize_files(good):
    assert "empty" in refused(b"")
    assert "larger than the limit" in refused(good[1], max_bytes=1000)


def test_wrong_object_type():
    assert "expected the model file's bytes" in refused(12345)


def test_strange_members_are_refused(good):
    message = refused(_rezip(good[1], extra={"../../etc/cron.d/evil": b"x"}))
    assert "never has" in message and "etc/cron.d" in message


def test_missing_weights_member(good):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good[1])) as src, zipfile.ZipFile(out, "w") as dst:
        dst.writestr("config.json", src.read("config.json"))
    assert "no model.weights.h5" in refused(out.getvalue())


def test_zip_bomb_is_refused_before_unpacking(good):
    # 60 MB of zeros deflates to ~60 kB; the declared size is what we check.
    bomb = _rezip(good[1], extra={})
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bomb)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        dst.writestr("config.json", src.read("config.json"))
        dst.writestr("model.weights.h5", bytes(60_000_000))
    raw = out.getvalue()
    assert len(raw) < 1_000_000
    assert "unpacks to 60 MB" in refused(raw, max_params=100_000)


def test_bad_config_json(good):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good[1])) as src, zipfile.ZipFile(out, "w") as dst:
        dst.writestr("config.json", b"{not json")
        dst.writestr("model.weights.h5", src.read("model.weights.h5"))
    assert "not valid JSON" in refused(out.getvalue())


# ---------------------------------------------------------------------------
# Models that load but do not fit the dataset


def test_wrong_input_shape_is_refused(keras, good):
    message = refused(good[1], CIFAR)
    assert "28×28×1" in message and "32×32×3" in message
    flat = _save(_functional(keras, keras.layers.Identity(), input_shape=(28, 28)))
    assert "28×28" in refused(flat)


def test_wrong_number_of_classes_is_refused(keras):
    message = refused(_save(_functional(keras, keras.layers.Identity(), classes=5)))
    assert "10 classes" in message and "Dense(10)" in message


def test_two_inputs_are_refused(keras):
    a, b = keras.Input((28, 28, 1)), keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(keras.layers.Add()([a, b]))
    model = keras.Model([a, b], keras.layers.Dense(10)(x))
    assert "2 inputs" in refused(_save(model))


def test_parameter_cap(good):
    assert "parameters; this server allows 100" in refused(good[1], max_params=100)


# ---------------------------------------------------------------------------
# Fuzz: random damage to a good archive, random junk in its config


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_damaged_archives_are_refused_or_load(good, data):
    raw = bytearray(good[1])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    try:
        model = load_uploaded_model(bytes(raw), MNIST)
    except UploadError as exc:
        assert str(exc)
        TALLY["fuzz archive refused"] += 1
    else:
        assert model.count_params() == good[0].count_params()  # the damage missed anything that matters
        TALLY["fuzz archive loaded"] += 1


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_config_contents_only_raise_upload_error(good, data):
    config = json.loads(zipfile.ZipFile(io.BytesIO(good[1])).read("config.json"))
    # Walk to a random dict in the config and put a random value under a random key.
    node = config
    for _ in range(data.draw(st.integers(0, 6))):
        children = [v for v in (node.values() if isinstance(node, dict) else node)
                    if isinstance(v, (dict, list)) and v]
        if not children:
            break
        node = data.draw(st.sampled_from(children))
    key = data.draw(st.sampled_from(["module", "class_name", "registered_name", "config", "name", "extra"]))
    value = data.draw(JSON_VALUES)
    if isinstance(node, dict):
        node[key] = value
    else:
        node[data.draw(st.integers(0, len(node) - 1))] = value
    try:
        check_model_config(config)
        TALLY["fuzz config passed check"] += 1
    except UploadError as exc:
        assert 0 < len(str(exc)) < 2000
        TALLY["fuzz config refused"] += 1


def test_deeply_nested_config_is_refused_without_recursion_error(good):
    deep = "[" * 100_000 + "]" * 100_000
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(good[1])) as src, zipfile.ZipFile(out, "w") as dst:
        dst.writestr("config.json", deep)
        dst.writestr("model.weights.h5", src.read("model.weights.h5"))
    with pytest.raises(UploadError):
        check_keras_archive(out.getvalue(), max_uncompressed=10**9)


# ---------------------------------------------------------------------------
# Spec JSON uploads


def _spec_bytes(name="chollet-cnn") -> bytes:
    return PRESETS[name].experiment().to_json().encode()


def test_every_preset_round_trips_through_an_upload():
    for name, preset in PRESETS.items():
        spec = preset.experiment()
        assert read_spec_upload(spec.to_json().encode()) == spec, name
        assert read_spec_upload(io.BytesIO(spec.to_json().encode())) == spec


def test_spec_with_a_bom_is_read():
    assert read_spec_upload(b"\xef\xbb\xbf" + _spec_bytes()).layers


@pytest.mark.parametrize("raw, words", [
    (b"", "empty"),
    (b"\xff\xfe{\x00}\x00", "not UTF-8"),
    (b'{"layers": []}\x00', "NUL"),
    (b"{'layers': []}", "not valid JSON"),
    (b"[1, 2, 3]", "holds a list"),
    (b"null", "holds a NoneType"),
    (b"[" * 50_000 + b"]" * 50_000, "nested too deeply"),
    (b" " * (MAX_SPEC_BYTES + 1), "larger than the limit"),
])
def test_bad_spec_files_are_refused_with_the_reason(raw, words):
    with pytest.raises(UploadError, match=words):
        read_spec_upload(raw)


def test_spec_content_errors_name_the_field():
    data = json.loads(_spec_bytes())
    data["layers"][0]["kernel_size"] = -3
    with pytest.raises(SpecError) as caught:
        read_spec_upload(json.dumps(data).encode())
    assert caught.value.field == "layers[0].kernel_size"
    assert "between 1 and" in str(caught.value)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400) | JSON_VALUES.map(lambda v: json.dumps(v).encode()))
def test_fuzz_spec_files_raise_only_cnnkit_errors(raw):
    try:
        spec = read_spec_upload(raw)
    except CnnkitError as exc:
        assert str(exc)
        TALLY["fuzz spec file refused"] += 1
    else:
        assert isinstance(spec, ExperimentSpec)
        TALLY["fuzz spec file accepted"] += 1


def test_read_upload_never_reads_past_the_limit():
    class Endless(io.RawIOBase):
        def readable(self):
            return True

        def read(self, n=-1):
            assert n != -1, "read everything from an endless upload"
            return b"x" * n

    with pytest.raises(UploadError, match="larger than the limit"):
        read_upload(Endless(), 1000)


# ---------------------------------------------------------------------------
# Images and the canvas


def _png(array) -> bytes:
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG")
    return out.getvalue()


def test_image_upload_checks():
    digit = np.zeros((40, 40), np.uint8)
    digit[8:32, 18:22] = 255
    assert load_image_upload(_png(digit)).shape == (40, 40)
    with pytest.raises(UploadError, match="not an image"):
        load_image_upload(b"%PDF-1.4 not an image")
    with pytest.raises(UploadError, match="larger than the limit"):
        load_image_upload(_png(digit), max_bytes=50)
    with pytest.raises(UploadError, match="too many pixels"):
        load_image_upload(_png(np.zeros((100, 100), np.uint8)), max_pixels=5000)
    with pytest.raises(UploadError, match="damaged or truncated|not an image"):
        load_image_upload(_png(digit)[:-30])


def _canvas(size=280):
    return np.zeros((size, size, 4), np.uint8)  # what streamlit-drawable-canvas returns: RGBA


def _disk(canvas, cy, cx, radius):
    yy, xx = np.ogrid[: canvas.shape[0], : canvas.shape[1]]
    canvas[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = (255, 255, 255, 255)
    return canvas


@pytest.mark.parametrize("name, canvas, statuses", [
    ("empty", _canvas(), {"empty"}),
    ("single dot", _disk(_canvas(), 140, 140, 0), {"empty", "too_small"}),
    ("small dot", _disk(_canvas(), 140, 140, 4), {"too_small"}),
    ("filled", np.full((280, 280, 4), 255, np.uint8), {"filled"}),
    ("huge brush", _disk(_canvas(), 140, 140, 150), {"filled"}),
    ("huge brush off-centre", _disk(_canvas(), 10, 10, 120), {"ok"}),
])
def test_canvas_edge_cases_give_a_status_and_message(name, canvas, statuses):
    result = preprocess_drawing(canvas)
    assert result.status in statuses, name
    assert result.ok == (result.image is not None)
    assert result.ok or result.message
    TALLY["canvas case"] += 1


@settings(max_examples=150, deadline=None)
@given(strokes=st.lists(st.tuples(st.integers(-50, 330), st.integers(-50, 330), st.integers(0, 160)),
                        max_size=6),
       size=st.sampled_from([28, 100, 280]))
def test_fuzz_canvas_never_raises(strokes, size):
    canvas = _canvas(size)
    for cy, cx, radius in strokes:
        _disk(canvas, cy * size // 280, cx * size // 280, radius * size // 280)
    result = preprocess_drawing(canvas)
    assert result.status in ("ok", "empty", "too_small", "filled")
    if result.ok:
        assert result.image.shape == (28, 28) and np.isfinite(result.image).all()
        assert 0.99 <= result.image.max() <= 1.0
    else:
        assert result.message
    TALLY[f"fuzz canvas {result.status}"] += 1
