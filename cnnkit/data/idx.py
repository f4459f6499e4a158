"""The IDX format (how MNIST and Fashion-MNIST are published) and the official files' checksums.

Headers, types and counts are checked before any array is built; a file with the official
item count must also have the official bytes (sha256 of the decompressed data).
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from cnnkit.data.catalog import DatasetInfo
from cnnkit.errors import DataError

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


# The official releases: MNIST by Y. LeCun, C. Cortes and C. Burges (yann.lecun.com/exdb/mnist),
# Fashion-MNIST by Zalando Research (github.com/zalandoresearch/fashion-mnist, whose README lists
# the MD5 of its .gz files: train images 8d4fb7e6…, train labels 25c81989…, test images
# bef4ecab…, test labels bb300cfd…). The hashes below are sha256 of the DECOMPRESSED bytes, taken
# from files whose contents are those releases: MNIST .gz files in circulation were re-compressed
# (other .gz bytes, the same official contents), so a hash of the .gz would refuse real copies.
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


def find_idx_file(folder: Path, filename: str) -> Path | None:
    for candidate in (filename, filename.removesuffix(".gz")):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def missing_idx_files(folder: Path) -> list[str]:
    names = [name for pair in IDX_FILES.values() for name in pair]
    return [name for name in names if find_idx_file(folder, name) is None]


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


def read_idx_folder(folder: Path, info: DatasetInfo, checksum_key: str | None):
    """The four IDX files of `folder` as (x_train, y_train, x_test, y_test, n_checksummed)."""
    arrays, checked = [], 0
    for images_name, labels_name in IDX_FILES.values():
        pair = []
        for name in (images_name, labels_name):
            path = find_idx_file(folder, name)
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


def idx_verified(checked: int) -> str:
    if checked == 4:
        return "IDX headers + sha256 checksums"
    if checked:
        return f"IDX headers + sha256 checksums of {checked} of 4 files"
    return "IDX headers"
