"""Tests for cnnkit.data: IDX files, the three sources, splitting and normalization.

Everything here builds its own small files in tmp_path; only the `realdata` test reads
the real datasets, and only when CNNKIT_DATA_DIR points at them.
"""

import gzip
import hashlib
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cnnkit.data import keras_cache, sources
from cnnkit.data.catalog import DATASETS, DataSource, RawData, get_dataset_info
from cnnkit.data.idx import KNOWN_FILES, KnownFile, read_idx, write_idx
from cnnkit.data.prepare import class_counts, normalize, pixel_statistics, prepare
from cnnkit.data.sources import load_raw
from cnnkit.errors import DataError

REPO_ROOT = Path(__file__).resolve().parent.parent
REAL_DATA_DIR = os.environ.get("CNNKIT_DATA_DIR")  # read before the fixture below clears it


@pytest.fixture(autouse=True)
def offline(tmp_path, monkeypatch):
    """No network, no data dir, an empty Keras cache, and a fresh load_raw cache."""
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    monkeypatch.delenv("CNNKIT_DATA_DIR", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    sources.clear_cache()
    yield
    sources.clear_cache()


def indexed_images(n, shape=(28, 28), seed=0):
    """uint8 images whose first two pixels encode their index (to track them through splits)."""
    x = np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)
    x[:, 0, 0] = np.arange(n) % 256
    x[:, 0, 1] = np.arange(n) // 256
    return x


def image_index(x):
    """Inverse of indexed_images for (N, H, W, C) arrays."""
    return x[:, 0, 0, 0].astype(int) + 256 * x[:, 0, 1, 0].astype(int)


def write_idx_folder(folder, n_train=50, n_test=20, shape=(28, 28), gz=True, num_classes=10):
    """The four standard IDX files with small random contents; returns the arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": indexed_images(n_train, shape, seed=2),
        "y_train": rng.integers(0, num_classes, n_train, dtype=np.uint8),
        "x_test": indexed_images(n_test, shape, seed=3),
        "y_test": rng.integers(0, num_classes, n_test, dtype=np.uint8),
    }
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", arrays["x_train"])
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", arrays["y_train"])
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", arrays["x_test"])
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", arrays["y_test"])
    return arrays


def keras_datasets(tmp_path):
    folder = tmp_path / "keras_home" / "datasets"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_mnist_npz(tmp_path, n_train=30, n_test=10):
    rng = np.random.default_rng(4)
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    np.savez(keras_datasets(tmp_path) / "mnist.npz", **arrays)
    return arrays


def write_cifar_batches(folder, rows=4, protocol=2):
    """Synthetic CIFAR-10 batches in the original layout: dict of bytes keys, CHW rows."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        pixels = rng.integers(0, 256, (rows, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, rows)]
        batch = {b"batch_label": name.encode(), b"labels": labels, b"data": pixels}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
        batches[name] = (pixels, labels)
    return batches


def make_raw(n_train=1000, n_test=200, shape=(8, 8, 1), labels=None):
    """A RawData built in memory, images tracking their index."""
    info = DATASETS["mnist"]
    x_train = indexed_images(n_train, shape[:2])[..., np.newaxis]
    y_train = np.arange(n_train, dtype=np.uint8) % 10 if labels is None else labels
    x_test = indexed_images(n_test, shape[:2], seed=9)[..., np.newaxis]
    y_test = np.arange(n_test, dtype=np.uint8) % 10
    source = DataSource("data_dir", "/nowhere", n_train, n_test, "IDX headers", title=info.title)
    return RawData(info, x_train, y_train, x_test, y_test, source)


# --- dataset facts ---------------------------------------------------------


def test_dataset_info():
    assert set(DATASETS) == {"mnist", "fashion_mnist", "cifar10"}
    assert get_dataset_info("mnist").class_names == tuple("0123456789")
    assert get_dataset_info("fashion_mnist").class_names[0] == "T-shirt/top"
    assert get_dataset_info("fashion_mnist").class_names[-1] == "Ankle boot"
    cifar = get_dataset_info("cifar10")
    assert cifar.input_shape == (32, 32, 3) and cifar.idx_folder is None
    assert cifar.class_names[1] == "automobile" and cifar.num_classes == 10
    assert "mnist" in repr(get_dataset_info("mnist"))


