"""Bring a model trained elsewhere in, from the dashboard: `cnnkit import` in a subprocess.

The import loads TensorFlow and the uploaded model, so it runs in its own process: the server
never imports TensorFlow, a model that Keras chokes on cannot take the server down, and the
memory is freed when the process ends. The upload's bytes were capped by Streamlit already;
the file is written under a fixed name, and the person's text reaches the command only as the
value of `--name=`, never as an option of its own.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from cnnkit.errors import UploadError
from cnnkit.model.import_spec import INPUT_SCALES, default_run_name
from cnnkit.views.exports import run_cnnkit

IMPORT_SECONDS = 300


def import_upload(data: bytes, filename: str | None, dataset: str, input_scale: str, name: str | None,
                  runs_dir: str | os.PathLike, data_dir: str | None = None) -> dict:
    """The upload imported as a run: {"run_id", "test_accuracy", "test_loss", "params"}, or
    UploadError with the refusal's one line."""
    if input_scale not in INPUT_SCALES:
        raise UploadError(f"unknown input scale {str(input_scale)[:20]!r}")
    with tempfile.TemporaryDirectory(prefix="cnnkit-import-") as folder:
        path = Path(folder) / "upload.keras"
        path.write_bytes(data)
        args = ["import", str(path), f"--dataset={dataset}", f"--input={input_scale}",
                f"--name={(name or '').strip() or default_run_name(filename)}", f"--runs-dir={runs_dir}", "--json"]
        if data_dir:
            args.append(f"--data-dir={data_dir}")
        stdout = run_cnnkit(args, IMPORT_SECONDS, "import", error=UploadError)
    return json.loads(stdout.strip().splitlines()[-1])


def is_imported_model(record) -> bool:
    """A model brought in (finished as soon as it is imported), not one cnnkit trained."""
    return record.status == "finished" and record.kind == "imported"
