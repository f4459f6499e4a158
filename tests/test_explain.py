"""Explanations. Oracles: a linear model's gradient × input by hand, and the deletion test — the
default method must remove the class's probability at least 1.8× faster than random ink
removal, on a small CNN the suite trains itself and 30 digits of the bundled sample."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.model.lite import LiteModel, LitePredictor
from cnnkit.views import explain
from tests.oracles import trained_run

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CNN + dense baseline, 2 epochs on the bundled sample (about 10 s here)."""
    return trained_run(tmp_path_factory.mktemp("runs"), {
        "layers": [{"type": "conv2d", "filters": 16, "kernel_size": 3}, {"type": "maxpool2d"},
                   {"type": "conv2d", "filters": 32, "kernel_size": 3}, {"type": "maxpool2d"},
                   {"type": "flatten"}, {"type": "dense", "units": 64}],
        "training": {"epochs": 2, "batch_size": 64}, "baseline": "dense-128"})


@pytest.fixture(scope="module")
def digits():
    from cnnkit.data.sources import load_raw

    with pytest.MonkeyPatch.context() as env:
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        raw = load_raw("mnist")
    return raw.x_test[:30].reshape(-1, 28, 28, 1).astype(np.float32)


def test_the_default_passes_the_deletion_test(trained, digits):
    model = LiteModel.from_file(trained.model_path("cnn"))
    result = explain.deletion_ratio(model, digits, explain.DEFAULT_METHOD)
    assert result.images == 30
    assert result.ratio >= 1.8, result
    print(f"\ndeletion ratios on 30 sample digits: {result!r}")


def test_gradient_times_input_of_a_linear_model_is_its_weights_times_the_ink(tmp_path):
    from cnnkit.model.models import build_model
    from cnnkit.specs import Flatten

    model = build_model((Flatten(),), (28, 28, 1), 10, output="logits")  # logit = (x / 255) · W + b
    model.save(tmp_path / "linear.keras")
    kernel = model.get_layer("output").get_weights()[0]  # (784, 10)
    lite = LiteModel.from_file(tmp_path / "linear.keras")
    image = np.zeros((1, 28, 28, 1), np.float32)
    image[0, 5:20, 10:14] = 200.0
    heat = explain.heatmaps(lite, image, "gradxinput", 3)[0]
    by_hand = np.maximum(kernel[:, 3].reshape(28, 28) / 255.0 * image[0, ..., 0], 0.0)
    np.testing.assert_allclose(heat, by_hand / by_hand.max(), atol=1e-5)
    saliency = explain.heatmaps(lite, image, "saliency", 3)[0]
    np.testing.assert_allclose(saliency, np.abs(kernel[:, 3]).reshape(28, 28) / np.abs(kernel[:, 3]).max(), atol=1e-5)


def test_every_method_gives_a_heat_map_in_range_and_grad_cam_needs_maps(trained, digits):
    cnn = LiteModel.from_file(trained.model_path("cnn"))
    dense = LiteModel.from_file(trained.model_path("baseline"))
    assert explain.methods_for(cnn) == ["gradxinput", "saliency", "smoothgrad", "gradcam"]
    assert explain.methods_for(dense) == ["gradxinput", "saliency", "smoothgrad"]
    for method in explain.methods_for(cnn):
        heat = explain.heatmaps(cnn, digits[:3], method, [1, 2, 3])
        assert heat.shape == (3, 28, 28) and heat.min() >= 0 and np.isclose(heat.max(), 1.0)
    with pytest.raises(ValueError, match="Grad-CAM needs a conv or pooling layer"):
        explain.heatmaps(dense, digits[:1], "gradcam", 0)
    with pytest.raises(ValueError, match="unknown method"):
        explain.heatmaps(cnn, digits[:1], "lime", 0)
    # the last 5×5 map is coarse: the default Grad-CAM layer is the middle one
    assert explain.default_cam_layer(cnn) == explain.map_layers(cnn)[1]


def _png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image).save(path)


@pytest.mark.slow
def test_cnnkit_explain_prints_what_the_model_saw_and_its_heat(trained, digits, tmp_path):
    _png(tmp_path / "seven.png", digits[0, ..., 0].astype(np.uint8))
    _png(tmp_path / "blank.png", np.zeros((28, 28), np.uint8))
    command = [sys.executable, "-m", "cnnkit", "explain", "--run", trained.run_id, "--runs-dir",
               str(trained.path.parent), "--json"]
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "CNNKIT_OFFLINE": "1"}
    one = subprocess.run([*command, str(tmp_path / "seven.png")], capture_output=True, text=True, env=env,
                         timeout=120)
    assert one.returncode == 0, one.stderr
    result = json.loads(one.stdout.strip().splitlines()[-1])
    assert result["method"] == explain.DEFAULT_METHOD
    seen, heat = np.array(result["input"]), np.array(result["heatmap"])
    assert seen.shape == heat.shape == (28, 28) and 0 <= heat.min() and heat.max() <= 1
    expected = LitePredictor.from_file(trained.model_path("cnn")).probabilities(seen * 255.0)[0].argmax()
    assert result["predicted_index"] == int(expected)
    both = subprocess.run([*command, "--model", "baseline", "--method", "saliency", "--target", "1",
                           str(tmp_path / "seven.png"), str(tmp_path / "blank.png")], capture_output=True,
                          text=True, env=env, timeout=120)
    explanations = json.loads(both.stdout.strip().splitlines()[-1])["explanations"]
    assert explanations[0]["target"] == "1" and explanations[0]["method"] == "saliency"
    assert explanations[1]["status"] == "empty" and explanations[1]["message"].startswith("Nothing drawn yet")
    cam = subprocess.run([*command, "--model", "baseline", "--method", "gradcam", str(tmp_path / "seven.png")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert cam.returncode == 2 and "needs conv maps" in cam.stderr


def test_the_draw_panel_shows_both_models_heat_for_a_chosen_class(trained, digits):
    def page(cnn_path, baseline_path, image):
        import ui
        from cnnkit.model.lite import LitePredictor

        predictors = {"cnn": LitePredictor.from_file(cnn_path), "baseline": LitePredictor.from_file(baseline_path)}
        ui.explain_panel(image, predictors, [str(d) for d in range(10)], "draw")

    image = digits[0, ..., 0].astype(np.uint8)
    at = AppTest.from_function(page, args=(str(trained.model_path("cnn")), str(trained.model_path("baseline")),
                                           image), default_timeout=30).run()
    assert not at.exception
    captions = [c for element in at.get("image") for c in element.captions]
    assert len(captions) == 2 and captions[0].startswith("CNN: heat for") and captions[1].startswith("Dense baseline")
    at.selectbox(key="draw_why_class").set_value(1).run()
    assert all(" 1 (" in c for element in at.get("image") for c in element.captions)
    at.radio(key="draw_why_method").set_value("gradcam").run()
    assert any("needs conv maps" in c.value for c in at.caption)  # the dense net has no maps
    assert len([c for element in at.get("image") for c in element.captions]) == 1


def test_a_model_only_keras_can_run_gets_a_message_not_a_crash(trained, digits):
    def page(cnn_path, image):
        import ui
        from cnnkit.model.inspection import Predictor

        ui.explain_panel(image, {"cnn": Predictor.from_file(cnn_path)}, [str(d) for d in range(10)], "draw")

    at = AppTest.from_function(page, args=(str(trained.model_path("cnn")), digits[0, ..., 0].astype(np.uint8)),
                               default_timeout=60).run()
    assert not at.exception
    assert any("cannot run this model's layers" in i.value for i in at.info)
