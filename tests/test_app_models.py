"""AppTests of the Models page: an empty runs folder, a good upload, a hostile one, and the export
buttons of a run that cannot be rebuilt. Expected numbers come from Keras or the run folder."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.lab import hostile
from cnnkit.runs.store import RunStore

ROOT = Path(__file__).resolve().parent.parent
MODELS = "app_pages/models.py"


def app(timeout: float = 180) -> AppTest:
    return AppTest.from_file(str(ROOT / MODELS), default_timeout=timeout)


def unmark(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    """A tiny tutorial-style model (untrained: the page's numbers come from its evaluation), a
    branching one, and a shape bomb made from the first."""
    from cnnkit.model.tf_import import keras

    folder = tmp_path_factory.mktemp("models")
    L = keras.layers
    keras.Sequential([keras.Input((28, 28, 1)), L.Flatten(), L.Dense(10, activation="softmax")]).save(
        folder / "flat.keras")
    inputs = keras.Input((28, 28, 1))
    x = L.Add()([L.Conv2D(2, 3, padding="same")(inputs), L.Conv2D(2, 1)(inputs)])
    keras.Model(inputs, L.Dense(10)(L.Flatten()(x))).save(folder / "branch.keras")
    (folder / "bomb.keras").write_bytes(hostile.shape_bomb((folder / "flat.keras").read_bytes()))
    return folder


def _import(at: AppTest, path: Path, **choices) -> AppTest:
    at.file_uploader(key="models_upload").set_value((path.name, path.read_bytes(), "application/octet-stream"))
    for key, value in choices.items():
        at.radio(key=key).set_value(value)
    return next(b for b in at.button if "Import and evaluate" in b.label).click().run()


def test_an_empty_runs_folder_says_what_to_do(runs_dir):
    at = app().run()
    assert not at.exception
    assert any("No finished runs yet" in i.value for i in at.info)


def test_a_good_upload_becomes_an_imported_run(runs_dir, model_files):
    at = _import(app().run(), model_files / "flat.keras")
    assert not at.exception, at.exception
    [record] = RunStore(runs_dir).list()
    assert record.kind == "imported" and record.rebuildable and record.name == "imported flat.keras"
    values = {m.label: m.value for m in at.metric}
    assert values["Test accuracy"] == f"{record.test_accuracy:.2%}"
    assert values["Parameters"] == f"{28 * 28 * 10 + 10:,}"  # by hand: one Dense(10) on 784 inputs
    assert values["Rebuildable in cnnkit"] == "yes"
    table = at.dataframe[0].value
    assert list(table["Keras class"]) == ["InputLayer", "Flatten", "Dense"]
    assert list(table["cnnkit"]) == ["input", "Flatten", "output (Dense over the classes)"]


def test_a_hostile_upload_is_one_reason_and_no_run(runs_dir, model_files):
    at = _import(app().run(), model_files / "bomb.keras")
    assert not at.exception
    errors = [unmark(e.value) for e in at.error]
    assert any(e.startswith("bomb.keras was not imported:") and "declares more than" in e for e in errors), errors
    assert RunStore(runs_dir).list() == []


def test_a_branching_model_cannot_give_a_script_but_gives_the_model_files(runs_dir, model_files):
    at = _import(app().run(), model_files / "branch.keras", models_scale="raw")
    assert not at.exception
    [record] = RunStore(runs_dir).list()
    assert not record.rebuildable and record.imported["input"] == "raw"
    assert any("Not rebuildable: layer 'add' (Add) has no cnnkit twin" in unmark(c.value) for c in at.caption)
    table = at.dataframe[0].value
    assert "imported (not rebuildable)" in list(table["cnnkit"])  # the Add layer
    buttons = {b.label: b for b in at.get("download_button")}
    assert buttons["⬇️ Python script"].disabled and not buttons["⬇️ Keras (.keras)"].disabled
    assert {"⚙️ Prepare ONNX", "⚙️ Prepare TF SavedModel (.zip)"} <= {b.label for b in at.button}
