"""Explanations: how faithful each method is (the deletion test), and what one costs.

A child trains chollet-cnn for 2 epochs (its recipe, seed 1) with its dense-128 baseline on the
real MNIST, then, on the first 100 test digits: for each method (and each Grad-CAM layer), the
fall of the predicted class's probability when the 10% of the ink with the most heat is
removed, over the fall when a random 10% is removed (mean of 5 draws). Also the milliseconds
of one heatmap for one drawing, the Draw page's cost.
"""

from __future__ import annotations

import tempfile
import time

from cnnkit.lab.bench.common import (
    Options,
    Section,
    bench_spec,
    run_child,
    skipped_without_data,
    table,
)

DIGITS = 100


def explain_child(data_dir: str | None, train_limit: int | None, epochs: int, digits: int) -> dict:
    import numpy as np

    from cnnkit.data.sources import load_raw
    from cnnkit.model.lite import LiteModel
    from cnnkit.model.training import run_job
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore
    from cnnkit.views import explain

    spec = bench_spec(get_preset("chollet-cnn"), train_limit, epochs, seed=1).updated({"baseline": "dense-128"})
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        run_id = store.create(spec).run_id
        meta = run_job(store, run_id, data_dir=data_dir)
        record = store.get(run_id)
        x = load_raw("mnist", data_dir).x_test[:digits].reshape(-1, 28, 28, 1).astype(np.float32)
        for key in ("cnn", "baseline"):
            model = LiteModel.from_file(record.model_path(key))
            for method in explain.methods_for(model):
                layers = explain.map_layers(model) if method == "gradcam" else [None]
                for layer in layers:
                    result = explain.deletion_ratio(model, x, method, layer=layer)
                    explain.heatmaps(model, x[:1], method, 0, layer=layer)  # warm
                    started = time.perf_counter()
                    for _ in range(5):
                        explain.heatmaps(model, x[:1], method, 0, layer=layer)
                    rows.append({"model": key, "method": method, "layer": layer, "ratio": result.ratio,
                                 "top_drop": result.top_drop, "random_drop": result.random_drop,
                                 "ms_per_heatmap": 1000 * (time.perf_counter() - started) / 5})
    accuracy = {k: v.get("test_accuracy") for k, v in meta["models"].items()}
    return {"rows": rows, "test_accuracy": accuracy, "digits": digits}


def bench_explain(opts: Options) -> Section:
    section = Section("Explanations: the deletion test on real digits (chollet-cnn, 2 epochs)")
    if skipped_without_data(section, opts):
        return section
    params = {"data_dir": opts.data_dir, "train_limit": 2000 if opts.quick else None,
              "epochs": 1 if opts.quick else 2, "digits": 30 if opts.quick else DIGITS}
    result = run_child("explain", params)
    rows = [[r["model"], r["method"] + (f" on {r['layer']}" if r["layer"] else ""), f"{r['ratio']:.2f}×",
             f"{r['top_drop']:.3f}", f"{r['random_drop']:.3f}", f"{r['ms_per_heatmap']:.1f}"]
            for r in result["rows"]]
    section.lines += table(["model", "method", "deletion ratio", "drop, hottest 10%", "drop, random 10%",
                            "ms per heatmap"], rows)
    acc = result["test_accuracy"]
    section.lines += ["", f"{result['digits']} test digits; test accuracy CNN {acc.get('cnn', 0):.2%}, baseline "
                      f"{acc.get('baseline', 0):.2%}. The ratio: the mean fall of the predicted class's "
                      "probability with the hottest 10% of the ink removed over the fall with a random 10% "
                      "removed (5 draws). Above 1.8× is the bar for the default."]
    section.data = result
    return section
