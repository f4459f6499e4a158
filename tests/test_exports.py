"""Exports: each format reloads in the tool it is for and predicts what the run's model predicts
(the oracle: the run's own Keras model on the same pixels), and the run zip carries the script."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from cnnkit.errors import RunError
from cnnkit.runs.store import RunStore
from cnnkit.views import exports, ledger
from tests.oracles import trained_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished run of a small CNN with BatchNorm (its moving statistics must survive export)."""
    return trained_run(tmp_path_factory.mktemp("runs"), {
        "layers": [{"type": "conv2d", "filters": 4, "kernel_size": 3}, {"type": "batchnorm"},
                   {"type": "maxpool2d"}, {"type": "flatten"}, {"type": "dense", "units": 16}],
        "dataset": {"train_limit": 300, "test_limit": 100, "validation_split": 0.0},
        "training": {"epochs": 1, "batch_size": 64}, "name": "export me"})


@pytest.fixture(scope="module")
def pixels():
    return np.random.default_rng(0).uniform(0, 255, (16, 28, 28, 1)).astype(np.float32)


@pytest.fixture(scope="module")
def expected(trained, pixels):
    from cnnkit.model.models import load_model

    return np.asarray(load_model(trained.model_path("cnn"))(pixels, training=False))


def test_keras_export_is_the_run_file(trained, tmp_path):
    out = exports.write_export(trained, "keras", tmp_path / "m.keras")
    assert out.read_bytes() == trained.model_path("cnn").read_bytes()
    assert exports.export_bytes(trained, "keras") == out.read_bytes()


def test_savedmodel_reloads_with_tf_and_predicts_the_same(trained, pixels, expected, tmp_path):
    from cnnkit.model.tf_import import tf

    out = exports.write_export(trained, "savedmodel", tmp_path / "sm")
    loaded = tf.saved_model.load(str(out))  # keep a reference: its variables live in it
    np.testing.assert_allclose(loaded.serve(pixels).numpy(), expected, atol=1e-6)


def test_onnx_runs_in_onnxruntime_and_predicts_the_same(trained, pixels, expected, tmp_path):
    import onnxruntime

    out = exports.write_export(trained, "onnx", tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.array_equal(got.argmax(1), expected.argmax(1))


def test_python_export_is_the_spec_script(trained, tmp_path):
    out = exports.write_export(trained, "python", tmp_path / "train.py")
    text = out.read_text()
    compile(text, "train.py", "exec")
    assert "export me" in text and text == exports.script_text(trained)


def test_the_run_zip_carries_the_script(trained):
    script = exports.script_text(trained)
    archive = zipfile.ZipFile(io.BytesIO(ledger.run_zip_bytes(trained.path, script)))
    assert archive.read(f"{trained.run_id}/train.py").decode() == script
    assert f"{trained.run_id}/model.keras" in archive.namelist()


def test_formats_a_run_cannot_give_say_why(trained, tmp_path):
    assert exports.export_problem(trained, "python", "baseline")
    assert "no baseline.keras" in exports.export_problem(trained, "keras", "baseline")
    assert "unknown format" in exports.export_problem(trained, "tflite")
    with pytest.raises(RunError, match="cannot export .* as keras: the run has no baseline.keras"):
        exports.write_export(trained, "keras", tmp_path / "b.keras", "baseline")


def test_a_hostile_model_file_in_a_runs_folder_is_not_exported(trained, tmp_path):
    import shutil

    from cnnkit.errors import UploadError
    from cnnkit.lab import hostile

    copy = tmp_path / "runs" / trained.run_id
    shutil.copytree(trained.path, copy)
    (copy / "model.keras").write_bytes(hostile.external_storage((copy / "model.keras").read_bytes()))
    record = RunStore(tmp_path / "runs").get(trained.run_id)
    with pytest.raises(UploadError, match="external file"):
        exports.write_export(record, "onnx", tmp_path / "x.onnx")


@pytest.mark.slow
def test_the_page_download_goes_through_cnnkit_export_in_a_subprocess(trained, pixels, expected):
    import onnxruntime

    data = exports.export_bytes(trained, "onnx")  # what the button hands over
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    names = zipfile.ZipFile(io.BytesIO(exports.export_bytes(trained, "savedmodel"))).namelist()
    assert "savedmodel/saved_model.pb" in names


def test_cnnkit_export_refuses_in_one_line(trained, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CNNKIT_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "cnnkit", "export", "--run", trained.run_id, "--runs-dir",
                           str(trained.path.parent), "--format", "python", "--model", "baseline", "--out",
                           str(tmp_path / "x.py")], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "rebuilds the CNN" in done.stderr


def test_the_subprocess_runner_returns_stdout_refuses_in_one_line_and_stops_at_its_timeout():
    lines = []
    out = exports.run_cnnkit(["presets", "--json"], 120, "listing", on_line=lines.append)
    assert any(p["name"] == "chollet-cnn" for p in json.loads(out.strip().splitlines()[-1]))
    with pytest.raises(RunError, match=r"^run 'no-such-run' does not exist"):
        exports.run_cnnkit(["export", "--run", "no-such-run", "--format", "keras", "--out", "x"], 120, "export")
    with pytest.raises(RunError, match="took more than 0 s and was stopped"):
        exports.run_cnnkit(["presets"], 0, "listing")
