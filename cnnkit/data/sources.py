"""`load_raw`: a whole dataset from the first source that has it, and which one it was.

In order:
1. a data directory (argument or CNNKIT_DATA_DIR) with the standard IDX files, checked
   against the official sha256 checksums when they are the full files;
2. Keras' own download cache, filled by a Keras download in a subprocess when allowed;
3. the bundled sample (cnnkit/data/samples), clearly labelled as a SAMPLE.

`source_hint` answers the same question for the Home page without reading any array.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import zipfile
from dataclasses import dataclass
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
from cnnkit.data.idx import idx_verified, missing_idx_files, read_idx_folder
from cnnkit.data.keras_cache import (
    cifar_folder,
    download_allowed,
    forget_failed_downloads,
    from_keras,
    keras_dataset_dirs,
    keras_home,
)
from cnnkit.errors import DataError

# ---------------------------------------------------------------------------
# Source 1: a data directory with IDX files
# ---------------------------------------------------------------------------


def data_dir_from_env() -> str | None:
    """CNNKIT_DATA_DIR, or None when it is unset or empty."""
    return settings.get().data_dir


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
    missing = missing_idx_files(folder)
    if missing:  # a half-filled folder is a mistake worth stopping for, not skipping
        raise DataError(
            f"{info.title}: data directory folder {folder} is missing {', '.join(missing)} "
            "(the .gz or uncompressed form); copy all four standard IDX files there"
        )
    x_train, y_train, x_test, y_test, checked = read_idx_folder(folder, info, info.idx_folder)
    source = DataSource("data_dir", str(folder), len(y_train), len(y_test),
                        idx_verified(checked), title=info.title)
    return make_raw(info, x_train, y_train, x_test, y_test, source)


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
    check_arrays(info, str(path), x_train, y_train)
    check_arrays(info, str(path), x_test, y_test)
    source = DataSource("sample", str(path), len(y_train), len(y_test), "bundled sample",
                        note="; ".join(tried), title=info.title)
    return make_raw(info, x_train, y_train, x_test, y_test, source)


# ---------------------------------------------------------------------------
# load_raw: try the sources in order, cache per process
# ---------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _load_raw_cached(name: str, data_dir: str | None, allow_download: bool, keras_root: str) -> RawData:
    info = get_dataset_info(name)
    tried: list[str] = []
    raw = _from_data_dir(info, data_dir, tried)
    if raw is None:
        raw = from_keras(info, allow_download, tried)
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
    forget_failed_downloads()


load_raw.cache_clear = clear_cache  # the lru_cache spelling, for callers who expect it


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
    for datasets in keras_dataset_dirs():
        if name == "mnist" and (datasets / "mnist.npz").is_file():
            return datasets / "mnist.npz"
        folder = datasets / "fashion-mnist"
        if name == "fashion_mnist" and folder.is_dir() and not missing_idx_files(folder):
            return folder
    return cifar_folder(keras_dataset_dirs()) if name == "cifar10" else None


def _sample_counts(path: Path) -> tuple[int, int]:
    # Only the label arrays are read (a few kB): the images stay on disk.
    with np.load(path, allow_pickle=False) as npz:
        return len(npz["y_train"]), len(npz["y_test"])


def source_hint(name: str, data_dir: str | None = None) -> SourceHint:
    """The source `cnnkit.data.sources.load_raw(name)` would use, in the same order, without loading."""
    info = get_dataset_info(name)
    data_dir = data_dir or data_dir_from_env()
    folder = Path(data_dir) / info.idx_folder if data_dir and info.idx_folder else None
    if folder is not None and folder.is_dir() and not missing_idx_files(folder):
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
