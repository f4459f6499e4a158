"""AppTests of the Train, Inspect and Draw pages, on an empty runs folder and on a real finished run.

The prepared run is the Draw page's quick-train CNN (+ dense baseline) trained once per module on
the bundled sample by the CLI in a subprocess, so the pages see exactly what a user's run leaves.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.data.sources import load_raw
from cnnkit.runs.store import RunStore
from cnnkit.shapes import summarize_spec
from cnnkit.specs import ExperimentSpec
from cnnkit.views import demo
from cnnkit.views.analysis import load_predictions
from tests.oracles import live_texts

ROOT = Path(__file__).resolve().parent.parent
TRAIN, INSPECT, DRAW = "app_pages/train.py", "app_pages/inspect_run.py", "app_pages/draw.py"


def unmark(text: str) -> str:
    """A message as a person reads it: the page escapes markdown in text it did not write."""
    return re.sub(r"\\(.)", r"\1", text)



def run_picker(at, key: str):
    """A page's run selectbox: its key is `key` plus a hash of the run labels (ui.select_run)."""
    return next(box for box in at.selectbox if box.key.startswith(f"{key}_"))

def app(page: str, timeout: float = 30) -> AppTest:
    return AppTest.from_file(str(ROOT / page), default_timeout=timeout)


def texts(at: AppTest) -> list[str]:
    return [unmark(e.value) for kind in ("markdown", "caption", "info", "warning", "error", "subheader")
            for e in getattr(at, kind)] + live_texts(at)


