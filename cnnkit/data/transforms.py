"""Image transformations for the robustness lab: shift, rotate, scale, noise. numpy only.

Every function takes a batch of images (N, H, W, C) of pixel values 0–255 (any float or uint8
dtype) and returns float32 of the same shape. Vacated pixels are black (0), as MNIST's
background is: never "reflect" or "wrap", which would invent strokes.
"""

from __future__ import annotations

import math

import numpy as np


def _batch(images: np.ndarray) -> np.ndarray:
    x = np.asarray(images, dtype=np.float32)
    if x.ndim != 4:
        raise ValueError(f"expected a batch of images (N, height, width, channels), got shape {x.shape}")
    return x


def shift(images: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move every image down by `dy` and right by `dx` whole pixels (negative: up, left)."""
    x = _batch(images)
    out = np.zeros_like(x)
    height, width = x.shape[1:3]
    if abs(dy) >= height or abs(dx) >= width:
        return out
    rows_to, rows_from = slice(max(dy, 0), height + min(dy, 0)), slice(max(-dy, 0), height + min(-dy, 0))
    cols_to, cols_from = slice(max(dx, 0), width + min(dx, 0)), slice(max(-dx, 0), width + min(-dx, 0))
    out[:, rows_to, cols_to] = x[:, rows_from, cols_from]
    return out


def affine(images: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Resample every image through the 2×2 `matrix` about the image centre, bilinearly: the
    output pixel at (r, c) reads the input at centre + matrix @ ((r, c) - centre). Outside is 0."""
    x = _batch(images)
    n, height, width, channels = x.shape
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    rows, cols = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    source = np.tensordot(np.asarray(matrix, np.float64), np.stack([rows - centre[0], cols - centre[1]]), axes=1)
    sr, sc = source[0] + centre[0], source[1] + centre[1]
    r0, c0 = np.floor(sr).astype(int), np.floor(sc).astype(int)
    fr, fc = (sr - r0).astype(np.float32), (sc - c0).astype(np.float32)
    padded = np.zeros((n, height + 2, width + 2, channels), np.float32)  # a black frame for the taps outside
    padded[:, 1:-1, 1:-1] = x

    def tap(r, c):
        inside = (r >= -1) & (r <= height) & (c >= -1) & (c <= width)
        return padded[:, np.clip(r + 1, 0, height + 1), np.clip(c + 1, 0, width + 1)] * inside[None, ..., None]

    top = tap(r0, c0) * (1 - fc)[None, ..., None] + tap(r0, c0 + 1) * fc[None, ..., None]
    bottom = tap(r0 + 1, c0) * (1 - fc)[None, ..., None] + tap(r0 + 1, c0 + 1) * fc[None, ..., None]
    return top * (1 - fr)[None, ..., None] + bottom * fr[None, ..., None]


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image by `degrees` anticlockwise (as seen on screen) about its centre."""
    if degrees == 0:
        return _batch(images).copy()
    t = math.radians(degrees)
    # (row, col) with rows growing downwards: output pixel p reads the source at R(-t) p, so the
    # picture turns anticlockwise on screen (rotate(x, 90) equals np.rot90(x, 1, axes=(1, 2)))
    return affine(images, np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]]))


def scale(images: np.ndarray, factor: float) -> np.ndarray:
    """Zoom every image by `factor` about its centre (0.6: a smaller digit, 1.4: a bigger one)."""
    if factor <= 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    if factor == 1:
        return _batch(images).copy()
    return affine(images, np.eye(2) / factor)


def noise(images: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Add Gaussian noise of standard deviation `sigma` (in pixel values), clipped to 0–255."""
    x = _batch(images)
    if sigma == 0:
        return x.copy()
    rng = np.random.default_rng(seed)
    return np.clip(x + rng.normal(0.0, sigma, x.shape).astype(np.float32), 0.0, 255.0)


def random_augment(images: np.ndarray, augmentation, seed: int = 0) -> np.ndarray:
    """A numpy rendering of a spec's augmentation (cnnkit.specs.AugmentationSpec), for the
    preview grid: each image gets its own draw from the same ranges Keras' layers use in
    training (shift ± a fraction of the size, rotation ± degrees, zoom 1 ± a fraction, a
    left-right flip half of the time, Gaussian noise). Not the training pipeline itself."""
    x = _batch(images)
    rng = np.random.default_rng(seed)
    out = np.empty_like(x)
    height, width = x.shape[1:3]
    for i in range(len(x)):
        image = x[i:i + 1]
        if augmentation.rotation:
            image = rotate(image, float(rng.uniform(-augmentation.rotation, augmentation.rotation)))
        if augmentation.zoom:
            image = scale(image, float(1 + rng.uniform(-augmentation.zoom, augmentation.zoom)))
        if augmentation.shift:
            dy, dx = rng.uniform(-augmentation.shift, augmentation.shift, 2) * (height, width)
            image = shift(image, int(round(dy)), int(round(dx)))
        if augmentation.flip and rng.random() < 0.5:
            image = image[:, :, ::-1]
        if augmentation.noise:
            image = noise(image, augmentation.noise * 255.0, seed=int(rng.integers(2**31)))
        out[i] = image[0]
    return out
