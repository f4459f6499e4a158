"""Turn a canvas drawing or an uploaded picture into the 28x28 image a model sees.

The steps copy how MNIST itself was made (LeCun et al.): the digit is cropped to
its bounding box, scaled so its longer side is 20 px (keeping the aspect ratio,
anti-aliased), then placed in a 28x28 field so that its intensity-weighted
centre of mass sits at the centre of the field.

Measured on the first 500 real MNIST training images: the mean centre of mass,
computed as sum(i * v) / sum(v) over row index i (and column index j), is
(13.99, 14.03), so the centre is 14.0 in array coordinates (not 13.5).
Every one of the first 5000 images also peaks at 254 or 255, hence the final
contrast stretch to a peak of 1.

Plain numpy + Pillow: never import TensorFlow, Keras or Streamlit here.
"""

from __future__ import annotations

import base64
import binascii
import io
import os
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from cnnkit.errors import UploadError
from cnnkit.files import read_bounded

__all__ = ["DrawingResult", "Subject", "drawing_message", "load_image", "preprocess_drawing", "preprocess_steps",
           "shrink_picture", "subject"]

# A pixel counts as ink above this level (in [0, 1]); low enough to keep
# anti-aliased stroke edges, high enough to ignore JPEG noise after background removal.
INK_LEVEL = 0.1
# Fewer ink pixels than this is a stray click, not a drawing.
MIN_INK_PIXELS = 5
# More ink than this share of the canvas: the user has painted over everything.
FILLED_FRACTION = 0.85
# Ink whose bounding box is shorter than this share of the canvas is a dot.
MIN_EXTENT_FRACTION = 0.04
# Below this max-min spread the picture is uniform and has no polarity to detect.
MIN_CONTRAST = 0.1

ALLOWED_FORMATS = ("PNG", "JPEG", "BMP", "GIF")

# {one}, {a_one}: what the drawing should be of, in the chosen run's dataset's words (Subject).
MESSAGES = {
    "empty": "Nothing drawn yet: draw {a_one} in the box.",
    "filled": "The canvas is (almost) completely filled: clear it and draw a single {one}.",
    "too_small": "The drawing is too small to read: draw the {one} bigger, filling most of the box.",
}


@dataclass(frozen=True)
class Subject:
    """What a drawing for a dataset's models is of, in words: the page's title and hints follow
    the chosen run's dataset ("Draw a digit", "Draw a piece of clothing")."""

    one: str       # "digit": "draw the digit bigger"
    a_one: str     # "a digit": "draw a digit in the box"
    many: str      # "digits": "the training digits"
    title: str     # the page's title
    photo: str     # what the photo reader reads
    advice: str    # how to draw one so the model can read it


SUBJECTS = {
    "mnist": Subject("digit", "a digit", "digits", "Draw a digit", "a photo or scan of one handwritten digit",
                     "Draw one digit, large and centred, like MNIST's handwriting."),
    "fashion_mnist": Subject("item", "an item", "items", "Draw a piece of clothing",
                             "a photo of one piece of clothing, a shoe or a bag on plain ground",
                             "Draw one item — a T-shirt, trousers, a dress, a sandal, a bag… — large and "
                             "centred, filled in as a silhouette like Fashion-MNIST's photos."),
}


def subject(dataset: str) -> Subject:
    """The words for what a drawing for `dataset` is of (a digit for any dataset without its own)."""
    return SUBJECTS.get(dataset, SUBJECTS["mnist"])


def drawing_message(status: str, about: Subject = SUBJECTS["mnist"]) -> str:
    """What to do about a drawing that could not be read (status "empty", "filled", "too_small")."""
    return MESSAGES[status].format(one=about.one, a_one=about.a_one)

