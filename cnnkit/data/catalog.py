"""What the datasets are (`DATASETS`), and what a load returns: `RawData` with its `DataSource`.

Facts only: names, shapes, class names, where the IDX files live, licences. Every loader
builds its `RawData` through `make_raw` and checks arrays with `check_arrays`, so all sources
hand out the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass

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

# 28×28 grayscale: the datasets a drawing on the canvas can be read as
DRAWABLE = tuple(name for name, info in DATASETS.items() if info.input_shape == (28, 28, 1))


def get_dataset_info(name: str) -> DatasetInfo:
    """The `DatasetInfo` for `name`, or a DataError listing the valid names."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        choices = ", ".join(DATASETS)
        raise DataError(f"unknown dataset {name!r}; choose one of: {choices}") from None


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


def make_raw(info, x_train, y_train, x_test, y_test, source) -> RawData:
    """Build RawData with read-only arrays: cached copies are shared by every caller."""
    arrays = [np.asarray(a) for a in (x_train, y_train, x_test, y_test)]
    for a in arrays:
        a.setflags(write=False)
    return RawData(info, *arrays, source=source)


def check_arrays(info: DatasetInfo, where: str, x: np.ndarray, y: np.ndarray) -> None:
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
