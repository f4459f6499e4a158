"""Cheap facts for the Home page: CPUs, a GPU, library versions, where each dataset would load from.

Everything here answers in milliseconds and never imports TensorFlow (or any big library):
the Home page must paint at once. GPU presence is read from the NVIDIA driver's files, and
data sources are probed by looking at files, not by reading arrays.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from cnnkit.data import (
    SAMPLES_DIR,
    _cifar_folder,
    _keras_dataset_dirs,
    _missing_idx_files,
    data_dir_from_env,
    download_allowed,
    get_dataset_info,
)


def cpu_count() -> int:
    """CPUs this process may use (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gpu_description(proc_file: str = "/proc/driver/nvidia/version") -> str | None:
    """A one-line description of an NVIDIA driver if there is one, else None.

    Whether TensorFlow will *use* the GPU also depends on the installed build (tensorflow-cpu
    never does); the Home page says so instead of importing TensorFlow to find out.
    """
    try:
        first = Path(proc_file).read_text(encoding="utf-8", errors="replace").splitlines()[0]
        return first.strip() or "NVIDIA driver present"
    except (OSError, IndexError):
        pass
    if shutil.which("nvidia-smi"):
        return "nvidia-smi found (NVIDIA GPU likely)"
    return None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def tensorflow_build() -> str:
    """Which TensorFlow distribution is installed, from its metadata (no import)."""
    for dist in ("tensorflow-cpu", "tensorflow", "tensorflow-gpu"):
        version = package_version(dist)
        if version:
            return f"{dist} {version}"
    return "not installed"


def versions() -> dict[str, str]:
    names = ("streamlit", "keras", "numpy", "plotly", "streamlit-drawable-canvas")
    out = {"tensorflow": tensorflow_build()}
    out.update({name: package_version(name) or "not installed" for name in names})
    return out


@dataclass(frozen=True)
class SourceHint:
    """Where `load_raw` would take a dataset from, guessed from which files exist."""

    dataset: str
    kind: str          # "data_dir" | "keras" | "download" | "sample" | "missing"
    text: str

    def __repr__(self) -> str:
        return f"SourceHint({self.dataset!r}, {self.kind})"

    @property
    def is_sample(self) -> bool:
        return self.kind == "sample"


def _keras_cache_has(name: str) -> Path | None:
    # cnnkit.data's own file rules (same package), so the hint never disagrees with load_raw.
    for datasets in _keras_dataset_dirs():
        if name == "mnist" and (datasets / "mnist.npz").is_file():
            return datasets / "mnist.npz"
        folder = datasets / "fashion-mnist"
        if name == "fashion_mnist" and folder.is_dir() and not _missing_idx_files(folder):
            return folder
    return _cifar_folder(_keras_dataset_dirs()) if name == "cifar10" else None


def _sample_counts(path: Path) -> tuple[int, int]:
    # Only the label arrays are read (a few kB): the images stay on disk.
    with np.load(path, allow_pickle=False) as npz:
        return len(npz["y_train"]), len(npz["y_test"])


def source_hint(name: str, data_dir: str | None = None) -> SourceHint:
    """The source `cnnkit.data.load_raw(name)` would use, in the same order, without loading."""
    info = get_dataset_info(name)
    data_dir = data_dir or data_dir_from_env()
    folder = Path(data_dir) / info.idx_folder if data_dir and info.idx_folder else None
    if folder is not None and folder.is_dir() and not _missing_idx_files(folder):
        return SourceHint(name, "data_dir", f"data directory {folder}")
    cached = _keras_cache_has(name)
    if cached is not None:
        return SourceHint(name, "keras", f"Keras cache {cached}")
    if download_allowed():
        fallback = "; without internet: " + ("the bundled SAMPLE" if info.idx_folder else "none")
        return SourceHint(name, "download", f"downloaded by Keras on first use{fallback}")
    sample = SAMPLES_DIR / f"{name}_sample.npz"
    if info.idx_folder and sample.is_file():
        try:
            num_train, num_test = _sample_counts(sample)
        except (OSError, ValueError, KeyError):
            return SourceHint(name, "missing", f"the bundled sample {sample} is unreadable")
        return SourceHint(name, "sample", f"bundled SAMPLE ({num_train:,} train / {num_test:,} test "
                                          f"images, not the full dataset)")
    if info.idx_folder:
        how = "set CNNKIT_DATA_DIR to a folder with the IDX files, or fill the Keras cache"
    else:  # CIFAR-10 has no IDX form and no bundled sample
        how = "run once with internet (CNNKIT_OFFLINE unset) or copy a Keras cache into KERAS_HOME"
    return SourceHint(name, "missing", f"not available offline: {how}")