def test_unknown_dataset():
    with pytest.raises(DataError, match="unknown dataset 'x'; choose one of: mnist, fashion_mnist, cifar10"):
        get_dataset_info("x")
    with pytest.raises(DataError, match="unknown dataset"):
        load_raw("svhn")


# --- IDX files ---------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_idx_round_trip(tmp_path, suffix):
    images = indexed_images(7, (5, 4))
    labels = np.arange(7, dtype=np.uint8)
    write_idx(tmp_path / f"images{suffix}", images)
    write_idx(tmp_path / f"labels{suffix}", labels)
    np.testing.assert_array_equal(read_idx(tmp_path / f"images{suffix}"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / f"labels{suffix}"), labels)
    raw = (tmp_path / f"labels{suffix}").read_bytes()
    if suffix:
        assert raw[:2] == b"\x1f\x8b"
        raw = gzip.decompress(raw)
    assert raw[:4] == bytes.fromhex("00000801")  # the standard magic numbers
    assert read_idx(tmp_path / f"images{suffix}").dtype == np.uint8


def test_idx_header_layout(tmp_path):
    write_idx(tmp_path / "x", np.zeros((3, 2, 1), np.uint8))
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == bytes.fromhex("00000803")
    assert raw[4:16] == bytes.fromhex("00000003 00000002 00000001")
    assert len(raw) == 16 + 6


def test_write_idx_rejects_non_uint8(tmp_path):
    with pytest.raises(DataError, match="uint8"):
        write_idx(tmp_path / "x", np.zeros(3, np.float32))


def test_read_idx_bad_magic(tmp_path):
    path = tmp_path / "bogus-images-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + b"\x00" * 20)
    with pytest.raises(DataError, match=r"bogus-images-idx3-ubyte.*bad magic number 0x12340803"):
        read_idx(path)


def test_read_idx_unsupported_type(tmp_path):
    path = tmp_path / "floats-idx1"
    path.write_bytes(b"\x00\x00\x0d\x01" + (1).to_bytes(4, "big") + b"\x00" * 4)
    with pytest.raises(DataError, match=r"floats-idx1.*0x0D \(float32\) is not supported"):
        read_idx(path)


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_read_idx_truncated(tmp_path, suffix):
    path = tmp_path / f"train-images-idx3-ubyte{suffix}"
    write_idx(path, indexed_images(10, (28, 28)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataError, match="train-images-idx3-ubyte") as err:
        read_idx(path)
    assert "truncated" in str(err.value)


def test_read_idx_extra_bytes(tmp_path):
    path = tmp_path / "labels"
    write_idx(path, np.arange(5, dtype=np.uint8))
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(DataError, match="1 unexpected bytes"):
        read_idx(path)


def test_read_idx_not_gzip_and_missing(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz.tmp", np.arange(5, dtype=np.uint8))
    (tmp_path / "train-labels-idx1-ubyte.gz.tmp").rename(path)  # raw bytes behind a .gz name
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte.gz: not a gzip file"):
        read_idx(path)
    with pytest.raises(DataError, match=r"nothing.gz: file not found"):
        read_idx(tmp_path / "nothing.gz")


# --- source 1: data directory ------------------------------------------------


def test_load_raw_from_data_dir(tmp_path):
    arrays = write_idx_folder(tmp_path / "data" / "mnist")
    raw = load_raw("mnist", tmp_path / "data")
    np.testing.assert_array_equal(raw.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(raw.y_train, arrays["y_train"])
    np.testing.assert_array_equal(raw.x_test[..., 0], arrays["x_test"])
    np.testing.assert_array_equal(raw.y_test, arrays["y_test"])
    assert raw.x_train.shape == (50, 28, 28, 1) and raw.x_train.dtype == np.uint8
    assert raw.source.kind == "data_dir" and not raw.source.is_sample
    assert raw.source.verified == "IDX headers"
    text = raw.source.describe()
    assert str(tmp_path / "data" / "mnist") in text
    assert "50 train / 20 test" in text and "SAMPLE" not in text
    assert "source='data_dir'" in repr(raw)
    assert not raw.x_train.flags.writeable  # cached arrays are shared: read-only


def test_load_raw_data_dir_from_env_and_uncompressed(tmp_path, monkeypatch):
    arrays = write_idx_folder(tmp_path / "data" / "fashion-mnist", gz=False)
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(tmp_path / "data"))
    assert sources.data_dir_from_env() == str(tmp_path / "data")
    raw = load_raw("fashion_mnist")
    np.testing.assert_array_equal(raw.y_train, arrays["y_train"])
    assert raw.source.kind == "data_dir"


def test_load_raw_is_cached(tmp_path):
    write_idx_folder(tmp_path / "data" / "mnist")
    first = load_raw("mnist", tmp_path / "data")
    assert load_raw("mnist", str(tmp_path / "data")) is first
    load_raw.cache_clear()
    assert load_raw("mnist", tmp_path / "data") is not first


def test_count_mismatch(tmp_path):
    folder = tmp_path / "data" / "mnist"
    write_idx_folder(folder)
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(49, np.uint8))
    with pytest.raises(DataError, match="50 images but train-labels-idx1-ubyte.gz has 49 labels") as err:
        load_raw("mnist", tmp_path / "data")
    assert "train-images-idx3-ubyte.gz" in str(err.value)


def test_wrong_image_size(tmp_path):
    write_idx_folder(tmp_path / "data" / "mnist", shape=(32, 32))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz holds an array of shape \(50, 32, 32\)"):
        load_raw("mnist", tmp_path / "data")


def test_label_out_of_range(tmp_path):
    folder = tmp_path / "data" / "mnist"
    write_idx_folder(folder)
    write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.full(20, 12, np.uint8))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz has label 12"):
        load_raw("mnist", tmp_path / "data")


