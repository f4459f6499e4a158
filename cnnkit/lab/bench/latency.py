"""3. Prediction latency: one 28×28 image through the app's prediction path vs model.predict.

The models are untrained (latency does not depend on the weights), saved to a .keras file and
loaded the way the pages load them; p50 and p95 of many calls after a warm-up.
"""

from __future__ import annotations

import os
import tempfile
import time

from cnnkit.lab.bench.common import Options, Section, percentile, run_child, table
from cnnkit.sysinfo import load_average

LATENCY_MODELS = ("quick-train", "moroney-cnn", "kruse-conv-nopool")


def _stroke_message(size: int = 280) -> dict:
    """A vertical stroke ('1') as the Draw page's canvas sends it (components/draw_canvas.js)."""
    import base64

    import numpy as np

    ink = np.zeros((size, size), np.uint8)
    ink[size // 5: 4 * size // 5, size // 2 - 10: size // 2 + 10] = 255
    return {"side": size, "pixels": base64.b64encode(ink.tobytes()).decode(), "strokes": 1}


def latency_child(models: list[str], calls: int, predict_calls: int) -> dict:
    import numpy as np

    from cnnkit.data.drawing import load_canvas_pixels
    from cnnkit.model.inspection import Predictor
    from cnnkit.model.models import build_model
    from cnnkit.model.predictor import load_predictor
    from cnnkit.model.tf_import import keras
    from cnnkit.presets import get_preset
    from cnnkit.views.demo import quick_train_spec, read_drawing

    out = {}
    message = _stroke_message()
    image = np.random.default_rng(0).integers(0, 256, (28, 28)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        for name in models:
            spec = quick_train_spec() if name == "quick-train" else get_preset(name).experiment()
            keras.utils.set_random_seed(0)
            model = build_model(spec.layers, (28, 28, 1), 10, normalization=spec.dataset.normalization,
                                mean=np.zeros((28, 28, 1), np.float32), std=np.ones((28, 28, 1), np.float32))
            path = os.path.join(tmp, f"{name}.keras")
            model.save(path)
            app = load_predictor(path, spec.output)  # what ui.predictor() gives the pages
            compiled = Predictor(model, spec.output)
            timings = {
                f"app: {type(app).__name__}.probabilities": _timed(lambda p=app: p.probabilities(image), calls),
                "app: canvas → read_drawing": _timed(
                    lambda p=app: read_drawing(load_canvas_pixels(message, 280), {"cnn": p}), calls),
                "TF: inspection.Predictor": _timed(lambda p=compiled: p.probabilities(image), calls),
                "TF: model.predict": _timed(lambda m=model: m.predict(image[None, ..., None], verbose=0),
                                            predict_calls)}
            out[name] = {path: {"p50_ms": percentile(t, 50), "p95_ms": percentile(t, 95), "calls": len(t)}
                         for path, t in timings.items()}
    return out


def _timed(call, n: int) -> list[float]:
    for _ in range(min(10, n)):  # warm-up: tracing and first-call allocations are not latency
        call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def bench_latency(opts: Options) -> Section:
    section = Section("3. Prediction latency: one 28×28 image")
    calls, predict_calls = (50, 10) if opts.quick else (1000, 200)
    load = load_average()
    models = ["quick-train"] if opts.quick else list(LATENCY_MODELS)
    result = run_child("latency", {"models": models, "calls": calls, "predict_calls": predict_calls})
    result.pop("child_seconds", None)
    rows = [[name, path, t["calls"], t["p50_ms"], t["p95_ms"]]
            for name, paths in result.items() for path, t in paths.items()]
    section.lines += table(["model", "path", "calls", "p50 ms", "p95 ms"], rows)
    section.lines += ["", f"Load average at the start: {load:.2f}. Untrained models (latency does not "
                      "depend on the weights), saved to a .keras file and loaded the way the pages load "
                      "them (`cnnkit.model.predictor.load_predictor`: a numpy forward pass, so the server never imports "
                      "TensorFlow). `read_drawing` adds reading the canvas's message and the drawing's preprocessing (280×280 ink → "
                      "centred 28×28), as the Draw page runs it. For comparison, TensorFlow's compiled "
                      "`inspection.Predictor` (a tf.function) and `model.predict`."]
    section.data = result
    return section
