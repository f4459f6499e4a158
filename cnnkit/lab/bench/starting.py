"""8. Start → first batch, fresh worker vs warm worker; and 11. a ledger of 10,000 runs.

start   `jobs.start` as the Train page's Start calls it, chollet-cnn on the full MNIST; the
        clock runs to the first batch in batches.jsonl (its own timestamp). A fresh worker and
        the warm spare (runs/warm.py) take turns, three times each; the spare's idle memory is
        read once it has warmed up.
ledger  10,000 copies of one finished run (run.json rewritten, the model hard-linked): listing
        in a fresh process and again in the same one, then the app in Chromium: Home from
        `streamlit run`, then every page by its sidebar link (Compare, Train, Inspect and Draw
        list every run and offer them in a picker), then every page a second time (the visit
        after: the server has read every run.json and imported the page's modules).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from cnnkit import settings
from cnnkit.lab.bench.common import (
    Options,
    Section,
    browser_skip,
    make_finished_run,
    median,
    run_child,
    skipped_without_data,
    table,
)
from cnnkit.lab.bench.startup import fresh_starts
from cnnkit.runs.store import IMPORTED_DIR, pid_alive
from cnnkit.sysinfo import anonymous_mib, cpu_seconds, load_average, rss_mib

STARTS = 3
LEDGER_RUNS = 10_000
FIRST_BATCH_TIMEOUT = 120.0


def first_batch_seconds(store, run_id: str, started: float) -> float:
    """Seconds from `started` (time.time()) to the run's first recorded training batch."""
    path = store.path(run_id) / "batches.jsonl"
    deadline = time.monotonic() + FIRST_BATCH_TIMEOUT
    while time.monotonic() < deadline:
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        if lines:
            return json.loads(lines[0])["time"] - started
        time.sleep(0.02)
    raise RuntimeError(f"run {run_id} recorded no batch in {FIRST_BATCH_TIMEOUT:.0f} s: {store.log_tail(run_id)}")


