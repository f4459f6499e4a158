"""The learning-rate finder's curve in words: the suggested rate, and how it is chosen.

The suggestion is the rate where the smoothed loss falls fastest (the steepest slope against
log10 of the rate), before the loss's lowest point: fastai's "steepest" choice. Pure numpy: the
curve comes from `cnnkit lrfind` (cnnkit.model.lr_finder) in its own process.
"""

from __future__ import annotations

import numpy as np


def suggest_lr(lrs: list[float], losses: list[float]) -> float | None:
    """The rate of steepest descent before the minimum, or None when the curve is too short."""
    if len(lrs) < 5 or len(lrs) != len(losses):
        return None
    logs, values = np.log10(np.asarray(lrs, np.float64)), np.asarray(losses, np.float64)
    lowest = int(np.argmin(values))
    if lowest < 2:
        return None  # the loss only rose: no rate in this range helped
    slopes = np.gradient(values[:lowest + 1], logs[:lowest + 1])
    return float(lrs[int(np.argmin(slopes))])
