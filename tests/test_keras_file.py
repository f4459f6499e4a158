"""The model-file walls: what config.json implies is computed before anything is built (an
oracle: Keras' own count_params and output shapes), and every hostile file is refused by the
upload path and by the numpy loader, with a message naming the reason."""

from __future__ import annotations

import io
import json
import resource
import zipfile

import numpy as np
import pytest

from cnnkit.data.catalog import get_dataset_info
from cnnkit.errors import RunError, UploadError
from cnnkit.lab import hostile
from cnnkit.model.keras_config import config_budget
from cnnkit.model.keras_file import check_weights_file, read_keras_file
from cnnkit.presets import PRESETS

MNIST = get_dataset_info("mnist")
CAPS = {"max_params": 20_000_000, "max_activation_mb": 600.0}


@pytest.fixture(scope="module")
def keras():
    from cnnkit.model.tf_import import keras

    return keras


def _save(model) -> bytes:
    buffer = io.BytesIO()
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        model.save(f"{folder}/m.keras")
        buffer.write(open(f"{folder}/m.keras", "rb").read())
    return buffer.getvalue()


def _config(raw: bytes) -> dict:
    return json.loads(zipfile.ZipFile(io.BytesIO(raw)).read("config.json"))


@pytest.fixture(scope="module")
def good(keras):
    """A model saved the way the source articles' scripts save theirs."""
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(10, activation="softmax"),
    ])
    return _save(model)


def _zoo(keras):
    """Models using every accepted layer kind, Sequential and Functional."""
    L = keras.layers
    yield keras.Sequential([keras.Input((28, 28, 1)), L.Rescaling(1 / 255), L.ZeroPadding2D(((1, 2), (3, 0))),
                            L.Conv2D(6, (3, 5), strides=(2, 1), padding="same", use_bias=False),
                            L.BatchNormalization(), L.ReLU(), L.DepthwiseConv2D(3, depth_multiplier=2),
                            L.SeparableConv2D(7, 3, padding="same"), L.Cropping2D(1), L.AveragePooling2D(3, 2),
                            L.SpatialDropout2D(0.1), L.LayerNormalization(), L.PReLU(shared_axes=[1, 2]),
                            L.GlobalMaxPooling2D(keepdims=True), L.Reshape((-1,)), L.Dense(12), L.LeakyReLU(),
                            L.Dense(10), L.Softmax()])
    yield keras.Sequential([keras.Input((32, 32, 3)), L.Conv2D(4, 3, dilation_rate=2, groups=1),
                            L.Conv2D(8, 1, groups=4), L.MaxPooling2D(2, strides=1, padding="same"),
                            L.GlobalAveragePooling2D(), L.Dense(10, activation="softmax")])
    adapted = L.Normalization(axis=-1)
    adapted.adapt(np.random.default_rng(0).random((8, 28, 28, 1)))
    yield keras.Sequential([keras.Input((28, 28, 1)), adapted, L.Flatten(), L.Dense(10)])
    given = L.Normalization(axis=(1, 2, 3), mean=np.zeros((28, 28, 1)), variance=np.ones((28, 28, 1)))
    yield keras.Sequential([keras.Input((28, 28, 1)), given, L.Flatten(), L.Dense(10)])
    inputs = keras.Input((28, 28, 1))
    a = L.Conv2D(4, 3, padding="same")(inputs)
    b = L.Conv2D(4, 1)(inputs)
    x = L.Add()([a, b])
    x = L.Concatenate()([x, L.Multiply()([a, b])])
    x = L.Flatten()(L.MaxPooling2D()(x))
    yield keras.Model(inputs, L.Dense(10)(L.Dropout(0.2)(x)))


def _keras_shapes(model) -> dict[str, tuple]:
    return {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers}


def test_the_budget_equals_keras_for_every_preset_and_every_accepted_layer(keras):
    from cnnkit.model.models import build_model

    models = [build_model(p.layers, get_dataset_info(p.dataset.name).input_shape, 10, normalization="standardize",
                          mean=np.zeros(get_dataset_info(p.dataset.name).input_shape),
                          std=np.ones(get_dataset_info(p.dataset.name).input_shape)) for p in PRESETS.values()]
    for model in models + list(_zoo(keras)):
        budget = config_budget(_config(_save(model)), max_params=10**9, max_activation_floats=10**9)
        assert budget.total_params == model.count_params(), model.name
        shapes = _keras_shapes(model)
        assert {b.name: b.output_shape for b in budget.layers if b.name in shapes} == shapes, model.name
        assert budget.output_shape == tuple(model.outputs[0].shape[1:])


