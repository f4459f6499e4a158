"""Hostile model files: each refused through `cnnkit import`, timed, with its peak memory.

A child saves a good tutorial-style model and makes every file of `cnnkit.lab.hostile` from it.
Each file is then imported by `python -m cnnkit import` in its own process; the outcome (exit
code, the one stderr line), the wall time and that process's peak RSS (from wait4) are the
report. `cnnkit bench hostile-keras` also gives each file
to Keras 3's own `load_model(safe_mode=True)` alone, under an address-space cap of 20 GiB, for
comparison: what the checks save. The good file is imported last, as the control.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cnnkit import settings
from cnnkit.lab.bench.common import Options, Section, run_child, table

KERAS_ALONE_CAP = 20 * 2**30
TIMEOUT = 300


def hostile_files_child(folder: str) -> dict:
    """Save a good model and every hostile variant of it into `folder`: {label: path}."""
    import h5py
    import numpy as np

    from cnnkit.lab import hostile
    from cnnkit.model.tf_import import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    good = Path(folder) / "good.keras"
    model.save(good)
    other = Path(folder) / "other.h5"  # what the link attacks point at
    with h5py.File(other, "w") as h5:
        h5["secret"] = np.arange(16, dtype=np.float32)
    files = {}
    for index, (label, make) in enumerate(hostile.HOSTILE.items()):
        raw = good.read_bytes()
        data = make(raw, str(other)) if label in ("HDF5 external link", "HDF5 virtual dataset") else make(raw)
        path = Path(folder) / f"hostile_{index}.keras"
        path.write_bytes(data)
        files[label] = str(path)
    files["the good model (control)"] = str(good)
    return {"files": files}


def _measured(command: list[str], cap: int | None = None) -> dict:
    """Run `command`; its exit code, last stderr line, seconds and peak RSS (MiB) via wait4."""
    def limit():
        if cap:
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = {**os.environ, "PYTHONPATH": str(settings.REPO_ROOT), "CNNKIT_OFFLINE": "1"}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env=env, preexec_fn=limit)
        deadline = started + TIMEOUT
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        lines = [line for line in err.read().decode("utf-8", "replace").splitlines() if line.strip()]
    last = next((line for line in reversed(lines) if "error" in line.lower() or "refused" in line.lower()),
                lines[-1] if lines else "")
    return {"exit": proc.returncode, "message": last[:160], "seconds": time.perf_counter() - started,
            "peak_mib": usage.ru_maxrss / 1024}


KERAS_ALONE = ("import sys, keras\n"
               "keras.saving.load_model(sys.argv[1], compile=False, safe_mode=True)\n"
               "print('error: accepted by Keras', file=sys.stderr)\n")


def bench_hostile(opts: Options, keras_too: bool = False) -> Section:
    section = Section("Hostile model files: refused by `cnnkit import` (each in its own process)")
    with tempfile.TemporaryDirectory(prefix="cnnkit-hostile-") as folder:
        files = run_child("hostile_files", {"folder": folder})["files"]
        rows, data = [], {}
        for label, path in files.items():
            runs = Path(folder) / "runs"
            result = _measured([sys.executable, "-m", "cnnkit", "import", path, "--dataset", "mnist",
                                "--runs-dir", str(runs), "--json"])
            row = [label, "exit 0 (imported)" if result["exit"] == 0 else f"exit {result['exit']}",
                   f"{result['seconds']:.1f}", f"{result['peak_mib']:,.0f}", result["message"] or "–"]
            if keras_too:
                alone = _measured([sys.executable, "-c", KERAS_ALONE, path], cap=KERAS_ALONE_CAP)
                result["keras_alone"] = alone
                verdict = "accepted" if "accepted by Keras" in alone["message"] else "refused"
                row += [f"{verdict}, {alone['seconds']:.1f} s, {alone['peak_mib']:,.0f} MiB"]
            rows.append(row)
            data[label] = result
    header = ["file", "outcome", "seconds", "peak RSS (MiB)", "message"] + (["Keras 3 alone"] if keras_too else [])
    section.lines += table(header, rows)
    section.lines += ["", "Each row is a fresh `python -m cnnkit import FILE --dataset mnist`, peak RSS from "
                      "wait4. Refusals come before TensorFlow is imported; the control's time and memory are "
                      "mostly TensorFlow's import and the evaluation on the test split."]
    section.data = data
    return section


def bench_hostile_keras(opts: Options) -> Section:
    return bench_hostile(opts, keras_too=True)
