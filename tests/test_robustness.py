"""The robustness lab. Oracles: numpy's own rot90/flip for the transformations, and for the
report an independent computation of the shift accuracy (its own shifting, no code shared with
cnnkit.data.transforms) that must agree exactly with what `cnnkit robustness` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.data import transforms
from cnnkit.runs.store import RunStore
from cnnkit.views import robustness

ROOT = Path(__file__).resolve().parent.parent
PAGE = "app_pages/robustness.py"


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).uniform(0, 255, (4, 28, 28, 1)).astype(np.float32)


def test_rotation_by_quarter_turns_is_numpys_rot90(images):
    np.testing.assert_allclose(transforms.rotate(images, 90), np.rot90(images, 1, axes=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(transforms.rotate(images, -90), np.rot90(images, -1, axes=(1, 2)), atol=1e-4)
    np.testing.assert_allclose(transforms.rotate(images, 180), images[:, ::-1, ::-1], atol=1e-4)


def test_scale_and_affine_identities(images):
    np.testing.assert_array_equal(transforms.scale(images, 1.0), images)
    np.testing.assert_allclose(transforms.affine(images, np.eye(2)), images, atol=1e-5)
    np.testing.assert_allclose(transforms.affine(images, [[-1, 0], [0, 1]]), images[:, ::-1], atol=1e-4)
    # zoomed out to half: the image's corners are outside what it reads, so they are black
    small = transforms.scale(images, 0.5)
    assert small[:, :6, :6].max() == 0 and small[:, 13, 13].max() > 0


def test_shift_moves_and_fills_black(images):
    moved = transforms.shift(images, 3, -2)
    np.testing.assert_array_equal(moved[:, 3:, :26], images[:, :25, 2:])
    assert moved[:, :3].max() == 0 and moved[:, :, 26:].max() == 0
    assert transforms.shift(images, 40, 0).max() == 0


def test_noise_is_seeded_clipped_and_has_its_sigma():
    flat = np.full((50, 28, 28, 1), 128.0, np.float32)
    a, b = transforms.noise(flat, 20, seed=1), transforms.noise(flat, 20, seed=1)
    np.testing.assert_array_equal(a, b)
    assert 19 < float((a - 128).std()) < 21 and a.min() >= 0 and a.max() <= 255


def _independent_shift_accuracy(probabilities, x, y, pixels: int) -> float:
    """The shift accuracy computed here from first principles: pad with zeros, crop the window."""
    if pixels == 0:
        return float(np.mean(probabilities(x).argmax(1) == y))
    padded = np.pad(x, ((0, 0), (pixels, pixels), (pixels, pixels), (0, 0)))
    h, w = x.shape[1:3]
    windows = {"right": padded[:, pixels:pixels + h, :w], "left": padded[:, pixels:pixels + h, 2 * pixels:],
               "down": padded[:, :h, pixels:pixels + w], "up": padded[:, 2 * pixels:, pixels:pixels + w]}
    return float(np.mean([np.mean(probabilities(v).argmax(1) == y) for v in windows.values()]))


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("robust")
    env = {k: v for k, v in os.environ.items() if k != "CNNKIT_DATA_DIR"}
    env.update(CNNKIT_OFFLINE="1", KERAS_HOME=str(root / "keras"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--preset", "kruse-conv", "--train-limit", "1500",
                           "--epochs", "1", "--baseline", "dense-128", "--runs-dir", str(root / "runs")],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "runs", env


@pytest.mark.slow
def test_the_cli_report_agrees_with_an_independent_shift_computation(trained_run):
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.inspection import Predictor

    runs, env = trained_run
    [record] = RunStore(runs).list()
    done = subprocess.run([sys.executable, "-m", "cnnkit", "robustness", "--run", record.run_id, "--runs-dir",
                           str(runs), "--limit", "200", "--json"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"run_id", "n_images", "shift", "rotation", "scale", "noise"} and report["n_images"] == 200
    assert "robustness: Shift 8 px" in done.stderr  # progress, one line per strength

    prepared = prepare_data(record.spec)
    x, y = prepared.x_test[:200].astype(np.float32), prepared.y_test[:200]
    for key in ("cnn", "baseline"):
        probabilities = Predictor.from_file(record.model_path(key)).probabilities
        expected = [_independent_shift_accuracy(probabilities, x, y, p) for p in range(9)]
        assert report["shift"][key] == pytest.approx(expected, abs=1e-9), key
    assert report["rotation"]["cnn"][3] == report["shift"]["cnn"][0]  # 0° is the untouched images
    stored = robustness.load_report(record.path)
    assert stored["shift"] == report["shift"] and stored["n_images"] == 200


def test_a_run_without_a_finished_model_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "cnnkit", "robustness", "--run", "no-such-run", "--runs-dir",
                           str(tmp_path)], capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CNNKIT_OFFLINE": "1"})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "does not exist" in done.stderr


def test_the_drawing_strip_reads_each_moved_drawing():
    digit = np.zeros((28, 28), np.uint8)
    digit[6:22, 13:15] = 255  # a "1"
    seen = []

    def probabilities(batch):
        seen.append(batch.copy())
        out = np.zeros((len(batch), 10))
        out[:, 1] = 1.0
        return out

    strip = robustness.drawing_strip(digit, "shift", {"cnn": probabilities})
    assert [item["value"] for item in strip] == list(range(9))
    assert strip[3]["image"][6:22, 16:18].min() == 255 and strip[3]["image"][:, 13:15].max() == 0  # 3 px right
    assert all(item["cnn"] == (1, 1.0) for item in strip) and len(seen) == 9


# ---------------------------------------------------------------- the page


def test_the_page_without_runs_says_what_to_do(runs_dir):
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=30).run()
    assert not at.exception and any("No finished runs yet" in i.value for i in at.info)


@pytest.mark.slow
def test_the_page_measures_then_charts_what_it_stored(trained_run, monkeypatch, tmp_path):
    import shutil

    runs, _ = trained_run
    copy = tmp_path / "runs"
    shutil.copytree(runs, copy)
    (copy / RunStore(copy).list()[0].run_id / robustness.REPORT_FILE).unlink(missing_ok=True)
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(copy))
    at = AppTest.from_file(str(ROOT / PAGE), default_timeout=240).run()
    assert any("Not measured yet" in i.value for i in at.info)
    at.number_input(key="robustness_limit").set_value(100)
    at.button(key="robustness_compute").click().run()
    assert not at.exception and not at.error
    report = robustness.load_report(RunStore(copy).list()[0].path)
    assert report["n_images"] == 100
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(specs) == 4
    shift = next(s for s in specs if s["layout"]["title"]["text"] == "Shift")
    cnn = next(t for t in shift["data"] if t.get("name") == "CNN")
    assert cnn["y"] == pytest.approx(report["shift"]["cnn"])
    assert any(f"the CNN keeps **{report['shift']['cnn'][4]:.0%}**" in m.value for m in at.markdown)


def test_the_draw_strip_shows_each_strength_with_both_readings():
    def page():
        import numpy as np

        import ui

        class Reads:  # a dense "model" that reads 1 until the stroke leaves columns 13-14
            def __init__(self, key):
                self.key = key

            def probabilities(self, batch):
                out = np.full((len(batch), 10), 0.01)
                still = batch[:, 6:22, 13:15].mean(axis=(1, 2, 3)) > 100 if self.key == "baseline" else [True] * len(batch)
                for row, ok in enumerate(still):
                    out[row, 1 if ok else 7] = 0.91
                return out

        digit = np.zeros((28, 28), np.uint8)
        digit[6:22, 13:15] = 255
        ui.transform_strip(digit, {"cnn": Reads("cnn"), "baseline": Reads("baseline")}, [str(d) for d in range(10)])

    at = AppTest.from_function(page).run()
    assert not at.exception
    assert [c for image in at.get("image") for c in image.captions] == [f"{v} px" for v in range(9)]
    readings = [m.value for m in at.markdown if m.value.startswith(("CNN", "dense"))]
    assert readings[0] == "CNN: :green[**1**] 91%" and readings[1] == "dense: :green[**1**] 91%"
    assert readings[5] == "dense: :red[**7**] 91%"  # moved 2 px: off the columns it learned
    at.radio(key="draw_strip_kind").set_value("rotation").run()
    assert [c for image in at.get("image") for c in image.captions][0] == "-45°"
