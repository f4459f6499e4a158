"""The Models page in a real browser: upload a model trained the tutorials' way, see it
imported with the accuracy Keras itself gives; upload a hostile one, see one reason and no run;
then take the model away as ONNX and check the downloaded file in onnxruntime (the oracle: the
run's own Keras model on the same pixels)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from cnnkit.lab import hostile
from cnnkit.lab.browser import (
    VIEWPORT,
    StreamlitServer,
    launch_browser,
    wait_idle,
)
from cnnkit.runs.store import RunStore
from tests.oracles import require_browser

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def article_model(tmp_path_factory):
    """A Sequential trained on x / 255 for one epoch of the bundled sample, saved as .keras."""
    from cnnkit.data.sources import load_raw
    from cnnkit.model.tf_import import keras

    with pytest.MonkeyPatch.context() as env:  # module fixtures run before conftest hides the real data
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        raw = load_raw("mnist")  # the bundled sample, as the server (given no data dir) loads
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(8, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(raw.x_train[..., None] / 255.0, raw.y_train, epochs=1, verbose=0)
    path = tmp_path_factory.mktemp("upload") / "digits.keras"
    model.save(path)
    _, accuracy = model.evaluate(raw.x_test[..., None] / 255.0, raw.y_test, verbose=0)
    return path, accuracy


def _upload(page, path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(path))
    page.get_by_role("button", name="📥 Import and evaluate").click()


def test_import_refuse_and_export_in_a_real_browser(article_model, tmp_path):
    require_browser()
    from playwright.sync_api import sync_playwright

    path, keras_accuracy = article_model
    bomb = tmp_path / "bomb.keras"
    bomb.write_bytes(hostile.shape_bomb(path.read_bytes()))
    runs = tmp_path / "runs"
    with StreamlitServer(runs, env={"KERAS_HOME": str(tmp_path / "keras")}, log=tmp_path / "log") as server, \
            sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
            page.goto(f"{server.url}/Models")
            page.wait_for_selector("h1:has-text('Models')", timeout=60_000)

            _upload(page, bomb)
            page.wait_for_selector("text=Refused: nothing was imported", timeout=120_000)
            assert "declares more than" in page.inner_text("body")
            assert RunStore(runs).list() == []

            _upload(page, path)
            # (a text= selector is a case-blind substring: "not imported:" would match "Imported:")
            page.get_by_text(re.compile(r"^Imported: [\d.]+% test accuracy$")).wait_for(timeout=180_000)
            wait_idle(page)
            [record] = RunStore(runs).list()
            assert abs(record.test_accuracy - keras_accuracy) <= 0.001
            body = page.inner_text("body")
            assert f"Test accuracy\n\n{record.test_accuracy:.2%}" in body and "Rebuildable in cnnkit\n\nyes" in body
            assert record.name == "imported digits.keras" and "Evaluated on a SAMPLE" in body
            page.screenshot(path=str(tmp_path / "models.png"), full_page=True)

            page.get_by_role("button", name="⚙️ Prepare ONNX").click()
            button = page.get_by_role("button", name="⬇️ ONNX")
            button.wait_for(timeout=180_000)
            with page.expect_download() as download:
                button.click()
            onnx_file = tmp_path / "model.onnx"
            download.value.save_as(onnx_file)
        finally:
            browser.close()

    import onnxruntime

    from cnnkit.model.models import load_model

    pixels = np.random.default_rng(1).uniform(0, 255, (8, 28, 28, 1)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: pixels})[0]
    expected = np.asarray(load_model(record.model_path("cnn"))(pixels, training=False))
    np.testing.assert_allclose(got, expected, atol=1e-5)