# ITU-R BT.601 luma weights, the same PIL uses for convert("L").
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True, repr=False)
class DrawingResult:
    """What `preprocess_drawing` made of a drawing; only status "ok" carries an image."""

    status: str  # "ok" | "empty" | "too_small" | "filled"
    message: str  # for people; "" when ok
    image: np.ndarray | None  # (28, 28) float32 in [0, 1] when ok, else None
    ink_fraction: float  # share of canvas pixels with ink
    # (top, left, bottom, right) of the ink on the canvas; bottom/right are exclusive,
    # so canvas[top:bottom, left:right] is the ink.
    bbox: tuple[int, int, int, int] | None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_uint8(self) -> np.ndarray:
        """The image as uint8 0..255, the dtype MNIST files use."""
        if not self.ok or self.image is None:
            raise ValueError(f"No image to convert: the drawing's status is {self.status!r}.")
        return np.round(self.image * 255.0).astype(np.uint8)

    def __repr__(self) -> str:
        shape = None if self.image is None else tuple(self.image.shape)
        return (
            f"DrawingResult(status={self.status!r}, ink_fraction={self.ink_fraction:.3f}, "
            f"bbox={self.bbox}, image_shape={shape})"
        )


# ---------------------------------------------------------------- input checks


def _as_float_image(image) -> np.ndarray:
    """Validate the shape and return float64 values; NaN becomes 0."""
    arr = np.asarray(image)
    shape = tuple(arr.shape)
    if arr.ndim not in (2, 3) or arr.size == 0:
        raise ValueError(f"Expected an image of shape (H, W) or (H, W, C), got shape {shape}.")
    if arr.ndim == 3 and not 1 <= arr.shape[2] <= 4:
        raise ValueError(f"Expected 1 to 4 colour channels, got shape {shape}.")
    if arr.dtype == np.uint8:
        # The canvas's own type (every stroke): already in range, nothing to clean; 3x faster.
        return arr * np.float32(1 / 255)
    try:
        values = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"Image of shape {shape} has non-numeric dtype {arr.dtype}.") from exc
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    return _to_unit_range(values, arr.dtype)


