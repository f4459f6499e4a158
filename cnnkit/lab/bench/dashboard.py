"""2. Cost of the live dashboard: training with the Train page open in Chromium vs bare model.fit.

Three sides take turns: run_job with the Train page showing it live, run_job alone (its live
callback, no browser), and the same model.fit with no callback. Besides wall-clock images/s,
the CPU the Streamlit server and the browser use meanwhile is read from /proc, which is robust
to the other users of a shared machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from cnnkit.lab.bench.common import (
    SKIP_NO_DATA,
    EpochTimer,
    Options,
    Section,
    bench_spec,
    browser_skip,
    cpu_ms_per_image,
    epoch_end_marks,
    median,
    run_child,
    table,
)
from cnnkit.lab.browser import StreamlitServer, goto_when_up, launch_browser, wait_rendered
from cnnkit.sysinfo import cpu_seconds, load_average, proc_stat_fields, rss_mib

DASHBOARD_PRESET = "moroney-cnn"
TITLES = {"live": "run_job (live callback) + Train page open in Chromium",
          "callback": "run_job (live callback), no browser", "bare": "model.fit, no callback, no browser"}


# ---------------------------------------------------------------------------
# The children


def train_run_child(runs_dir: str, data_dir: str | None, preset: str, train_limit: int | None, epochs: int,
                    run_id: str | None = None, baseline: str | None = None) -> dict:
    """A run through run_job, as the dashboard's worker does it (a new run unless run_id is given)."""
    from cnnkit.model.training import run_job
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore

    store = RunStore(runs_dir)
    if run_id is None:
        spec = bench_spec(get_preset(preset), train_limit, epochs).updated({"baseline": baseline})
        run_id = store.create(spec).run_id
    marks: list[float] = []  # CPU time at each epoch end, as cnnkit_training
    meta = run_job(store, run_id, data_dir=data_dir, hook=epoch_end_marks(marks))
    cnn = meta["models"]["cnn"]
    n = meta["data_summary"]["train"]
    return {"run_id": run_id, "status": meta["status"], "images_per_second": cnn["images_per_second"],
            "cpu_ms_per_image": cpu_ms_per_image(marks, n), "test_accuracy": cnn["test_accuracy"], **rss_mib()}


def bare_training_child(data_dir: str | None, preset: str, train_limit: int | None, epochs: int) -> dict:
    """The same model, data pipeline and fit as run_job, with no callback reporting anything."""
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.levers import build_compiled, configure_determinism, make_dataset
    from cnnkit.presets import get_preset

    spec = bench_spec(get_preset(preset), train_limit, epochs)
    prepared = prepare_data(spec, data_dir)
    configure_determinism(spec.training.seed)  # as run_job: op determinism has its own cost
    model = build_compiled("cnn", spec.layers, spec, prepared)
    timer = EpochTimer()
    model.fit(make_dataset(prepared.x_train, prepared.y_train, spec.training.batch_size, shuffle=True,
                           seed=spec.training.seed), epochs=epochs, verbose=0, callbacks=[timer])
    n = len(prepared.y_train)
    return {"images_per_second": [n / s for s in timer.seconds],
            "cpu_ms_per_image": [1000 * c / n for c in timer.cpu_seconds], **rss_mib()}


# ---------------------------------------------------------------------------
# The CPU of the server and the browser


def _descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = proc_stat_fields(entry.name)
            try:
                parents[int(entry.name)] = int(fields[1])
            except (TypeError, IndexError, ValueError):
                continue  # gone meanwhile
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found += children
        frontier += children
    return found


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def dashboard_cpu(server: StreamlitServer) -> dict:
    """CPU seconds used so far by the Streamlit server and by the browser this process started."""
    browser = [pid for pid in _descendants(os.getpid()) if "chrom" in _cmdline(pid)]
    return {"server": cpu_seconds(server.proc.pid) + sum(cpu_seconds(p) for p in _descendants(server.proc.pid)),
            "browser": sum(cpu_seconds(pid) for pid in browser)}


# ---------------------------------------------------------------------------
# The benchmark


def _live_side(server: StreamlitServer, browser, runs_dir: str, spec, params: dict) -> dict:
    """run_job in a child while the Train page shows it live; CPU of server and browser meanwhile."""
    from cnnkit.runs.store import RunStore

    run_id = RunStore(runs_dir).create(spec).run_id
    page = browser.new_page()
    try:
        goto_when_up(page, f"{server.url}/Train?run={run_id}", time.perf_counter() + 120)
        wait_rendered(page, "Train")
        before = dashboard_cpu(server)
        result = run_child("train_run", {**params, "runs_dir": runs_dir, "run_id": run_id})
        after = dashboard_cpu(server)
        result["charts_shown"] = page.locator(".js-plotly-plot").count()
    finally:
        page.close()
    wall = result["child_seconds"]
    result["server_core_share"] = (after["server"] - before["server"]) / wall
    result["browser_core_share"] = (after["browser"] - before["browser"]) / wall
    return result


