"""`python -m cnnkit …` as a user runs it: real subprocesses, JSON on stdout, one line on bad input.

One tiny training run (300 images, 1 epoch, the bundled sample) is shared by the module:
predict, evaluate, runs and the missing-image case all look at it.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from cnnkit.errors import RunError
from cnnkit.presets import PRESETS
from cnnkit.shapes import summarize_spec

REPO_ROOT = Path(__file__).resolve().parent.parent
TRAIN_KEYS = {"run_id", "test_accuracy", "test_loss", "history", "seconds_per_epoch", "images_per_second",
              "data_source"}


def cli_env(keras_home: Path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNNKIT_")}
    env.update(CNNKIT_OFFLINE="1", KERAS_HOME=str(keras_home), PYTHONPATH=str(REPO_ROOT), **extra)
    return env


def cnnkit(*args, env, timeout=300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cnnkit", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=REPO_ROOT, timeout=timeout)


def last_json_line(stdout: str):
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return cli_env(tmp_path_factory.mktemp("keras_home"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, env):
    runs = tmp_path_factory.mktemp("cli_runs")
    result = cnnkit("train", "--preset", "chollet-cnn", "--train-limit", 300, "--epochs", 1, "--json",
                    "--runs-dir", runs, env=env)
    assert result.returncode == 0, result.stderr
    return {"runs": runs, "result": result, "out": last_json_line(result.stdout)}


def draw_digit_png(path: Path, kind: str = "one") -> Path:
    """A synthetic digit, drawn as a person would on a 200×200 canvas: black ink on white."""
    image = Image.new("L", (200, 200), 255)
    pen = ImageDraw.Draw(image)
    if kind == "one":
        pen.line([(85, 50), (105, 30), (105, 170)], fill=0, width=16)
    elif kind == "zero":
        pen.ellipse([55, 30, 145, 170], outline=0, width=16)
    image.save(path)  # kind "blank": nothing drawn
    return path


# ---------------------------------------------------------------------------
# Commands that need no TensorFlow


def test_presets_json_lists_every_preset_with_its_params(env):
    result = cnnkit("presets", "--json", env=env)
    assert result.returncode == 0 and result.stderr == ""
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == list(PRESETS)
    by_name = {r["name"]: r for r in rows}
    assert (by_name["dense-128"]["params"], by_name["chollet-cnn"]["params"],
            by_name["kruse-conv"]["params"]) == (101_770, 96_844, 70_698)
    for name, preset in PRESETS.items():
        assert by_name[name]["params"] == summarize_spec(preset.experiment()).total_params
        assert by_name[name]["dataset"] == preset.dataset.name
    text = cnnkit("presets", env=env).stdout
    assert "chollet-cnn" in text and "96,844 params" in text


def test_summary_json_has_exact_keys_and_totals(env):
    result = cnnkit("summary", "--preset", "chollet-cnn", "--json", env=env)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert set(summary) == {"layers", "total_params"}
    assert summary["total_params"] == 96_844
    for layer in summary["layers"]:
        assert set(layer) == {"name", "type", "output_shape", "params", "receptive_field"}
    assert [layer["name"] for layer in summary["layers"]] == [
        "conv2d_1", "maxpool2d_2", "conv2d_3", "maxpool2d_4", "conv2d_5", "flatten_6", "dense_7", "output"]
    assert [layer["receptive_field"] for layer in summary["layers"]][:6] == [3, 4, 8, 10, 18, None]
    assert summary["layers"][-1] == {"name": "output", "type": "dense", "output_shape": [10], "params": 710,
                                     "receptive_field": None}


def test_summary_of_a_spec_file_and_the_text_table(env, tmp_path):
    spec = PRESETS["kruse-conv"].experiment().updated({"dataset.name": "fashion_mnist"})
    path = tmp_path / "spec.json"
    path.write_text(spec.to_json())
    assert json.loads(cnnkit("summary", "--spec", path, "--json", env=env).stdout)["total_params"] == 70_698
    table = cnnkit("summary", "--spec", path, env=env).stdout
    assert "total params: 70,698" in table and "28×28×64" in table and "whole image" in table


# ---------------------------------------------------------------------------
# Train, runs, predict, evaluate on the shared run


def test_train_json_reports_the_run(trained):
    out = trained["out"]
    assert TRAIN_KEYS <= set(out)
    assert out["status"] == "finished"
    assert "SAMPLE" in out["data_source"] and out["data_source_kind"] == "sample"
    assert 0.0 <= out["test_accuracy"] <= 1.0 and math.isfinite(out["test_loss"])
    assert len(out["history"]["loss"]) == len(out["history"]["accuracy"]) == 1  # one epoch
    assert "val_loss" not in out["history"]  # the preset's recipe has no validation split
    assert len(out["seconds_per_epoch"]) == 1 and out["images_per_second"] > 0
    # stdout is for the JSON (no TensorFlow start-up noise); people read stderr
    assert trained["result"].stdout.strip().count("\n") == 0
    assert f"CNN test accuracy: {out['test_accuracy']:.4f}" in trained["result"].stderr  # the plain lines
    run = json.loads((trained["runs"] / out["run_id"] / "run.json").read_text())
    assert run["models"]["cnn"]["test_accuracy"] == out["test_accuracy"]
    assert run["spec"]["dataset"]["train_limit"] == 300 and run["spec"]["training"]["epochs"] == 1


def test_runs_json_lists_the_run(trained, env):
    result = cnnkit("runs", "--json", "--runs-dir", trained["runs"], env=env)
    assert result.returncode == 0, result.stderr
    runs = json.loads(result.stdout)
    assert [(r["run_id"], r["status"], r["epochs_completed"], r["test_accuracy"]) for r in runs] == [
        (trained["out"]["run_id"], "finished", 1, trained["out"]["test_accuracy"])]


def test_predict_a_drawn_digit(trained, env, tmp_path):
    from cnnkit.data.drawing import load_image, preprocess_drawing
    from cnnkit.model.models import load_model

    one, blank = draw_digit_png(tmp_path / "one.png"), draw_digit_png(tmp_path / "blank.png", "blank")
    run_id = trained["out"]["run_id"]
    result = cnnkit("predict", "--run", run_id, "--runs-dir", trained["runs"], one, blank, env=env)
    assert result.returncode == 0, result.stderr
    out = last_json_line(result.stdout)
    names = [str(d) for d in range(10)]
    assert out["run_id"] == run_id and out["dataset"] == "mnist" and out["class_names"] == names
    first, second = out["predictions"]
    assert first["status"] == "ok" and list(first["probabilities"]) == names
    probs = np.array([first["probabilities"][n] for n in names])
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)  # 10 values rounded to 6 places
    assert first["predicted"] == names[int(probs.argmax())] == names[first["predicted_index"]]
    assert first["confidence"] == pytest.approx(probs.max(), abs=1e-6)
    # The same numbers as the saved model on the same preprocessed pixels, computed here.
    pixels = preprocess_drawing(load_image(one)).image * 255.0
    model = load_model(trained["runs"] / run_id / "model.keras")
    expected = np.asarray(model(pixels[None, ..., None].astype("float32"), training=False))[0]
    assert np.allclose(probs, expected, atol=2e-6)
    # A blank sheet (uniform white reads as "filled" by the canvas convention) is reported, not guessed at.
    assert second["status"] != "ok" and second["message"] and "probabilities" not in second


def test_evaluate_reproduces_the_training_metrics(trained, env):
    result = cnnkit("evaluate", "--run", trained["out"]["run_id"], "--runs-dir", trained["runs"], env=env)
    assert result.returncode == 0, result.stderr
    out = last_json_line(result.stdout)
    assert "SAMPLE" in out["data_source"]
    assert out["cnn"]["test_images"] == 1000
    assert out["cnn"]["test_accuracy"] == trained["out"]["test_accuracy"]
    assert out["cnn"]["test_loss"] == pytest.approx(trained["out"]["test_loss"], rel=1e-5)
    assert "baseline" not in out


def test_share_prints_a_link_that_opens_the_same_experiment(trained, env):
    from cnnkit.views.links import spec_from_link

    result = cnnkit("share", "--preset", "kruse-conv", "--base-url", "https://class.example.org/", env=env)
    assert result.returncode == 0, result.stderr
    url = result.stdout.strip()
    assert url.startswith("https://class.example.org/Build?exp=1.")
    assert spec_from_link(url.split("?exp=", 1)[1]) == PRESETS["kruse-conv"].experiment()
    result = cnnkit("share", "--run", trained["out"]["run_id"], "--runs-dir", trained["runs"], env=env)
    assert result.returncode == 0, result.stderr
    run_spec = json.loads((trained["runs"] / trained["out"]["run_id"] / "spec.json").read_text())
    assert spec_from_link(result.stdout.strip().split("?exp=", 1)[1]).to_dict() == run_spec


def test_evaluate_write_rebuilds_a_damaged_predictions_file(trained, env, tmp_path):
    # A kill once left predictions_cnn.npz empty and Inspect crashed on it (issue 12, item 5).
    import shutil

    from cnnkit.views.analysis import load_predictions

    runs = tmp_path / "runs"
    shutil.copytree(trained["runs"], runs)
    run_dir = runs / trained["out"]["run_id"]
    before = load_predictions(run_dir)
    (run_dir / "predictions_cnn.npz").write_bytes(b"")
    with pytest.raises(RunError, match="damaged"):
        load_predictions(run_dir)
    result = cnnkit("evaluate", "--run", trained["out"]["run_id"], "--runs-dir", runs, "--write", env=env)
    assert result.returncode == 0, result.stderr
    after = load_predictions(run_dir)
    assert np.array_equal(after.y_true, before.y_true) and np.array_equal(after.test_indices, before.test_indices)
    assert np.allclose(after.probs, before.probs, atol=2e-6)  # numpy forward pass vs training's Keras
    assert last_json_line(result.stdout)["cnn"]["test_accuracy"] == trained["out"]["test_accuracy"]


# ---------------------------------------------------------------------------
# Bad input: exit status 2, exactly one line on stderr, never a traceback


def bad_inputs(tmp: Path, run_id: str, runs: Path) -> dict:
    bad_json = tmp / "bad.json"
    bad_json.write_text('{"layers": [{"type": "conv2d", "filters": -4}]')
    invalid = tmp / "invalid.json"
    invalid.write_text(json.dumps({"layers": [{"type": "conv2d", "filters": -4}, {"type": "flatten"}]}))
    impossible = tmp / "impossible.json"
    impossible.write_text(json.dumps({"layers": [{"type": "conv2d"}]}))
    fifo = tmp / "fifo.json"
    if not fifo.exists():
        os.mkfifo(fifo)  # a reader of it would wait forever for a writer
    return {
        "unknown preset": (["summary", "--preset", "nope"], "unknown preset 'nope'"),
        "malformed spec file": (["summary", "--spec", bad_json], "not valid JSON"),
        "invalid spec file": (["summary", "--spec", invalid], "layers[0].filters"),
        "impossible spec": (["train", "--spec", impossible], "26×26×32 map"),
        "missing spec file": (["summary", "--spec", tmp / "nowhere.json"], "cannot read spec file"),
        "negative epochs": (["train", "--preset", "chollet-cnn", "--epochs", "-1"], "training.epochs"),
        "epochs not a number": (["train", "--preset", "chollet-cnn", "--epochs", "two"], "invalid int"),
        "too big a sample subset": (["train", "--preset", "chollet-cnn", "--train-limit", "20000", "--runs-dir",
                                     tmp / "r"], "SAMPLE"),
        "missing data dir": (["train", "--preset", "chollet-cnn", "--data-dir", tmp / "no-data"],
                             "is not a folder"),
        "missing image": (["predict", "--run", run_id, "--runs-dir", runs, tmp / "missing.png"],
                          "does not exist"),
        "not an image": (["predict", "--run", run_id, "--runs-dir", runs, bad_json], "bad.json"),
        "unknown run": (["predict", "--run", "no-such-run", "--runs-dir", runs, "x.png"], "does not exist"),
        "traversing run id": (["evaluate", "--run", "../etc", "--runs-dir", runs], "not a valid run id"),
        "unknown command": (["frobnicate"], "invalid choice"),
        # Reads without bounds (issue 12, item 9): /dev/zero once read 22 GB as an image
        "spec is a device": (["summary", "--spec", "/dev/zero"], "not a regular file"),
        "spec is a FIFO": (["summary", "--spec", fifo], "not a regular file"),
        "spec is a folder": (["summary", "--spec", tmp], "is a folder"),
        "image is a device": (["predict", "--run", run_id, "--runs-dir", runs, "/dev/zero"], "not a regular file"),
        "image is a folder": (["predict", "--run", run_id, "--runs-dir", runs, tmp], "is a folder"),
        "a 5,000-character run id": (["evaluate", "--run", "r" * 5000, "--runs-dir", runs], "r" * 50 + "..."),
        "no command": ([], "required"),
    }


CASES = ["unknown preset", "malformed spec file", "invalid spec file", "impossible spec", "missing spec file",
         "negative epochs", "epochs not a number", "too big a sample subset", "missing data dir",
         "missing image", "not an image", "unknown run", "traversing run id", "unknown command", "no command",
         "spec is a device", "spec is a FIFO", "spec is a folder", "image is a device", "image is a folder",
         "a 5,000-character run id"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_exits_2_with_one_line(case, trained, env, tmp_path):
    args, fragment = bad_inputs(tmp_path, trained["out"]["run_id"], trained["runs"])[case]
    result = cnnkit(*args, env=env)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(("error: ", "python -m cnnkit")) or "error" in lines[0]
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr + result.stdout


def test_spec_files_read_as_uploads_do_a_bom_is_fine_utf16_is_bad_input(tmp_path, env):
    # --spec once refused a BOM the upload accepted, and a UTF-16 file ended with exit 1.
    text = PRESETS["chollet-cnn"].experiment().to_json()
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + text.encode())
    result = cnnkit("summary", "--spec", tmp_path / "bom.json", "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert last_json_line(result.stdout)["total_params"] == 96_844  # as from the preset itself
    (tmp_path / "utf16.json").write_bytes(text.encode("utf-16"))
    result = cnnkit("summary", "--spec", tmp_path / "utf16.json", env=env)
    assert result.returncode == 2 and "not UTF-8 text" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_cli_training_waits_for_a_slot_like_the_apps_jobs(tmp_path, env):
    # `cnnkit train` ignored CNNKIT_MAX_JOBS (issue 12, item 10): now it queues for a slot.
    import time

    from cnnkit.runs import jobs
    from cnnkit.runs.store import RunStore

    runs = tmp_path / "runs"
    slot = jobs.try_acquire(runs / ".slots", 1)  # the app's one job is training
    child = subprocess.Popen([sys.executable, "-m", "cnnkit", "train", "--preset", "dense-128", "--epochs", "1",
                              "--train-limit", "200", "--json", "--runs-dir", str(runs)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO_ROOT)
    try:
        deadline = time.monotonic() + 60
        while not [r for r in RunStore(runs).list() if r.meta.get("queue_position") == 1]:
            assert child.poll() is None, child.communicate()
            assert time.monotonic() < deadline, "the CLI never queued"
            time.sleep(0.1)
        assert RunStore(runs).list()[0].status == "queued"
    finally:
        slot.release()
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert last_json_line(out)["status"] == "finished"


def test_bad_input_cases_are_all_tested(tmp_path):
    assert sorted(bad_inputs(tmp_path, "x", tmp_path)) == sorted(CASES)


# ---------------------------------------------------------------------------
# The real data


@pytest.mark.slow
@pytest.mark.realdata
def test_chollet_cnn_on_real_mnist_reaches_98_percent(real_data_dir, tmp_path):
    # 2 epochs on all 60,000 images. Measured over seeds 1-6 in both precisions (bfloat16 and
    # float32, 12 runs): 98.89% mean, 0.13 pt standard deviation, 98.70% lowest, so the 98% floor
    # sits 6.8 standard deviations below the mean. One epoch (the old check) spread 96.6-98.8% over
    # the same seeds even on all 60,000 images: RMSprop's last steps decide it. docs/RELIABILITY.md.
    env = cli_env(tmp_path / "keras_home")
    result = cnnkit("train", "--preset", "chollet-cnn", "--epochs", 2, "--json",
                    "--data-dir", real_data_dir, "--runs-dir", tmp_path / "runs", env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    out = last_json_line(result.stdout)
    assert out["data_source_kind"] == "data_dir"
    assert "data directory" in out["data_source"] and "SAMPLE" not in out["data_source"]
    assert str(Path(real_data_dir).resolve()) in out["data_source"]
    assert out["test_accuracy"] >= 0.98, out