def _to_unit_range(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Map the values to [0, 1], guessing the scale: uint8-style 0..255 or already 0..1."""
    top = float(values.max())
    if dtype.kind in "iu" or top > 1.5:
        # Integers are 0..255 (or 16-bit); floats above 1.5 are clearly 0..255 too.
        scale = 255.0 if top <= 255 else 65535.0 if top <= 65535 else top
        values = values / scale
    return np.clip(values, 0.0, 1.0)


def _split_channels(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Luminance and alpha (None when the image has no alpha channel)."""
    if arr.ndim == 2:
        return arr, None
    channels = arr.shape[2]
    if channels == 1:
        return arr[..., 0], None
    if channels == 2:
        return arr[..., 0], arr[..., 1]
    lum = arr[..., :3] @ _LUMA
    return lum, (arr[..., 3] if channels == 4 else None)


def _border(values: np.ndarray) -> np.ndarray:
    return np.concatenate([values[0], values[-1], values[:, 0], values[:, -1]])


# ------------------------------------------------------------------ ink + polarity


def _ink(lum: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Ink in [0, 1], bright on dark, whatever the input's polarity."""
    if alpha is not None and (alpha < 0.5).any():
        return _ink_on_transparent(lum, alpha)
    gray = lum if alpha is None else lum * alpha
    return _ink_on_opaque(gray)


def _ink_on_transparent(lum: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """A transparent background is never ink, so the strokes' own colour sets polarity."""
    weight = float(alpha.sum())
    if weight == 0.0:
        return np.zeros_like(lum)
    # Composite over black (white strokes); dark strokes would vanish there, so invert them.
    stroke_lum = float((lum * alpha).sum()) / weight
    return (lum if stroke_lum >= 0.5 else 1.0 - lum) * alpha


def _ink_on_opaque(gray: np.ndarray) -> np.ndarray:
    """The border's median is the background: bright paper means dark ink, so invert."""
    if float(gray.max() - gray.min()) < MIN_CONTRAST:
        # Uniform: no background to tell apart; keep the canvas convention (bright = ink),
        # so an all-white canvas reads as filled and an all-black one as empty.
        return gray
    background = float(np.median(_border(gray)))
    if background > 0.5:
        gray, background = 1.0 - gray, 1.0 - background
    # Grey paper (a photo) is not ink: subtract its level.
    return np.clip((gray - background) / (1.0 - background), 0.0, 1.0)


# ----------------------------------------------------------------- status checks


def _ink_bbox(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _status(mask: np.ndarray, bbox: tuple[int, int, int, int] | None) -> str:
    count = int(mask.sum())
    if bbox is None:
        return "empty"
    if count / mask.size > FILLED_FRACTION:
        return "filled"
    if count < MIN_INK_PIXELS:
        return "empty"
    top, left, bottom, right = bbox
    extent = max(bottom - top, right - left)
    if extent < MIN_EXTENT_FRACTION * min(mask.shape):
        return "too_small"
    return "ok"


# ------------------------------------------------------------ MNIST normalisation


def _fit_box(crop: np.ndarray, box: int) -> np.ndarray:
    """Scale so the longer side is `box` px, keeping the aspect ratio, anti-aliased."""
    h, w = crop.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    # BOX is exact area averaging when shrinking (no ringing); LANCZOS is smoother when growing.
    resample = Image.Resampling.BOX if scale <= 1 else Image.Resampling.LANCZOS
    small = Image.fromarray(crop.astype(np.float32)).resize((new_w, new_h), resample)
    return np.clip(np.asarray(small, dtype=np.float64), 0.0, 1.0)


def _centre_of_mass(image: np.ndarray) -> tuple[float, float]:
    total = float(image.sum())
    rows = np.arange(image.shape[0])
    cols = np.arange(image.shape[1])
    return float(image.sum(axis=1) @ rows) / total, float(image.sum(axis=0) @ cols) / total


def _subpixel_shift(image: np.ndarray, fy: float, fx: float) -> np.ndarray:
    """Bilinear shift by fractions in [0, 1); one row/col bigger. Keeps mass, moves the CoM exactly."""
    h, w = image.shape
    out = np.zeros((h + 1, w + 1))
    out[:h, :w] += (1 - fy) * (1 - fx) * image
    out[1:, :w] += fy * (1 - fx) * image
    out[:h, 1:] += (1 - fy) * fx * image
    out[1:, 1:] += fy * fx * image
    return out


def _paste(field: np.ndarray, patch: np.ndarray, top: int, left: int) -> None:
    """Add `patch` at (top, left), clipped to the field."""
    size_h, size_w = field.shape
    t, lft = max(top, 0), max(left, 0)
    b = min(top + patch.shape[0], size_h)
    r = min(left + patch.shape[1], size_w)
    if b > t and r > lft:
        field[t:b, lft:r] += patch[t - top : b - top, lft - left : r - left]


def _clamped_offset(offset: float, extent: int, size: int) -> float:
    # Lopsided digits (a "7") could be pushed off the field; keep the whole digit
    # visible instead, at the cost of an off-centre mass in those rare cases.
    return min(max(offset, 0.0), max(size - extent - 1, 0.0))


def _centre_in_field(small: np.ndarray, size: int) -> np.ndarray:
    """Place `small` in a size x size field with its centre of mass at the centre."""
    centre = size / 2.0  # 14.0 for 28: where real MNIST puts it (see module docstring)
    cy, cx = _centre_of_mass(small)
    dy = _clamped_offset(centre - cy, small.shape[0], size)
    dx = _clamped_offset(centre - cx, small.shape[1], size)
    iy, ix = int(np.floor(dy)), int(np.floor(dx))
    field = np.zeros((size, size))
    _paste(field, _subpixel_shift(small, dy - iy, dx - ix), iy, ix)
    return field


def _crop(ink: np.ndarray, bbox: tuple[int, int, int, int], box: int) -> tuple[np.ndarray, list]:
    """The ink cropped to its box and scaled to `box` px, with the two as shown stages."""
    top, left, bottom, right = bbox
    crop = ink[top:bottom, left:right]
    small = _fit_box(crop, box)
    return small, [("3. cropped to the ink", crop), (f"4. scaled so its longer side is {box} px", small)]


def _normalise(small: np.ndarray, size: int) -> np.ndarray:
    field = _centre_in_field(small, size)
    peak = float(field.max())
    if peak > 0:
        # Every MNIST digit peaks at ~255; a faint or thin stroke gets the same contrast.
        field = field / peak
    return np.clip(field, 0.0, 1.0).astype(np.float32)


def preprocess_steps(image, *, size: int = 28, box: int = 20) -> tuple[DrawingResult, list[tuple[str, np.ndarray]]]:
    """`preprocess_drawing`, and its stages as (caption, float image in [0, 1]) to show one by
    one: the picture in grey, its ink, the crop, the 20 px digit, the centred 28×28 field."""
    stages: list[tuple[str, np.ndarray]] = []
    result = preprocess_drawing(image, size=size, box=box, stages=stages)
    if result.ok:
        stages.append((f"5. centred by its mass in {size}×{size}: what the model sees", result.image))
    return result, stages


def shrink_picture(image: np.ndarray, max_side: int = 560) -> np.ndarray:
    """A photo made ready for the canvas's steps: area-averaged down to `max_side` px on its
    longer side (a 25-megapixel upload would take ~600 MB as float64), then a 3×3 median filter:
    a photo's sensor noise leaves specks above the ink level all over the paper, and one speck
    in a corner stretched the crop to the whole picture (the digit then came out a third of its size)."""
    height, width = image.shape[:2]
    picture = Image.fromarray(image)
    if max(height, width) > max_side:
        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        picture = picture.resize(size, Image.Resampling.BOX)
    return np.asarray(picture.filter(ImageFilter.MedianFilter(3)), dtype=np.uint8)


def preprocess_drawing(image, *, size: int = 28, box: int = 20, stages: list | None = None) -> DrawingResult:
    """Canvas drawing (RGBA/RGB/gray, uint8 or float, any size) -> MNIST-style image.
    `stages`, a list, collects the steps' images on the way (see preprocess_steps).

    Never raises on odd values (NaN, all zero, 1x1 ...): those get a status instead.
    Raises ValueError only when `image` is not an image at all (wrong shape) or
    `size`/`box` are impossible.
    """
    if not 1 <= box <= size:
        raise ValueError(f"Need 1 <= box <= size, got box={box}, size={size}.")
    lum, alpha = _split_channels(_as_float_image(image))
    ink = _ink(lum, alpha)
    if stages is not None:
        stages += [("1. your picture, in grey", lum if alpha is None else lum * alpha),
                   ("2. the ink, bright on dark (paper removed)", ink)]
    mask = ink > INK_LEVEL
    bbox = _ink_bbox(mask) if mask.any() else None
    status = _status(mask, bbox)
    fraction = float(mask.mean())
    if status != "ok":
        shown_bbox = None if status == "empty" else bbox
        if stages is not None and shown_bbox is not None:
            stages += _crop(ink, shown_bbox, box)[1]
        return DrawingResult(status, drawing_message(status), None, fraction, shown_bbox)
    small, crop_stages = _crop(ink, bbox, box)
    if stages is not None:
        stages += crop_stages
    return DrawingResult("ok", "", _normalise(small, size), fraction, bbox)


# -------------------------------------------------------------------- uploads


def _open_image(raw: bytes, max_pixels: int, formats: tuple[str, ...] = ALLOWED_FORMATS) -> Image.Image:
    """Open and fully decode, refusing non-images, other formats and decompression bombs (the
    size is checked before any pixel is decoded)."""
    not_image = "The file is not an image PIL can read (PNG, JPEG, BMP, GIF)."
    try:
        with warnings.catch_warnings():
            # We enforce our own, lower pixel limit below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"The image has too many pixels (limit {max_pixels:,}).") from exc
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(not_image) from exc
    if img.format not in formats:
        raise ValueError(f"{not_image[:-1]}; this one is {img.format}.")
    width, height = img.size
    if width * height > max_pixels:
        raise ValueError(
            f"The image has too many pixels: {width}x{height} = {width * height:,}, "
            f"the limit is {max_pixels:,}."
        )
    try:
        img.load()
    except (OSError, ValueError) as exc:
        raise ValueError(f"The {img.format} image is damaged or truncated: {exc}") from exc
    return img


def _to_array(img: Image.Image) -> np.ndarray:
    """uint8 array: gray (H, W), gray+alpha (H, W, 2), RGB or RGBA."""
    # Phone photos store their rotation in EXIF; apply it so the digit is upright.
    img = ImageOps.exif_transpose(img)
    if img.mode in ("L", "LA", "RGB", "RGBA"):
        return np.array(img, dtype=np.uint8)
    if img.mode.startswith("I"):
        # 16-bit grey PNGs: scale 0..65535 down rather than clipping at 255.
        values = np.asarray(img, dtype=np.float64)
        scale = 257.0 if values.max() > 255 else 1.0
        return np.clip(np.round(values / scale), 0, 255).astype(np.uint8)
    has_alpha = "A" in img.getbands() or "transparency" in img.info
    return np.array(img.convert("RGBA" if has_alpha else "RGB"), dtype=np.uint8)


def load_image(
    data: bytes | str | os.PathLike,
    *,
    max_bytes: int = 5_000_000,
    max_pixels: int = 25_000_000,
) -> np.ndarray:
    """Decode a PNG/JPEG/BMP/GIF upload (bytes, path or file object) into a uint8 array.

    Returns (H, W) gray, (H, W, 2) gray+alpha, (H, W, 3) RGB or (H, W, 4) RGBA.
    Raises ValueError with a message for people when the file is too large, is not
    an image of those formats, or has too many pixels (a decompression bomb).
    """
    return _to_array(_open_image(read_bounded(data, max_bytes, "image"), max_pixels))


# The canvas (components/draw_canvas.js) sends its ink as side×side bytes in base64: the message
# comes from the browser, so it is as hostile as an upload. Its length is checked against the one
# length a canvas of this side can send before anything is decoded, and nothing is decompressed
# (a forged 324 KiB PNG once became 8,000×8,000 RGBA in the server: RSS 190 → 3,590 MiB).


def canvas_message_length(side: int) -> int:
    """The base64 length of a side×side canvas's ink."""
    return 4 * -(-side * side // 3)


def load_canvas_pixels(message, side: int) -> np.ndarray | None:
    """The canvas's message {"side", "pixels": base64 of side×side bytes, "strokes"} → its ink as a
    (side, side) uint8 array, 255 where it is white; None before the first stroke and after a
    Clear. UploadError (a ValueError) with a message for anything else."""
    if message is None:
        return None
    if not isinstance(message, dict) or not isinstance(message.get("pixels"), str):
        raise UploadError("The canvas sent something that is not a drawing. Clear it and draw again.")
    pixels, expected = message["pixels"], canvas_message_length(side)
    if message.get("side") != side or len(pixels) != expected:
        shown = f"a {len(pixels):,}-character" if len(pixels) < 10 * expected else "an oversized"
        raise UploadError(f"The drawing arrived as {shown} message; this {side}×{side} canvas sends "
                         f"{expected:,} characters. Clear it and draw again.")
    try:
        raw = base64.b64decode(pixels, validate=True)
    except (ValueError, binascii.Error):
        raise UploadError("The drawing arrived damaged (not base64). Clear it and draw again.") from None
    return np.frombuffer(raw, np.uint8).reshape(side, side)
