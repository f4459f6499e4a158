"""When not to trust a reading (cnnkit.views.trust), and what the Draw page says about it.

The measure of "far from the training data" is tested as an oracle on real data: the bundled
sample's own test digits must pass, and things that are not digits (a dot, a scribble, a filled
canvas, noise, a piece of clothing) must not.
"""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.drawing import preprocess_drawing
from cnnkit.data.sources import load_raw
from cnnkit.views import trust
from cnnkit.views.demo import DrawingPrediction
from tests.test_app_train_inspect_draw import run_picker
from tests.test_drawing import disc_mask, ring_mask, segment_mask

ROOT = Path(__file__).resolve().parent.parent
DRAW = str(ROOT / "app_pages" / "draw.py")
SIDE = 280  # the Draw page's canvas


def sample(name: str, split: str = "test") -> np.ndarray:
    raw = load_raw(name)  # offline and no data dir (conftest): the bundled sample
    assert raw.source.is_sample
    return (raw.x_test if split == "test" else raw.x_train)[..., 0]


def flagged(images, dataset: str = "mnist") -> np.ndarray:
    return np.array([bool(trust.far_from_training(image, dataset)) for image in images])


def canvas(mask: np.ndarray) -> np.ndarray:
    """The Draw page's canvas: white strokes on an opaque black background, RGBA."""
    drawn = np.zeros((*mask.shape, 4), np.uint8)
    drawn[..., 3] = 255
    drawn[mask, :3] = 255
    return drawn


def strokes(points, width: float) -> np.ndarray:
    """A brush of `width` canvas pixels along the polyline `points` ((y, x) in 0–1)."""
    mask = np.zeros((SIDE, SIDE), bool)
    for start, end in itertools.pairwise(points):
        mask |= segment_mask(SIDE, start, end, width / SIDE)
    return mask


def readable(images) -> list[np.ndarray]:
    """What the model sees of those the canvas's preprocessing reads (a coat filling the whole
    picture is refused as "filled": no reading to doubt)."""
    results = [preprocess_drawing(image) for image in images]
    return [result.image for result in results if result.ok]


def seen(drawn: np.ndarray) -> np.ndarray:
    """What the model sees of a canvas (the Draw page's preprocessing)."""
    result = preprocess_drawing(drawn)
    assert result.ok, result
    return result.image


# ------------------------------------------------------------------ the three numbers, by hand


def test_ink_is_the_count_of_pixels_above_the_ink_level_in_either_scale():
    image = np.zeros((28, 28), np.float32)
    image[3, 4:11] = 1.0     # 7 inked pixels
    image[20, 0:3] = 0.05    # 3 below the ink level: paper, not ink
    image[10, 10] = 0.2      # faint but ink
    assert trust.measure(image[None])["ink"].tolist() == [8]
    assert trust.measure(np.round(image * 255).astype(np.uint8)[None])["ink"].tolist() == [8]


def test_the_largest_solid_square_by_hand():
    image = np.zeros((28, 28), np.float32)
    image[2:7, 2:7] = 1.0        # a 5×5 block
    image[10:26, 12:15] = 1.0    # a 3 px thick line, 16 long
    line_only = image.copy()
    line_only[2:7, 2:7] = 0
    empty = np.zeros((28, 28), np.float32)
    assert trust.measure(np.stack([image, line_only, empty]))["square"].tolist() == [5, 3, 0]


def test_the_largest_solid_square_matches_a_brute_force_search():
    rng = np.random.default_rng(7)
    images = (rng.random((40, 28, 28)) < rng.uniform(0.3, 0.95, (40, 1, 1))).astype(np.float32)

    def brute(mask):  # every size at every position
        best = 0
        for size in range(1, 29):
            if any(mask[r:r + size, c:c + size].all() for r in range(29 - size) for c in range(29 - size)):
                best = size
            else:
                break
        return best

    assert trust.measure(images)["square"].tolist() == [brute(m > 0.1) for m in images]