def _refusal(raw: bytes) -> str:
    with pytest.raises(UploadError) as caught:
        read_keras_file(raw, **CAPS)
    return str(caught.value)


@pytest.fixture(scope="module")
def other_h5(tmp_path_factory):
    """The file the link and virtual-dataset attacks point at: a secret that must not be read."""
    path = tmp_path_factory.mktemp("other") / "other.h5"
    import h5py

    with h5py.File(path, "w") as h5:
        h5["secret"] = np.arange(16, dtype=np.float32)
    return str(path)


EXPECTED = {
    "huge Dense in config.json": "750,000,000|CNNKIT_MAX_PARAMS",
    "build_config lies about the input": "declares the input shape 100000000",
    "unbuilt model": "saved before it was built",
    "HDF5 shape bomb": "declares more than",
    "HDF5 external link": "links .* to another file",
    "HDF5 external storage (/etc/passwd)": "stored in an external file",
    "HDF5 virtual dataset": "virtual dataset",
    "all-NaN weights": "NaN or infinite",
    "all-inf weights": "NaN or infinite",
}


def _make(name, good, other_h5):
    make = hostile.HOSTILE[name]
    if name in ("HDF5 external link", "HDF5 virtual dataset"):
        return make(good, other_h5)
    return make(good)


@pytest.mark.parametrize("name", sorted(hostile.HOSTILE))
def test_each_hostile_file_is_refused_before_it_is_built(name, good, other_h5):
    raw = _make(name, good, other_h5)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    message = _refusal(raw)
    assert __import__("re").search(EXPECTED[name], message), message
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mb < 200, f"refusing it grew the peak memory by {grown_mb:.0f} MB"


def test_the_upload_path_and_the_numpy_loader_refuse_them_too(good, other_h5, tmp_path):
    from cnnkit.model.lite import LiteModel
    from cnnkit.model.uploads import load_uploaded_model

    for name in hostile.HOSTILE:
        raw = _make(name, good, other_h5)
        with pytest.raises(UploadError, match=EXPECTED[name]):
            load_uploaded_model(raw, MNIST)
        path = tmp_path / "model.keras"  # as in a runs folder someone unpacked
        path.write_bytes(raw)
        with pytest.raises(RunError, match=EXPECTED[name]):
            LiteModel.from_file(path)


def test_the_good_file_passes_and_its_budget_is_the_model(good, keras):
    checked = read_keras_file(good, **CAPS)
    assert checked.budget.input_shape == (28, 28, 1)
    assert checked.budget.total_params == 8 * 9 + 8 + 13 * 13 * 8 * 10 + 10  # by hand: conv + dense


def test_a_small_cap_names_the_layer_and_the_setting(good):
    with pytest.raises(UploadError, match=r"layer 'dense.*' \(Dense\) brings the model to 13,610 parameters"):
        read_keras_file(good, max_params=1000, max_activation_mb=600)
    with pytest.raises(UploadError, match="CNNKIT_MAX_ACTIVATION_MB"):
        read_keras_file(good, max_params=10**6, max_activation_mb=0.5)


def test_a_weights_file_of_many_small_datasets_is_capped_in_total(good):
    def many(h5):
        for i in range(50):
            h5.create_dataset(f"junk{i}", shape=(10_000_000,), dtype="float32", chunks=(100_000,),
                              compression="gzip")
    raw = hostile.edit_weights(good, many)
    assert "declares more than" in _refusal(raw)


def test_a_partial_nan_is_counted(good):
    def some(h5):
        kernel = h5["layers/dense/vars/0"]
        values = kernel[()]
        values[:3] = np.nan
        kernel[...] = values
    weights = zipfile.ZipFile(io.BytesIO(hostile.edit_weights(good, some))).read("model.weights.h5")
    with pytest.raises(UploadError, match=r"hold 30 NaN or infinite values of 13,520"):
        check_weights_file(weights, 10**7)


def test_a_wrong_input_shape_is_refused_before_building(good):
    from cnnkit.model.uploads import check_upload

    with pytest.raises(UploadError, match="CIFAR-10 images are 32×32×3"):
        check_upload(good, get_dataset_info("cifar10"))
