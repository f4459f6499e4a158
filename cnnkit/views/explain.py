"""Why did it say 7? Heatmaps of what a model's decision rests on, and how faithful each method is.

Four methods on the numpy model (`cnnkit.model.gradients`: the dashboard never imports
TensorFlow), all for the score of one class (its logit, never the softmax, which saturates):
- gradient × input: how much each pixel's ink adds to the score (the positive part);
- saliency: |∂score/∂pixel|;
- SmoothGrad: saliency averaged over noisy copies of the image;
- Grad-CAM: a conv or pooling layer's maps weighted by their mean gradient, upsampled.
The dense baseline has no maps: only the gradient methods apply to it.

Faithfulness, by the deletion test: remove the 10% of the ink with the most heat and compare
the fall of the class's probability with removing a random 10% of the ink. `deletion_ratio`
measures it; docs/RESULTS.md has the table that chose the default.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from cnnkit.model.gradients import class_score_gradients

SMOOTHGRAD_SAMPLES = 24
SMOOTHGRAD_SIGMA = 0.15 * 255      # the SmoothGrad paper's 10–20% of the input range
INK = 0.0                          # a pixel with any ink (MNIST's background is exactly 0)


@dataclass(frozen=True)
class Method:
    name: str
    title: str
    needs_maps: bool               # Grad-CAM: CNN only
    help: str

    def __repr__(self) -> str:
        return f"Method({self.name})"


METHODS = {m.name: m for m in (
    Method("gradxinput", "gradient × input", False,
           "How much each pixel's ink adds to the class's score: the gradient times the pixel."),
    Method("saliency", "saliency", False, "How strongly the score reacts to each pixel: |gradient|."),
    Method("smoothgrad", "SmoothGrad", False, f"Saliency averaged over {SMOOTHGRAD_SAMPLES} noisy copies."),
    Method("gradcam", "Grad-CAM", True, "A conv layer's maps weighted by how much they raise the score."),
)}
DEFAULT_METHOD = "gradxinput"      # the most faithful by the deletion test (docs/RESULTS.md)


def numpy_model(predictor):
    """The numpy model behind a predictor (cnnkit.model.predictor.load_predictor), or None when
    the model needed Keras (a layer numpy cannot run): the explanations need the numpy one."""
    from cnnkit.model.lite import LitePredictor

    return predictor.model if isinstance(predictor, LitePredictor) else None


def methods_for(model) -> list[str]:
    """The methods that apply to a model: Grad-CAM only where there are maps."""
    return [name for name, m in METHODS.items() if not m.needs_maps or map_layers(model)]


def map_layers(model) -> list[str]:
    """Layers with spatial maps that Grad-CAM can use (conv and pooling), in model order."""
    return [layer.name for layer in model.layers
            if layer.class_name in ("Conv2D", "MaxPooling2D", "AveragePooling2D")]


def default_cam_layer(model) -> str | None:
    """The middle map layer: the last one is 3×3 on these nets, too coarse to point at strokes.
    (On these small digit nets Grad-CAM passes the deletion test at no layer: docs/RESULTS.md.)"""
    layers = map_layers(model)
    return layers[(len(layers) - 1) // 2] if layers else None


def _normalized(heat: np.ndarray) -> np.ndarray:
    heat = np.maximum(np.nan_to_num(heat.astype(np.float64)), 0.0)
    peak = heat.max(axis=(1, 2), keepdims=True)
    return np.where(peak > 0, heat / np.where(peak > 0, peak, 1.0), 0.0).astype(np.float32)


def _upsample(maps: np.ndarray, height: int, width: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(m.astype(np.float32)).resize((width, height), Image.Resampling.BILINEAR))
                     for m in maps])


def heatmaps(model, images: np.ndarray, method: str, target, layer: str | None = None,
             seed: int = 0) -> np.ndarray:
    """(N, H, W) heat in [0, 1] for `target` (a class, or one per image) on 0–255 `images`
    (N, H, W, C), from the numpy model `model` (a cnnkit.model.lite.LiteModel)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    x = np.asarray(images, np.float32)
    targets = np.broadcast_to(np.asarray(target), (len(x),))
    if method == "gradcam":
        layer = layer or default_cam_layer(model)
        if layer is None:
            raise ValueError("Grad-CAM needs a conv or pooling layer: this model has none (use a gradient method)")
        grads = class_score_gradients(model, x, targets, layer=layer)
        weights = grads.layer_gradient.mean(axis=(1, 2), keepdims=True)
        cam = np.maximum((weights * grads.activations).sum(axis=3), 0.0)
        return _normalized(_upsample(cam, x.shape[1], x.shape[2]))
    if method == "smoothgrad":
        rng = np.random.default_rng(seed)
        total = np.zeros(x.shape[:3], np.float64)
        for image_index in range(len(x)):
            noisy = x[image_index] + rng.normal(0, SMOOTHGRAD_SIGMA, (SMOOTHGRAD_SAMPLES, *x.shape[1:])).astype(np.float32)
            g = class_score_gradients(model, noisy, targets[image_index]).input
            total[image_index] = np.abs(g).max(axis=3).mean(axis=0)
        return _normalized(total)
    g = class_score_gradients(model, x, targets).input
    if method == "saliency":
        return _normalized(np.abs(g).max(axis=3))
    return _normalized(np.maximum(g * x, 0.0).sum(axis=3))  # gradient × input, its positive part


# ---------------------------------------------------------------------------
# Faithfulness


@dataclass(frozen=True)
class DeletionResult:
    method: str
    ratio: float              # mean drop with the hottest ink removed / mean drop with random ink removed
    top_drop: float
    random_drop: float
    images: int

    def __repr__(self) -> str:
        return f"DeletionResult({self.method}: {self.ratio:.2f}× over {self.images} images)"


def deletion_ratio(model, images: np.ndarray, method: str, *, fraction: float = 0.1, layer: str | None = None,
                   random_draws: int = 5, seed: int = 0) -> DeletionResult:
    """The deletion test on 0–255 `images` for each one's predicted class (see the module doc)."""
    from cnnkit.model.outputs import softmax

    x = np.asarray(images, np.float32)
    logits = class_score_gradients(model, x, 0).logits
    predicted = logits.argmax(axis=1)
    p0 = softmax(logits)[np.arange(len(x)), predicted]
    heat = heatmaps(model, x, method, predicted, layer=layer, seed=seed)
    rng = np.random.default_rng(seed)
    top, rand = [], []
    for i in range(len(x)):
        ink = np.flatnonzero(x[i].max(axis=2).ravel() > INK)
        k = max(1, int(round(fraction * len(ink))))
        hottest = ink[np.argsort(-heat[i].ravel()[ink], kind="stable")[:k]]
        variants = [_without(x[i], hottest)] + [_without(x[i], rng.choice(ink, k, replace=False))
                                                for _ in range(random_draws)]
        probs = softmax(class_score_gradients(model, np.stack(variants), 0).logits)[:, predicted[i]]
        top.append(p0[i] - probs[0])
        rand.append(p0[i] - probs[1:].mean())
    top_drop, random_drop = float(np.mean(top)), float(np.mean(rand))
    ratio = top_drop / random_drop if random_drop > 0 else float("inf")
    return DeletionResult(method, ratio, top_drop, random_drop, len(x))


def _without(image: np.ndarray, flat_pixels: np.ndarray) -> np.ndarray:
    out = image.copy()
    rows, cols = np.unravel_index(flat_pixels, image.shape[:2])
    out[rows, cols, :] = 0.0
    return out