def test_missing_file_in_data_dir(tmp_path):
    folder = tmp_path / "data" / "mnist"
    write_idx_folder(folder)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(DataError, match="missing t10k-images-idx3-ubyte.gz"):
        load_raw("mnist", tmp_path / "data")


def test_full_count_file_with_wrong_content_is_rejected(tmp_path):
    folder = tmp_path / "data" / "mnist"
    write_idx_folder(folder)
    # a label file with the official count (60,000) but not the official bytes
    write_idx(folder / "train-labels-idx1-ubyte.gz", np.zeros(60_000, np.uint8))
    expected = KNOWN_FILES[("mnist", "train-labels-idx1-ubyte.gz")].sha256
    with pytest.raises(DataError, match="is corrupt or not the official file: sha256") as err:
        load_raw("mnist", tmp_path / "data")
    assert "train-labels-idx1-ubyte.gz" in str(err.value) and expected in str(err.value)


def test_checksum_of_matching_file_is_verified(tmp_path, monkeypatch):
    folder = tmp_path / "data" / "mnist"
    write_idx_folder(folder)
    raw_bytes = gzip.decompress((folder / "train-labels-idx1-ubyte.gz").read_bytes())
    key = ("mnist", "train-labels-idx1-ubyte.gz")
    # pretend 50 is the official count, with this file's hash: it must be verified
    monkeypatch.setitem(KNOWN_FILES, key, KnownFile(hashlib.sha256(raw_bytes).hexdigest(), 50))
    raw = load_raw("mnist", tmp_path / "data")
    assert raw.source.verified == "IDX headers + sha256 checksums of 1 of 4 files"
    # ... and with another hash, rejected
    monkeypatch.setitem(KNOWN_FILES, key, KnownFile("0" * 64, 50))
    sources.clear_cache()
    with pytest.raises(DataError, match="expected 0000"):
        load_raw("mnist", tmp_path / "data")


def test_known_files_table():
    assert len(KNOWN_FILES) == 8
    assert KNOWN_FILES[("mnist", "train-images-idx3-ubyte.gz")].count == 60_000
    assert KNOWN_FILES[("fashion-mnist", "t10k-labels-idx1-ubyte.gz")].count == 10_000
    assert all(len(known.sha256) == 64 for known in KNOWN_FILES.values())


# --- source 2: Keras cache -----------------------------------------------------


