"""Datasets: find them, verify them, split them, normalize them.

Where the pixels come from, in order (see `load_raw`):

1. a data directory (argument or ``CNNKIT_DATA_DIR``) with the standard IDX files,
   checked against the official sha256 checksums when they are the full files;
2. Keras' own download cache (``$KERAS_HOME`` or ``~/.keras``), read with numpy only,
   filled by a Keras download in a subprocess when that is allowed;
3. a small bundled sample (``cnnkit/samples``), clearly labelled as a SAMPLE.

This module never imports TensorFlow or Keras at import time: the dashboard process
stays light, and only `keras_download` (run in a subprocess) imports Keras.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import math
import operator
import os
import pickle
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnkit.errors import DataError

# ---------------------------------------------------------------------------
# What the datasets are
# ---------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class DatasetInfo:
    """Static facts about one dataset: names, shapes, where its IDX files live, licence."""

    name: str
    title: str
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    idx_folder: str | None
    description: str
    license: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"DatasetInfo({self.name!r}, num_classes={self.num_classes}, "
            f"input_shape={self.input_shape})"
        )


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        name="mnist",
        title="MNIST",
        class_names=tuple(str(digit) for digit in range(10)),
        input_shape=(28, 28, 1),
        idx_folder="mnist",
        description="Handwritten digits 0-9, 28x28 grayscale: 60,000 training and 10,000 test images.",
        license="CC BY-SA 3.0 (Y. LeCun, C. Cortes, C. J. C. Burges)",
    ),
    "fashion_mnist": DatasetInfo(
        name="fashion_mnist",
        title="Fashion-MNIST",
        class_names=(
            "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
        ),
        input_shape=(28, 28, 1),
        idx_folder="fashion-mnist",
        description="Zalando clothing photos in 10 classes, 28x28 grayscale: 60,000 training and 10,000 test images.",
        license="MIT (Zalando Research)",
    ),
    "cifar10": DatasetInfo(
        name="cifar10",
        title="CIFAR-10",
        class_names=(
            "airplane", "automobile", "bird", "cat", "deer",
            "dog", "frog", "horse", "ship", "truck",
        ),
        input_shape=(32, 32, 3),
        idx_folder=None,
        description="Small colour photos in 10 classes, 32x32 RGB: 50,000 training and 10,000 test images.",
        license="Free to use with citation (A. Krizhevsky, 2009, Learning Multiple Layers of Features from Tiny Images)",
    ),
}


def get_dataset_info(name: str) -> DatasetInfo:
    """The `DatasetInfo` for `name`, or a DataError listing the valid names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        choices = ", ".join(DATASETS)
        raise DataError(f"unknown dataset {name!r}; choose one of: {choices}") from None


# ---------------------------------------------------------------------------
# IDX files (the format MNIST and Fashion-MNIST are published in)
# ---------------------------------------------------------------------------

_IDX_UBYTE = 0x08  # type byte for unsigned 8-bit data, the only type these datasets use
_IDX_TYPE_NAMES = {0x09: "int8", 0x0B: "int16", 0x0C: "int32", 0x0D: "float32", 0x0E: "float64"}
_GZIP_MAGIC = b"\x1f\x8b"


