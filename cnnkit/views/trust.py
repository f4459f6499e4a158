"""When a reading of a drawing should not be trusted: the CNN and its dense baseline disagree, or
the drawing is far from anything the models learnt from.

A model always answers, and confidently: a dot blown up to 20 px read as "0" at 99%, a scribble
as "8" at 96%. "Far" is three numbers of the 28×28 image the model sees, each one a person can
check by eye:

- ink: how many pixels carry ink (above the canvas's ink level, drawing.INK_LEVEL);
- thickness: the side of the largest square of solid ink (training digits: 4 px typically, at
  most 9 for all but 1 in 1,000; a dot blown up to the 20 px box, or a scribbled-over patch: 15);
- width: the ink's width over its height (a digit is taller than it is wide; a dash is not).

Each is compared with where the training split of the dataset's bundled sample lies: its median,
and the value that all but 1 in 1,000 of its images stay at or below (the 99.9th percentile). A
drawing is far when it lies beyond that value by more than a tenth of the way from the median to
it, on the side that means trouble: more ink, a thicker blot, a wider box. Less ink or a
narrower box is a fine brush or a "1", not a sign of trouble: the canvas's preprocessing scales
every drawing to the same 20 px box, so a dot comes out thick, never small.
Measured (tests/test_trust.py): 0.1% of the MNIST sample's 1,000 test digits are flagged, 0.8%
after the canvas's preprocessing; of its Fashion-MNIST test items 87% (63% as the canvas makes
them: trousers, dresses and sandals, cropped to the 20 px box, look much like pen strokes).

numpy only, and cheap (well under a millisecond a drawing; the ranges once per dataset).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from cnnkit.data.drawing import INK_LEVEL, subject
from cnnkit.data.sources import SAMPLES_DIR

# All but 1 in 1,000 training images lie at or below this percentile (the reasons say so).
PERCENTILE = 99.9
# How far beyond that percentile a drawing must lie to be "far", as a share of the way from the
# median to it.
MARGIN = 0.1


# ------------------------------------------------------------------------- the three numbers


def _unit(images) -> np.ndarray:
    """(N, H, W) floats in [0, 1] of one image or a batch, with or without a channel axis: uint8
    images (the datasets) are scaled, floats (a drawing) kept."""
    values = np.asarray(images)
    values = values[..., 0] if values.shape[-1] == 1 and values.ndim in (3, 4) else values
    values = values if values.ndim == 3 else values[None]
    return values / 255.0 if values.dtype == np.uint8 else values.astype(np.float64)


def _largest_square(mask: np.ndarray) -> np.ndarray:
    """The side of the largest all-ink square of each (N, H, W) mask. A k×k window is all ink when
    its sum, read off the summed-area table, is k²; a square of side k holds one of every smaller
    side, so the count of sides that occur is the largest (28 array steps, not one per pixel)."""
    table = np.pad(mask.astype(np.int32).cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    largest = np.zeros(mask.shape[0], np.int32)
    for k in range(1, min(mask.shape[1:]) + 1):
        window = table[:, k:, k:] - table[:, :-k, k:] - table[:, k:, :-k] + table[:, :-k, :-k]
        found = (window == k * k).any(axis=(1, 2))
        if not found.any():
            break
        largest += found
    return largest


def _extent(present: np.ndarray) -> np.ndarray:
    """Rows (or columns) from the first to the last one with ink, per image; 0 when none has."""
    index = np.arange(present.shape[1])
    first = np.where(present, index, present.shape[1]).min(axis=1)
    last = np.where(present, index, -1).max(axis=1)
    return np.maximum(last - first + 1, 0)


def measure(images) -> dict[str, np.ndarray]:
    """The three numbers of each image ((N, 28, 28) or one (28, 28); uint8 0–255 or floats 0–1):
    "ink" (inked pixels), "square" (side of the largest solid square of ink), "width" (the ink's
    width over its height)."""
    mask = _unit(images) > INK_LEVEL
    height, width = _extent(mask.any(axis=2)), _extent(mask.any(axis=1))
    return {"ink": mask.sum(axis=(1, 2)), "square": _largest_square(mask),
            "width": width / np.maximum(height, 1)}


# ------------------------------------------------------------------- the training data's ranges


@dataclass(frozen=True)
class Range:
    """Where the training images lie on one number: their median, and the value all but 1 in 1,000
    of them stay at or below."""

    typical: float
    high: float

    def above(self, value: float) -> bool:
        return value > self.high + MARGIN * (self.high - self.typical)


@functools.lru_cache(maxsize=4)
def training_ranges(dataset: str) -> dict[str, Range]:
    """Each number's range over the training split of `dataset`'s bundled sample (4,000 images,
    the same on every machine; about 0.1 s, once per process)."""
    with np.load(SAMPLES_DIR / f"{dataset}_sample.npz", allow_pickle=False) as sample:
        numbers = measure(sample["x_train"])
    return {name: Range(*(float(p) for p in np.percentile(values, (50, PERCENTILE)))) for name, values in numbers.items()}


# ---------------------------------------------------------------------------------- in words


def far_from_training(image, dataset: str) -> list[str]:
    """Why the 28×28 `image` is far from `dataset`'s training images, one reason a number; [] when
    it is not (or the dataset has no bundled sample to compare with)."""
    if not (SAMPLES_DIR / f"{dataset}_sample.npz").is_file():
        return []
    ranges, about = training_ranges(dataset), subject(dataset)
    numbers = {name: float(values[0]) for name, values in measure(image).items()}
    ink, square, width = (ranges[name] for name in ("ink", "square", "width"))
    reasons = []
    if ink.above(numbers["ink"]):
        reasons.append(f"much more ink than the training {about.many} ({numbers['ink']:.0f} inked pixels; "
                       f"typically {ink.typical:.0f}, nearly all at most {ink.high:.0f})")
    if square.above(numbers["square"]):
        side, most = f"{numbers['square']:.0f}", f"{square.high:.0f}"
        reasons.append(f"a blot, not pen strokes (a solid {side}×{side} px square of ink; nearly all "
                       f"training {about.many} hold at most {most}×{most})")
    if width.above(numbers["width"]):
        reasons.append(f"far wider than tall for {about.a_one} ({numbers['width']:.1f}× as wide as tall; "
                       f"nearly all training {about.many} at most {width.high:.1f}×)")
    return reasons


def doubts(prediction, names: list, dataset: str) -> list[str]:
    """Why not to trust a reading (a demo.DrawingPrediction that is ok): the CNN and the baseline
    disagree, and every way the drawing is far from the training data; [] when there is none."""
    reasons = []
    if "baseline" in prediction.probs:
        cnn, baseline = prediction.top("cnn")[0], prediction.top("baseline")[0]
        if cnn != baseline:
            reasons.append(f"the CNN and the baseline disagree ({names[cnn]} vs {names[baseline]})")
    return reasons + far_from_training(prediction.drawing.image, dataset)


def warning(reasons: list[str]) -> str:
    """The one sentence the page shows under a reading it doubts ("nearly all": all but 1 in 1,000)."""
    return "Don't trust this reading: " + "; ".join(reasons) + "."