def test_keras_cache_mnist_npz(tmp_path):
    arrays = write_mnist_npz(tmp_path)
    raw = load_raw("mnist")
    assert raw.source.kind == "keras"
    assert raw.x_train.shape == (30, 28, 28, 1) and raw.x_test.shape == (10, 28, 28, 1)
    np.testing.assert_array_equal(raw.x_train[..., 0], arrays["x_train"])
    np.testing.assert_array_equal(raw.y_test, arrays["y_test"])
    assert "mnist.npz" in raw.source.location
    assert "CNNKIT_DATA_DIR not set" in raw.source.note


@pytest.mark.parametrize(
    ("subdir", "protocol"),
    [
        ("cifar-10-batches-py-target/cifar-10-batches-py", 2),  # keras 3 layout, py2-era pickles
        ("cifar-10-batches-py", pickle.HIGHEST_PROTOCOL),  # older layout
    ],
)
def test_keras_cache_cifar10(tmp_path, subdir, protocol):
    batches = write_cifar_batches(keras_datasets(tmp_path) / subdir, rows=4, protocol=protocol)
    raw = load_raw("cifar10")
    assert raw.source.kind == "keras"
    assert raw.x_train.shape == (20, 32, 32, 3) and raw.x_test.shape == (4, 32, 32, 3)
    assert raw.y_train.dtype == np.uint8 and raw.y_train.shape == (20,)
    # row 1 of data_batch_3 is training image 9; pixel (c=1, h=2, w=3) in CHW order
    pixels, labels = batches["data_batch_3"]
    chw = pixels[1].reshape(3, 32, 32)
    assert raw.x_train[9, 2, 3, 1] == chw[1, 2, 3]
    np.testing.assert_array_equal(raw.x_train[9], chw.transpose(1, 2, 0))
    assert raw.y_train[9] == labels[1]
    assert list(raw.y_test) == batches["test_batch"][1]


def test_cifar10_refuses_code_in_pickle(tmp_path):
    folder = keras_datasets(tmp_path) / "cifar-10-batches-py"
    write_cifar_batches(folder)

    class Gadget:
        def __reduce__(self):
            return (os.getcwd, ())

    (folder / "data_batch_2").write_bytes(pickle.dumps({b"data": Gadget(), b"labels": []}))
    with pytest.raises(DataError, match=r"data_batch_2 is unreadable.*only numpy arrays"):
        load_raw("cifar10")


def test_keras_cache_fashion_mnist(tmp_path):
    arrays = write_idx_folder(keras_datasets(tmp_path) / "fashion-mnist", n_train=12, n_test=6)
    raw = load_raw("fashion_mnist")
    assert raw.source.kind == "keras"
    np.testing.assert_array_equal(raw.x_test[..., 0], arrays["x_test"])
    assert "Fashion-MNIST from the Keras cache" in raw.source.describe()


def test_data_dir_is_skipped_for_cifar10(tmp_path):
    write_cifar_batches(keras_datasets(tmp_path) / "cifar-10-batches-py")
    (tmp_path / "data").mkdir()
    raw = load_raw("cifar10", tmp_path / "data")
    assert raw.source.kind == "keras"
    assert "no IDX form" in raw.source.note


def test_failed_download_is_not_retried(tmp_path, monkeypatch):
    calls = []

    def fake_download(name, timeout=600):
        calls.append(name)
        return False

    monkeypatch.setattr(keras_cache, "download_with_keras", fake_download)
    raw = load_raw("mnist", allow_download=True)
    assert raw.source.is_sample and "download via Keras failed" in raw.source.note
    # another cache key (a data dir without mnist/) must not download again
    (tmp_path / "empty").mkdir()
    raw = load_raw("mnist", tmp_path / "empty", allow_download=True)
    assert calls == ["mnist"]
    assert "not retried" in raw.source.note


def test_download_fills_the_cache(tmp_path, monkeypatch):
    def fake_download(name, timeout=600):
        write_mnist_npz(tmp_path)
        return True

    monkeypatch.setattr(keras_cache, "download_with_keras", fake_download)
    assert load_raw("mnist", allow_download=True).source.kind == "keras"


def test_download_allowed(monkeypatch):
    assert not keras_cache.download_allowed()  # the fixture sets CNNKIT_OFFLINE=1
    monkeypatch.setenv("CNNKIT_OFFLINE", "true")
    assert not keras_cache.download_allowed()
    monkeypatch.setenv("CNNKIT_OFFLINE", "0")
    assert keras_cache.download_allowed()


