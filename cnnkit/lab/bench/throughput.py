"""1. Training throughput: cnnkit's run_job vs the plain Keras script of the source articles.

Both sides train the same preset on the same images with the same seed, each in a fresh child
process, alternating (A B A B …) so both meet the same background load; the report gives
images/s, CPU ms per image and test accuracy of each side.
"""

from __future__ import annotations

import tempfile

from cnnkit.lab.bench.common import (
    EpochTimer,
    Options,
    Section,
    bench_spec,
    cpu_ms_per_image,
    epoch_end_marks,
    median,
    run_child,
    skipped_without_data,
    steady,
    table,
)
from cnnkit.sysinfo import load_average, rss_mib

THROUGHPUT_PRESETS = ("chollet-cnn", "moroney-cnn", "dense-128")


def reference_training(preset: str, data_dir: str | None, train_limit: int | None, epochs: int,
                       seed: int | None = None) -> dict:
    """What the source articles did: keras.Sequential, float32 numpy arrays, model.fit defaults
    (verbose=0: the progress bar would only slow the reference down)."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.models import keras_layer
    from cnnkit.model.tf_import import keras, tf
    from cnnkit.presets import get_preset

    spec = bench_spec(get_preset(preset), train_limit, epochs, seed)
    prepared = prepare_data(spec, data_dir)
    x_train = prepared.normalize(prepared.x_train).astype("float32")  # the article's x / 255.0
    x_test = prepared.normalize(prepared.x_test).astype("float32")
    keras.utils.set_random_seed(spec.training.seed)
    model = keras.Sequential(
        [keras.Input(prepared.input_shape)]
        + [keras_layer(i, layer) for i, layer in enumerate(spec.layers, start=1)]
        + [keras.layers.Dense(prepared.num_classes, activation=None if spec.output == "logits" else "softmax")])
    optimizer = {"adam": keras.optimizers.Adam, "rmsprop": keras.optimizers.RMSprop,
                 "sgd": keras.optimizers.SGD}[spec.training.optimizer](spec.training.learning_rate)
    model.compile(optimizer=optimizer, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=spec.output == "logits"))
    timer = EpochTimer()
    model.fit(x_train, prepared.y_train, batch_size=spec.training.batch_size, epochs=epochs, verbose=0,
              callbacks=[timer])
    _, accuracy = model.evaluate(x_test, prepared.y_test, batch_size=1000, verbose=0)
    n = len(prepared.y_train)
    return {"side": "keras", "images_per_second": [n / s for s in timer.seconds],
            "cpu_ms_per_image": [1000 * c / n for c in timer.cpu_seconds], "test_accuracy": float(accuracy),
            "train_images": n, "gpus": [d.name for d in tf.config.list_physical_devices("GPU")], **rss_mib()}


def cnnkit_training(preset: str, data_dir: str | None, train_limit: int | None, epochs: int,
                    seed: int | None = None) -> dict:
    """The dashboard's own path: a run folder and run_job, live reporting included."""
    from cnnkit.model.training import run_job
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore

    spec = bench_spec(get_preset(preset), train_limit, epochs, seed)
    marks: list[float] = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        run_id = store.create(spec).run_id
        meta = run_job(store, run_id, data_dir=data_dir, hook=epoch_end_marks(marks))
    cnn = meta["models"]["cnn"]
    n = meta["data_summary"]["train"]
    return {"side": "cnnkit", "images_per_second": cnn["images_per_second"],
            "cpu_ms_per_image": cpu_ms_per_image(marks, n), "test_accuracy": cnn["test_accuracy"],
            "train_images": n, "status": meta["status"], **rss_mib()}


def _run_pairs(name: str, params: dict, reps: int) -> tuple[dict, list[float]]:
    """`reps` runs of each side, A B A B: both sides meet the same background load."""
    from cnnkit.presets import get_preset

    runs = {"keras": [], "cnnkit": []}
    loads = []
    for rep in range(reps):
        seed = get_preset(name).training.seed + rep  # repetition i: seed 42 + i on both sides
        for kind, side in (("reference", "keras"), ("cnnkit", "cnnkit")):
            loads.append(load_average())
            runs[side].append({**run_child(kind, {**params, "seed": seed}), "seed": seed})
    return runs, loads


def _row(name: str, epochs: int, runs: dict, loads: list[float]) -> list:
    ref_ips = median(steady(r["images_per_second"]) for r in runs["keras"])
    our_ips = median(steady(r["images_per_second"]) for r in runs["cnnkit"])
    ref_acc = median(r["test_accuracy"] for r in runs["keras"])
    our_acc = median(r["test_accuracy"] for r in runs["cnnkit"])
    return [name, epochs, runs["cnnkit"][0]["train_images"], ref_ips, our_ips,
            f"{our_ips / ref_ips:.2f}×", median(steady(r["cpu_ms_per_image"]) for r in runs["keras"]),
            median(steady(r["cpu_ms_per_image"]) for r in runs["cnnkit"]),
            f"{100 * ref_acc:.2f}%", f"{100 * our_acc:.2f}%", f"{100 * (our_acc - ref_acc):+.2f}",
            f"{min(loads):.1f}–{max(loads):.1f}"]


def bench_throughput(opts: Options) -> Section:
    from cnnkit.presets import get_preset

    section = Section("1. Training throughput: cnnkit vs a plain Keras script")
    if skipped_without_data(section, opts):
        return section
    presets = ("dense-128",) if opts.quick else THROUGHPUT_PRESETS
    reps = 1 if opts.quick else 3
    rows, raw = [], {}
    for name in presets:
        epochs = 2 if opts.quick else get_preset(name).training.epochs
        params = {"preset": name, "data_dir": opts.data_dir, "train_limit": 600 if opts.quick else None,
                  "epochs": epochs}
        raw[name], loads = _run_pairs(name, params, reps)
        rows.append(_row(name, epochs, raw[name], loads))
    section.lines += table(["preset", "epochs", "train images", "Keras img/s", "cnnkit img/s", "ratio",
                            "Keras CPU ms/img", "cnnkit CPU ms/img", "Keras test acc", "cnnkit test acc",
                            "Δ pt", "load avg"], rows)
    section.lines += ["", f"Medians of {reps} run(s) per side, alternating (A B A B …), run i with seed 42 + i "
                      "on both sides; img/s is the median over epochs after the first. CPU ms/img (process "
                      "CPU time per training image) is less sensitive to the other users' load than "
                      "wall-clock img/s.", "",
                      "Every run (img/s per epoch, test accuracy):", ""]
    for name, runs in raw.items():
        for side in ("keras", "cnnkit"):
            for i, r in enumerate(runs[side], start=1):
                per_epoch = ", ".join(f"{v:,.0f}" for v in r["images_per_second"])
                section.lines.append(f"- {name} {side} #{i} (seed {r['seed']}): {per_epoch}; "
                                     f"acc {100 * r['test_accuracy']:.2f}%")
    section.data = raw
    return section
