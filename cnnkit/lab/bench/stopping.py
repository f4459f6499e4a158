"""Stop latency: how long after Stop the training ends, at each moment a stop can come.

Each case starts a real worker process (as the Train page does) on chollet-cnn with its dense
baseline, waits for the moment, writes the STOP file and times two things from that instant:
until the job's "stop" event (no more training: the fit, validation or test has ended) and
until run.json is final ("stopped", with the last finished epoch tested). The moments:

    mid-epoch      batch 100 of epoch 1
    epoch end      after the last batch of epoch 1 (held there by CNNKIT_TEST_HOLD_AT)
    validation     while epoch 1 is validated
    checkpoint     while epoch 1's checkpoint is saved
    test           while the CNN is evaluated on the test split (after its last epoch)
    baseline       batch 100 of the dense baseline's first epoch
"""

from __future__ import annotations

import os
import tempfile
import time

from cnnkit.lab.bench.common import (
    Options,
    Section,
    bench_spec,
    skipped_without_data,
    table,
)

POLL_SECONDS = 0.005


def _moment(case: str, steps: int):
    """A test on progress.json that is true at the case's moment."""
    return {
        "mid-epoch": lambda p: p.get("phase") == "training" and p.get("model") == "cnn" and p.get("batch", 0) >= 100,
        "epoch end": lambda p: bool(p.get("held")),
        "validation": lambda p: p.get("phase") == "validating",
        "checkpoint": lambda p: p.get("phase") == "saving the checkpoint",
        "test": lambda p: p.get("phase") == "evaluating" and p.get("model") == "cnn",
        "baseline": lambda p: p.get("model") == "baseline" and p.get("batch", 0) >= min(100, steps),
    }[case]


def stop_case(case: str, data_dir: str | None, train_limit: int | None, timeout: float = 600) -> dict:
    from cnnkit.presets import get_preset
    from cnnkit.runs import control, jobs
    from cnnkit.runs.store import RunStore

    spec = bench_spec(get_preset("chollet-cnn"), train_limit, 1 if case in ("test", "baseline") else 2, seed=1)
    spec = spec.updated({"baseline": "dense-128", "dataset.validation_split": 0.1})  # the preset holds none out
    steps = -(-int((train_limit or 60000) * (1 - spec.dataset.validation_split)) // spec.training.batch_size)
    environment = dict(os.environ)  # put back afterwards: the hold is for this case's worker only
    if case == "epoch end":
        os.environ["CNNKIT_TEST_HOLD_AT"] = f"1:{steps}"  # the worker inherits it
    try:
        with tempfile.TemporaryDirectory(prefix="cnnkit-bench-stop-") as tmp:
            store = RunStore(tmp)
            record = jobs.start(store, spec, data_dir=data_dir)
            at_moment, deadline = _moment(case, steps), time.monotonic() + timeout
            while not at_moment(store.progress(record.run_id) or {}):
                if time.monotonic() > deadline or not store.get(record.run_id).is_active:
                    return {"case": case, "missed": True}
                time.sleep(POLL_SECONDS)
            phase = (store.progress(record.run_id) or {}).get("phase")
            requested = time.time()
            store.request_stop(record.run_id)
            final = jobs.wait(store, record.run_id, timeout=timeout, poll=0.02)
            ended = [e["time"] for e in control.events(store, record.run_id) if e.get("event") == "stop"]
            cnn = final.model_result("cnn")
            return {"case": case, "phase": phase, "status": final.status,
                    "to_training_end": (ended[0] - requested) if ended else None,
                    "to_final": float(final.meta.get("finished") or time.time()) - requested,
                    "epochs": cnn.get("epochs_completed"), "tested_epoch": cnn.get("tested_epoch"),
                    "test_accuracy": cnn.get("test_accuracy")}
    finally:
        os.environ.clear()
        os.environ.update(environment)


CASES = ("mid-epoch", "epoch end", "validation", "checkpoint", "test", "baseline")


def bench_stop(opts: Options) -> Section:
    section = Section("Stop latency: Stop → training ended, and → the run's final status (chollet-cnn + dense-128)")
    if skipped_without_data(section, opts):
        return section
    train_limit = 3000 if opts.quick else None
    rows, results = [], []
    for case in CASES:
        result = stop_case(case, opts.data_dir, train_limit)
        results.append(result)
        if result.get("missed"):
            rows.append([case, "moment missed (the job moved past it before the poll saw it)", None, None, None])
            continue
        tested = (f"epoch {result['tested_epoch']}: {result['test_accuracy']:.2%}"
                  if result.get("test_accuracy") is not None else "not tested")
        rows.append([case, result["phase"], result["to_training_end"], result["to_final"],
                     f"{result['epochs']} finished, {tested}"])
    section.lines += table(["stop during", "phase seen", "→ training ended (s)", "→ final status (s)",
                            "CNN epochs / test result"], rows)
    section.lines.append("")
    section.lines.append("\"Training ended\" is the job's stop event: the fit (or validation, or test) has "
                         "returned. Between it and the final status, the last finished epoch's checkpoint "
                         "is tested on the test split, unless the stop came during that test.")
    section.data = {"cases": results}
    return section