# --- source 3: bundled sample ----------------------------------------------------


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_sample_fallback(name):
    raw = load_raw(name)
    assert raw.source.kind == "sample" and raw.source.is_sample
    text = raw.source.describe()
    assert "SAMPLE" in text and "4,000 train / 1,000 test" in text
    assert "CNNKIT_OFFLINE=1" in raw.source.note
    assert raw.x_train.shape == (4000, 28, 28, 1) and raw.x_test.shape == (1000, 28, 28, 1)
    assert class_counts(raw.y_train, 10).tolist() == [400] * 10
    assert raw.source.to_dict()["is_sample"] is True
    with pytest.raises(DataError, match="more than the 4,000 training images.*bundled SAMPLE"):
        prepare(raw, train_limit=10_000)


def test_cifar10_without_any_source_says_how_to_get_it():
    with pytest.raises(DataError) as err:
        load_raw("cifar10")
    message = str(err.value)
    assert "No CIFAR-10 data found" in message
    assert "internet" in message and "Keras cache" in message and "CNNKIT_OFFLINE=1" in message


# --- prepare ---------------------------------------------------------------------


def test_prepare_sizes_and_dtypes():
    prepared = prepare(make_raw(), train_limit=500, validation_split=0.2, test_limit=50)
    assert len(prepared.x_train) == len(prepared.y_train) == 400
    assert len(prepared.x_val) == len(prepared.y_val) == 100
    assert len(prepared.x_test) == 50
    for x in (prepared.x_train, prepared.x_val, prepared.x_test):
        assert x.dtype == np.uint8 and x.shape[1:] == (8, 8, 1)
    summary = prepared.summary()
    assert (summary["num_train"], summary["num_val"], summary["num_test"]) == (400, 100, 50)
    assert sum(summary["train_class_counts"]) == 400
    assert "source='data_dir'" in repr(prepared)


def test_prepare_is_deterministic_and_disjoint():
    raw = make_raw()
    a = prepare(raw, train_limit=600, seed=1)
    b = prepare(raw, train_limit=600, seed=1)
    c = prepare(raw, train_limit=600, seed=2)
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.x_val, b.x_val)
    assert not np.array_equal(image_index(a.x_val), image_index(c.x_val))
    train, val = image_index(a.x_train), image_index(a.x_val)
    assert len(set(train) & set(val)) == 0
    assert len(set(train) | set(val)) == 600
    # labels travel with their images, and the indices say where each came from
    np.testing.assert_array_equal(a.y_train, raw.y_train[train])
    np.testing.assert_array_equal(a.train_indices, train)
    np.testing.assert_array_equal(a.val_indices, val)
    np.testing.assert_array_equal(a.x_test, raw.x_test[a.test_indices])


def test_prepare_keeps_class_proportions():
    labels = np.array([0] * 500 + [1] * 300 + [2] * 200, dtype=np.uint8)
    prepared = prepare(make_raw(labels=labels), train_limit=100, validation_split=0.1)
    counts = class_counts(prepared.y_train, 10) + class_counts(prepared.y_val, 10)
    assert counts[:3].tolist() == [50, 30, 20]
    assert class_counts(prepared.y_val, 10)[:3].tolist() == [5, 3, 2]


def test_prepare_without_validation():
    prepared = prepare(make_raw(), validation_split=0)
    assert prepared.x_val.shape == (0, 8, 8, 1)
    assert len(prepared.x_train) == 1000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_limit": 70_000}, "train_limit 70000 is more than the 1,000 training images of MNIST"),
        ({"train_limit": 5}, "train_limit 5 is too small"),
        ({"validation_split": 0.9}, "validation_split 0.9 is outside 0-0.5"),
        ({"validation_split": -0.1}, "outside 0-0.5"),
        ({"test_limit": 201}, "test_limit 201 is more than the 200 test images"),
        ({"normalization": "minmax"}, "unknown normalization 'minmax'"),
    ],
)
def test_prepare_errors(kwargs, message):
    with pytest.raises(DataError, match=message):
        prepare(make_raw(), **kwargs)


