"""A loaded dataset made ready for training: subset, validation split, normalization statistics.

The pixels stay uint8 (the model scales them itself); `prepare_data` is the whole path from
an experiment spec to its `PreparedData`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field

import numpy as np

from cnnkit.data.catalog import DatasetInfo, DataSource, RawData
from cnnkit.data.sources import load_raw
from cnnkit.errors import DataError
from cnnkit.specs import NORMALIZATIONS, ExperimentSpec

# ---------------------------------------------------------------------------
# Splitting and normalizing
# ---------------------------------------------------------------------------



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


def prepare_data(spec: ExperimentSpec, data_dir: str | None = None) -> PreparedData:
    """The spec's dataset, loaded from the first source that has it, then subset and split."""
    raw = load_raw(spec.dataset.name, data_dir)
    return prepare(raw, train_limit=spec.dataset.train_limit, validation_split=spec.dataset.validation_split,
                   normalization=spec.dataset.normalization, seed=spec.training.seed,
                   test_limit=spec.dataset.test_limit)
