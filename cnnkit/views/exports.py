"""Take a run's model away: the formats, their files, and the bytes behind each download button.

`keras` and `python` need no TensorFlow (the file itself; a script generated from the spec).
`savedmodel` and `onnx` do, so the dashboard gets them from `cnnkit export` in a subprocess:
the server never imports TensorFlow, and the memory Keras' export takes is freed when it ends.
"""

from __future__ import annotations

import io
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cnnkit.errors import CnnkitError, RunError
from cnnkit.runs.store import MODEL_FILES, RunRecord
from cnnkit.views.script import python_script

EXPORT_SECONDS = 300


@dataclass(frozen=True)
class ExportFormat:
    name: str
    label: str
    suffix: str
    mime: str
    help: str

    def __repr__(self) -> str:
        return f"ExportFormat({self.name})"


FORMATS = {f.name: f for f in (
    ExportFormat("keras", "Keras (.keras)", ".keras", "application/octet-stream",
                 "The float32 model: keras.saving.load_model(path). Takes 0–255 pixels."),
    ExportFormat("python", "Python script", ".py", "text/x-python",
                 "A standalone Keras script that rebuilds and trains this architecture with this "
                 "recipe: python FILE --epochs N [--data-dir DIR]."),
    ExportFormat("savedmodel", "TF SavedModel (.zip)", ".zip", "application/zip",
                 "For TensorFlow Serving and TFLite converters: tf.saved_model.load(folder).serve(x)."),
    ExportFormat("onnx", "ONNX", ".onnx", "application/octet-stream",
                 "For onnxruntime and other ONNX tools; input (N, H, W, C) float32 0–255 pixels."),
)}


def _stem(record: RunRecord, key: str) -> str:
    base = re.sub(r"[^A-Za-z0-9-]+", "_", record.run_id).strip("_") or "run"
    return base if key == "cnn" else f"{base}_baseline"


def export_filename(record: RunRecord, fmt: str, key: str = "cnn") -> str:
    return _stem(record, key) + ("_train.py" if fmt == "python" else FORMATS[fmt].suffix)


def export_problem(record: RunRecord, fmt: str, key: str = "cnn") -> str | None:
    """Why `fmt` cannot be exported for this run (shown beside a disabled button), or None."""
    if fmt not in FORMATS:
        return f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}"
    if fmt == "python":
        if key != "cnn":
            return "the script rebuilds the CNN; export the baseline as a model file"
        if not record.rebuildable:
            return "imported, and not every layer maps to cnnkit's: take the model file instead"
        return None
    if not record.model_path(key).is_file():
        return f"the run has no {MODEL_FILES[key]} (it has not finished an epoch)"
    return None


def script_text(record: RunRecord) -> str | None:
    """The run's training script, or None when its spec does not rebuild the model."""
    if not record.rebuildable:
        return None
    note = " (imported: the recipe is cnnkit's default)" if record.kind == "imported" else ""
    try:
        return python_script(record.spec, title=f"{record.name}{note}")
    except CnnkitError:  # a spec the shape calculator refuses (a hand-edited run.json)
        return None


def write_export(record: RunRecord, fmt: str, out: str | os.PathLike, key: str = "cnn") -> Path:
    """Write the export at `out` (savedmodel: a folder). TensorFlow is imported for savedmodel/onnx."""
    problem = export_problem(record, fmt, key)
    if problem:
        raise RunError(f"cannot export run {record.run_id} as {fmt}: {problem}")
    out = Path(out)
    if fmt == "keras":
        shutil.copyfile(record.model_path(key), out)
    elif fmt == "python":
        out.write_text(script_text(record) or "", encoding="utf-8")
    else:
        from cnnkit.model.export import export_model

        export_model(record.model_path(key), fmt, out)
    return out


def export_bytes(record: RunRecord, fmt: str, key: str = "cnn") -> bytes:
    """What the download button hands over; savedmodel and onnx come from a `cnnkit export` process."""
    problem = export_problem(record, fmt, key)
    if problem:
        raise RunError(problem)
    if fmt == "keras":
        return record.model_path(key).read_bytes()
    if fmt == "python":
        return (script_text(record) or "").encode("utf-8")
    with tempfile.TemporaryDirectory(prefix="cnnkit-export-") as folder:
        out = Path(folder) / ("savedmodel" if fmt == "savedmodel" else "model.onnx")
        run_cnnkit(["export", f"--run={record.run_id}", f"--runs-dir={record.path.parent}", f"--format={fmt}",
                    f"--model={key}", f"--out={out}"], EXPORT_SECONDS, f"{fmt} export")
        return _zip_folder(out) if fmt == "savedmodel" else out.read_bytes()


def run_cnnkit(args: list[str], timeout: float, what: str, *, error: type[Exception] = RunError,
               on_line: Callable[[str], None] | None = None) -> str:
    """`python -m cnnkit ARGS` in a subprocess; returns its stdout. `on_line` gets each stderr
    line as it comes (progress); a failure raises `error` with the command's one-line refusal,
    and a process still running after `timeout` seconds is killed (silent or not)."""
    deadline = time.monotonic() + timeout
    with tempfile.TemporaryFile() as out, subprocess.Popen(
            [sys.executable, "-m", "cnnkit", *args], stdout=out, stderr=subprocess.PIPE, text=True) as proc:
        last = ""
        while True:
            if time.monotonic() > deadline:
                proc.kill()
                raise error(f"the {what} took more than {timeout:g} s and was stopped")
            ready, _, _ = select.select([proc.stderr], [], [], 0.5)
            if not ready:
                continue
            line = proc.stderr.readline()
            if not line:  # the process closed stderr: it has ended
                break
            last = line.strip() or last
            if on_line is not None:
                on_line(last)
        if proc.wait() != 0:
            raise error((last or "no message").removeprefix("error: ")[:400])
        out.seek(0)
        return out.read().decode("utf-8", "replace")


def _zip_folder(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{folder.name}/{path.relative_to(folder)}")
    return buffer.getvalue()
