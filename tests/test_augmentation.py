"""Data augmentation as part of the experiment: the spec field, the seeded tf.data pipeline,
the numpy preview and the Train page's settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from cnnkit.data import transforms
from cnnkit.errors import SpecError
from cnnkit.presets import PRESETS
from cnnkit.runs.store import read_json
from cnnkit.specs import AugmentationSpec, ExperimentSpec
from cnnkit.views.links import link_value, spec_from_link

ROOT = Path(__file__).resolve().parent.parent


def _spec(**augmentation) -> ExperimentSpec:
    return ExperimentSpec.from_dict({"layers": [{"type": "flatten"}], "augmentation": augmentation})


def test_the_spec_field_round_trips_and_is_absent_when_off():
    spec = _spec(shift=0.1, rotation=10, zoom=0.1, flip=False, noise=0.05)
    assert spec.augmentation == AugmentationSpec(0.1, 10.0, 0.1, False, 0.05) and spec.augmentation.active
    assert ExperimentSpec.from_dict(spec.to_dict()) == spec
    assert ExperimentSpec.from_json(spec.to_json()) == spec
    assert spec_from_link(link_value(spec)) == spec  # a share link carries it
    off = ExperimentSpec.from_dict({"layers": [{"type": "flatten"}]})
    assert not off.augmentation.active and "augmentation" not in off.to_dict()
    assert off.updated({"augmentation.shift": 0.2}).augmentation.shift == 0.2
    assert all(not p.experiment().augmentation.active for p in PRESETS.values())  # published recipes
    assert spec.augmentation.describe() == "shift ±10%, rotate ±10°, zoom ±10%, noise σ 5%"


@pytest.mark.parametrize(("field", "value", "words"), [
    ("shift", 0.9, "augmentation.shift: must be in [0, 0.5]"), ("rotation", -5, "augmentation.rotation"),
    ("flip", "yes", "augmentation.flip: must be true or false"), ("noise", float("nan"), "augmentation.noise"),
    ("reflect", 1, "augmentation"),
])
def test_bad_values_name_the_field(field, value, words):
    with pytest.raises(SpecError, match=words.replace("[", r"\[").replace("]", r"\]")):
        _spec(**{field: value})


def test_the_pipeline_is_seeded_changes_only_training_batches_and_keeps_the_range():
    from cnnkit.model.levers import augment_dataset, configure_determinism, make_dataset

    x = np.zeros((64, 28, 28, 1), np.uint8)
    x[:, 8:20, 12:16] = 255
    y = np.arange(64) % 10
    augmentation = AugmentationSpec(shift=0.15, rotation=10, zoom=0.1, noise=0.05)

    def batches(seed, aug=augmentation):
        configure_determinism(seed)
        ds = augment_dataset(make_dataset(x, y, 32, shuffle=False, seed=seed), aug, seed)
        return [(images.numpy(), labels.numpy()) for images, labels in ds]

    first, again, other = batches(1), batches(1), batches(2)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(first, again, strict=True))
    assert not np.array_equal(first[0][0], other[0][0])
    images = np.concatenate([b[0] for b in first])
    assert images.min() >= 0 and images.max() <= 255 and not np.array_equal(images, x.astype(np.float32))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in first]), y)  # labels untouched
    plain = batches(1, AugmentationSpec())  # off: the pipeline is the plain one
    np.testing.assert_array_equal(np.concatenate([b[0] for b in plain]), x.astype(np.float32))


def test_the_preview_draws_from_the_same_ranges():
    x = np.zeros((20, 28, 28, 1), np.float32)
    x[:, 10:18, 12:16] = 255
    np.testing.assert_array_equal(transforms.random_augment(x, AugmentationSpec()), x)
    moved = transforms.random_augment(x, AugmentationSpec(shift=0.1), seed=3)
    rows = np.arange(28)
    for image in moved:
        centre = (image[..., 0].sum(axis=1) @ rows) / image.sum()
        assert abs(centre - 13.5) <= 0.1 * 28 + 0.5  # at most 3 px from where it was
    assert len({image.tobytes() for image in moved}) > 10  # each image its own draw


def test_the_train_page_sets_augmentation_and_previews_it(runs_dir):
    at = AppTest.from_file(str(ROOT / "app_pages/train.py"), default_timeout=30).run()
    assert not at.exception
    at.number_input(key="train_aug_shift").set_value(0.1)
    at.number_input(key="train_aug_rotation").set_value(15.0).run()
    assert not at.exception and not at.error
    saved = ExperimentSpec.from_dict(read_json(runs_dir / "draft.json"))
    assert saved.augmentation == AugmentationSpec(shift=0.1, rotation=15.0)
    import json

    grids = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert any(len(g["data"]) == 12 and all(t["type"] == "image" for t in g["data"]) for g in grids)
    at.run()  # the expander's title says what the saved draft holds
    assert any("Data augmentation: shift ±10%, rotate ±15°" in e.label for e in at.expander), \
        [e.label for e in at.expander]
