"""Sweeps on both engines: Ray's start-up cost and memory, and the wall time of the same 8-trial
sweep on the local queue and on a local Ray, taking turns.

    startup   a fresh process: `import ray` + ray.init (local, this machine's cores) → the first
              trivial task's result; then the RSS of Ray's processes (raylet, GCS, the idle
              workers) and of the driver
    8 trials  chollet-cnn, seeds 42…49, as `cnnkit sweep` runs them: local with CNNKIT_MAX_JOBS=2
              (two trial workers at a time), then Ray with one CPU per task on 2 CPUs
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

from cnnkit import settings
from cnnkit.lab.bench.common import Options, Section, bench_spec, table

TRIALS = 8
STARTUP_PROBE = """
import json, os, time
started = time.perf_counter()
import ray
ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
ray.get(ray.remote(lambda: 1).remote())
seconds = time.perf_counter() - started
import psutil
me = psutil.Process()
ray_mib = sum(p.memory_info().rss for p in me.children(recursive=True)) / 2**20
print(json.dumps({"seconds": seconds, "ray_mib": ray_mib, "driver_mib": me.memory_info().rss / 2**20}))
ray.shutdown()
"""


def ray_startup() -> dict:
    result = subprocess.run([sys.executable, "-c", STARTUP_PROBE], capture_output=True, text=True, timeout=300,
                            cwd=str(settings.REPO_ROOT))
    if result.returncode:
        return {"error": result.stderr.strip().splitlines()[-1:]}
    return json.loads(result.stdout.strip().splitlines()[-1])


def sweep_seconds(engine: str, data_dir: str | None, train_limit: int | None) -> dict:
    """`cnnkit sweep` of chollet-cnn over TRIALS seeds on one engine, in a fresh process."""
    from cnnkit.presets import get_preset

    base = bench_spec(get_preset("chollet-cnn"), train_limit, epochs=1).to_dict()
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-sweep-") as folder:
        path = os.path.join(folder, "sweep.json")
        with open(path, "w") as handle:
            json.dump({"base": base, "seeds": TRIALS}, handle)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNNKIT_")}
        env.update(CNNKIT_OFFLINE="1", CNNKIT_MAX_JOBS="2", PYTHONPATH=str(settings.REPO_ROOT))
        if data_dir:
            env["CNNKIT_DATA_DIR"] = data_dir
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "cnnkit", "sweep", path, "--engine", engine, "--json",
                                 "--runs-dir", os.path.join(folder, "runs")], capture_output=True, text=True,
                                env=env, cwd=str(settings.REPO_ROOT), timeout=3600)
        seconds = time.perf_counter() - started
    if result.returncode:
        return {"error": (result.stderr.strip().splitlines() or ["?"])[-1]}
    trials = json.loads(result.stdout.strip().splitlines()[-1])["trials"]
    return {"seconds": seconds, "accuracies": [t["test_accuracy"] for t in trials]}


def bench_sweeps(opts: Options) -> Section:
    section = Section(f"Sweeps: Ray's start-up and memory; {TRIALS} chollet-cnn trials, local queue vs Ray")
    if importlib_missing("ray"):
        section.lines.append("Skipped: Ray is not installed (pip install -r requirements-ray.txt).")
        return section
    startup = ray_startup()
    train_limit = 2000 if opts.quick or not opts.real_data else 12000
    runs = [("local", sweep_seconds("local", opts.data_dir, train_limit)),
            ("ray", sweep_seconds("ray", opts.data_dir, train_limit))]
    rows = [[engine, r.get("seconds"), TRIALS * 60 / r["seconds"] if r.get("seconds") else None,
             r.get("error") or ("same accuracies as local" if r.get("accuracies") == runs[0][1].get("accuracies")
                                else "accuracies differ from local")] for engine, r in runs]
    section.lines += [f"Ray start-up (import, ray.init, first task): **{startup.get('seconds', 0):.1f} s**; "
                      f"Ray's processes {startup.get('ray_mib', 0):,.0f} MiB RSS, the driver "
                      f"{startup.get('driver_mib', 0):,.0f} MiB.", ""]
    section.lines += table(["engine", f"{TRIALS} trials (s)", "trials / min", "check"], rows)
    section.lines += ["", f"Each trial: chollet-cnn, 1 epoch on {train_limit:,} training images, its own seed "
                          "(42…49). Local: at most 2 trial workers at a time (CNNKIT_MAX_JOBS=2); Ray: one CPU "
                          "per task on a local Ray of this machine's cores, so both use 2 cores."]
    section.data = {"startup": startup, "runs": dict(runs), "train_limit": train_limit}
    return section


def importlib_missing(name: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(name) is None