def loaded_tensorflow(pid: int) -> bool:
    """The process has TensorFlow's library mapped (a spare that has begun its warm-up)."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as handle:
            return "tensorflow" in handle.read()
    except OSError:
        return False


def settled(pid: int, quiet_seconds: float = 1.5, timeout: float = 90.0) -> None:
    """Wait until the spare has begun its warm-up (it first waits for a quiet machine, using no
    CPU) and then stopped using CPU (it has warmed up)."""
    deadline, last, still_since = time.monotonic() + timeout, -1.0, time.monotonic()
    while not loaded_tensorflow(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    while time.monotonic() < deadline:
        used = cpu_seconds(pid)
        if used - last > 0.02:
            last, still_since = used, time.monotonic()
        elif time.monotonic() - still_since >= quiet_seconds:
            return
        time.sleep(0.25)


WORKERS = {"fresh": "fresh", "warm": "warm", "early": "a spare still waiting to warm up"}


def _one_start(store, spec, data_dir: str | None, worker: str) -> dict:
    """One Start: with no spare ("fresh"), with a spare that has warmed up ("warm"), or with one
    started just before, still waiting for a quiet machine ("early": a Start right after the
    Train page opened)."""
    from cnnkit.runs import jobs, warm

    idle = {}
    warm.end_spare()  # a fresh turn: no spare, so launch starts a fresh worker
    if worker != "fresh":
        jobs.prepare_spare(store, data_dir, spec.dataset.name)
        spare = warm.idle_spare()
        if worker == "warm":
            settled(spare.pid)
            idle = {**rss_mib(spare.pid), "anonymous_mib": anonymous_mib(spare.pid)}
    load, started = load_average(), time.time()
    record = jobs.start(store, spec, data_dir=data_dir)
    seconds = first_batch_seconds(store, record.run_id, started)
    jobs.stop(store, record.run_id)
    meta = jobs.wait(store, record.run_id, timeout=120).meta
    _quiet_after(meta["pid"])
    return {"warm": meta.get("warm_worker"), "seconds": seconds, "load": load, **idle}


def _quiet_after(pid: int) -> None:
    """Let the job's process end and its replacement spare start, then end that spare: each turn
    starts from nothing, and no spare imports TensorFlow during the next turn."""
    from cnnkit.runs import warm

    deadline = time.monotonic() + 60
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)  # the server's reaper thread starts the replacement
    spare = warm.idle_spare()
    warm.end_spare()
    if spare is not None:
        spare.process.wait(timeout=30)


def bench_start(opts: Options) -> Section:
    from cnnkit.presets import get_preset
    from cnnkit.runs.store import RunStore

    section = Section("8. Start → first batch: a fresh worker vs the warm worker")
    if skipped_without_data(section, opts):
        return section
    spec = get_preset("chollet-cnn").experiment()
    if opts.quick:
        spec = spec.updated({"dataset.train_limit": 600})
    before = settings.get().warm_worker
    os.environ["CNNKIT_WARM_WORKER"] = "on"  # this benchmark decides itself when there is a spare
    results = {worker: [] for worker in WORKERS}
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        store = RunStore(tmp)
        try:
            for _ in range(1 if opts.quick else STARTS):
                for worker in WORKERS:  # taking turns
                    results[worker].append(_one_start(store, spec, opts.data_dir, worker))
        finally:
            os.environ["CNNKIT_WARM_WORKER"] = before
    rows = [[WORKERS[worker], len(runs), median(r["seconds"] for r in runs), min(r["seconds"] for r in runs),
             max(r["seconds"] for r in runs), ", ".join(f"{r['seconds']:.2f}" for r in runs),
             all(r["warm"] is (worker != "fresh") for r in runs)] for worker, runs in results.items()]
    section.lines += table(["worker", "starts", "median (s)", "min", "max", "each (s)", "as planned"], rows)
    idle = results["warm"]
    section.lines += ["", f"The warm spare, idle after its warm-up: RSS **{median(r['rss_mib'] for r in idle):.0f} MiB**, "
                      f"of which anonymous memory (heap, arrays: not TensorFlow's library files, which any "
                      f"other TensorFlow process shares) **{median(r['anonymous_mib'] for r in idle):.0f} MiB** "
                      f"(medians of {len(idle)}). "
                      "The clock runs from `jobs.start` (what the Train page's Start calls) to the first "
                      "batch's own timestamp in batches.jsonl; full MNIST, chollet-cnn. Load at each start: "
                      + ", ".join(f"{r['load']:.1f}" for side in results.values() for r in side) + "."]
    section.data = results
    return section


# ---------------------------------------------------------------------------
# The ledger


def clone_runs(template: Path, root: Path, count: int) -> None:
    """`count` copies of a finished run folder: new ids, names, times and accuracies in run.json;
    model and predictions hard-linked (the same bytes, no disk)."""
    meta = json.loads((template / "run.json").read_text(encoding="utf-8"))
    cnn = meta["models"]["cnn"]
    (root / IMPORTED_DIR).mkdir(exist_ok=True)  # as RunStore.create starts a runs folder: no imported run
    for i in range(count):
        run_id = f"20260101-{i:06d}-{template.name[16:]}"[:100]
        folder = root / run_id
        folder.mkdir()
        copy = {**meta, "run_id": run_id, "name": f"run {i}", "created": meta["created"] - count + i,
                "models": {**meta["models"], "cnn": {**cnn, "test_accuracy": round(0.95 + (i % 400) / 10_000, 4)}}}
        (folder / "run.json").write_text(json.dumps(copy), encoding="utf-8")
        for name in os.listdir(template):
            if name != "run.json" and (template / name).is_file():
                os.link(template / name, folder / name)


def listing_child(runs_dir: str) -> dict:
    """In a fresh process: Inspect's run picker alone (what it reads to offer the newest runs:
    the goal's "picker", without the page), then Draw's after it; then RunStore.list() twice: the
    first reads every run.json, the second only looks at them."""
    from cnnkit.runs.store import RunStore
    from cnnkit.views import analysis, demo, ledger

    store = RunStore(runs_dir)
    pickers = {}
    for page, keep in (("inspect", analysis.is_inspectable), ("draw", demo.is_drawable)):
        started = time.perf_counter()
        choices = ledger.RunChoices(store, keep)
        choices.first()  # the run a page opens on
        ledger.picker_window(choices)  # the newest PICKER_RUNS it offers
        pickers[page] = time.perf_counter() - started
    times = []
    for _ in range(2):
        started = time.perf_counter()
        count = len(store.list())
        times.append(time.perf_counter() - started)
    return {"runs": count, "first": times[0], "again": times[1], "pickers": pickers, **rss_mib()}


def ledger_visits(server, browser) -> dict:
    """Seconds from `streamlit run` to Home rendered, then to each page by its sidebar link, then
    the same clicks once more (`again`: each page's repeat visit in the same session)."""
    from cnnkit.lab.bench.startup import STARTUP_DEADLINE, page_links
    from cnnkit.lab.browser import goto_when_up, wait_rendered

    page = browser.new_page()
    try:
        server.start()
        goto_when_up(page, server.url, time.perf_counter() + STARTUP_DEADLINE)
        wait_rendered(page)
        out = {"home": time.perf_counter() - server.started, "pages": {}, "again": {}}
        links = page_links(page)
        for visit in ("pages", "again"):
            for label, href in links[1:]:
                start = time.perf_counter()
                page.click(f'[data-testid="stSidebarNav"] a[href="{href}"]')
                page.wait_for_url(lambda url, href=href: url.split("?")[0] == href, timeout=60_000)  # ?run=
                wait_rendered(page, label)
                out[visit][label] = time.perf_counter() - start
        return out
    finally:
        page.close()
        server.stop()


def bench_ledger(opts: Options) -> Section:
    from cnnkit.views.ledger import LEDGER_ROWS, PICKER_RUNS, SCATTER_RUNS, STATUS_RUNS

    count = 300 if opts.quick else LEDGER_RUNS
    section = Section(f"11. A ledger of {count:,} runs: listing and the pages")
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as made, \
            tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as runs_dir:
        template = make_finished_run(made, opts.data_dir)
        clone_runs(template, Path(runs_dir), count)
        listings = [run_child("listing", {"runs_dir": runs_dir}) for _ in range(3)]
        skip = browser_skip()
        starts = [] if skip else fresh_starts(runs_dir, opts, 1 if opts.quick else 2, ledger_visits)
    section.lines += table(["listing in a fresh process", "runs", "Inspect's picker alone (s)", "then Draw's (s)",
                            "first list() (s)", "again (s)", "RSS MiB"],
                           [[f"#{i}", r["runs"], r["pickers"]["inspect"], r["pickers"]["draw"], r["first"], r["again"],
                             r["rss_mib"]] for i, r in enumerate(listings, start=1)])
    if skip:
        section.lines += ["", skip]
    else:
        labels = list(starts[0]["pages"])
        n = len(starts)
        rows = [[f"Home (from `streamlit run`; counts the runs, reads the newest {STATUS_RUNS:,})", *[s["home"] for s in starts], *[None] * n,
                 median(s["home"] for s in starts), None]]
        rows += [[f"{label} (sidebar click)", *[s[visit].get(label) for visit in ("pages", "again") for s in starts],
                  *[median(s[visit].get(label) for s in starts) for visit in ("pages", "again")]]
                 for label in labels]
        starts_cols = [f"{visit} {i} (s)" for visit in ("first", "again") for i in range(1, n + 1)]
        section.lines += ["", *table(["page", *starts_cols, "first: median (s)", "again: median (s)"], rows)]

    section.lines += ["", f"{count:,} copies of one finished run (chollet-cnn with its dense baseline); "
                      f"Compare lists the newest {LEDGER_ROWS:,} (table, overlay, one run) and draws the newest "
                      f"{SCATTER_RUNS:,} against their cost; a run picker offers the newest {PICKER_RUNS:,} (the picker "
                      "columns: what a picker reads, the run it opens on and the runs it offers, without its "
                      "page: Inspect's in a process that has read nothing yet, then Draw's); pages read "
                      "only the run.json files of the runs they list (the Find boxes read them all); "
                      "each page as in the startup benchmark (rendered: Streamlit's script finished and the "
                      "title on screen; the charts may still be drawing). *first*: each page's first visit "
                      "after Home, in sidebar order; *again*: the same clicks once more, in the same "
                      "session (the server has imported the page's modules and read the run.json files it showed). "
                      f"Load average at each start: {[round(s['load'], 2) for s in starts]}."]
    section.data = {"listings": listings, "starts": starts}
    return section