def test_width_is_the_ink_boxs_width_over_its_height():
    image = np.zeros((28, 28), np.float32)
    image[10:14, 5:15] = 1.0     # 4 tall, 10 wide
    tall = np.zeros((28, 28), np.float32)
    tall[4:24, 13:17] = 1.0      # 20 tall, 4 wide
    assert trust.measure(np.stack([image, tall]))["width"].tolist() == pytest.approx([2.5, 0.2])


def test_the_ranges_are_the_training_splits_percentiles_computed_independently():
    x_train = sample("mnist", "train")
    ink = (x_train > 0.1 * 255).sum(axis=(1, 2))  # the ink level, on the uint8 scale
    ranges = trust.training_ranges("mnist")
    assert (ranges["ink"].typical, ranges["ink"].high) == pytest.approx(tuple(np.percentile(ink, (50, 99.9))))
    assert 100 < ranges["ink"].typical < ranges["ink"].high < 300  # a digit inks 13–35% of the 784 pixels
    assert ranges["square"].high < 12 < 15  # no training digit holds the 15 px square of a blown-up dot


# -------------------------------------------------------------------- the oracle on real data


def test_the_samples_own_test_digits_are_trusted_as_they_are_and_as_the_canvas_makes_them():
    digits = sample("mnist")
    assert flagged(digits).mean() <= 0.05
    # through the canvas's preprocessing (crop, 20 px, centred by mass), as the page reads them
    assert len(readable(digits)) == len(digits)
    assert flagged(readable(digits)).mean() <= 0.05


@pytest.mark.parametrize("name, drawn, reason", [
    ("a dot", canvas(disc_mask(SIDE, (0.5, 0.5), 11 / SIDE)), "a blot"),
    ("a dense scribble", canvas(strokes([(0.25 + 0.5 * (i % 2), 0.2 + 0.03 * i) for i in range(21)], 20)
                                | strokes([(0.2 + 0.03 * i, 0.25 + 0.5 * (i % 2)) for i in range(21)], 20)),
     "more ink"),
    ("a random scribble", canvas(strokes([tuple(p) for p in np.random.default_rng(0).uniform(0.2, 0.8, (25, 2))],
                                         20)), "more ink"),
    ("a canvas filled but for a corner", canvas(np.pad(np.ones((230, 230), bool), 25)
                                                & ~disc_mask(SIDE, (0.1, 0.1), 0.05)), "a blot"),
    ("uniform noise", np.dstack([np.random.default_rng(1).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8),
                                 np.full((SIDE, SIDE), 255, np.uint8)]), "more ink"),
    ("a dash", canvas(strokes([(0.5, 0.2), (0.5, 0.8)], 20)), "wider"),
])
def test_things_that_are_not_digits_are_flagged_with_the_reason(name, drawn, reason):
    image = seen(drawn)
    reasons = trust.far_from_training(image, "mnist")
    assert any(reason in r for r in reasons), (name, reasons, trust.measure(image[None]))


def test_a_full_field_and_noise_given_as_the_28x28_itself_are_flagged():
    full = np.ones((28, 28), np.float32)
    noise = np.random.default_rng(2).random((28, 28)).astype(np.float32)
    assert all(any("more ink" in r for r in trust.far_from_training(i, "mnist")) for i in (full, noise))


def drawn_digits(brush: float) -> dict[str, np.ndarray]:
    return {
        "1": strokes([(0.15, 0.5), (0.85, 0.5)], brush),
        "0": ring_mask(SIDE, (0.5, 0.5), 0.3, brush / SIDE),
        "7": strokes([(0.2, 0.25), (0.2, 0.75), (0.85, 0.4)], brush),
        "4": strokes([(0.15, 0.6), (0.6, 0.25), (0.6, 0.75)], brush) | strokes([(0.15, 0.6), (0.85, 0.6)], brush),
        "8": ring_mask(SIDE, (0.33, 0.5), 0.16, brush / SIDE) | ring_mask(SIDE, (0.67, 0.5), 0.18, brush / SIDE),
    }


