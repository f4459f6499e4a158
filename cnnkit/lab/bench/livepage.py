"""The live Train page's own cost: the CPU the Streamlit server and the browser spend showing a run.

A simulated run writes into its run folder exactly what a training process writes (a batch point
every 0.25 s, the progress every 0.5 s, an epoch record and a health record per epoch, as
model/callbacks.py and model/health.py do) without TensorFlow, so the CPU counted is the
page's alone and the run's pace is the same on every side. The Train page shows it in Chromium;
the server's and the browser's CPU seconds are read from /proc over the run.

With `--against REV` the same run is shown by this checkout and by REV (a temporary git worktree),
taking turns, so "before" and "after" are measured on the same machine in the same minutes.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import tempfile
import time
from pathlib import Path

from cnnkit.lab.bench.common import (
    Options,
    Section,
    browser_skip,
    checkouts,
    median,
    run_child,
    table,
)
from cnnkit.lab.bench.dashboard import dashboard_cpu
from cnnkit.lab.browser import (
    SET_VISIBILITY,
    StreamlitServer,
    goto_when_up,
    launch_browser,
    wait_rendered,
)
from cnnkit.sysinfo import load_average

LIVE_PRESET = "chollet-cnn"
STEPS_PER_EPOCH = 469           # 60,000 MNIST images in batches of 128
EPOCH_SECONDS = 10.0            # a bf16 chollet-cnn epoch on this machine
BATCH_POINT_SECONDS = 0.25      # as callbacks.BATCH_RECORD_SECONDS (not imported: that module loads TensorFlow)
PROGRESS_SECONDS = 0.5          # as callbacks.PROGRESS_SECONDS
SHOWN_SECONDS, REPEATS = 60.0, 3  # each side shows a run this long, this many times (--quick: 8 s, once)
HEALTH_LAYERS = ("conv2d", "max_pooling2d", "conv2d_1", "max_pooling2d_1", "flatten", "dropout", "dense")


# ---------------------------------------------------------------------------
# The simulated run (a child process: its pid makes the run "running" for the page)


def curve(step: int, start: float, end: float, rng: random.Random) -> float:
    """A falling (or rising) training curve with a little noise, step 0 → `start`, later → `end`."""
    return end + (start - end) * math.exp(-step / 300) + rng.gauss(0, 0.01)


def health_record(epoch: int) -> dict:
    rows = [{"name": name, "type": name.rstrip("_1"), "mean": 0.3, "std": 0.5, "dead": 0.05 * i,
             "grad_norm": 0.01 * (i + 1)} for i, name in enumerate(HEALTH_LAYERS)]
    return {"model": "cnn", "epoch": epoch, "seconds": 0.1, "layers": rows}


def simulated_run_child(runs_dir: str, run_id: str, seconds: float, epoch_seconds: float = EPOCH_SECONDS) -> dict:
    """Write a run's live files for `seconds` at a real run's pace, then end it (no model: not a result)."""
    from cnnkit.runs.store import HEALTH_FILE, RunStore, RunWriter, append_jsonl, this_process

    store = RunStore(runs_dir)
    writer = RunWriter(store, run_id)
    epochs = max(1, math.ceil(seconds / epoch_seconds))
    writer.update(status="running", **this_process(), data_summary={"train": STEPS_PER_EPOCH * 128})
    rng, started, step = random.Random(0), time.perf_counter(), 0
    last_point = last_progress = -1.0
    points = epochs_written = 0
    while (now := time.perf_counter() - started) < seconds:
        epoch, within = int(now // epoch_seconds), (now % epoch_seconds) / epoch_seconds
        batch = max(1, int(within * STEPS_PER_EPOCH))
        step = epoch * STEPS_PER_EPOCH + batch
        loss, accuracy = curve(step, 2.3, 0.05, rng), 1 - curve(step, 0.9, 0.015, rng)
        if now - last_point >= BATCH_POINT_SECONDS:
            last_point, points = now, points + 1
            writer.append_batch({"model": "cnn", "epoch": epoch + 1, "batch": batch, "step": step, "loss": loss,
                                 "accuracy": accuracy, "time": time.time()})
        if now - last_progress >= PROGRESS_SECONDS:
            last_progress = now
            writer.write_progress({"phase": "training", "model": "cnn", "epochs": epochs, "batches": STEPS_PER_EPOCH,
                                   "epoch": epoch + 1, "batch": batch, "images_per_second": 6000.0, "loss": loss,
                                   "elapsed": now, "eta_seconds": epochs * epoch_seconds - now})
        if epochs_written < epoch:  # an epoch ended: its record and its health, as the callbacks write them
            writer.append_epoch({"model": "cnn", "epoch": epoch, "learning_rate": 0.001, "seconds": epoch_seconds,
                                 "images_per_second": 6000.0, "time": time.time(), "loss": loss,
                                 "accuracy": accuracy, "val_loss": loss * 0.8, "val_accuracy": min(1.0, accuracy + 0.003)})
            append_jsonl(store.path(run_id) / HEALTH_FILE, health_record(epoch))
            epochs_written = epoch
        time.sleep(0.05)
    writer.update(status="finished", pid=None)
    return {"batch_points": points, "epochs": epochs_written}


# ---------------------------------------------------------------------------
# The benchmark


def active_run(runs_dir: str | Path, name: str) -> str:
    """A new run that the pages show as running (this process's pid), as jobs.start leaves it,
    for `simulated_run_child` to write; its id."""
    from cnnkit.presets import get_preset
    from cnnkit.runs.jobs import mark_active
    from cnnkit.runs.store import RunStore, this_process

    store = RunStore(runs_dir)
    run_id = store.create(get_preset(LIVE_PRESET).experiment(), name=name).run_id
    store.update(run_id, status="running", **this_process())
    mark_active(store, run_id)
    return run_id


def _show_run(server: StreamlitServer, browser, seconds: float, hidden: bool = False) -> dict:
    """One simulated run shown live on the Train page (in a tab the browser says is hidden, with
    `hidden`): the server's and the browser's CPU share."""
    run_id = active_run(server.runs_dir, "live page benchmark")
    page = browser.new_page()
    try:
        goto_when_up(page, f"{server.url}/Train?run={run_id}", time.perf_counter() + 120)
        wait_rendered(page, "Train")
        if hidden:
            page.evaluate(SET_VISIBILITY, True)
        before = dashboard_cpu(server)
        result = run_child("live_sim", {"runs_dir": server.runs_dir, "run_id": run_id, "seconds": seconds})
        after = dashboard_cpu(server)
    finally:
        page.close()
    wall = result["child_seconds"]
    return {"server": (after["server"] - before["server"]) / wall,
            "browser": (after["browser"] - before["browser"]) / wall, **result}


def measure_apps(apps: dict[str, Path | None], seconds: float, reps: int) -> tuple[dict, list]:
    """Each app (a checkout's folder; None: this one) shows `reps` simulated runs, taking turns:
    {name: [{"server": share of a core, "browser": share of a core, …}, …]}, and the load averages."""
    from playwright.sync_api import sync_playwright

    loads = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-live-") as scratch, sync_playwright() as pw, \
            contextlib.ExitStack() as stack:
        browser = launch_browser(pw)
        stack.callback(browser.close)
        # no warm spare: its TensorFlow import would count as the page's CPU (it is the server's child)
        servers = [stack.enter_context(StreamlitServer(Path(scratch) / f"runs-{i}", app_dir=app,
                                                       env={"CNNKIT_WARM_WORKER": "off"}))
                   for i, app in enumerate(apps.values())]
        # this checkout's page once more in a tab the browser says is hidden (ui.poll_every)
        sides = [(name, server, False) for name, server in zip(apps, servers, strict=True)]
        sides.insert(1, (f"{sides[0][0]}, tab hidden", servers[0], True))
        shares: dict[str, list[dict]] = {name: [] for name, _, _ in sides}
        for _ in range(reps):  # A B A B …
            for name, server, hidden in sides:
                loads.append(load_average())
                shares[name].append(_show_run(server, browser, seconds, hidden))
    return shares, loads


def bench_live(opts: Options) -> Section:
    section = Section("12. The live Train page's own cost: server and browser CPU while a run trains")
    if skip := browser_skip():
        section.lines.append(skip)
        return section
    seconds, reps = (8.0, 1) if opts.quick else (SHOWN_SECONDS, REPEATS)
    with checkouts(opts.against) as apps:
        shares, loads = measure_apps(apps, seconds, reps)
    cores = os.cpu_count() or 1
    rows = []
    for name, runs in shares.items():
        server, browser_share = median(r["server"] for r in runs), median(r["browser"] for r in runs)
        rows.append([name, len(runs), f"{100 * server:.1f}%", f"{100 * browser_share:.1f}%",
                     f"**{100 * (server + browser_share) / cores:.1f}%**",
                     "; ".join(f"{100 * r['server']:.0f} + {100 * r['browser']:.0f}" for r in runs)])
    section.data["live"] = shares
    section.lines += table(["app", "runs", "server (of one core)", "Chromium (of one core)",
                            f"share of this {cores}-core machine", "every run (server + Chromium, % of a core)"], rows)
    section.lines += ["", f"A simulated {LIVE_PRESET} run ({STEPS_PER_EPOCH} batches an epoch, {EPOCH_SECONDS:g} s an "
                      f"epoch, {seconds:g} s shown, its files written as a training writes them) on the Train page "
                      f"in headless Chromium at 1440×900; medians; the sides take turns. Load averages: "
                      f"{', '.join(f'{v:.1f}' for v in loads)}. Goal: ≤ 5% of the machine."]
    return section