def _read_file_bytes(path: Path) -> bytes:
    """The file's contents, decompressed when it is gzip (by content, not by name)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"{path}: the gzip data is damaged or truncated ({exc}); "
                "copy or download the file again"
            ) from None
    if path.name.endswith(".gz"):
        raise DataError(
            f"{path}: not a gzip file although its name ends in .gz; "
            "rename it without .gz if it is an uncompressed IDX file, or replace it"
        )
    return data


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Check an IDX header against the data that follows and return the array (read-only)."""
    if len(data) < 4:
        raise DataError(f"{path}: only {len(data)} bytes, too short to be an IDX file")
    magic = int.from_bytes(data[:4], "big")
    type_byte, ndim = data[2], data[3]
    if data[:2] != b"\x00\x00" or ndim == 0:
        raise DataError(
            f"{path}: bad magic number 0x{magic:08X}; not an IDX file "
            "(expected 0x00000803 for images or 0x00000801 for labels)"
        )
    if type_byte != _IDX_UBYTE:
        kind = _IDX_TYPE_NAMES.get(type_byte, "unknown")
        raise DataError(
            f"{path}: IDX data type 0x{type_byte:02X} ({kind}) is not supported; "
            "only unsigned-byte IDX files (magic 0x000008..) are read"
        )
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise DataError(f"{path}: truncated IDX header (needs {header_size} bytes, file has {len(data)})")
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = math.prod(shape)
    actual = len(data) - header_size
    if actual < expected:
        raise DataError(
            f"{path}: truncated: header says shape {shape} = {expected:,} bytes of data, "
            f"but only {actual:,} follow; copy or download the file again"
        )
    if actual > expected:
        raise DataError(
            f"{path}: {actual - expected:,} unexpected bytes after the data of shape {shape}; "
            "the file is damaged or not an IDX file"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip or raw) of unsigned bytes into a read-only uint8 array.

    Images (magic 0x00000803) come back as (N, rows, cols), labels (0x00000801) as (N,).
    """
    path = Path(path)
    return _parse_idx(_read_file_bytes(path), path)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file, gzip-compressed when `path` ends with .gz."""
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise DataError(f"{path}: write_idx writes uint8 arrays only, got {array.dtype}")
    if not 1 <= array.ndim <= 255:
        raise DataError(f"{path}: write_idx needs an array of 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, _IDX_UBYTE, array.ndim])
    header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + np.ascontiguousarray(array).tobytes()
    if str(path).endswith(".gz"):
        payload = gzip.compress(payload, mtime=0)  # mtime=0: same array, same bytes
    Path(path).write_bytes(payload)


class KnownFile(NamedTuple):
    """An official IDX file: sha256 of its decompressed bytes and its number of items."""

    sha256: str
    count: int


# From /work/shared/datasets/README.md; hashes are of the DECOMPRESSED bytes, because
# the MNIST .gz files in circulation were re-compressed while their contents are official.
KNOWN_FILES: dict[tuple[str, str], KnownFile] = {
    ("mnist", "train-images-idx3-ubyte.gz"): KnownFile(
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 60_000),
    ("mnist", "train-labels-idx1-ubyte.gz"): KnownFile(
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60_000),
    ("mnist", "t10k-images-idx3-ubyte.gz"): KnownFile(
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 10_000),
    ("mnist", "t10k-labels-idx1-ubyte.gz"): KnownFile(
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10_000),
    ("fashion-mnist", "train-images-idx3-ubyte.gz"): KnownFile(
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 60_000),
    ("fashion-mnist", "train-labels-idx1-ubyte.gz"): KnownFile(
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60_000),
    ("fashion-mnist", "t10k-images-idx3-ubyte.gz"): KnownFile(
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 10_000),
    ("fashion-mnist", "t10k-labels-idx1-ubyte.gz"): KnownFile(
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10_000),
}

# sha256 of the mnist.npz Keras downloads (the file_hash in keras.datasets.mnist).
KERAS_MNIST_NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"

# split -> (images file, labels file), the standard names of the official release
IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}


# ---------------------------------------------------------------------------
# Where the data came from
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSource:
    """Provenance of a loaded dataset, shown to people next to every result."""

    kind: str  # "data_dir" | "keras" | "sample"
    location: str
    num_train: int
    num_test: int
    verified: str
    note: str = ""
    title: str = ""  # the dataset's title, so describe() can name it

    @property
    def is_sample(self) -> bool:
        return self.kind == "sample"

    def describe(self) -> str:
        title = self.title or "dataset"
        counts = f"{self.num_train:,} train / {self.num_test:,} test"
        if self.is_sample:
            line = f"bundled SAMPLE of {title} ({counts} images, not the full dataset)"
            return f"{line} — {self.note}" if self.note else line
        real = "real " if "sha256" in self.verified else ""
        where = "data directory" if self.kind == "data_dir" else "the Keras cache"
        return f"{real}{title} from {where} {self.location} ({counts}; {self.verified} verified)"

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "location": self.location,
            "num_train": self.num_train,
            "num_test": self.num_test,
            "verified": self.verified,
            "note": self.note,
            "title": self.title,
            "is_sample": self.is_sample,
            "description": self.describe(),
        }