def test_standardize():
    raw = make_raw()
    x_train = np.array(raw.x_train)
    x_train[:, 5, 5, 0] = 7  # a constant pixel
    x_train[:, 6, 6, 0] = 0  # a pixel that is always black
    raw = RawData(raw.info, x_train, raw.y_train, raw.x_test, raw.y_test, raw.source)
    prepared = prepare(raw, normalization="standardize", validation_split=0.2)
    assert prepared.mean.dtype == np.float32 and prepared.mean.shape == (8, 8, 1)
    # statistics come from the training part only
    np.testing.assert_allclose(prepared.mean, prepared.x_train.mean(axis=0), rtol=1e-6)
    varying = prepared.x_train.std(axis=0) > 0
    np.testing.assert_allclose(prepared.std[varying], prepared.x_train.std(axis=0)[varying], rtol=1e-5)
    assert prepared.std[5, 5, 0] == 1.0 and prepared.std[6, 6, 0] == 1.0
    z = prepared.normalize(prepared.x_train)
    assert z.dtype == np.float32 and np.isfinite(z).all()
    np.testing.assert_allclose(z.mean(axis=0)[varying], 0, atol=1e-4)
    np.testing.assert_allclose(z.std(axis=0)[varying], 1, atol=1e-3)
    assert np.all(z[:, 5, 5, 0] == 0)


def test_normalize_modes():
    x = np.array([[[[0], [255]], [[51], [102]]]], dtype=np.uint8)  # (1, 2, 2, 1)
    np.testing.assert_array_equal(normalize(x, "none"), x.astype(np.float32))
    scaled = normalize(x, "scale")
    assert scaled.dtype == np.float32 and scaled.max() == 1.0
    np.testing.assert_allclose(scaled.ravel(), [0, 1, 0.2, 0.4])
    mean, std = np.full((2, 2, 1), 51, np.float32), np.full((2, 2, 1), 51, np.float32)
    np.testing.assert_allclose(normalize(x, "standardize", mean, std).ravel(), [-1, 4, 0, 1])
    with pytest.raises(DataError, match="needs the training mean and std"):
        normalize(x, "standardize")
    prepared = prepare(make_raw(), normalization="scale")
    assert prepared.mean is None and prepared.normalize(x).max() == 1.0


def test_pixel_statistics_and_class_counts():
    x = np.random.default_rng(0).integers(0, 256, (3000, 4, 4, 1), dtype=np.uint8)
    x[:10] = 0
    stats = pixel_statistics(x)
    assert stats["mean"] == pytest.approx(x.mean())
    assert stats["std"] == pytest.approx(x.std())
    assert (stats["min"], stats["max"]) == (0, 255)
    assert stats["zero_fraction"] == pytest.approx(np.mean(x == 0))
    assert class_counts(np.array([0, 2, 2]), 4).tolist() == [1, 0, 2, 0]
    with pytest.raises(DataError, match="labels must be in 0-3"):
        class_counts(np.array([4]), 4)


# --- import cost and real data ----------------------------------------------------


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, cnnkit.data.sources, cnnkit.data.prepare; "
        "bad = [m for m in ('tensorflow', 'keras', 'streamlit') if m in sys.modules]; "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.realdata
def test_real_data():
    data_dir = REAL_DATA_DIR
    if not data_dir:
        pytest.skip("CNNKIT_DATA_DIR not set: real-data check skipped")
    for name in ("mnist", "fashion_mnist"):
        if not (Path(data_dir) / DATASETS[name].idx_folder).is_dir():
            continue
        raw = load_raw(name, data_dir)
        assert raw.source.kind == "data_dir"
        assert (len(raw.y_train), len(raw.y_test)) == (60_000, 10_000)
        assert raw.source.verified == "IDX headers + sha256 checksums"
        assert raw.source.describe().startswith("real ")


def test_the_catalog_and_the_spec_name_the_same_datasets():
    from cnnkit.data.catalog import DRAWABLE
    from cnnkit.specs import DATASET_NAMES

    assert tuple(DATASETS) == DATASET_NAMES
    assert DRAWABLE == ("mnist", "fashion_mnist")  # the 28×28 grayscale ones: a drawing fits them
