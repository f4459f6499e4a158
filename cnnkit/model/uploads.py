"""Files people upload: a `.keras` model, an experiment spec (JSON), an image.

An upload is hostile until proven otherwise. A model file passes `keras_file.read_keras_file`
first (the zip, an allowlist of built-in classes, the parameters and activations its config
implies, the weights file's links and sizes, all before anything is built), then its input and
output shapes are compared with the dataset's, and only then is it loaded, with Keras' own
`safe_mode=True` as a second wall, and the loaded model checked again.

TensorFlow is imported lazily (inside `load_uploaded_model`, via `cnnkit.model.models`), so the
checks and the JSON/image readers stay cheap.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from cnnkit.errors import UploadError
from cnnkit.files import read_upload
from cnnkit.model.keras_file import MAX_MODEL_BYTES, KerasFile, brief, read_keras_file
from cnnkit.shapes import format_shape
from cnnkit.specs import ExperimentSpec

MB = 1_000_000
MAX_SPEC_BYTES = 200_000             # a spec is a few kB; the dashboard's own exports are < 10 kB
MAX_IMAGE_BYTES = 5 * MB
MAX_IMAGE_PIXELS = 25_000_000

# ---------------------------------------------------------------------------
# .keras models


def check_upload(data: Any, dataset_info, *, max_bytes: int = MAX_MODEL_BYTES,
                 max_params: int | None = None) -> tuple[bytes, KerasFile]:
    """Every check that needs no TensorFlow, the dataset's shapes included: (bytes, KerasFile)."""
    from cnnkit.limits import Limits

    limits = Limits.from_env()
    max_params = limits.max_params if max_params is None else max_params
    raw = read_upload(data, max_bytes, "model file")
    checked = read_keras_file(raw, max_params=max_params, max_activation_mb=limits.max_activation_mb,
                              max_bytes=max_bytes)
    budget = checked.budget
    if budget.input_shape != tuple(dataset_info.input_shape):
        raise UploadError(f"the model expects inputs of shape {format_shape(budget.input_shape)}, but "
                          f"{dataset_info.title} images are {format_shape(dataset_info.input_shape)} "
                          f"(height×width×channels)")
    if budget.output_shape != (dataset_info.num_classes,):
        raise UploadError(f"the model's output has shape {format_shape(budget.output_shape)}, but "
                          f"{dataset_info.title} has {dataset_info.num_classes} classes: the last layer "
                          f"must be Dense({dataset_info.num_classes})")
    return raw, checked


def load_uploaded_model(data: Any, dataset_info, *, max_bytes: int = MAX_MODEL_BYTES,
                        max_params: int | None = None):
    """An uploaded `.keras` file → a Keras model that fits `dataset_info`, or UploadError.

    Imports TensorFlow (lazily). The model is loaded uncompiled, with safe_mode=True.
    """
    from cnnkit.limits import Limits

    max_params = Limits.from_env().max_params if max_params is None else max_params
    raw, _ = check_upload(data, dataset_info, max_bytes=max_bytes, max_params=max_params)

    model = load_keras_bytes(raw)
    check_model_fits(model, dataset_info, max_params)
    return model


def load_keras_bytes(raw: bytes):
    """Checked bytes → the Keras model (TensorFlow loads here), uncompiled, with safe_mode on."""
    from cnnkit.model.models import load_model

    with tempfile.TemporaryDirectory(prefix="cnnkit-upload-") as folder:
        path = os.path.join(folder, "upload.keras")  # Keras wants the suffix
        with open(path, "wb") as handle:
            handle.write(raw)
        try:
            return load_model(path)
        except Exception as exc:  # Keras raises many types for a bad file; the person needs one message
            raise UploadError(f"Keras could not load the model: {brief(exc)}") from None


def check_model_fits(model, dataset_info, max_params: int) -> None:
    """One image input of the dataset's shape, one output over its classes, within the cap."""
    try:
        model.inputs  # noqa: B018 (an unbuilt model has none: Keras raises AttributeError)
    except (AttributeError, ValueError):
        raise UploadError("the model was saved before it was built, so it has no input shape: build it "
                          "with keras.Input(shape=...) as its first layer and save it again") from None
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise UploadError(f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          f"it needs exactly one image input and one class output")
    input_shape = tuple(model.inputs[0].shape[1:])
    if input_shape != tuple(dataset_info.input_shape):
        raise UploadError(f"the model expects inputs of shape {format_shape(input_shape)}, but "
                          f"{dataset_info.title} images are {format_shape(dataset_info.input_shape)} "
                          f"(height×width×channels)")
    output_shape = tuple(model.outputs[0].shape[1:])
    if output_shape != (dataset_info.num_classes,):
        raise UploadError(f"the model's output has shape {format_shape(output_shape)}, but {dataset_info.title} "
                          f"has {dataset_info.num_classes} classes: the last layer must be "
                          f"Dense({dataset_info.num_classes})")
    params = model.count_params()
    if params > max_params:
        raise UploadError(f"the model has {params:,} parameters; this server allows {max_params:,} "
                          f"(CNNKIT_MAX_PARAMS)")


def output_kind(model) -> str:
    """"softmax" if the last layer already outputs probabilities, else "logits"."""
    last = model.layers[-1]
    activation = getattr(last, "activation", None)
    if getattr(activation, "__name__", "") == "softmax" or type(last).__name__ == "Softmax":
        return "softmax"
    return "logits"


# ---------------------------------------------------------------------------
# Specs and images


def read_spec_upload(data: Any, max_bytes: int = MAX_SPEC_BYTES) -> ExperimentSpec:
    """An uploaded spec JSON file → a validated ExperimentSpec.

    File problems (size, encoding, not JSON) raise UploadError; content problems raise
    SpecError naming the field, as for specs typed on the Build page.
    """
    raw = read_upload(data, max_bytes, "spec file")
    try:
        text = raw.decode("utf-8-sig")  # a BOM from Windows editors is fine
    except UnicodeDecodeError as exc:
        raise UploadError(f"the spec file is not UTF-8 text (byte {exc.start} is not valid); "
                          f"upload the .json file the dashboard or the CLI wrote") from None
    if "\x00" in text:
        raise UploadError("the spec file contains NUL bytes: it is binary, not JSON text")
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise UploadError("the spec file is nested too deeply to be an experiment spec") from None
    except ValueError as exc:
        raise UploadError(f"the spec file is not valid JSON ({brief(exc)})") from None
    if not isinstance(parsed, dict):
        raise UploadError(f"the spec file must hold a JSON object with 'layers', 'dataset' and "
                          f"'training'; it holds a {type(parsed).__name__}")
    return ExperimentSpec.from_dict(parsed)


def load_image_upload(data: Any, *, max_bytes: int = MAX_IMAGE_BYTES, max_pixels: int = MAX_IMAGE_PIXELS):
    """An uploaded picture → uint8 array (see drawing.load_image), or UploadError."""
    from cnnkit.data.drawing import load_image

    raw = read_upload(data, max_bytes, "image")
    try:
        return load_image(raw, max_bytes=max_bytes, max_pixels=max_pixels)
    except (ValueError, TypeError) as exc:
        raise UploadError(str(exc)) from None
