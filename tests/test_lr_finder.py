"""The learning-rate finder: geometric rates, a stop when the loss blows up, the weights put back
(compared bit for bit), a suggestion at the steepest descent (a curve made by hand), and the Train
page's button, chart and "Use" button."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.runs.store import read_json
from cnnkit.specs import ExperimentSpec
from cnnkit.views.lr import suggest_lr

ROOT = Path(__file__).resolve().parent.parent


def test_the_suggestion_is_the_steepest_descent_before_the_minimum():
    lrs = list(np.logspace(-7, 1, 81))
    losses = [2.3 if lr < 1e-4 else 2.3 - 2.0 * min(1.0, (np.log10(lr) + 4) / 2) for lr in lrs]  # falls 1e-4 → 1e-2
    losses = [v if lr < 0.1 else 5.0 for v, lr in zip(losses, lrs, strict=True)]  # then blows up
    suggested = suggest_lr(lrs, losses)
    assert 1e-4 <= suggested <= 1e-2
    assert suggest_lr(lrs[:3], losses[:3]) is None
    assert suggest_lr(lrs, sorted(losses)) is None  # only rising: nothing helped


def test_the_range_test_grows_the_rate_stops_on_blow_up_and_restores_the_weights():
    from cnnkit.model.lr_finder import BLOW_UP, lr_range_test
    from cnnkit.model.tf_import import keras, tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(3)])
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).normal(scale=10.0, size=(256, 4)).astype(np.float32)  # big steps blow up
    y = (x[:, 0] > 0).astype(np.int32) + (x[:, 1] > 0)
    before = [w.copy() for w in model.get_weights()]
    lrs, losses = lr_range_test(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(32), steps=100)
    assert all(b > a for a, b in zip(lrs, lrs[1:], strict=False)) and lrs[0] == pytest.approx(1e-7)
    ratios = np.diff(np.log10(lrs))
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-6)  # geometric: 1e-7 → 10 over 100 steps
    assert len(lrs) < 100 and losses[-1] > BLOW_UP * min(losses)  # stopped when the loss blew up
    for w0, w1 in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)


@pytest.mark.slow
def test_the_train_page_finds_plots_and_uses_a_rate(runs_dir):
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=240).run()
    at.button(key="train_lr_find").click().run()
    assert not at.exception and not at.error
    chart = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                 if json.loads(c.proto.spec)["layout"]["title"]["text"] == "Learning-rate finder")
    lrs = chart["data"][0]["x"]
    assert lrs[0] == pytest.approx(1e-7) and len(lrs) >= 10
    use = at.button(key="train_lr_use")
    rate = float(use.label.removeprefix("Use "))
    use.click().run()
    assert not at.exception
    assert ExperimentSpec.from_dict(read_json(runs_dir / "draft.json")).training.learning_rate == rate
    assert at.number_input(key="train_lr").value == rate
