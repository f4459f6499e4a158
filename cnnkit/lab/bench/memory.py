"""5. Memory: peak RSS while training, and RSS after several trainings in one process.

One child process trains moroney-cnn through run_job again and again and reports its resident
memory after each: a leak shows as growth from one training to the next.
"""

from __future__ import annotations

import tempfile

from cnnkit.lab.bench.common import (
    Options,
    Section,
    bench_spec,
    run_child,
    skipped_without_data,
    table,
)
from cnnkit.sysinfo import load_average, rss_mib


def memory_child(preset: str, data_dir: str | None, train_limit: int | None, epochs: int, trainings: int) -> dict:
    from cnnkit.model.levers import use_op_threads
    from cnnkit.model.training import run_job
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore
    from cnnkit.runs.threads import op_threads_for

    spec = bench_spec(get_preset(preset), train_limit, epochs)
    use_op_threads(op_threads_for(spec))  # as a job's worker does (runs/threads.py)
    after = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        for _ in range(trainings):
            run_id = store.create(spec).run_id
            meta = run_job(store, run_id, data_dir=data_dir)
            after.append({**rss_mib(), "status": meta["status"], "train_images": meta["data_summary"]["train"]})
    return {"after_each": after}


def bench_memory(opts: Options) -> Section:
    section = Section("5. Memory: training moroney-cnn on Fashion-MNIST, five times in one process")
    if skipped_without_data(section, opts):
        return section
    params = {"preset": "moroney-cnn", "data_dir": opts.data_dir, "train_limit": 300 if opts.quick else None,
              "epochs": 1, "trainings": 2 if opts.quick else 5}
    load = load_average()
    result = run_child("memory", params)
    after = result["after_each"]
    rows = [[i, a["train_images"], a["rss_mib"], a["peak_rss_mib"]] for i, a in enumerate(after, start=1)]
    section.lines += table(["training", "train images", "RSS after (MiB)", "peak RSS so far (MiB)"], rows)
    first, last = after[0]["rss_mib"], after[-1]["rss_mib"]
    peak = max(a["peak_rss_mib"] for a in after)
    growth = 100 * (last - first) / first
    section.lines += ["", f"Peak RSS {peak:,.0f} MiB ({peak / 1024:.2f} GiB; goal ≤ 1 GiB). RSS after training "
                      f"{len(after)} vs 1: {growth:+.1f}% (goal: within 10%). One epoch per training (memory "
                      f"does not grow with epochs: the data and the model are allocated once). "
                      f"Load average at the start: {load:.2f}."]
    section.data = {"after_each": after, "peak_mib": peak, "growth_percent": growth}
    return section
