"""`python -m cnnkit bench [which…]`: the performance numbers in docs/PERFORMANCE.md.

    throughput  training images/s and test accuracy: cnnkit's run_job vs a plain Keras script
    latency     one 28×28 image through the app's prediction path vs model.predict
    memory      peak RSS while training, and after five trainings in one process
    dashboard   training with the live Train page open in a browser vs bare model.fit
    startup     `streamlit run` → home page rendered in a browser, then each page
    start       Start → first batch: a fresh worker vs the warm worker, and the spare's memory
    whole       a whole `cnnkit train` process vs the plain Keras script, with the in-epoch ratio
    bf16        ten whole runs in bfloat16 and ten in float32: the distribution
    ledger      10,000 runs: listing them, and every page in a browser
    live        the live Train page's own CPU (server + browser) showing a simulated run; --against REV
    draw        Draw in a browser: a fresh tab → its first prediction, a stroke → its prediction; --against REV
    levers      (only when named) each speed lever of training on its own
    hostile     (only when named) each hostile model file through `cnnkit import`: outcome, time,
                peak memory; hostile-keras also hands each to Keras alone, for comparison
    explain     (only when named) the deletion test of every explanation method, and its cost
    augmentation (only when named) shift augmentation's gain at 4 px and its training cost
    stop        (only when named) Stop → training ended, at each moment of a run (mid-epoch, epoch
                end, validation, checkpoint, test, the baseline's turn)
    sweeps      (only when named) Ray's start-up time and memory; 8 trials on the local queue vs Ray

One module per benchmark; `common` holds what they share (child processes, statistics, the
report). The full benchmarks need the real datasets (--data-dir or CNNKIT_DATA_DIR) and skip
with a message without them; --quick runs tiny versions on whatever data there is (the
bundled sample too), for smoke tests. Timings are reported, never asserted.

This module only wires the benchmarks together: the runners by name, and the children that
`python -m cnnkit.lab.bench --child KIND PARAMS` (`__main__`) may run.
"""

from __future__ import annotations

from cnnkit.lab.bench.augmentation import augmentation_child, bench_augmentation
from cnnkit.lab.bench.common import (
    BENCHES,
    EXTRAS,
    Options,
    Section,
    median,
    percentile,
    run_all,
    run_child,
    selected,
    steady,
    table,
)
from cnnkit.lab.bench.dashboard import bare_training_child, bench_dashboard, train_run_child
from cnnkit.lab.bench.drawpage import bench_draw
from cnnkit.lab.bench.explain import bench_explain, explain_child
from cnnkit.lab.bench.hostile import bench_hostile, bench_hostile_keras, hostile_files_child
from cnnkit.lab.bench.latency import bench_latency, latency_child
from cnnkit.lab.bench.levers import bench_levers, lever_child
from cnnkit.lab.bench.livepage import bench_live, simulated_run_child
from cnnkit.lab.bench.memory import bench_memory, memory_child
from cnnkit.lab.bench.starting import bench_ledger, bench_start, listing_child
from cnnkit.lab.bench.startup import bench_startup
from cnnkit.lab.bench.stopping import bench_stop
from cnnkit.lab.bench.sweeps import bench_sweeps
from cnnkit.lab.bench.throughput import bench_throughput, cnnkit_training, reference_training
from cnnkit.lab.bench.wholerun import bench_bf16, bench_whole, phases_child

RUNNERS = {"throughput": bench_throughput, "latency": bench_latency, "memory": bench_memory,
           "dashboard": bench_dashboard, "startup": bench_startup, "levers": bench_levers,
           "hostile": bench_hostile, "hostile-keras": bench_hostile_keras, "explain": bench_explain,
           "augmentation": bench_augmentation, "stop": bench_stop, "sweeps": bench_sweeps,
           "start": bench_start, "whole": bench_whole, "bf16": bench_bf16, "ledger": bench_ledger,
           "live": bench_live, "draw": bench_draw}
CHILDREN = {"reference": reference_training, "cnnkit": cnnkit_training, "latency": latency_child,
            "memory": memory_child, "train_run": train_run_child, "bare": bare_training_child,
            "lever": lever_child, "hostile_files": hostile_files_child,
            "explain": explain_child, "augmentation": augmentation_child, "listing": listing_child,
            "live_sim": simulated_run_child, "phases": phases_child}

__all__ = ["BENCHES", "CHILDREN", "EXTRAS", "RUNNERS", "Options", "Section", "main", "median", "percentile",
           "run_child", "selected", "steady", "table"]


def main(args) -> int:
    """`python -m cnnkit bench`: run the chosen benchmarks, print the report (and write --output)."""
    return run_all(args, RUNNERS)