def array(value) -> np.ndarray:
    """A plotly JSON array: a plain list, or {"bdata": base64, "dtype", "shape"} for numpy data."""
    if isinstance(value, dict) and "bdata" in value:
        shape = [int(n) for n in str(value.get("shape", "-1")).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).reshape(shape)
    return np.asarray(value)


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A runs folder with one finished quick-train run (CNN + dense baseline, bundled sample)."""
    root = tmp_path_factory.mktemp("prepared")
    spec = demo.quick_train_spec(available=4000).updated({"training.epochs": 2})
    (root / "spec.json").write_text(spec.to_json())
    env = {k: v for k, v in os.environ.items() if k != "CNNKIT_DATA_DIR"}
    env.update(CNNKIT_OFFLINE="1", KERAS_HOME=str(root / "keras"), PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "cnnkit", "train", "--spec", str(root / "spec.json"),
                           "--runs-dir", str(root / "runs")], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    return root / "runs"


@pytest.fixture
def prepared_env(prepared, monkeypatch, tmp_path):
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(prepared))
    monkeypatch.setenv("CNNKIT_SLOTS_DIR", str(tmp_path / "slots"))
    return RunStore(prepared).list()[0]


# ---------------------------------------------------------------- Train


def test_train_empty_runs_dir_shows_the_form_prefilled_from_the_draft(runs_dir):
    at = app(TRAIN).run()
    assert not at.exception
    draft = ExperimentSpec.from_dict(json.loads((runs_dir / "draft.json").read_text())) \
        if (runs_dir / "draft.json").exists() else None
    assert at.number_input(key="train_epochs").value == 5            # the default draft: chollet-cnn
    assert at.selectbox(key="train_optimizer").value == "rmsprop"
    assert at.toggle(key="train_baseline").value is True
    assert not at.button(key="train_start").disabled
    params = summarize_spec(draft or ExperimentSpec.from_dict(
        __import__("ui").default_experiment().to_dict())).total_params
    assert any(f"{params:,} parameters" in t for t in texts(at))
    assert any("No training runs yet" in t for t in texts(at))
    assert any("SAMPLE" in t for t in texts(at))                     # offline: the sample, labelled


def test_train_starts_a_tiny_job_that_finishes_and_is_listed(runs_dir):
    at = app(TRAIN).run()
    at.number_input(key="train_limit").set_value(300)
    at.number_input(key="train_epochs").set_value(1)
    at.run()
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    run_id = at.query_params["run"]
    run_id = run_id[0] if isinstance(run_id, list) else run_id
    deadline = time.monotonic() + 120
    while not at.metric and time.monotonic() < deadline:
        time.sleep(1.0)
        at.run()
    record = RunStore(runs_dir).get(run_id)
    assert record.status == "finished", record.meta.get("reason")
    assert [r.run_id for r in RunStore(runs_dir).list()] == [run_id]
    assert (record.spec.dataset.train_limit, record.spec.training.epochs, record.spec.baseline) == \
        (300, 1, "dense-128")
    shown = {m.label: m.value for m in at.metric}
    assert shown["CNN test accuracy"] == f"{record.test_accuracy:.2%}"
    assert shown["Baseline test accuracy"] == f"{record.model_result('baseline')['test_accuracy']:.2%}"
    assert shown["CNN parameters"] == f"{record.model_result('cnn')['params']:,}"
    table = at.dataframe[0].value                                       # CNN and baseline side by side
    assert list(table["model"]) == ["CNN", "dense baseline"]
    assert list(table["epochs"]) == [1, 1]
    assert table["test loss"][0] == f"{record.model_result('cnn')['test_loss']:.4f}"


def test_train_refuses_over_cap_and_impossible_specs_inline(runs_dir, monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_EPOCHS", "3")
    at = app(TRAIN).run()
    assert any("CNNKIT_MAX_EPOCHS" in unmark(e.value) for e in at.error)
    assert at.button(key="train_start").disabled
    # an impossible network: fifteen 3×3 valid convolutions shrink 28×28 below nothing
    runs_dir.mkdir(parents=True, exist_ok=True)
    layers = [{"type": "conv2d", "filters": 4, "kernel_size": 3}] * 15 + [{"type": "flatten"}]
    (runs_dir / "draft.json").write_text(json.dumps({"layers": layers, "training": {"epochs": 1}}))
    at = app(TRAIN).run()
    assert not at.exception
    # 28 - 2 * 13 = 2: the 14th convolution (layers[13]) is the first that cannot fit
    assert any("cannot train" in unmark(e.value) and "layers[13]" in unmark(e.value) for e in at.error)
    assert at.button(key="train_start").disabled
    at.number_input(key="train_limit")  # the form is still there to fix things
    # more training images than this machine has (the sample: 4,000)
    (runs_dir / "draft.json").write_text(json.dumps({"layers": [{"type": "flatten"}], "training": {"epochs": 1},
                                                     "dataset": {"train_limit": 5000}}))
    at = app(TRAIN).run()
    assert any("more than the 4,000 training images" in unmark(e.value) for e in at.error)
    assert RunStore(runs_dir).list() == []


def test_train_reattaches_to_a_run_from_the_url(prepared_env):
    record = prepared_env
    at = app(TRAIN)
    at.query_params["run"] = record.run_id
    at.run()
    assert not at.exception
    assert record.run_id in " ".join(texts(at))
    values = {m.label: m for m in at.metric}
    cnn, base = record.test_accuracy, record.model_result("baseline")["test_accuracy"]
    assert values["CNN test accuracy"].value == f"{cnn:.2%}"
    assert values["Baseline test accuracy"].value == f"{base:.2%}"
    assert values["CNN test accuracy"].delta == f"{(cnn - base) * 100:+.1f} pp vs dense"
    charts = chart_specs(at)
    assert charts[0]["layout"]["title"]["text"] == "Learning rate by epoch (constant)"  # the draft's schedule
    curves = charts[1:]
    assert len(curves) == 2                                            # loss and accuracy
    names = {t["name"] for t in curves[0]["data"]}
    assert {"CNN train", "CNN validation", "Dense baseline train"} <= names


# ---------------------------------------------------------------- Inspect


def test_inspect_empty_runs_dir_says_what_to_do(runs_dir):
    at = app(INSPECT).run()
    assert not at.exception
    assert any("No trained runs yet" in i.value for i in at.info)


def test_inspect_confusion_matrix_and_cell_images(prepared_env):
    record = prepared_env
    preds = load_predictions(record.path, "cnn")
    at = app(INSPECT).run()
    assert not at.exception and not at.error
    heat = next(s for s in chart_specs(at) if s["data"][0]["type"] == "heatmap")["data"][0]
    counts = array(heat["customdata"]).astype(int)
    assert counts.sum() == len(load_raw("mnist").y_test) == 1000           # every test image, once
    assert np.trace(counts) == int(round(record.test_accuracy * 1000))
    # pick an off-diagonal cell that has images, then compare the listed ones with a hand filter
    true_class, pred_class = next((i, j) for i in range(10) for j in range(10)
                                  if i != j and 0 < counts[i, j] <= 24)
    at.selectbox(key="inspect_true").set_value(true_class)
    at.selectbox(key="inspect_pred").set_value(pred_class).run()
    expected = set(np.flatnonzero((preds.y_true == true_class) & (preds.y_pred == pred_class)).tolist())
    captions = [c for image in at.get("image") for c in image.captions][:len(expected)]  # the cell's grid first
    assert {int(c.split(":")[0][1:]) for c in captions} == expected          # "#row: true → pred (p%)"
    assert all(f": {true_class} → {pred_class} " in c for c in captions)
    # the 🔍 under an image picks it for the explanation below
    row = sorted(expected)[-1]
    at.button(key=f"inspect_cell_why_{row}").click().run()
    assert at.selectbox(key="inspect_why_row").value == row


def test_inspect_explains_an_image_of_the_cell_for_its_true_and_predicted_class(prepared_env):
    from cnnkit.model.lite import LiteModel
    from cnnkit.views import explain

    record = prepared_env
    preds = load_predictions(record.path, "cnn")
    at = app(INSPECT, timeout=60).run()
    assert not at.exception and not at.error
    row = at.selectbox(key="inspect_why_row").value
    assert row == int(_worst_cell_rows(preds)[0])  # the first image of the worst cell
    captions = [c for image in at.get("image") for c in image.captions if c.startswith("heat for")]
    t, p = int(preds.y_true[row]), int(preds.y_pred[row])
    assert captions == [f"heat for {t} (its true class, {preds.probs[row, t]:.0%})",
                        f"heat for {p} (what it predicted, {preds.probs[row, p]:.0%})"]
    at.selectbox(key="inspect_why_method").set_value("gradcam").run()
    assert not at.exception
    model = LiteModel.from_file(record.model_path("cnn"))
    assert explain.default_cam_layer(model) in explain.map_layers(model)


def _worst_cell_rows(preds):
    from cnnkit.views import analysis

    counts = analysis.confusion_matrix(preds.y_true, preds.y_pred, preds.num_classes)
    true_class, pred_class = analysis.worst_cell(counts)
    return analysis.cell_examples(preds, true_class, pred_class, 24)


def test_inspect_baseline_and_feature_maps(prepared_env):
    at = app(INSPECT, timeout=60).run()
    at.radio(key="inspect_model").set_value("baseline").run()
    assert not at.exception and not at.error
    at.radio(key="inspect_model").set_value("cnn")
    at.session_state["inspect_tab"] = "🧠 Feature maps"
    at.run()
    assert not at.exception and not at.error
    titles = [s["layout"]["title"]["text"] for s in chart_specs(at)]
    # quick CNN: 28 → conv 3×3 → 26 → pool → 13 → conv 3×3 → 11 → pool → 5
    assert [t.split(": ")[1] for t in titles] == ["26×26×16", "13×13×16", "11×11×32", "5×5×32"]
    at.session_state["inspect_tab"] = "🔍 Filters"
    at.run()
    assert any("16 filters of 3×3×1" in c.value for c in at.caption)


def test_inspect_filters_of_a_deeper_layer_by_input_channel(prepared_env):
    at = app(INSPECT, timeout=60)
    at.session_state["inspect_tab"] = "🔍 Filters"
    at.run()
    assert "inspect_filter_in" not in [s.key for s in at.selectbox]  # conv2d_1 sees one input channel
    at.selectbox(key="inspect_filter_layer").set_value("conv2d_3").run()
    channel = at.selectbox(key="inspect_filter_in")
    assert channel.value is None and channel.options[:3] == ["mean over all", "0", "1"]
    assert len(channel.options) == 17                     # the mean, then the 16 maps of conv2d_1
    assert any("32 filters of 3×3×16" in c.value for c in at.caption)
    channel.set_value(15).run()
    assert not at.exception and at.selectbox(key="inspect_filter_in").value == 15
    mosaic = next(s for s in chart_specs(at) if s["layout"]["title"]["text"] == "conv2d_3")
    # 32 filters of 3×3, 8 to a row: 4 rows → 4 * 4 - 1 = 15 pixels tall, 8 * 4 - 1 = 31 wide
    assert array(mosaic["data"][0]["z"]).shape == (15, 31)


def test_inspect_run_picker_follows_a_rename(prepared_env):
    at = app(INSPECT, timeout=60).run()
    store = RunStore(prepared_env.path.parent)
    old = run_picker(at, "inspect_run")
    store.rename(prepared_env.run_id, "renamed while open")
    at.run()
    picker = run_picker(at, "inspect_run")
    assert picker.key != old.key and picker.value == prepared_env.run_id  # a new box, the same run
    assert "renamed while open" in picker.format_func(prepared_env.run_id)
    store.rename(prepared_env.run_id, prepared_env.name)  # the module's run is shared


def test_inspect_model_choice_says_cnn_and_dense_baseline(prepared_env):
    at = app(INSPECT, timeout=60).run()
    assert at.radio(key="inspect_model").options == ["CNN", "Dense baseline"]
    assert run_picker(at, "inspect_run").value == prepared_env.run_id


# ---------------------------------------------------------------- Draw


def test_draw_without_a_run_offers_quick_train(runs_dir):
    at = app(DRAW).run()
    assert not at.exception
    assert at.button(key="draw_quick_train").label.startswith("⚡ Quick train")
    assert not any("Prediction:" in t for t in texts(at))


def test_draw_with_a_run_shows_the_hint_on_an_empty_canvas(prepared_env):
    at = app(DRAW, timeout=60).run()
    assert not at.exception and not at.error
    assert any(i.value.startswith("Nothing drawn yet") for i in at.info)
    assert not any("Prediction:" in t for t in texts(at))
    assert run_picker(at, "draw_run").value == prepared_env.run_id


def test_a_drawn_one_is_read_as_one_by_the_trained_cnn(prepared_env):
    from cnnkit.model.inspection import Predictor

    record = prepared_env
    predictors = {key: Predictor.from_file(record.model_path(key)) for key in ("cnn", "baseline")}
    canvas = np.zeros((280, 280, 4), np.uint8)
    canvas[..., 3] = 255
    canvas[50:230, 128:152, :3] = 255                          # one thick vertical stroke
    result = demo.read_drawing(canvas, predictors)
    assert result.ok
    assert result.top("cnn")[0] == 1
    for p in result.probs.values():
        assert p.shape == (10,) and abs(float(p.sum()) - 1.0) < 1e-4
    # the same numbers as asking the model directly with the preprocessed image
    direct = predictors["cnn"].probabilities(result.drawing.as_uint8().astype(np.float32))[0]
    assert np.allclose(direct, result.probs["cnn"])


# ---------------------------------------------------------------- trouble shows as a message


def _png_bytes(array: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_photo_of_a_test_digit_is_read_step_by_step_as_the_model_reads_it(prepared_env):
    from cnnkit.data.drawing import preprocess_drawing, shrink_picture
    from cnnkit.model.predictor import load_predictor

    digit = load_raw("mnist").x_test[0].reshape(28, 28)
    photo = 220 - np.kron(digit, np.ones((16, 16), np.uint8)) * 0.8  # dark ink on light paper, 448 px
    photo = np.pad(photo, 60, constant_values=220).astype(np.uint8)
    at = app(DRAW, timeout=60).run()
    at.file_uploader(key="draw_upload").set_value(("digit.png", _png_bytes(photo), "image/png")).run()
    assert not at.exception and not at.error
    captions = [caption for image in at.get("image") for caption in image.captions]
    assert [c[:2] for c in captions if c[:1].isdigit()] == ["1.", "2.", "3.", "4.", "5."], captions
    # The oracle: the run's own predictor on the same preprocessing, computed here.
    expected = preprocess_drawing(shrink_picture(photo)).as_uint8().astype(np.float32)
    best = int(load_predictor(prepared_env.model_path("cnn")).probabilities(expected)[0].argmax())
    readings = [t for t in texts(at) if t.startswith("The picture reads as")]
    assert readings and f"CNN: **{best}**" in readings[0], readings


def test_a_picture_that_is_not_an_image_or_too_large_is_one_message(prepared_env):
    at = app(DRAW, timeout=60).run()
    at.file_uploader(key="draw_upload").set_value(("notes.png", b"not an image at all", "image/png")).run()
    assert not at.exception
    assert any(unmark(e.value).startswith("notes.png could not be read: ") for e in at.error)
    import struct
    import zlib

    ihdr = b"IHDR" + struct.pack(">IIBBBBB", 60_000, 60_000, 8, 6, 0, 0, 0)  # 60,000² RGBA declared
    def chunk(body: bytes) -> bytes:
        return struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))

    bomb = b"\x89PNG\r\n\x1a\n" + chunk(ihdr) + chunk(b"IDAT" + zlib.compress(b"\x00" * 64)) + chunk(b"IEND")
    at.file_uploader(key="draw_upload").set_value(("bomb.png", bomb, "image/png")).run()
    assert any("too many pixels" in unmark(e.value) for e in at.error), [e.value for e in at.error]


def test_damaged_model_file_is_a_message_not_a_traceback(prepared, tmp_path, monkeypatch):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(prepared, runs)
    record = RunStore(runs).list()[0]
    record.model_path("cnn").write_bytes(record.model_path("cnn").read_bytes()[:500])   # cut short
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(runs))
    at = app(DRAW).run()
    assert not at.exception
    assert [unmark(e.value) for e in at.error] == [
        "Could not load the model: model.keras cannot be used: the .keras file is truncated or damaged: its "
        "zip directory cannot be read (was the upload or download interrupted?)"]


def test_train_with_unavailable_data_explains_and_keeps_the_page(runs_dir):
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / "draft.json").write_text(json.dumps({"layers": [{"type": "flatten"}],
                                                     "dataset": {"name": "cifar10"}, "training": {"epochs": 1}}))
    at = app(TRAIN).run()   # offline: no CIFAR-10 (no sample of it is bundled)
    assert not at.exception
    assert any("No CIFAR-10 data found" in unmark(e.value) for e in at.error)
    assert at.button(key="train_start").disabled
    assert any("No training runs yet" in i.value for i in at.info)      # the rest of the page is there


# ---------------------------------------------------------------- hostile names (issue 12, item 4)


def test_a_hostile_run_name_is_drawn_as_text_on_every_page(prepared, monkeypatch, tmp_path):
    import shutil

    runs = tmp_path / "runs"
    shutil.copytree(prepared, runs)
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(runs))
    record = RunStore(runs).list()[0]
    beacon = "![p](http://attacker/p.png) [Log in](https://evil.example/login)"
    RunStore(runs).rename(record.run_id, beacon)
    at = app(TRAIN)
    at.query_params["run"] = record.run_id
    at.run()
    assert not at.exception
    (heading,) = [s.value for s in at.subheader]
    assert heading == r"\!\[p\]\(http\://attacker/p\.png\) \[Log in\]\(https\://evil\.example/login\)"
    for page in (INSPECT, DRAW, "app_pages/compare.py"):
        at = app(page).run()
        assert not at.exception, page
        drawn = [m.value for kind in ("markdown", "subheader", "caption", "success", "warning", "error")
                 for m in at.get(kind)]
        assert not any("](http" in text for text in drawn), page  # never as a link or an image


def test_inspect_offers_to_evaluate_a_damaged_predictions_file_again(prepared, monkeypatch, tmp_path):
    # A kill once left predictions_cnn.npz empty, and Inspect crashed on EOFError (issue 12, item 5).
    import shutil

    from cnnkit.views.analysis import load_predictions

    runs = tmp_path / "runs"
    shutil.copytree(prepared, runs)
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(runs))
    record = RunStore(runs).list()[0]
    before = load_predictions(record.path)
    (record.path / "predictions_cnn.npz").write_bytes(b"")
    at = app(INSPECT).run()
    assert not at.exception
    assert any("predictions_cnn.npz is damaged" in unmark(e.value) for e in at.error)
    at.button(key="inspect_reevaluate").click().run(timeout=120)
    assert not at.exception and not at.error
    assert any(unmark(s.value).startswith("Evaluated again:") and "1,000 test images" in unmark(s.value)
               for s in at.success)
    after = load_predictions(record.path)
    assert np.array_equal(after.y_true, before.y_true) and np.allclose(after.probs, before.probs, atol=2e-6)


def test_the_canvas_message_is_read_by_the_page_and_a_forged_one_refused(prepared_env):
    # What components/draw_canvas.js sends after a stroke, put where the component keeps it.
    ink = np.zeros((280, 280), np.uint8)
    ink[50:230, 128:152] = 255                                   # one thick vertical stroke
    stroke = {"side": 280, "pixels": base64.b64encode(ink.tobytes()).decode(), "strokes": 1}
    at = app(DRAW, timeout=60)
    at.session_state["draw_canvas"] = {"drawing": stroke}
    at.run()
    assert not at.exception and not at.error
    assert "## Prediction: 1" in texts(at)
    at.session_state["draw_canvas"] = {"drawing": {**stroke, "pixels": "A" * 50_000_000}}   # a forged message
    at.run()
    assert not at.exception
    assert [unmark(e.value) for e in at.error] == ["Could not read the drawing: The drawing arrived as an oversized "
                                           "message; this 280×280 canvas sends 104,536 characters. Clear it and "
                                           "draw again."]
    assert not any("Prediction:" in t for t in texts(at))
