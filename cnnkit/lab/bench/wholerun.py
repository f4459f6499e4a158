"""9–10. What the person waits for: a whole run against a plain script, and bf16's spread.

whole   `python -m cnnkit train --preset chollet-cnn --epochs 2` against the plain Keras script
        cnnkit exports for the same spec (`views/script.py`: numpy reads the IDX files,
        `model.fit`, `model.evaluate`), each a whole fresh process, taking turns, seeds 42, 43,
        44. Wall clock from the process start to its exit; the in-epoch ratio from the same runs
        (cnnkit: run.json's images/s of epoch 2; the script: Keras' ms/step of epoch 2).
bf16    the same `cnnkit train` ten times in bfloat16 and ten in float32, taking turns: the
        distribution of epoch times and of the whole process, not one figure.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnkit import settings
from cnnkit.lab.bench.common import (
    SKIP_NO_DATA,
    Options,
    Section,
    child_environment,
    median,
    skipped_without_data,
    table,
)
from cnnkit.sysinfo import load_average

PRESET = "chollet-cnn"
EPOCHS = 2
SEEDS = (42, 43, 44)
BF16_RUNS = 10
MS_PER_STEP = re.compile(r"^\s*(\d+)/(\d+) - [\d.]+m?s - (\d+)(m|u)s/step", re.MULTILINE)


def _timed(command: list[str], env: dict, cwd: str) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=3600)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = " / ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise RuntimeError(f"{command[1:4]} failed (exit {done.returncode}): {tail}")
    return seconds, done


def cnnkit_run(data_dir: str | None, seed: int, train_limit: int | None, runs_dir: str, **env: str) -> dict:
    """`cnnkit train` as a person types it: a whole process, its JSON result."""
    command = [sys.executable, "-m", "cnnkit", "train", "--preset", PRESET, "--epochs", str(EPOCHS),
               "--seed", str(seed), "--runs-dir", runs_dir, "--json"]
    if data_dir:
        command += ["--data-dir", data_dir]
    if train_limit:
        command += ["--train-limit", str(train_limit)]
    seconds, done = _timed(command, child_environment(**env), str(settings.REPO_ROOT))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    run = json.loads((Path(runs_dir) / result["run_id"] / "run.json").read_text())
    cnn = run["models"]["cnn"]
    return {"seconds": seconds, "test_accuracy": result["test_accuracy"], "epoch_seconds": cnn["seconds_per_epoch"],
            "images_per_second": cnn["images_per_second"], "train_images": run["data_summary"]["train"]}


def script_run(data_dir: str | None, seed: int, train_limit: int | None, folder: str) -> dict:
    """The exported plain Keras script of the same spec, as a whole process."""
    from cnnkit.presets import get_preset
    from cnnkit.views.script import python_script

    changes = {"training.seed": seed, "training.epochs": EPOCHS}
    if train_limit:
        changes["dataset.train_limit"] = train_limit
    spec = get_preset(PRESET).experiment().updated(changes)
    path = Path(folder) / "train.py"
    path.write_text(python_script(spec), encoding="utf-8")
    command = [sys.executable, str(path), "--epochs", str(EPOCHS)] + (["--data-dir", data_dir] if data_dir else [])
    seconds, done = _timed(command, child_environment(), folder)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    steps = [(int(total), int(per) / (1000 if unit == "m" else 1e6)) for _, total, per, unit in
             MS_PER_STEP.findall(done.stdout)]
    return {"seconds": seconds, "test_accuracy": result["test_accuracy"], "steps": steps,
            "batch_size": spec.training.batch_size}


def _script_images_per_second(run: dict) -> float | None:
    if not run["steps"]:
        return None
    _, seconds_per_step = run["steps"][-1]  # the last epoch: tracing is behind it
    return run["batch_size"] / seconds_per_step


def bench_whole(opts: Options) -> Section:
    section = Section("9. A whole run: `cnnkit train` vs the plain Keras script, as processes")
    if not opts.data_dir or (not opts.quick and not opts.real_data):
        section.lines.append(SKIP_NO_DATA + " (The plain script reads the IDX files of the data folder.)")
        return section
    seeds = SEEDS[:1] if opts.quick else SEEDS
    limit = 600 if opts.quick else None
    pairs = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        for seed in seeds:
            load = load_average()
            script = script_run(opts.data_dir, seed, limit, tmp)
            ours = cnnkit_run(opts.data_dir, seed, limit, tmp)
            pairs.append({"seed": seed, "load": load, "script": script, "cnnkit": ours})
    rows = []
    for pair in pairs:
        script, ours = pair["script"], pair["cnnkit"]
        script_ips = _script_images_per_second(script)
        rows.append([pair["seed"], script["seconds"], ours["seconds"], f"{script['seconds'] / ours['seconds']:.2f}×",
                     script_ips, ours["images_per_second"][-1],
                     f"{ours['images_per_second'][-1] / script_ips:.2f}×" if script_ips else "–",
                     f"{100 * script['test_accuracy']:.2f}%", f"{100 * ours['test_accuracy']:.2f}%",
                     ", ".join(f"{s:.1f}" for s in ours["epoch_seconds"]), f"{pair['load']:.1f}"])
    section.lines += table(["seed", "script (s)", "cnnkit (s)", "whole ratio", "script img/s (epoch 2)",
                            "cnnkit img/s (epoch 2)", "in-epoch ratio", "script test acc", "cnnkit test acc",
                            "cnnkit epochs (s)", "load"], rows)
    ratios = [p["script"]["seconds"] / p["cnnkit"]["seconds"] for p in pairs]
    accuracy = {side: sum(p[side]["test_accuracy"] for p in pairs) / len(pairs) for side in ("script", "cnnkit")}
    section.lines += ["", f"Whole-process ratio: worse of the first two pairs **{min(ratios[:2]):.2f}×**, all "
                      f"{', '.join(f'{r:.2f}×' for r in ratios)}. Mean test accuracy over {len(pairs)} seed(s): "
                      f"script {100 * accuracy['script']:.2f}%, cnnkit {100 * accuracy['cnnkit']:.2f}% "
                      f"(Δ {100 * (accuracy['cnnkit'] - accuracy['script']):+.2f} pt). Each pair: the script, "
                      "then cnnkit, each a fresh process timed from start to exit (TensorFlow's import, the "
                      "data, training, the test, saving). cnnkit's process also writes the run folder: "
                      "checkpoints, the float32 model, the test predictions, the health probe."]
    section.data = {"pairs": pairs}
    return section


def bench_bf16(opts: Options) -> Section:
    section = Section("10. bfloat16's spread: ten whole runs in bf16 and ten in float32, taking turns")
    if skipped_without_data(section, opts):
        return section
    runs = 1 if opts.quick else BF16_RUNS
    limit = 600 if opts.quick else None
    results = {"bf16": [], "float32": []}
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        for i in range(runs):
            for side, precision in (("bf16", "auto"), ("float32", "float32")):
                load = load_average()
                run = cnnkit_run(opts.data_dir, SEEDS[0], limit, tmp, CNNKIT_PRECISION=precision)
                results[side].append({**run, "load": load, "order": i})
    rows = []
    for side, side_runs in results.items():
        first = [r["epoch_seconds"][0] for r in side_runs]
        second = [r["epoch_seconds"][-1] for r in side_runs]
        whole = [r["seconds"] for r in side_runs]
        rows.append([side, len(side_runs), median(first), min(first), max(first), median(second), min(second),
                     max(second), median(whole), min(whole), max(whole),
                     median(r["test_accuracy"] for r in side_runs)])
    section.lines += table(["precision", "runs", "epoch 1 median (s)", "min", "max", "epoch 2 median (s)", "min",
                            "max", "whole median (s)", "min", "max", "test acc"], rows)
    section.lines += ["", "Every run (epoch seconds; whole process; load):", ""]
    for side, side_runs in results.items():
        section.lines.append(f"- {side}: " + " · ".join(
            f"[{', '.join(f'{s:.1f}' for s in r['epoch_seconds'])}] {r['seconds']:.1f} s ({r['load']:.1f})"
            for r in side_runs))
    section.data = results
    return section