@dataclass(frozen=True, repr=False, eq=False)  # eq=False: comparing arrays with == is ambiguous
class RawData:
    """A whole dataset as uint8 arrays, images always (N, H, W, C) channels last."""

    info: DatasetInfo
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: DataSource

    def __repr__(self) -> str:
        return (
            f"RawData({self.info.name!r}, x_train={self.x_train.shape}, "
            f"x_test={self.x_test.shape}, source={self.source.kind!r})"
        )


# ---------------------------------------------------------------------------
# Source 1: a data directory with IDX files
# ---------------------------------------------------------------------------


def data_dir_from_env() -> str | None:
    """CNNKIT_DATA_DIR, or None when it is unset or empty."""
    value = os.environ.get("CNNKIT_DATA_DIR", "").strip()
    return value or None


def _find_idx_file(folder: Path, filename: str) -> Path | None:
    for candidate in (filename, filename.removesuffix(".gz")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _missing_idx_files(folder: Path) -> list[str]:
    names = [name for pair in IDX_FILES.values() for name in pair]
    return [name for name in names if _find_idx_file(folder, name) is None]


def _read_known_idx(path: Path, known: KnownFile | None, title: str) -> tuple[np.ndarray, bool]:
    """Read an IDX file; when it has the official item count, it must have the official bytes."""
    data = _read_file_bytes(path)
    array = _parse_idx(data, path)
    if known is None or array.shape[0] != known.count:
        return array, False  # a subset or fixture: header checks only
    digest = hashlib.sha256(data).hexdigest()
    if digest != known.sha256:
        raise DataError(
            f"{title}: {path} is corrupt or not the official file: sha256 of its decompressed "
            f"contents is {digest}, expected {known.sha256}. Replace it with the official file."
        )
    return array, True


def _check_split(info: DatasetInfo, images: np.ndarray, labels: np.ndarray,
                 images_path: Path, labels_path: Path) -> None:
    """Shapes, counts and label range of one split's pair of IDX files."""
    rows, cols = info.input_shape[:2]
    if images.ndim != 3 or images.shape[1:] != (rows, cols):
        raise DataError(
            f"{info.title}: {images_path} holds an array of shape {images.shape}, "
            f"expected images of shape (N, {rows}, {cols}); is this the right folder?"
        )
    if labels.ndim != 1:
        raise DataError(
            f"{info.title}: {labels_path} holds an array of shape {labels.shape}, expected labels (N,)"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{info.title}: {images_path.name} has {len(images):,} images but {labels_path.name} "
            f"has {len(labels):,} labels; the files do not belong together ({images_path.parent})"
        )
    if len(images) == 0:
        raise DataError(f"{info.title}: {images_path} holds no images")
    if labels.max() >= info.num_classes:
        raise DataError(
            f"{info.title}: {labels_path} has label {int(labels.max())}, but {info.title} "
            f"labels go from 0 to {info.num_classes - 1}"
        )


def _read_idx_folder(folder: Path, info: DatasetInfo, checksum_key: str | None):
    """The four IDX files of `folder` as (x_train, y_train, x_test, y_test, n_checksummed)."""
    arrays, checked = [], 0
    for images_name, labels_name in IDX_FILES.values():
        pair = []
        for name in (images_name, labels_name):
            path = _find_idx_file(folder, name)
            if path is None:
                raise DataError(f"{info.title}: {folder / name} is missing (also looked for it without .gz)")
            known = KNOWN_FILES.get((checksum_key, name)) if checksum_key else None
            array, ok = _read_known_idx(path, known, info.title)
            checked += ok
            pair.append((array, path))
        (images, images_path), (labels, labels_path) = pair
        _check_split(info, images, labels, images_path, labels_path)
        arrays += [images[..., np.newaxis], labels]  # (N, H, W) -> (N, H, W, 1)
    return (*arrays, checked)


def _idx_verified(checked: int) -> str:
    if checked == 4:
        return "IDX headers + sha256 checksums"
    if checked:
        return f"IDX headers + sha256 checksums of {checked} of 4 files"
    return "IDX headers"


def _from_data_dir(info: DatasetInfo, data_dir: str | None, tried: list[str]) -> RawData | None:
    if data_dir is None:
        tried.append("CNNKIT_DATA_DIR not set")
        return None
    root = Path(data_dir)
    if info.idx_folder is None:
        tried.append(f"data directory {root} skipped ({info.title} has no IDX form)")
        return None
    if not root.is_dir():
        tried.append(f"data directory {root} does not exist")
        return None
    folder = root / info.idx_folder
    if not folder.is_dir():
        tried.append(f"data directory {root} has no {info.idx_folder}/ folder")
        return None
    missing = _missing_idx_files(folder)
    if missing:  # a half-filled folder is a mistake worth stopping for, not skipping
        raise DataError(
            f"{info.title}: data directory folder {folder} is missing {', '.join(missing)} "
            "(the .gz or uncompressed form); copy all four standard IDX files there"
        )
    x_train, y_train, x_test, y_test, checked = _read_idx_folder(folder, info, info.idx_folder)
    source = DataSource("data_dir", str(folder), len(y_train), len(y_test),
                        _idx_verified(checked), title=info.title)
    return _raw(info, x_train, y_train, x_test, y_test, source)


# ---------------------------------------------------------------------------
# Source 2: Keras' download cache, read without importing Keras
# ---------------------------------------------------------------------------


def keras_home() -> Path:
    """Where Keras caches downloads: $KERAS_HOME, else ~/.keras (as keras.config.keras_home)."""
    value = os.environ.get("KERAS_HOME", "").strip()
    return Path(value).expanduser() if value else Path("~/.keras").expanduser()


def _keras_dataset_dirs() -> list[Path]:
    """Keras writes to /tmp/.keras when its home is not writable, so look there too."""
    home = keras_home()
    dirs = [home / "datasets"]
    if home.exists() and not os.access(home, os.W_OK):
        dirs.append(Path("/tmp/.keras/datasets"))
    return dirs


def _check_arrays(info: DatasetInfo, where: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != info.input_shape:
        raise DataError(
            f"{info.title}: {where} holds images of shape {x.shape} and type {x.dtype}, expected "
            f"uint8 (N, {', '.join(map(str, info.input_shape))}); delete it so Keras downloads it again"
        )
    if y.ndim != 1 or len(y) != len(x) or len(y) == 0:
        raise DataError(
            f"{info.title}: {where} has {len(x):,} images but labels of shape {y.shape}; "
            "delete it so Keras downloads it again"
        )
    if y.max() >= info.num_classes:
        raise DataError(f"{info.title}: {where} has label {int(y.max())} outside 0-{info.num_classes - 1}")


def _read_mnist_npz(info: DatasetInfo, path: Path) -> RawData:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(
            f"{info.title}: Keras cache file {path} is unreadable ({exc}); "
            "delete it so Keras downloads it again"
        ) from None
    verified = "array shapes"
    if len(arrays["y_train"]) == 60_000 and len(arrays["y_test"]) == 10_000:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != KERAS_MNIST_NPZ_SHA256:
            raise DataError(
                f"{info.title}: Keras cache file {path} is corrupt or not the official file: "
                f"sha256 {digest}, expected {KERAS_MNIST_NPZ_SHA256}; delete it so Keras downloads it again"
            )
        verified = "array shapes + sha256 checksum"
    x_train = np.asarray(arrays["x_train"])[..., np.newaxis]
    x_test = np.asarray(arrays["x_test"])[..., np.newaxis]
    y_train = np.asarray(arrays["y_train"]).astype(np.uint8, copy=False)
    y_test = np.asarray(arrays["y_test"]).astype(np.uint8, copy=False)
    _check_arrays(info, str(path), x_train, y_train)
    _check_arrays(info, str(path), x_test, y_test)
    source = DataSource("keras", str(path), len(y_train), len(y_test), verified, title=info.title)
    return _raw(info, x_train, y_train, x_test, y_test, source)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickle CIFAR batches without letting a tampered file run code: numpy arrays only."""

    ALLOWED = frozenset({
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),  # pickle protocol 5 arrays
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),  # how Python 3 writes bytes in protocol 2 pickles
    })

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")


def _read_cifar_batch(path: Path, title: str) -> tuple[np.ndarray, np.ndarray]:
    """One pickled CIFAR batch -> images (N, 32, 32, 3) and labels (N,), both uint8."""
    try:
        with path.open("rb") as f:
            batch = _NumpyOnlyUnpickler(f, encoding="bytes").load()
        batch = {(k.decode() if isinstance(k, bytes) else k): v for k, v in batch.items()}
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, KeyError,
            TypeError, ValueError) as exc:
        raise DataError(
            f"{title}: Keras cache file {path} is unreadable ({type(exc).__name__}: {exc}); "
            "delete the cifar-10-batches-py folder so Keras downloads it again"
        ) from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DataError(
            f"{title}: {path} holds data of shape {data.shape} and {len(labels)} labels, "
            "expected (N, 3072) pixels and N labels"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise DataError(f"{title}: {path} has labels outside 0-255")
    # rows are stored channel-major (all red, then green, then blue): CHW -> HWC
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def _cifar_folder(dataset_dirs: list[Path]) -> Path | None:
    for datasets in dataset_dirs:
        for folder in (datasets / "cifar-10-batches-py-target" / "cifar-10-batches-py",  # keras 3
                       datasets / "cifar-10-batches-py"):  # older Keras
            if (folder / "test_batch").is_file():
                return folder
    return None


def _read_cifar_folder(info: DatasetInfo, folder: Path) -> RawData:
    train = [_read_cifar_batch(folder / f"data_batch_{i}", info.title) for i in range(1, 6)]
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    x_test, y_test = _read_cifar_batch(folder / "test_batch", info.title)
    _check_arrays(info, str(folder), x_train, y_train)
    _check_arrays(info, str(folder), x_test, y_test)
    source = DataSource("keras", str(folder), len(y_train), len(y_test), "array shapes",
                        title=info.title)
    return _raw(info, x_train, y_train, x_test, y_test, source)


def _read_keras_cache(info: DatasetInfo, tried: list[str]) -> RawData | None:
    """The dataset from Keras' cache, or None (with the reason appended to `tried`)."""
    dirs = _keras_dataset_dirs()
    where = " or ".join(str(d) for d in dirs)
    if info.name == "mnist":
        for datasets in dirs:
            if (datasets / "mnist.npz").is_file():
                return _read_mnist_npz(info, datasets / "mnist.npz")
        tried.append(f"Keras cache has no mnist.npz in {where}")
    elif info.name == "fashion_mnist":
        for datasets in dirs:
            folder = datasets / "fashion-mnist"
            if folder.is_dir() and not _missing_idx_files(folder):
                x_train, y_train, x_test, y_test, checked = _read_idx_folder(folder, info, "fashion-mnist")
                source = DataSource("keras", str(folder), len(y_train), len(y_test),
                                    _idx_verified(checked), title=info.title)
                return _raw(info, x_train, y_train, x_test, y_test, source)
        tried.append(f"Keras cache has no complete fashion-mnist/ folder in {where}")
    else:
        folder = _cifar_folder(dirs)
        if folder is not None:
            return _read_cifar_folder(info, folder)
        tried.append(f"Keras cache has no cifar-10-batches-py folder in {where}")
    return None


def download_allowed() -> bool:
    """False when CNNKIT_OFFLINE says so (1/true/yes/on): no network attempts at all."""
    return os.environ.get("CNNKIT_OFFLINE", "").strip().lower() not in ("1", "true", "yes", "on")


def keras_download(name: str) -> None:
    """Fill Keras' cache by loading the dataset through Keras (imports Keras: use a subprocess)."""
    info = get_dataset_info(name)
    import keras  # deliberately local: this module must stay TensorFlow-free on import

    getattr(keras.datasets, info.name).load_data()


_REPO_ROOT = Path(__file__).resolve().parent.parent
_failed_downloads: dict[str, str] = {}  # name -> why; a failed download is not retried


def download_with_keras(name: str, timeout: float = 600) -> bool:
    """Run `keras_download` in a subprocess, so this process never imports TensorFlow."""
    info = get_dataset_info(name)
    code = f"from cnnkit.data import keras_download; keras_download({info.name!r})"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        result = subprocess.run([sys.executable, "-c", code], cwd=_REPO_ROOT, env=env,
                                capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        _failed_downloads[info.name] = f"timed out after {timeout:g} s"
        return False
    except OSError as exc:
        _failed_downloads[info.name] = f"could not start Python ({exc})"
        return False
    if result.returncode != 0:
        lines = [line for line in result.stderr.strip().splitlines() if line.strip()]
        _failed_downloads[info.name] = (lines[-1] if lines else f"exit code {result.returncode}")[:200]
        return False
    return True


def _from_keras(info: DatasetInfo, allow_download: bool, tried: list[str]) -> RawData | None:
    raw = _read_keras_cache(info, tried)
    if raw is not None:
        return raw
    if not allow_download:
        why = "CNNKIT_OFFLINE=1" if not download_allowed() else "allow_download=False"
        tried.append(f"download disabled ({why})")
        return None
    if info.name in _failed_downloads:
        tried.append(f"download via Keras failed earlier in this process ({_failed_downloads[info.name]}); not retried")
        return None
    if not download_with_keras(info.name):
        reason = _failed_downloads.setdefault(info.name, "no reason given")
        tried.append(f"download via Keras failed (no internet?): {reason}")
        return None
    raw = _read_keras_cache(info, tried)
    if raw is None:
        _failed_downloads[info.name] = "the download left nothing in the cache"
        tried.append("download via Keras reported success but the cache is still empty")
    return raw


# ---------------------------------------------------------------------------
# Source 3: the bundled sample
# ---------------------------------------------------------------------------

SAMPLES_DIR = Path(__file__).resolve().parent / "samples"


def _from_sample(info: DatasetInfo, tried: list[str]) -> RawData | None:
    path = SAMPLES_DIR / f"{info.name}_sample.npz"
    if not path.is_file():
        tried.append(f"no bundled sample ({path} does not exist)")
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            x_train, y_train, x_test, y_test = (npz[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(f"{info.title}: bundled sample {path} is unreadable ({exc}); reinstall cnnkit") from None
    x_train, x_test = x_train[..., np.newaxis], x_test[..., np.newaxis]
    _check_arrays(info, str(path), x_train, y_train)
    _check_arrays(info, str(path), x_test, y_test)
    source = DataSource("sample", str(path), len(y_train), len(y_test), "bundled sample",
                        note="; ".join(tried), title=info.title)
    return _raw(info, x_train, y_train, x_test, y_test, source)


# ---------------------------------------------------------------------------
# load_raw: try the sources in order, cache per process
# ---------------------------------------------------------------------------


def _raw(info, x_train, y_train, x_test, y_test, source) -> RawData:
    """Build RawData with read-only arrays: cached copies are shared by every caller."""
    arrays = [np.asarray(a) for a in (x_train, y_train, x_test, y_test)]
    for a in arrays:
        a.setflags(write=False)
    return RawData(info, *arrays, source=source)


@functools.lru_cache(maxsize=8)
def _load_raw_cached(name: str, data_dir: str | None, allow_download: bool, keras_root: str) -> RawData:
    info = get_dataset_info(name)
    tried: list[str] = []
    raw = _from_data_dir(info, data_dir, tried)
    if raw is None:
        raw = _from_keras(info, allow_download, tried)
    if raw is None and info.idx_folder is not None:
        raw = _from_sample(info, tried)
    if raw is not None:
        # record why earlier sources were skipped (the sample already carries it)
        return dataclasses.replace(raw, source=dataclasses.replace(raw.source, note="; ".join(tried)))
    if info.idx_folder is None:
        tried.append(f"cnnkit bundles no {info.title} sample")
    raise DataError(
        f"No {info.title} data found. Tried: {'; '.join(tried)}. "
        f"To get {info.title}: run once with internet access (CNNKIT_OFFLINE unset) so Keras "
        f"downloads it into {keras_root}/datasets, or copy an existing Keras cache there "
        "(or point KERAS_HOME at one)"
        + (f", or set CNNKIT_DATA_DIR to a folder holding {info.idx_folder}/ with the four IDX files."
           if info.idx_folder else ".")
    )


def load_raw(name: str, data_dir: str | os.PathLike | None = None, *,
             allow_download: bool | None = None) -> RawData:
    """Load a whole dataset from the first source that has it (see the module docstring).

    Results are cached per process; `clear_cache()` forgets them (and failed downloads).
    """
    get_dataset_info(name)  # fail fast, before caching anything
    if data_dir is None:
        data_dir = data_dir_from_env()
    resolved = str(Path(data_dir).expanduser().resolve()) if data_dir is not None else None
    if allow_download is None:
        allow_download = download_allowed()
    return _load_raw_cached(name, resolved, bool(allow_download), str(keras_home()))


def clear_cache() -> None:
    """Forget cached datasets and failed downloads (tests, or after fixing a data folder)."""
    _load_raw_cached.cache_clear()
    _failed_downloads.clear()


load_raw.cache_clear = clear_cache  # the lru_cache spelling, for callers who expect it


# ---------------------------------------------------------------------------
# Splitting and normalizing
# ---------------------------------------------------------------------------

NORMALIZATIONS = ("none", "scale", "standardize")


@dataclass(frozen=True, repr=False, eq=False)
class PreparedData:
    """A dataset ready for training: uint8 splits plus how to turn them into floats."""

    info: DatasetInfo
    source: DataSource
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    normalization: str
    mean: np.ndarray | None = field(default=None)
    std: np.ndarray | None = field(default=None)
    # positions in the raw training / test arrays, to trace a prediction back to its image
    train_indices: np.ndarray | None = field(default=None)
    val_indices: np.ndarray | None = field(default=None)
    test_indices: np.ndarray | None = field(default=None)

    @property
    def num_classes(self) -> int:
        return self.info.num_classes

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.info.input_shape

    def normalize(self, x_uint8) -> np.ndarray:
        return normalize(x_uint8, self.normalization, self.mean, self.std)

    def summary(self) -> dict:
        return {
            "dataset": self.info.name,
            "title": self.info.title,
            "num_train": len(self.y_train),
            "num_val": len(self.y_val),
            "num_test": len(self.y_test),
            "input_shape": self.info.input_shape,
            "num_classes": self.num_classes,
            "class_names": list(self.info.class_names),
            "train_class_counts": class_counts(self.y_train, self.num_classes).tolist(),
            "normalization": self.normalization,
            "is_sample": self.source.is_sample,
            "source": self.source.describe(),
        }

    def __repr__(self) -> str:
        return (
            f"PreparedData({self.info.name!r}, train={len(self.y_train)}, val={len(self.y_val)}, "
            f"test={len(self.y_test)}, normalization={self.normalization!r}, "
            f"source={self.source.kind!r})"
        )


def _as_count(value, what: str) -> int:
    if isinstance(value, bool):
        raise DataError(f"{what} must be a whole number, got {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise DataError(f"{what} must be a whole number, got {value!r}") from None


def _stratified_choice(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted indices of k items of y, drawn at random while keeping class proportions."""
    n = len(y)
    if k >= n:
        return np.arange(n)
    classes, counts = np.unique(y, return_counts=True)
    # largest-remainder rounding in integers: quotas sum to exactly k
    quota, remainder = np.divmod(k * counts, n)
    quota[np.argsort(-remainder, kind="stable")[: k - quota.sum()]] += 1
    picks = [rng.permutation(np.flatnonzero(y == c))[:q] for c, q in zip(classes, quota, strict=True)]
    return np.sort(np.concatenate(picks))


def _take(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """x[index], without copying when index is everything."""
    if len(index) == len(x) and np.array_equal(index, np.arange(len(x))):
        return x
    return x[index]


def _limit(y: np.ndarray, limit, what: str, noun: str, raw: RawData, minimum: int,
           rng: np.random.Generator) -> np.ndarray:
    if limit is None:
        return np.arange(len(y))
    limit = _as_count(limit, what)
    if limit > len(y):
        hint = (" (only the bundled SAMPLE was found; set CNNKIT_DATA_DIR or fill the Keras cache "
                "for the full dataset)") if raw.source.is_sample else ""
        raise DataError(f"{what} {limit} is more than the {len(y):,} {noun} images of {raw.info.title}{hint}")
    if limit < minimum:
        raise DataError(f"{what} {limit} is too small; use at least {minimum}")
    return _stratified_choice(y, limit, rng)


def prepare(raw: RawData, *, train_limit: int | None = None, validation_split: float = 0.1,
            normalization: str = "scale", seed: int = 0, test_limit: int | None = None) -> PreparedData:
    """Subset, split and compute normalization statistics; the pixels stay uint8.

    The same seed always gives the same subset and split; subsets and the validation
    part keep the class proportions of the set they are drawn from.
    """
    info = raw.info
    if normalization not in NORMALIZATIONS:
        raise DataError(f"unknown normalization {normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    try:
        validation_split = float(validation_split)
    except (TypeError, ValueError):
        raise DataError(f"validation_split must be a number, got {validation_split!r}") from None
    if not 0.0 <= validation_split <= 0.5:
        raise DataError(
            f"validation_split {validation_split:g} is outside 0-0.5; "
            "hold out at most half of the training images"
        )
    rng = np.random.default_rng(seed)
    subset = _limit(raw.y_train, train_limit, "train_limit", "training", raw, 10, rng)
    num_val = math.floor(len(subset) * validation_split + 0.5)
    in_val = np.zeros(len(subset), dtype=bool)
    if num_val:
        in_val[_stratified_choice(raw.y_train[subset], num_val, rng)] = True
    train_index, val_index = subset[~in_val], subset[in_val]
    test_index = _limit(raw.y_test, test_limit, "test_limit", "test", raw, 1, rng)

    x_train = _take(raw.x_train, train_index)
    mean = std = None
    if normalization == "standardize":
        mean, std = _pixel_mean_std(x_train)
    return PreparedData(
        info=info, source=raw.source,
        x_train=x_train, y_train=_take(raw.y_train, train_index),
        x_val=raw.x_train[val_index], y_val=raw.y_train[val_index],
        x_test=_take(raw.x_test, test_index), y_test=_take(raw.y_test, test_index),
        normalization=normalization, mean=mean, std=std,
        train_indices=train_index, val_indices=val_index, test_indices=test_index,
    )


_CHUNK = 1024  # images per step when summing: bounded memory for any dataset size


def _pixel_mean_std(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel mean and std of uint8 images, exact integer sums, float32 results."""
    n = len(x)
    if n == 0:
        raise DataError("cannot standardize: the training part is empty")
    total = np.zeros(x.shape[1:], dtype=np.int64)
    total_sq = np.zeros(x.shape[1:], dtype=np.int64)
    for start in range(0, n, _CHUNK):
        chunk = x[start : start + _CHUNK].astype(np.int64)
        total += chunk.sum(axis=0)
        total_sq += (chunk * chunk).sum(axis=0)
    # n*sum(x^2) - sum(x)^2 is exact in integers, so constant pixels get variance exactly 0
    var = (n * total_sq - total * total) / float(n) ** 2
    std = np.sqrt(var)
    std[var == 0] = 1.0  # as StandardScaler: leave constant pixels unscaled
    return (total / n).astype(np.float32), std.astype(np.float32)


def normalize(x_uint8, normalization: str, mean=None, std=None) -> np.ndarray:
    """Pixels in 0-255 units -> float32 model inputs: as is, /255, or (x - mean) / std."""
    x = np.asarray(x_uint8)
    if normalization not in NORMALIZATIONS:
        raise DataError(f"unknown normalization {normalization!r}; choose one of: {', '.join(NORMALIZATIONS)}")
    out = x.astype(np.float32)  # one copy, then in-place arithmetic
    if normalization == "scale":
        out /= np.float32(255.0)
    elif normalization == "standardize":
        if mean is None or std is None:
            raise DataError("standardize needs the training mean and std (use PreparedData.normalize)")
        mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
        if out.shape[-mean.ndim :] != mean.shape:
            raise DataError(f"images of shape {x.shape} do not match the statistics of shape {mean.shape}")
        out -= mean
        out /= std
    return out


def pixel_statistics(x_uint8) -> dict:
    """Mean, std, min, max (0-255 units) and the fraction of zero pixels, for the Data page."""
    x = np.asarray(x_uint8)
    if x.size == 0:
        raise DataError("pixel_statistics: no images given")
    total = total_sq = zeros = 0
    low, high = 255, 0
    for start in range(0, len(x), _CHUNK):
        chunk = x[start : start + _CHUNK]
        wide = chunk.astype(np.int64)
        total += int(wide.sum())
        total_sq += int((wide * wide).sum())
        zeros += int(np.count_nonzero(chunk == 0))
        low, high = min(low, int(chunk.min())), max(high, int(chunk.max()))
    n = x.size
    return {
        "mean": total / n,
        "std": math.sqrt((n * total_sq - total * total) / n**2),  # exact: Python ints
        "min": low,
        "max": high,
        "zero_fraction": zeros / n,
        "num_pixels": n,
    }


def class_counts(y, num_classes: int) -> np.ndarray:
    """How many labels of each class 0..num_classes-1 (int64 array)."""
    y = np.asarray(y).astype(np.int64, copy=False).ravel()
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"labels must be in 0-{num_classes - 1}, found {int(y.min())}-{int(y.max())}")
    return np.bincount(y, minlength=num_classes)
