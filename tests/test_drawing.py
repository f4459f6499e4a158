"""Tests for cnnkit.drawing: canvas drawings -> MNIST-style 28x28 images."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from cnnkit.data.drawing import (
    DrawingResult,
    canvas_message_length,
    drawing_message,
    load_canvas_pixels,
    load_image,
    preprocess_drawing,
    subject,
)

# ------------------------------------------------------------------ helpers


def centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = image.sum()
    rows, cols = np.indices(image.shape)
    return float((rows * image).sum() / total), float((cols * image).sum() / total)


def bbox_size(image: np.ndarray, level: float = 0.1) -> tuple[int, int]:
    rows = np.flatnonzero((image > level).any(axis=1))
    cols = np.flatnonzero((image > level).any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def segment_mask(n: int, p0, p1, width: float) -> np.ndarray:
    """Pixels within width/2 of the segment p0-p1, on an n x n grid (coordinates in 0..1)."""
    yy, xx = (np.indices((n, n)) + 0.5) / n
    (y0, x0), (y1, x1) = p0, p1
    dy, dx = y1 - y0, x1 - x0
    t = np.clip(((yy - y0) * dy + (xx - x0) * dx) / (dy * dy + dx * dx), 0, 1)
    dist = np.hypot(yy - (y0 + t * dy), xx - (x0 + t * dx))
    return dist <= width / 2


def ring_mask(n: int, centre, radius: float, width: float) -> np.ndarray:
    yy, xx = (np.indices((n, n)) + 0.5) / n
    dist = np.hypot(yy - centre[0], xx - centre[1])
    return np.abs(dist - radius) <= width / 2


def disc_mask(n: int, centre, radius: float) -> np.ndarray:
    yy, xx = (np.indices((n, n)) + 0.5) / n
    return np.hypot(yy - centre[0], xx - centre[1]) <= radius


def diagonal(n: int = 280) -> np.ndarray:
    """A thick, off-centre diagonal stroke."""
    return segment_mask(n, (0.15, 0.55), (0.6, 0.9), 0.07)


def digit_like(n: int = 280) -> np.ndarray:
    """A lopsided "9": a ring with a tail, away from the canvas centre."""
    return ring_mask(n, (0.3, 0.4), 0.12, 0.06) | segment_mask(n, (0.3, 0.52), (0.8, 0.5), 0.06)


def rgba_canvas(mask: np.ndarray) -> np.ndarray:
    """White ink on a transparent canvas, as streamlit-drawable-canvas returns it."""
    canvas = np.zeros((*mask.shape, 4), dtype=np.uint8)
    canvas[mask] = 255
    return canvas


def dark_on_white(mask: np.ndarray) -> np.ndarray:
    rgb = np.full((*mask.shape, 3), 255, dtype=np.uint8)
    rgb[mask] = 0
    return rgb


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


# ------------------------------------------------------------- the happy path


@pytest.mark.parametrize("make", [diagonal, digit_like])
def test_stroke_becomes_mnist_style_image(make):
    result = preprocess_drawing(rgba_canvas(make()))
    assert result.ok and result.status == "ok" and result.message == ""
    image = result.image
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() == pytest.approx(1.0)
    cy, cx = centre_of_mass(image)
    assert abs(cy - 14.0) < 0.5 and abs(cx - 14.0) < 0.5
    assert 19 <= max(bbox_size(image)) <= 21


def test_result_reports_ink_and_bbox_on_canvas():
    mask = np.zeros((280, 280), dtype=bool)
    mask[50:150, 100:130] = True
    result = preprocess_drawing(rgba_canvas(mask))
    assert result.bbox == (50, 100, 150, 130)
    assert result.ink_fraction == pytest.approx(100 * 30 / 280**2)


def test_dark_ink_on_white_matches_white_ink_on_transparent():
    mask = digit_like()
    white = preprocess_drawing(rgba_canvas(mask)).image
    dark = preprocess_drawing(dark_on_white(mask)).image
    assert np.abs(white - dark).max() < 1e-3


def test_dark_ink_on_transparent_canvas_is_not_lost():
    mask = digit_like()
    canvas = np.zeros((*mask.shape, 4), dtype=np.uint8)
    canvas[mask] = (0, 0, 0, 255)
    result = preprocess_drawing(canvas)
    assert result.ok
    assert np.abs(result.image - preprocess_drawing(rgba_canvas(mask)).image).max() < 1e-3


def test_grey_paper_background_is_removed():
    mask = digit_like()
    photo = np.where(mask, 40, 200).astype(np.uint8)  # dark ink on light grey paper
    result = preprocess_drawing(photo)
    reference = preprocess_drawing(rgba_canvas(mask)).image
    assert result.ok and np.abs(result.image - reference).max() < 1e-3


def test_vertical_bar_keeps_its_aspect_ratio():
    mask = np.zeros((280, 280), dtype=bool)
    mask[40:240, 130:150] = True  # 200 x 20: a "1"
    result = preprocess_drawing(rgba_canvas(mask))
    height, width = bbox_size(result.image)
    assert 19 <= height <= 21
    assert width <= 4
    cy, cx = centre_of_mass(result.image)
    assert abs(cy - 14.0) < 0.5 and abs(cx - 14.0) < 0.5


@pytest.mark.parametrize(
    "convert",
    [
        lambda m: (m * 255).astype(np.uint8),  # gray uint8
        lambda m: m.astype(np.float32),  # gray float in [0, 1]
        lambda m: (m * 255).astype(np.uint8)[..., None],  # (H, W, 1)
        lambda m: np.repeat((m * 255).astype(np.uint8)[..., None], 3, axis=2),  # RGB
        lambda m: np.stack([m, m], axis=-1).astype(np.float64),  # gray + alpha
        lambda m: rgba_canvas(m).astype(np.float32) / 255.0,  # RGBA float
    ],
    ids=["gray-uint8", "gray-float", "hw1", "rgb", "gray-alpha", "rgba-float"],
)
def test_other_layouts_give_the_same_image(convert):
    mask = digit_like()
    reference = preprocess_drawing(rgba_canvas(mask)).image
    result = preprocess_drawing(convert(mask))
    assert result.ok
    np.testing.assert_allclose(result.image, reference, atol=1e-5)


def test_scale_invariance():
    small = preprocess_drawing(rgba_canvas(digit_like(140))).image
    large = preprocess_drawing(rgba_canvas(digit_like(560))).image
    assert np.abs(small - large).mean() < 0.02


def test_half_filled_canvas_is_ok():
    mask = disc_mask(280, (0.5, 0.5), 0.4)  # about 50% of the canvas
    result = preprocess_drawing(rgba_canvas(mask))
    assert 0.45 < result.ink_fraction < 0.55
    assert result.ok


# ----------------------------------------------------- nothing to predict


def _assert_refused(result: DrawingResult, status: str) -> None:
    assert result.status == status
    assert not result.ok
    assert result.image is None
    assert result.message


@pytest.mark.parametrize(
    "canvas",
    [
        np.zeros((280, 280, 4), dtype=np.uint8),  # empty canvas
        np.full((280, 280, 4), (255, 255, 255, 0), dtype=np.uint8),  # fully transparent, white RGB
        np.full((280, 280, 3), 255, dtype=np.uint8) * 0,  # black RGB
        np.full((280, 280), np.nan),  # NaN treated as 0
        np.zeros((1, 1)),
    ],
    ids=["empty", "transparent", "black-rgb", "nan", "1x1"],
)
def test_empty_canvas(canvas):
    result = preprocess_drawing(canvas)
    _assert_refused(result, "empty")
    assert result.message == "Nothing drawn yet: draw a digit in the box."
    assert result.ink_fraction == 0.0 and result.bbox is None


def test_a_few_stray_pixels_are_empty():
    canvas = np.zeros((280, 280, 4), dtype=np.uint8)
    canvas[100, 100] = canvas[200, 50] = 255
    _assert_refused(preprocess_drawing(canvas), "empty")


def test_single_dot_is_too_small():
    result = preprocess_drawing(rgba_canvas(disc_mask(280, (0.3, 0.6), 0.015)))
    _assert_refused(result, "too_small")
    assert "bigger" in result.message
    assert result.bbox is not None


@pytest.mark.parametrize(
    "canvas",
    [
        np.full((280, 280, 4), 255, dtype=np.uint8),  # painted all over
        rgba_canvas(~disc_mask(280, (0.5, 0.5), 0.12)),  # huge stroke, ~95% covered
        np.ones((50, 40)),
        np.ones((1, 1)),
    ],
    ids=["filled", "huge-stroke", "all-one", "1x1-one"],
)
def test_filled_canvas(canvas):
    result = preprocess_drawing(canvas)
    _assert_refused(result, "filled")
    assert "filled" in result.message and "clear" in result.message
    assert result.ink_fraction > 0.85


def test_the_messages_speak_of_what_the_chosen_runs_dataset_holds():
    from cnnkit.data.catalog import DRAWABLE

    assert {name: subject(name).title for name in DRAWABLE} == {
        "mnist": "Draw a digit", "fashion_mnist": "Draw a piece of clothing"}
    clothing = subject("fashion_mnist")
    assert drawing_message("empty", clothing) == "Nothing drawn yet: draw an item in the box."
    assert drawing_message("too_small", clothing) == ("The drawing is too small to read: draw the item bigger, "
                                                      "filling most of the box.")
    assert drawing_message("filled", clothing).endswith("draw a single item.")
    assert all("digit" not in text.lower() for text in (*vars(clothing).values(),))
    # a dataset without words of its own (none is drawable today) speaks of digits, like the result itself
    assert drawing_message("empty", subject("cifar10")) == preprocess_drawing(np.zeros((28, 28))).message


@pytest.mark.parametrize("shape", [(0, 5), (5,), (2, 2, 2, 2), (10, 10, 5), (10, 0, 3), ()])
def test_non_images_raise_with_the_shape(shape):
    with pytest.raises(ValueError, match="shape"):
        preprocess_drawing(np.zeros(shape))


def test_nan_and_inf_pixels_do_not_break_a_drawing():
    canvas = rgba_canvas(digit_like()).astype(np.float64) / 255.0
    canvas[:5, :5] = np.nan
    canvas[-3:, -3:] = np.inf
    result = preprocess_drawing(canvas)
    assert result.ok and np.isfinite(result.image).all()


# --------------------------------------------------------------- as_uint8


def test_as_uint8_round_trip():
    result = preprocess_drawing(rgba_canvas(digit_like()))
    as_bytes = result.as_uint8()
    assert as_bytes.shape == (28, 28) and as_bytes.dtype == np.uint8
    np.testing.assert_array_equal(as_bytes, np.round(result.image * 255).astype(np.uint8))
    assert np.abs(as_bytes / 255.0 - result.image).max() <= 0.5 / 255 + 1e-7


def test_as_uint8_refuses_without_image():
    with pytest.raises(ValueError, match="empty"):
        preprocess_drawing(np.zeros((28, 28))).as_uint8()


def test_repr_is_short_and_informative():
    text = repr(preprocess_drawing(rgba_canvas(digit_like())))
    assert text.startswith("DrawingResult(status='ok'") and "(28, 28)" in text
    assert "array" not in text


# -------------------------------------------------------------- load_image


@pytest.mark.parametrize(
    "array",
    [
        rgba_canvas(digit_like(60)),
        (digit_like(60) * 255).astype(np.uint8),
        dark_on_white(digit_like(60)),
    ],
    ids=["rgba", "gray", "rgb"],
)
def test_load_image_round_trips_png(array):
    loaded = load_image(png_bytes(array))
    assert loaded.dtype == np.uint8
    np.testing.assert_array_equal(loaded, array)


def test_load_image_from_path_and_file_object(tmp_path):
    array = rgba_canvas(digit_like(60))
    path = tmp_path / "digit.png"
    path.write_bytes(png_bytes(array))
    np.testing.assert_array_equal(load_image(path), array)
    np.testing.assert_array_equal(load_image(str(path)), array)
    np.testing.assert_array_equal(load_image(io.BytesIO(png_bytes(array))), array)


def test_loaded_upload_preprocesses_like_the_canvas():
    mask = digit_like()
    loaded = load_image(png_bytes(dark_on_white(mask)))
    reference = preprocess_drawing(rgba_canvas(mask)).image
    assert np.abs(preprocess_drawing(loaded).image - reference).max() < 1e-3


def test_load_image_rejects_non_images():
    with pytest.raises(ValueError, match=r"not an image PIL can read \(PNG, JPEG, BMP, GIF\)"):
        load_image(b"not an image")


def test_load_image_rejects_other_formats():
    buf = io.BytesIO()
    Image.new("L", (8, 8)).save(buf, format="TIFF")
    with pytest.raises(ValueError, match="not an image PIL can read.*TIFF"):
        load_image(buf.getvalue())


def test_load_image_rejects_too_many_bytes():
    with pytest.raises(ValueError, match="too large.*limit"):
        load_image(b"\x00" * 1001, max_bytes=1000)
    with pytest.raises(ValueError, match="too large"):
        load_image(bytes(5_000_001))


def test_load_image_rejects_too_many_pixels():
    data = png_bytes(np.zeros((200, 300), dtype=np.uint8))
    with pytest.raises(ValueError, match="too many pixels"):
        load_image(data, max_pixels=50_000)


def test_load_image_rejects_truncated_files():
    data = png_bytes(rgba_canvas(digit_like(60)))
    with pytest.raises(ValueError):
        load_image(data[: len(data) // 2])


# ---------------------------------------------------------------------------
# The canvas's PNG is hostile (issue 12, item 1)


def canvas_message(ink: np.ndarray) -> dict:
    """What components/draw_canvas.js sends: the canvas's red channel (white ink), base64."""
    return {"side": ink.shape[0], "pixels": base64.b64encode(ink.astype(np.uint8).tobytes()).decode(), "strokes": 1}


