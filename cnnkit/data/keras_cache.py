"""Keras' dataset cache (`$KERAS_HOME/datasets` or `~/.keras/datasets`), read with numpy alone.

mnist.npz (checksummed), Fashion-MNIST's IDX folder and CIFAR-10's pickled batches (unpickled
with an allowlist: numpy arrays and plain containers only). When a download is allowed it runs
`python -m cnnkit.model.keras_download` in a subprocess, so this process never imports Keras.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

from cnnkit import settings
from cnnkit.data.catalog import (
    DatasetInfo,
    DataSource,
    RawData,
    check_arrays,
    get_dataset_info,
    make_raw,
)
from cnnkit.data.idx import KERAS_MNIST_NPZ_SHA256, idx_verified, missing_idx_files, read_idx_folder
from cnnkit.errors import DataError

# ---------------------------------------------------------------------------
# Source 2: Keras' download cache, read without importing Keras
# ---------------------------------------------------------------------------


def keras_home() -> Path:
    """Where Keras caches downloads: $KERAS_HOME, else ~/.keras (as keras.config.keras_home)."""
    value = os.environ.get("KERAS_HOME", "").strip()
    return Path(value).expanduser() if value else Path("~/.keras").expanduser()


def keras_dataset_dirs() -> list[Path]:
    """Keras writes to /tmp/.keras when its home is not writable, so look there too."""
    home = keras_home()
    dirs = [home / "datasets"]
    if home.exists() and not os.access(home, os.W_OK):
        dirs.append(Path("/tmp/.keras/datasets"))
    return dirs


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
    check_arrays(info, str(path), x_train, y_train)
    check_arrays(info, str(path), x_test, y_test)
    source = DataSource("keras", str(path), len(y_train), len(y_test), verified, title=info.title)
    return make_raw(info, x_train, y_train, x_test, y_test, source)


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


def cifar_folder(dataset_dirs: list[Path]) -> Path | None:
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
    check_arrays(info, str(folder), x_train, y_train)
    check_arrays(info, str(folder), x_test, y_test)
    source = DataSource("keras", str(folder), len(y_train), len(y_test), "array shapes",
                        title=info.title)
    return make_raw(info, x_train, y_train, x_test, y_test, source)


def _read_keras_cache(info: DatasetInfo, tried: list[str]) -> RawData | None:
    """The dataset from Keras' cache, or None (with the reason appended to `tried`)."""
    dirs = keras_dataset_dirs()
    where = " or ".join(str(d) for d in dirs)
    if info.name == "mnist":
        for datasets in dirs:
            if (datasets / "mnist.npz").is_file():
                return _read_mnist_npz(info, datasets / "mnist.npz")
        tried.append(f"Keras cache has no mnist.npz in {where}")
    elif info.name == "fashion_mnist":
        for datasets in dirs:
            folder = datasets / "fashion-mnist"
            if folder.is_dir() and not missing_idx_files(folder):
                x_train, y_train, x_test, y_test, checked = read_idx_folder(folder, info, "fashion-mnist")
                source = DataSource("keras", str(folder), len(y_train), len(y_test),
                                    idx_verified(checked), title=info.title)
                return make_raw(info, x_train, y_train, x_test, y_test, source)
        tried.append(f"Keras cache has no complete fashion-mnist/ folder in {where}")
    else:
        folder = cifar_folder(dirs)
        if folder is not None:
            return _read_cifar_folder(info, folder)
        tried.append(f"Keras cache has no cifar-10-batches-py folder in {where}")
    return None


def download_allowed() -> bool:
    """False when CNNKIT_OFFLINE says so (1/true/yes/on): no network attempts at all."""
    return not settings.get().offline


_failed_downloads: dict[str, str] = {}  # name -> why; a failed download is not retried


def forget_failed_downloads() -> None:
    _failed_downloads.clear()


def download_with_keras(name: str, timeout: float = 600) -> bool:
    """Run `cnnkit.model.keras_download` in a subprocess, so this process never imports TensorFlow."""
    info = get_dataset_info(name)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    try:
        result = subprocess.run([sys.executable, "-m", "cnnkit.model.keras_download", info.name],
                                cwd=settings.REPO_ROOT, env=env,
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


def from_keras(info: DatasetInfo, allow_download: bool, tried: list[str]) -> RawData | None:
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


