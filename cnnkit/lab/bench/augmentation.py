"""Data augmentation: what it buys (shift robustness) and what it costs (training images/s).

chollet-cnn, its recipe, 2 epochs on the real MNIST, trained without and with shift
augmentation, taking turns (plain, augmented, plain, augmented: the machine's noise hits both),
each in a fresh child process. For each run: its test accuracy, its accuracy on the first 1,000
test images shifted 4 px (the mean of four directions) and its in-epoch training images/s.
"""

from __future__ import annotations

import tempfile

from cnnkit.lab.bench.common import (
    Options,
    Section,
    bench_spec,
    median,
    run_child,
    skipped_without_data,
    table,
)

SHIFT = 0.1         # up to about 3 px of a 28-pixel image, each way (0.15 cost 1.2 pt unshifted)


def augmentation_child(data_dir: str | None, train_limit: int | None, epochs: int, shift: float, limit: int) -> dict:
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.training import run_job
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore
    from cnnkit.views import robustness

    spec = bench_spec(get_preset("chollet-cnn"), train_limit, epochs, seed=1)
    if shift:
        spec = spec.updated({"augmentation.shift": shift})
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        run_id = store.create(spec).run_id
        meta = run_job(store, run_id, data_dir=data_dir)
        record = store.get(run_id)
        from cnnkit.model.lite import LitePredictor

        prepared = prepare_data(spec, data_dir)
        probabilities = LitePredictor.from_file(record.model_path("cnn"), spec.output).probabilities
        images, labels = prepared.x_test[:limit], prepared.y_test[:limit]
        shifted = [robustness.accuracy(probabilities, v, labels) for v in robustness.TRANSFORMS["shift"].apply(images, 4)]
    cnn = meta["models"]["cnn"]
    return {"test_accuracy": cnn["test_accuracy"], "shift4": sum(shifted) / len(shifted),
            "unshifted": robustness.accuracy(probabilities, images, labels),
            "images_per_second": cnn.get("images_per_second")}


def bench_augmentation(opts: Options) -> Section:
    section = Section("Data augmentation: chollet-cnn, 2 epochs, without and with shift augmentation (taking turns)")
    if skipped_without_data(section, opts):
        return section
    base = {"data_dir": opts.data_dir, "train_limit": 3000 if opts.quick else None, "epochs": 1 if opts.quick else 2,
            "limit": 300 if opts.quick else 1000}
    runs = {"none": [], f"shift {SHIFT:g}": []}
    for _ in range(2):
        for label, shift in (("none", 0.0), (f"shift {SHIFT:g}", SHIFT)):
            runs[label].append(run_child("augmentation", {**base, "shift": shift}))
    rows = []
    for label, results in runs.items():
        # epoch 1 includes tracing: the later epochs, when there are any
        speeds = [s for r in results for s in (lambda v: v[1:] or v)(r["images_per_second"] or [])]
        rows.append([label, " / ".join(f"{r['test_accuracy']:.2%}" for r in results),
                     " / ".join(f"{r['unshifted']:.1%}" for r in results),
                     " / ".join(f"{r['shift4']:.1%}" for r in results), f"{median(speeds) or 0:,.0f}"])
    n = f"first {base['limit']:,} test images"
    section.lines += table(["augmentation", "test accuracy", f"{n}, unshifted", f"{n}, shifted 4 px",
                            "training images/s (median of later epochs)"], rows)
    section.data = runs
    return section