def test_the_canvas_message_round_trips_to_the_same_pixels_and_reads_as_the_rgba_canvas():
    drawn = np.zeros((280, 280), dtype=np.uint8)
    drawn[100:180, 130:150] = 255
    drawn[60:100, 110:170] = 128  # anti-aliased edges are grey, not only 0 or 255
    pixels = load_canvas_pixels(canvas_message(drawn), 280)
    assert pixels.dtype == np.uint8 and np.array_equal(pixels, drawn)
    # the same ink as the RGBA canvas it came from (opaque black, white ink) gives the same 28×28
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = drawn[..., None], 255
    assert np.abs(preprocess_drawing(pixels).image - preprocess_drawing(rgba).image).max() < 1e-6
    assert load_canvas_pixels(None, 280) is None  # before the first stroke, and after a Clear
    assert canvas_message_length(280) == 104_536 == len(canvas_message(drawn)["pixels"])  # ⌈78,400 / 3⌉ × 4


@pytest.mark.parametrize("message, why", [
    ({"side": 280, "pixels": "A" * 100_000_000}, "oversized message"),          # never decoded: 100 MB
    ({"side": 280, "pixels": "AAAA"}, "a 4-character message"),
    ({"side": 8000, "pixels": "A" * 104_536}, "this 280×280 canvas sends 104,536"),  # another canvas
    ({"side": 280, "pixels": "!" * 104_536}, "damaged"),                         # the right length, not base64
    ({"side": 280, "pixels": 12}, "not a drawing"),
    ("a string", "not a drawing"),
])
def test_a_forged_canvas_message_is_refused_before_it_is_decoded(message, why):
    with pytest.raises(ValueError, match=why):
        load_canvas_pixels(message, 280)


