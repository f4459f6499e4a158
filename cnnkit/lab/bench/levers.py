"""The speed levers of cnnkit.model.levers one at a time (`python -m cnnkit bench levers`; not in "all").

cnnkit's train_one with one combination of levers per child process (precision, steps per
execution, input pipeline, thread counts), no run folder: the levers, not the reporting. The
variants run round-robin so all meet the same background load.
"""

from __future__ import annotations

import os
import time

from cnnkit.lab.bench.common import (
    Options,
    Section,
    bench_spec,
    cpu_ms_per_image,
    median,
    run_child,
    skipped_without_data,
    steady,
    table,
)
from cnnkit.sysinfo import load_average, rss_mib

# preset → variants: (label, precision, steps per execution, pipeline, [intra, inter] threads; 0 or None: every core)
LEVERS = {
    "moroney-cnn": [("before: float32, per-image shuffle", "float32", 1, "slices", None),
                    ("+ index-gather pipeline", "float32", 1, "gather", None),
                    ("+ bfloat16 compute (adopted)", "mixed_bfloat16", 1, "gather", None),
                    ("+ 4 steps per execution", "mixed_bfloat16", 4, "gather", None),
                    ("+ threads intra 2 / inter 1", "mixed_bfloat16", 1, "gather", [2, 1])],
    "chollet-cnn": [("bfloat16, 1 step a call (before 2026-12-05)", "mixed_bfloat16", 1, "gather", None),
                    ("+ 16 steps a call (adopted)", "mixed_bfloat16", 16, "gather", None),
                    ("+ 1 thread per op (adopted: a light step)", "mixed_bfloat16", 16, "gather", [1, 0])],
    "kruse-conv": [("bfloat16, 5 steps a call, every core per op (adopted: a heavy step)", "mixed_bfloat16", 5,
                    "gather", None),
                   ("+ 1 thread per op", "mixed_bfloat16", 5, "gather", [1, 0])],
    "dense-128": [("before: float32, per-image shuffle", "float32", 1, "slices", None),
                  ("+ index-gather pipeline", "float32", 1, "gather", None),
                  ("+ 16 steps per execution (adopted)", "float32", 16, "gather", None),
                  ("+ bfloat16 compute", "mixed_bfloat16", 16, "gather", None)],
}


def slices_dataset(x, y, batch_size: int, *, shuffle: bool, seed: int):
    """The input pipeline cnnkit had before: one tensor per image through the shuffle buffer."""
    from cnnkit.model.tf_import import tf

    ds = tf.data.Dataset.from_tensor_slices((x, y.astype("int32")))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(lambda a, b: (tf.cast(a, tf.float32), b), num_parallel_calls=tf.data.AUTOTUNE,
                                  deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def lever_child(preset: str, data_dir: str | None, train_limit: int | None, epochs: int, precision: str,
                steps_per_execution: int, pipeline: str, threads: list[int] | None) -> dict:
    """train_one with one combination of levers (no run folder: the levers, not the reporting)."""
    # This child's own setting, before TensorFlow loads: training reads it through cnnkit.settings.
    os.environ["CNNKIT_PRECISION"] = precision
    from cnnkit.model.tf_import import tf

    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads[0])
        tf.config.threading.set_inter_op_parallelism_threads(threads[1])
    from cnnkit.model import training
    from cnnkit.presets import get_preset

    if pipeline == "slices":
        training.make_dataset = slices_dataset
    spec = bench_spec(get_preset(preset), train_limit, epochs)
    prepared = training.prepare_data(spec, data_dir)
    marks: list[float] = []
    outcome = training.train_one("cnn", spec.layers, spec, prepared, None,
                                 lambda p: p.get("phase") == "epoch_end" and marks.append(time.process_time()),
                                 steps_per_execution)
    return {"images_per_second": outcome.report.images_per_second,
            "cpu_ms_per_image": cpu_ms_per_image(marks, len(prepared.y_train)),
            "test_accuracy": outcome.test_accuracy, **rss_mib()}


def _round_robin(preset: str, variants: list, opts: Options, train_limit: int, epochs: int,
                 reps: int) -> tuple[dict, list[float]]:
    results = {label: [] for label, *_ in variants}
    loads = []
    for _ in range(reps):  # round robin over the variants, so all meet the same load
        for label, precision, spe, pipeline, threads in variants:
            loads.append(load_average())
            results[label].append(run_child("lever", {
                "preset": preset, "data_dir": opts.data_dir, "train_limit": train_limit, "epochs": epochs,
                "precision": precision, "steps_per_execution": spe, "pipeline": pipeline, "threads": threads}))
    return results, loads


def bench_levers(opts: Options) -> Section:
    section = Section("Levers, one at a time (cnnkit's train_one, no run folder)")
    if skipped_without_data(section, opts):
        return section
    train_limit, epochs, reps = (600, 2, 1) if opts.quick else (12_000, 3, 2)
    rows, raw = [], {}
    for preset, variants in LEVERS.items():
        results, loads = _round_robin(preset, variants, opts, train_limit, epochs, reps)
        base = median(steady(r["cpu_ms_per_image"]) for r in results[variants[0][0]])
        base_ips = median(steady(r["images_per_second"]) for r in results[variants[0][0]])
        for label, *_ in variants:
            runs = results[label]
            cpu = median(steady(r["cpu_ms_per_image"]) for r in runs)
            ips = median(steady(r["images_per_second"]) for r in runs)
            rows.append([preset, label, ips, f"{ips / base_ips:.2f}×", cpu, f"{base / cpu:.2f}×",
                         f"{100 * median(r['test_accuracy'] for r in runs):.2f}%", median(r["peak_rss_mib"] for r in runs)])
        raw[preset] = {"results": results, "loads": loads}
    section.lines += table(["preset", "variant", "img/s", "vs before", "CPU ms/img", "CPU vs before",
                            "test acc", "peak RSS MiB"], rows)
    section.lines += ["", f"{train_limit:,} training images, {epochs} epochs, medians of {reps} runs per variant "
                      "over the epochs after the first; the variants run round-robin in fresh processes. Each "
                      "'+' row adds its lever to the row marked adopted above it or to the one before. "
                      "Accuracy after so few epochs only shows that nothing broke."]
    section.data = raw
    return section