@pytest.mark.parametrize("brush", [6, 12, 20, 30, 40])  # the page's brush: 20 px, from 6 to 40
def test_digits_drawn_on_the_canvas_are_trusted(brush):
    for digit, mask in drawn_digits(brush).items():
        assert trust.far_from_training(seen(canvas(mask)), "mnist") == [], digit


def test_pieces_of_clothing_are_far_from_mnist_but_not_from_fashion_mnist():
    items = sample("fashion_mnist")
    assert flagged(items, "mnist").mean() >= 0.85                    # measured: 87%
    # as the canvas makes them (20 px, centred), 63%: trousers, dresses, sandals look much like pen strokes
    assert flagged(readable(items), "mnist").mean() >= 0.6
    assert flagged(items, "fashion_mnist").mean() <= 0.05            # for a Fashion-MNIST model they are its data


def test_the_reasons_name_the_datasets_items_and_the_numbers():
    dot = seen(canvas(disc_mask(SIDE, (0.5, 0.5), 11 / SIDE)))
    reasons = trust.far_from_training(dot, "mnist")
    ink = trust.training_ranges("mnist")["ink"]
    more_ink = next(r for r in reasons if "more ink" in r)
    assert "training digits" in more_ink and f"nearly all at most {ink.high:.0f})" in more_ink
    assert f"{int(trust.measure(dot[None])['ink'][0])} inked pixels" in more_ink
    assert "training items" in " ".join(trust.far_from_training(np.ones((28, 28)), "fashion_mnist"))


# ------------------------------------------------------------------------ the two models disagree


def reading(cnn: int, baseline: int | None, image: np.ndarray) -> DrawingPrediction:
    probs = {"cnn": np.eye(10)[cnn] * 0.9 + 0.01}
    if baseline is not None:
        probs["baseline"] = np.eye(10)[baseline] * 0.9 + 0.01
    drawing = preprocess_drawing(image)
    return DrawingPrediction(drawing, probs)


def test_a_disagreement_is_a_doubt_and_an_agreement_on_a_digit_is_none():
    one = canvas(strokes([(0.15, 0.5), (0.85, 0.5)], 20))
    names = [str(d) for d in range(10)]
    assert trust.doubts(reading(7, 1, one), names, "mnist") == ["the CNN and the baseline disagree (7 vs 1)"]
    assert trust.doubts(reading(1, 1, one), names, "mnist") == []
    assert trust.doubts(reading(1, None, one), names, "mnist") == []  # a run without a baseline
    dot = canvas(disc_mask(SIDE, (0.5, 0.5), 11 / SIDE))
    doubts = trust.doubts(reading(0, 0, dot), names, "mnist")
    assert doubts and all("disagree" not in d for d in doubts)


def test_the_warning_is_one_plain_sentence():
    text = trust.warning(["the CNN and the baseline disagree (T-shirt/top vs Shirt)", "much more ink"])
    assert text == "Don't trust this reading: the CNN and the baseline disagree (T-shirt/top vs Shirt); much more ink."