# ---------------------------------------------------------------- a photo instead of the canvas


def _photo_of(digit: np.ndarray, scale: int = 20, paper: int = 215, seed: int = 0) -> np.ndarray:
    """An MNIST digit as a phone photo would show it: dark ink on grey paper, big, noisy, in RGB."""
    from PIL import Image as PILImage

    big = np.asarray(PILImage.fromarray(digit).resize((28 * scale, 28 * scale), PILImage.Resampling.BICUBIC))
    rng = np.random.default_rng(seed)
    page = np.full((28 * scale + 200, 28 * scale + 300), paper, np.float64)
    page[100:100 + 28 * scale, 150:150 + 28 * scale] -= big.astype(np.float64) * (paper - 30) / 255.0
    page += rng.normal(0, 6, page.shape)
    return np.repeat(np.clip(page, 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_a_photo_of_an_mnist_digit_comes_back_as_that_digit():
    # The oracle: MNIST digits are already cropped, scaled to 20 px and centred by mass, so the
    # pipeline run on a big, inverted, noisy photo of one must give back (nearly) the digit.
    from cnnkit.data.drawing import preprocess_steps, shrink_picture
    from cnnkit.data.sources import load_raw

    raw = load_raw("mnist")
    for index in range(10):
        digit = raw.x_test[index].reshape(28, 28)
        photo = _photo_of(digit, seed=index)
        assert photo.shape[0] > 560  # the photo is shrunk before it is read
        small = shrink_picture(photo)
        assert max(small.shape[:2]) == 560 and small.dtype == np.uint8
        result, steps = preprocess_steps(small)
        assert result.ok
        assert [caption[:2] for caption, _ in steps] == ["1.", "2.", "3.", "4.", "5."]
        np.testing.assert_array_equal(steps[-1][1], result.image)  # the last stage is what the model gets
        assert max(steps[3][1].shape) == 20
        correlation = np.corrcoef(result.image.ravel(), digit.ravel() / 255.0)[0, 1]
        assert correlation > 0.85, (index, correlation)


def test_blank_paper_is_no_digit_and_a_small_photo_is_not_shrunk():
    from cnnkit.data.drawing import preprocess_steps, shrink_picture
    from cnnkit.views import demo

    noise = np.random.default_rng(0).normal(0, 2, (300, 400, 1))
    blank = np.repeat(np.clip(200 + noise, 0, 255).astype(np.uint8), 3, axis=2)  # plain grey paper
    result, steps = preprocess_steps(blank)
    assert result.status == "filled" and len(steps) == 4  # the canvas's rule: uniform bright = painted over
    read, _ = demo.read_picture(blank, {})
    assert read.drawing.status == "empty"  # a picture's rule: uniform paper holds no digit
    from cnnkit.data.drawing import subject

    assert demo.picture_message("empty") == ("No digit found: use a picture of a digit, dark on light ground "
                                            "(or light on dark).")
    assert demo.picture_message("too_small", subject("fashion_mnist")) == (
        "The item is too small in the picture: crop it so the item fills most of it.")
    assert shrink_picture(blank).shape == blank.shape  # small enough already: filtered, not resized