def _run_sides(opts: Options, app_dir: Path | None, spec, params: dict, reps: int) -> tuple[dict, list]:
    from playwright.sync_api import sync_playwright

    sides = {"live": [], "callback": [], "bare": []}
    loads = []
    # offline=False: the server has this process's CNNKIT_OFFLINE, as a user's would
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as runs_dir, \
            StreamlitServer(runs_dir, data_dir=opts.data_dir, offline=False, app_dir=app_dir) as server, \
            sync_playwright() as pw:
        browser = launch_browser(pw)
        try:
            for _ in range(reps):  # A B C A B C …
                loads.append(load_average())
                sides["live"].append(_live_side(server, browser, runs_dir, spec, params))
                loads.append(load_average())
                sides["callback"].append(run_child("train_run", {**params, "runs_dir": runs_dir}))
                loads.append(load_average())
                sides["bare"].append(run_child("bare", params))
        finally:
            browser.close()
    return sides, loads


def bench_dashboard(opts: Options, app_dir: Path | None = None) -> Section:
    from cnnkit.presets import get_preset

    section = Section("2. Cost of the live dashboard: Train page open in Chromium vs no callback, no browser")
    skip = browser_skip()
    if skip or (not opts.quick and not opts.real_data):
        section.lines.append(skip or SKIP_NO_DATA)
        return section
    train_limit, epochs, reps = (600, 2, 1) if opts.quick else (20_000, 4, 3)
    spec = bench_spec(get_preset(DASHBOARD_PRESET), train_limit, epochs)
    params = {"data_dir": opts.data_dir, "preset": DASHBOARD_PRESET, "train_limit": train_limit, "epochs": epochs}
    sides, loads = _run_sides(opts, app_dir, spec, params, reps)
    # pooled: every epoch after the first of every run, so one slow epoch moves the median little
    ips = {side: median(v for r in runs for v in r["images_per_second"][1:]) for side, runs in sides.items()}
    cpu = {side: median(v for r in runs for v in r["cpu_ms_per_image"][1:]) for side, runs in sides.items()}
    rows = [[TITLES[side], len(runs), ips[side], f"{100 * (1 - ips[side] / ips['bare']):+.1f}%", cpu[side],
             "; ".join(", ".join(f"{v:,.0f}" for v in r["images_per_second"]) for r in runs)]
            for side, runs in sides.items()]
    section.lines += table(["side", "runs", "img/s (median)", "slower than bare", "trainer CPU ms/img",
                            "every run (img/s per epoch)"], rows)
    live = sides["live"]
    server_share = median(r["server_core_share"] for r in live)
    browser_share = median(r["browser_core_share"] for r in live)
    slower = 100 * (1 - ips["live"] / ips["bare"])
    callback_cpu = 100 * (cpu["callback"] / cpu["bare"] - 1)
    # CPU accounting, robust to the other users' load: the trainer's own extra CPU per image, plus
    # the share of the machine the server and the browser take from a training that uses it all.
    estimate = callback_cpu + 100 * (server_share + browser_share) / (os.cpu_count() or 1)
    section.lines += ["", f"**CPU accounting (robust to the other users of the machine): about {estimate:.0f}% "
                      f"slower.** The live callback adds {callback_cpu:+.1f}% CPU per training image; while "
                      f"the run was shown, the Streamlit server used {100 * server_share:.0f}% of one core and "
                      f"Chromium {100 * browser_share:.0f}% (medians), i.e. "
                      f"{100 * (server_share + browser_share) / (os.cpu_count() or 1):.0f}% of this "
                      f"{os.cpu_count()}-core machine, which a training that keeps every core busy loses. "
                      f"Wall clock: the live side was {slower:.1f}% slower than bare training (goal ≤ 5%), the "
                      f"callback alone {100 * (1 - ips['callback'] / ips['bare']):.1f}% — epochs here swing "
                      f"between ~2,000 and ~4,000 img/s with the other users' load, so these are noisy. "
                      f"{DASHBOARD_PRESET}, {train_limit:,} training images, {epochs} epochs; img/s and CPU "
                      f"= medians over all epochs after the first of all runs; the three sides take turns. "
                      f"Plotly charts on the page at the end: {[r['charts_shown'] for r in live]}. Load average "
                      f"before each side: {[round(v, 2) for v in loads]}."]
    section.data = {**sides, "slower_percent": slower, "server_core_share": server_share,
                    "browser_core_share": browser_share, "estimated_percent": estimate}
    return section