# ------------------------------------------------------------------ the Draw page, in AppTest


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One MNIST and one Fashion-MNIST run (tiny CNN + dense baseline, 1 epoch on part of the sample)."""
    from tests.oracles import trained_run

    folder = tmp_path_factory.mktemp("runs")
    made = {}
    for dataset in ("fashion_mnist", "mnist"):  # the MNIST run newest: the page starts with it
        made[dataset] = trained_run(folder, {
            "layers": [{"type": "conv2d", "filters": 8, "kernel_size": 3}, {"type": "maxpool2d"},
                       {"type": "flatten"}, {"type": "dense", "units": 32}],
            "dataset": {"name": dataset, "train_limit": 1500}, "training": {"epochs": 2, "batch_size": 64},
            "baseline": "dense-128", "name": f"tiny {dataset}"})
    return folder, made


@pytest.fixture
def draw_page(runs, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(runs[0]))
    monkeypatch.setenv("CNNKIT_SLOTS_DIR", str(tmp_path / "slots"))
    return AppTest.from_file(DRAW, default_timeout=60)


def unmark(text: str) -> str:
    """A message as a person reads it: the page escapes markdown in the text it shows."""
    return re.sub(r"\\(.)", r"\1", text)


def page_text(at) -> str:
    shown = [e.value for kind in ("title", "markdown", "caption", "info", "warning", "subheader") for e in getattr(at, kind)]
    shown += [e.label for e in at.expander] + [e.proto.label for e in at.get("file_uploader")]
    return unmark("\n".join(shown))


def doubts_shown(at) -> list[str]:
    return [unmark(w.value) for w in at.warning if unmark(w.value).startswith("Don't trust")]


def photo(image28: np.ndarray) -> tuple[str, bytes, str]:
    """A 28×28 image as a photo: dark ink on light paper, 10× larger, PNG."""
    big = np.kron(255 - np.asarray(image28, np.uint8), np.ones((10, 10), np.uint8))
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    return "photo.png", buf.getvalue(), "image/png"


def test_with_a_fashion_run_the_page_speaks_of_clothing_and_its_classes(draw_page, runs):
    at = draw_page.run()
    assert not at.exception
    assert "Draw a digit" in at.title[0].value  # the MNIST run first
    run_picker(at, "draw_run").set_value(runs[1]["fashion_mnist"].run_id).run()
    assert not at.exception
    text = page_text(at)
    assert "Draw a piece of clothing" in at.title[0].value
    assert "Nothing drawn yet: draw an item in the box." in text
    assert "digit" not in text.lower(), text
    trouser = sample("fashion_mnist")[np.flatnonzero(load_raw("fashion_mnist").y_test == 1)[0]]
    at.file_uploader(key="draw_upload").set_value(photo(trouser)).run()
    reading_line = next(m.value for m in at.markdown if m.value.startswith("The picture reads as"))
    fashion_names = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot")
    assert re.search(r"CNN: \*\*(.+?)\*\*", reading_line).group(1).replace("\\", "") in fashion_names


def test_a_photo_of_a_blot_is_read_with_a_warning_and_the_reason(draw_page):
    at = draw_page.run()
    blot = np.zeros((28, 28), np.uint8)
    blot[9:19, 9:19] = 255
    at.file_uploader(key="draw_upload").set_value(photo(blot)).run()
    assert not at.exception
    warnings = doubts_shown(at)
    assert len(warnings) == 1 and "a blot" in warnings[0], warnings


def test_a_photo_warns_exactly_when_the_models_disagree_or_it_is_far_from_the_digits(draw_page):
    from cnnkit.data.drawing import shrink_picture

    at = draw_page.run()
    seen_agree = seen_disagree = 0
    for digit in sample("mnist")[:40]:
        name, png, kind = photo(digit)
        at.file_uploader(key="draw_upload").set_value((name, png, kind)).run()
        line = unmark(next(m.value for m in at.markdown if m.value.startswith("The picture reads")))
        cnn, baseline = re.findall(r"\*\*(\d)\*\*", line)
        expected = [f"the CNN and the baseline disagree ({cnn} vs {baseline})"] if cnn != baseline else []
        model_input = preprocess_drawing(shrink_picture(np.asarray(Image.open(io.BytesIO(png))))).image
        expected += trust.far_from_training(model_input, "mnist")
        assert doubts_shown(at) == ([trust.warning(expected)] if expected else []), line
        seen_agree += cnn == baseline
        seen_disagree += cnn != baseline
    assert seen_agree and seen_disagree  # both cases met (a tiny model and its baseline differ on a few)
