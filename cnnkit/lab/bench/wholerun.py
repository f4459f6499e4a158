"""9–10. What the person waits for: a whole run against a plain script, and bf16's spread.

whole   `python -m cnnkit train --preset chollet-cnn --epochs 2` against the plain Keras script
        cnnkit exports for the same spec (`views/script.py`: numpy reads the IDX files,
        `model.fit`, `model.evaluate`), each a whole fresh process, taking turns, seeds 42, 43,
        44. Wall clock from the process start to its exit; the in-epoch ratio from the same runs
        (cnnkit: run.json's images/s of epoch 2; the script: Keras' ms/step of epoch 2).
        Then one more `cnnkit train` in a probe (`phases_child`) that times each phase of it.
bf16    the same `cnnkit train` ten times in bfloat16 and ten in float32, taking turns: the
        distribution of epoch times and of the whole process, not one figure.
"""

from __future__ import annotations

import argparse
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
    run_child,
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
    with tempfile.TemporaryDirectory(prefix="cnnkit-bench-") as tmp:
        section.lines += _phase_lines(opts.data_dir, tmp, limit)
    section.data = {"pairs": pairs}
    return section


PHASES = [("import", "import TensorFlow, Keras and cnnkit's training code"),
          ("check", "read the data and check its sha256 (the CLI, before the run is made)"),
          ("setup", "prepare the data, build and compile the model, the input pipelines"),
          ("first_call", "fit's first call: tracing the training step, then its first 16 steps"),
          ("steps", "the rest of the training steps"),
          ("health", "the health probes (one an epoch)"),
          ("checkpoints", "the checkpoints: float32 twin, model.keras, the optimizer's state"),
          ("test", "the test on 10,000 images (float32) and its predictions file"),
          ("rest", "the rest: the run folder, the result lines")]


def phases_child(data_dir: str | None, runs_dir: str, seed: int, train_limit: int | None) -> dict:
    """One `cnnkit train` (as `cnnkit_run` runs it) in this process, each phase timed by wrapping
    the function that does it; seconds per phase."""
    started = time.perf_counter()
    import cnnkit.model.training as training  # what run_in_slot imports once it has a slot

    imported = time.perf_counter()
    import cnnkit.cli.training as cli_training  # its own parser below: cnnkit.cli imports this bench
    from cnnkit.model import callbacks, health

    spans: dict[str, float] = {}  # phase → seconds in its functions
    first: dict[str, float] = {}  # phase → when one of its functions was first called

    def timed(owner, attr: str, phase: str) -> None:
        original = getattr(owner, attr)

        def wrapper(*args, **kwargs):
            began = time.perf_counter()
            first.setdefault(phase, began)
            try:
                return original(*args, **kwargs)
            finally:
                spans[phase] = spans.get(phase, 0.0) + time.perf_counter() - began
        setattr(owner, attr, wrapper)

    timed(cli_training, "check_data", "check")
    timed(training, "test_model", "test")
    timed(training.keras.Model, "fit", "fit")
    timed(health.HealthMonitor, "on_epoch_end", "health")
    timed(callbacks, "save_model_atomic", "checkpoints")
    timed(training, "save_optimizer_state", "checkpoints")
    timed(training.Float32Export, "__call__", "checkpoints")  # after fit too, once: ~2 ms
    timed(callbacks.LiveReport, "on_train_batch_end", "batch_ends")  # the first: the first call is done
    argv = ["train", "--preset", PRESET, "--epochs", str(EPOCHS), "--seed", str(seed), "--runs-dir", runs_dir,
            "--json"] + (["--data-dir", data_dir] if data_dir else [])
    argv += ["--train-limit", str(train_limit)] if train_limit else []
    parser = argparse.ArgumentParser(prog="cnnkit")
    cli_training.add_command(parser.add_subparsers())
    args = parser.parse_args(argv)
    if args.func(args) != 0:
        raise RuntimeError("cnnkit train failed")
    ended = time.perf_counter()
    first_call = first["batch_ends"] - first["fit"]
    phases = {"import": imported - started, "check": spans["check"], "first_call": first_call,
              "health": spans.get("health", 0.0), "checkpoints": spans.get("checkpoints", 0.0),
              "test": spans["test"]}
    phases["steps"] = spans["fit"] - first_call - phases["health"] - phases["checkpoints"]
    before_fit = first["fit"] - imported
    phases["setup"] = before_fit - phases["check"]
    phases["rest"] = (ended - started) - sum(phases.values())
    run = next(Path(runs_dir).glob("*/run.json"))
    return {"phases": phases, "total": ended - started, "fit": spans["fit"],
            "epoch_seconds": json.loads(run.read_text())["models"]["cnn"]["seconds_per_epoch"]}


def _phase_lines(data_dir: str | None, runs_dir: str, train_limit: int | None) -> list[str]:
    result = run_child("phases", {"data_dir": data_dir, "runs_dir": runs_dir, "seed": SEEDS[0],
                                  "train_limit": train_limit})
    phases, total = result["phases"], result["total"]
    rows = [[label, phases[key], f"{100 * phases[key] / total:.0f}%"] for key, label in PHASES]
    lines = ["", f"Where a whole `cnnkit train` spends its time: one more run (seed {SEEDS[0]}) in a probe that "
             "times each phase by wrapping the function that does it "
             f"(load {load_average():.1f}):", ""]
    lines += table(["phase", "seconds", "share"], rows + [["total, in the process", total, "100%"]])
    lines += ["", "Not in the total: the interpreter's start and the probe's own imports "
              f"({result['child_seconds'] - total:.1f} s here, with the exit), and the exit "
              "(`cnnkit train` ends with `os._exit`, without TensorFlow's teardown)."]
    return lines


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
