"""The page back ends moved out of app_pages/ and ui.py into cnnkit.views, without Streamlit.

Every expected value is worked out by hand (in the comment next to it), never by calling the
function under test another way.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cnnkit.errors import RunError, SpecError
from cnnkit.presets import PRESETS
from cnnkit.specs import Conv2D, Dense, ExperimentSpec, Flatten, MaxPool2D
from cnnkit.views import analysis, charts, demo, editing, monitor, text
from cnnkit.views.analysis import Predictions


def run(run_id: str, status: str = "finished", dataset: str = "mnist", name: str = "r", **more):
    """A stand-in for a RunRecord: only what the views read."""
    return SimpleNamespace(run_id=run_id, status=status, dataset=dataset, name=name,
                           is_active=status in ("queued", "running"), **more)


# ---------------------------------------------------------------- text: formatters


@pytest.mark.parametrize(("seconds", "shown"), [
    (None, "–"),
    (0.04, "0.0 s"),
    (4.2, "4.2 s"),          # under 10 s: one decimal
    (42.4, "42 s"),          # 10–60 s: whole seconds
    (125, "2 min 05 s"),     # 125 = 2 × 60 + 5
    (3599.4, "59 min 59 s"),  # rounds to 3599 = 59 × 60 + 59
    (3725, "1 h 02 min"),    # 3725 s = 62 min 5 s: hours and minutes only
    (7 * 3600, "7 h 00 min"),
])
def test_fmt_seconds(seconds, shown):
    assert text.fmt_seconds(seconds) == shown


def test_fmt_pct():
    assert text.fmt_pct(None) == "–"
    assert text.fmt_pct(0.5) == "50.00%"
    assert text.fmt_pct(0.1234) == "12.34%"
    assert text.fmt_pct(1) == "100.00%"
    assert text.fmt_pct(0.0) == "0.00%"  # zero is a value, not "not known"


def test_status_label_and_counts():
    assert text.status_label("finished") == "✅ finished"
    assert text.status_label("damaged") == "🧨 damaged"
    assert text.status_label("something new") == "• something new"
    # sorted by status name: damaged before finished before running
    assert text.status_counts(["finished", "running", "damaged", "finished"]) == \
        "🧨 damaged 1 · ✅ finished 2 · 🏃 running 1"
    assert text.status_counts([]) == ""


def test_run_label():
    assert text.run_label(run("a", name="my cnn", test_accuracy=0.9)) == "my cnn (mnist, finished · 90.00%)"
    assert text.run_label(run("b", "failed", None, "x", test_accuracy=None)) == "x (?, failed)"


def test_model_title_is_said_once():
    assert text.model_title("cnn") == "CNN" and text.model_title("cnn", capital=True) == "CNN"
    assert text.model_title("baseline") == "dense baseline"
    assert text.model_title("baseline", capital=True) == "Dense baseline"


def test_source_summary_and_error_text():
    assert text.source_summary("bundled SAMPLE of MNIST (…) — no data directory set") == "bundled SAMPLE of MNIST (…)"
    assert text.source_summary("real MNIST from the Keras cache") == "real MNIST from the Keras cache"
    # ours as they are, others with their type; markdown escaped, since messages quote people's values
    assert text.error_text(RunError("run.json is damaged")) == r"run\.json is damaged"
    assert text.error_text(SpecError("layers[0].filters", "must be ≥ 1"), "Not loaded") == \
        r"Not loaded\: layers\[0\]\.filters\: must be ≥ 1"
    assert text.error_text(ValueError("bad zip")) == r"ValueError\: bad zip"
    assert text.error_text(OSError("disk full"), "Could not start") == r"Could not start\: OSError\: disk full"


# ---------------------------------------------------------------- monitor: Train's numbers


def test_live_status_details():
    # 1234.4 images/s shown whole with a thousands comma; 125 s left = 2 min 05 s
    status = monitor.LiveStatus("Training", 0.5, 1234.4, 125, "cnn")
    assert status.details == "1,234 images/s · about 2 min 05 s left for the CNN"
    assert monitor.LiveStatus("t", 0.5, 300.0, 0.4, "baseline").details == "300 images/s"  # < 1 s left: not said
    assert monitor.LiveStatus("t", 0.5, None, 30, "baseline").details == "about 30 s left for the dense baseline"
    assert monitor.LiveStatus("Queued", 0.0).details == ""


def result_row(model="CNN", accuracy=0.9, loss=0.25, params=1234, epochs=2, per_epoch=4.2, seconds=8.4):
    return {"model": model, "test_accuracy": accuracy, "test_loss": loss, "params": params,
            "epochs": epochs, "seconds_per_epoch": per_epoch, "seconds": seconds}


def test_accuracy_delta_in_percentage_points():
    assert monitor.accuracy_delta([result_row(accuracy=0.9), result_row(accuracy=0.85)]) == "+5.0 pp vs dense"
    assert monitor.accuracy_delta([result_row(accuracy=0.8), result_row(accuracy=0.875)]) == "-7.5 pp vs dense"
    assert monitor.accuracy_delta([result_row()]) is None                           # no baseline
    assert monitor.accuracy_delta([result_row(), result_row(accuracy=None)]) is None


def test_result_table_and_metrics():
    rows = [result_row(), result_row("dense baseline", None, None, None, 0, None, None)]
    assert monitor.result_table(rows) == [
        {"model": "CNN", "test accuracy": "90.00%", "test loss": "0.2500", "parameters": "1,234", "epochs": 2,
         "time per epoch": "4.2 s", "total time": "8.4 s"},
        {"model": "dense baseline", "test accuracy": "–", "test loss": "–", "parameters": "0", "epochs": 0,
         "time per epoch": "–", "total time": "–"}]
    metrics = monitor.result_metrics([result_row(seconds=50), result_row(accuracy=0.85, seconds=25)])
    assert [(m["label"], m["value"]) for m in metrics] == [
        ("CNN test accuracy", "90.00%"), ("Baseline test accuracy", "85.00%"), ("CNN parameters", "1,234"),
        ("Training time", "1 min 15 s")]                                            # 50 + 25 s
    assert metrics[0]["delta"] == "+5.0 pp vs dense"


# ---------------------------------------------------------------- editing: Build's helpers


def three_layers():
    return (Conv2D(8, 3), MaxPool2D(2), Flatten())


def test_layer_actions_and_rearrange():
    layers = three_layers()
    assert list(editing.LAYER_ACTIONS) == ["up", "down", "remove"]
    assert not editing.action_allowed(layers, 0, "up") and editing.action_allowed(layers, 0, "down")
    assert not editing.action_allowed(layers, 2, "down") and editing.action_allowed(layers, 2, "up")
    assert editing.action_allowed(layers, 0, "remove") and editing.action_allowed(layers, 2, "remove")
    conv, pool, flat = layers
    assert editing.rearrange(layers, 1, "up") == (pool, conv, flat)
    assert editing.rearrange(layers, 1, "down") == (conv, flat, pool)
    assert editing.rearrange(layers, 0, "remove") == (pool, flat)


def test_with_layers_from_scratch_and_position_labels():
    spec = ExperimentSpec(three_layers(), name="mine", baseline="matched", output="logits")
    changed = editing.with_layers(spec, (Flatten(), Dense(16)))
    assert changed.layers == (Flatten(), Dense(16)) and changed.name == "mine" and changed.output == "logits"
    scratch = editing.from_scratch(spec)
    assert scratch.layers == (Conv2D(16, 3), MaxPool2D(2), Flatten(), Dense(64))
    assert (scratch.name, scratch.baseline, scratch.output) == ("my-cnn", "matched", "softmax")
    assert scratch.dataset == spec.dataset and scratch.training == spec.training
    assert editing.position_label(3, 3) == "at the end"
    assert editing.position_label(0, 3) == "before layer 1"
    assert editing.position_label(2, 3) == "before layer 3"


def test_preset_about():
    about = editing.preset_about(PRESETS["chollet-cnn"])
    lines = about.split("  \n")
    assert lines[0] == "**Chollet-style CNN** · 7 layers · mnist · rmsprop, batch 64, 5 epochs"
    assert lines[1] == "**Published:** test ≈ 99%, 20.6 s for 5 epochs (GTX 960)"
    assert lines[2].startswith("**Source:** ")


def test_summary_metrics_and_shape_table():
    from cnnkit.shapes import summarize

    # Start from scratch on MNIST: conv 3*3*16+16 = 160; 13*13*16 = 2704 → dense 64: 173,120; output 650
    summary = summarize(editing.starter_layers(), (28, 28, 1), 10)
    metrics = editing.summary_metrics(summary, 32)
    assert [m["label"] for m in metrics] == ["Parameters", "Multiply-adds / image", "Activations / batch of 32"]
    assert metrics[0]["value"] == "173,930" and metrics[0]["help"] == "173,930 trainable"
    assert metrics[2]["value"].endswith(" MB")
    table = editing.shape_table(summary.layers, summary)
    assert all("what" not in row for row in table)
    assert table[-1]["#"] == "Σ" and table[-1]["params"] == 173_930
    assert [row["params"] for row in table[:-1]] == [160, 0, 0, 173_120, 650]
    prefix = editing.shape_table(summary.layers[:2], None)                     # no totals for a prefix
    assert [row["#"] for row in prefix] == ["1", "2"]


# ---------------------------------------------------------------- analysis: Inspect's helpers


def predictions() -> Predictions:
    # four test images of classes a/b; rows 1 and 3 are wrong
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]], np.float32)
    return Predictions(probs, np.array([0, 0, 1, 1]), np.array([5, 2, 7, 0]))


def test_captions_of_test_images():
    preds, names = predictions(), ["a", "b"]
    assert analysis.row_caption(preds, names, 1) == "#1: a → b (70%)"
    assert analysis.row_caption(preds, names, 0, confidence=False) == "#0: a → a"
    assert analysis.image_caption(preds, names, 3) == "true b, predicted a (60%)"
    assert analysis.filters_caption((3, 3, 1, 16)) == ("16 filters of 3×3×1. Red: positive weights, blue: "
                                                       "negative; each filter is scaled to its own largest weight.")


def test_worst_cell_and_summary():
    counts = np.array([[5, 1, 0], [3, 4, 2], [0, 0, 6]])
    assert analysis.worst_cell(counts) == (1, 0)                     # 3: true 1 read as 0
    assert analysis.worst_cell(np.diag([4, 4])) == (0, 0)            # no mistakes at all
    # 21 images, 15 on the diagonal: 6 mistakes, 15/21 = 71.43%
    assert analysis.results_summary(counts, 15 / 21) == "**21 test images**, accuracy **71.43%**, 6 mistakes."


def test_same_test_set():
    preds = predictions()  # test_indices 5, 2, 7, 0 with labels 0, 0, 1, 1
    y_test = np.array([1, 9, 0, 9, 9, 0, 9, 1])
    assert analysis.same_test_set(preds, y_test)
    assert not analysis.same_test_set(preds, y_test[:7])              # index 7 is past its end
    other = y_test.copy()
    other[2] = 1
    assert not analysis.same_test_set(preds, other)                   # another label at index 2
    empty = Predictions(np.zeros((0, 2), np.float32), np.zeros(0, int), np.zeros(0, int))
    assert analysis.same_test_set(empty, y_test)


def test_clicked_cell():
    names = ("zero", "one", "two")
    assert analysis.clicked_cell({"points": [{"x": "two", "y": "one"}]}, names) == (1, 2)  # y true, x predicted
    assert analysis.clicked_cell({"points": [{"x": 0, "y": 2}]}, ["0", "1", "2"]) == (2, 0)  # digits as numbers
    assert analysis.clicked_cell({"points": []}, names) is None
    assert analysis.clicked_cell({}, names) is None


def test_inspectable_runs_models_and_conv_layers(tmp_path):
    records = [run("a", has_model=lambda: True), run("b", "stopped", has_model=lambda: True),
               run("c", "stopped", has_model=lambda: False), run("d", "failed", has_model=lambda: True),
               run("e", "running", has_model=lambda: True)]
    assert [r.run_id for r in records if analysis.is_inspectable(r)] == ["a", "b"]
    assert [r.run_id for r in records if analysis.is_robustness_ready(r)] == ["a"]
    record = run("a", path=tmp_path, has_model=lambda: True)
    assert analysis.inspectable_models(record) == ["cnn"]             # a model, no predictions yet
    (tmp_path / "predictions_baseline.npz").write_bytes(b"")
    assert analysis.inspectable_models(record) == ["cnn", "baseline"]
    record = run("a", path=tmp_path, has_model=lambda: False)
    assert analysis.inspectable_models(record) == ["baseline"]
    spec = ExperimentSpec((Conv2D(8, 3), MaxPool2D(2), Conv2D(8, 3), Flatten()))
    assert analysis.conv_layer_names(SimpleNamespace(kind="trained", spec=spec)) == ["conv2d_1", "conv2d_3"]
    dense = SimpleNamespace(kind="trained", spec=ExperimentSpec((Flatten(), Dense(8))))
    assert analysis.conv_layer_names(dense) == []
    imported = SimpleNamespace(kind="imported", spec=ExperimentSpec(()), imported={"layers": [
        {"name": "c1", "keras": "Conv2D"}, {"name": "add", "keras": "Add"}, {"name": "c2", "keras": "Conv2D"}]})
    assert analysis.conv_layer_names(imported) == ["c1", "c2"]  # from the model file, not the spec


def test_filters_figure():
    kernel = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4) - 30
    fig = charts.filters_figure("conv2d_1", kernel, 1)
    # 4 filters of 3×3 in one row of 4, a NaN line between: 3 × (4 * 4 - 1)
    assert np.asarray(fig.data[0].z).shape == (3, 15)
    assert fig.layout.title.text == "conv2d_1"
    assert (fig.data[0].zmin, fig.data[0].zmid, fig.data[0].zmax) == (-1, 0, 1)  # weights: red-blue around 0
    mean = np.asarray(charts.filters_figure("c", kernel).data[0].z)
    assert mean.shape == (3, 15) and np.nanmax(np.abs(mean)) == 1.0  # each tile scaled to its largest weight


# ---------------------------------------------------------------- demo: Draw's helpers


def test_drawable_runs_and_mnist():
    records = [run("f", dataset="fashion_mnist"), run("c", dataset="cifar10"), run("r", "running"),
               run("m2"), run("m1")]  # newest first, as RunStore.list()
    runs = [r for r in records if demo.is_drawable(r)]
    assert [r.run_id for r in runs] == ["f", "m2", "m1"]              # 28×28 grey, finished
    assert [r.run_id for r in runs if demo.is_mnist(r)] == ["m2", "m1"]


def test_quick_train_id():
    quick = run("q", "running", name=demo.QUICK_TRAIN_NAME)
    other = run("o", "running", name="something else")
    assert demo.quick_train_id([other, quick], "mine") == "mine"      # this session's, whatever runs
    assert demo.quick_train_id([other, quick], None) == "q"
    assert demo.quick_train_id([other, run("old", name=demo.QUICK_TRAIN_NAME)], None) is None


def test_plain_escapes_every_markdown_meaning_and_joins_lines():
    from cnnkit.views.text import plain

    assert plain("![p](http://attacker/p.png)") == r"\!\[p\]\(http\://attacker/p\.png\)"
    assert plain("[Log in](https://evil.example/login)") == r"\[Log in\]\(https\://evil\.example/login\)"
    assert plain("**bold** _it_ `code` # head :red[x] $x$ <b>") == (
        r"\*\*bold\*\* \_it\_ \`code\` \# head \:red\[x\] \$x\$ \<b\>")
    assert plain("two\nlines\t here") == "two lines here"
    assert plain("Réseau 卷积 🧠 42") == "Réseau 卷积 🧠 42"  # nothing to escape


def test_plain_html_escapes_plotly_markup():
    from cnnkit.views.text import plain_html

    assert plain_html('<a href="https://evil.example">x</a> & y') == '&lt;a href="https://evil.example"&gt;x&lt;/a&gt; &amp; y'


def test_run_names_in_charts_are_escaped():
    from cnnkit.views import charts

    fig = charts.accuracy_scatter([{"label": "<a href='x'>r</a>", "kind": "cnn", "accuracy": 0.9, "params": 10}],
                                  "params", "parameters")
    assert fig.data[0].text == ("&lt;a href='x'&gt;r&lt;/a&gt;",)
