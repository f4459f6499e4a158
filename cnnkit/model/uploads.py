"""Files people upload: a `.keras` model, an experiment spec (JSON), an image.

An upload is hostile until proven otherwise. A `.keras` file is a zip archive whose
`config.json` names the classes Keras will instantiate, so before Keras sees the file we open
the zip ourselves and refuse anything that is not a plain stack of built-in layers: Lambda
layers (they carry Python bytecode), custom or registered classes, layers that read files on
the server (TFSMLayer, TextVectorization, ...), unknown modules, oversized or zip-bomb members.
Only then is the file loaded, with Keras' own `safe_mode=True` as a second wall, and the
loaded model is checked against the dataset (input shape, number of classes, parameter cap).

TensorFlow is imported lazily (inside `load_uploaded_model`, via `cnnkit.model.models`), so the
checks and the JSON/image readers stay cheap.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from collections.abc import Iterator
from typing import Any

from cnnkit.errors import UploadError
from cnnkit.files import read_bounded
from cnnkit.shapes import format_shape
from cnnkit.specs import ExperimentSpec

MB = 1_000_000
MAX_MODEL_BYTES = 100 * MB           # the .keras file as uploaded
MAX_CONFIG_BYTES = 5 * MB            # config.json inside it (a Normalization layer stores its mean)
MAX_SPEC_BYTES = 200_000             # a spec is a few kB; the dashboard's own exports are < 10 kB
MAX_IMAGE_BYTES = 5 * MB
MAX_IMAGE_PIXELS = 25_000_000

ZIP_MAGIC = b"PK\x03\x04"
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
KERAS_MEMBERS = {"config.json", "metadata.json", "model.weights.h5"}
REQUIRED_MEMBERS = ("config.json", "model.weights.h5")

# What an uploaded model may be made of: (module in config.json, class name). An allowlist,
# not a blocklist: a class Keras adds next year is refused until someone looks at it.
MODEL_CLASSES = {("keras", "Sequential"), ("keras", "Functional"), ("keras", "Model"),
                 ("keras.src.models.functional", "Functional"),
                 ("keras.src.models.sequential", "Sequential")}
LAYER_CLASSES = frozenset({
    "InputLayer", "Rescaling", "Normalization", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
    "MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D",
    "Dropout", "SpatialDropout2D", "GaussianNoise", "BatchNormalization", "LayerNormalization",
    "Flatten", "Reshape", "ZeroPadding2D", "Cropping2D", "Dense", "Activation", "ReLU",
    "LeakyReLU", "ELU", "PReLU", "Softmax", "Add", "Concatenate", "Average", "Maximum",
    "Multiply", "Subtract", "Identity", "RandomFlip", "RandomRotation", "RandomTranslation",
    "RandomZoom",
})
HELPER_CLASSES = {
    "keras": {"DTypePolicy", "FloatDTypePolicy"},
    "keras.initializers": {"Constant", "GlorotNormal", "GlorotUniform", "HeNormal", "HeUniform",
                           "Identity", "IdentityInitializer", "LecunNormal", "LecunUniform", "Ones",
                           "Orthogonal", "OrthogonalInitializer", "RandomNormal", "RandomUniform",
                           "TruncatedNormal", "VarianceScaling", "Zeros"},
    "keras.regularizers": {"L1", "L1L2", "L2", "OrthogonalRegularizer"},
    "keras.constraints": {"MaxNorm", "MinMaxNorm", "NonNeg", "UnitNorm"},
}
# Markers Keras writes for graph wiring (no module): harmless. "__lambda__" is refused below.
WIRING_CLASSES = {"__keras_tensor__"}


# ---------------------------------------------------------------------------
# Bytes in


def read_upload(data: Any, max_bytes: int, what: str = "file") -> bytes:
    """Bytes from bytes, a file object (e.g. Streamlit's UploadedFile) or a path; never more
    than max_bytes are read into memory, and an empty file is refused."""
    raw = read_bounded(data, max_bytes, what)
    if not raw:
        raise UploadError(f"the {what} is empty")
    return raw


def _kind_of(raw: bytes) -> str:
    """A guess at what a refused file really is, for the message."""
    if raw.startswith(HDF5_MAGIC):
        return "an HDF5 (.h5) file: legacy Keras models are not accepted; re-save it with model.save('name.keras')"
    if raw[:8].startswith((b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")):
        return "an image"
    if raw.lstrip()[:1] in (b"{", b"["):
        return "JSON text"
    return "some other kind of file"


# ---------------------------------------------------------------------------
# .keras models


def check_keras_archive(raw: bytes, *, max_uncompressed: int) -> dict:
    """Open the zip, check its members and its config.json; returns the parsed config."""
    if not raw.startswith(ZIP_MAGIC):
        raise UploadError(f"this is not a .keras model: a .keras file is a zip archive, and this looks "
                          f"like {_kind_of(raw)}")
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise UploadError("the .keras file is truncated or damaged: its zip directory cannot be "
                          "read (was the upload or download interrupted?)") from None
    with archive:
        names = [member.filename for member in members]
        strange = sorted(set(names) - KERAS_MEMBERS)
        if strange:
            shown = ", ".join(repr(name[:60]) for name in strange[:5])
            raise UploadError(f"the .keras archive holds files a saved Keras model never has ({shown}); "
                              f"only {', '.join(sorted(KERAS_MEMBERS))} are accepted")
        if len(names) != len(set(names)):
            raise UploadError("the .keras archive lists the same file twice")
        missing = [name for name in REQUIRED_MEMBERS if name not in names]
        if missing:
            raise UploadError(f"the .keras archive has no {' and no '.join(missing)}: it is not a saved "
                              f"Keras 3 model")
        total = sum(member.file_size for member in members)
        if total > max_uncompressed:
            raise UploadError(f"the model unpacks to {total / MB:,.0f} MB; the limit is "
                              f"{max_uncompressed / MB:,.0f} MB")
        config_info = archive.getinfo("config.json")
        if config_info.file_size > MAX_CONFIG_BYTES:
            raise UploadError(f"config.json is {config_info.file_size / MB:,.1f} MB; at most "
                              f"{MAX_CONFIG_BYTES / MB:g} MB")
        try:
            # testzip reads every member and checks its CRC: a truncated or altered file fails here.
            bad = archive.testzip()
            text = archive.read("config.json")
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
            raise UploadError(f"the .keras file is truncated or damaged ({_short(exc)})") from None
        if bad is not None:
            raise UploadError(f"the .keras file is damaged: {bad!r} fails its checksum")
    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UploadError(f"config.json in the .keras file is not valid JSON ({_short(exc)})") from None
    check_model_config(config)
    return config


def _short(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _layer_name(node: dict) -> str:
    name = node.get("name")
    if not isinstance(name, str) and isinstance(node.get("config"), dict):
        name = node["config"].get("name")
    return name if isinstance(name, str) else ""


def _is_helper(node: dict) -> bool:
    module, class_name = node.get("module"), node.get("class_name")
    if not isinstance(class_name, str) or not isinstance(module, (str, type(None))):
        return False
    return class_name in HELPER_CLASSES.get(module, ()) or class_name in WIRING_CLASSES


def _objects(config: Any) -> Iterator[tuple[dict, str]]:
    """Every dict with a "class_name" in the config, with the name of the layer it sits in.
    Iterative: an upload can nest deeper than Python's recursion limit."""
    stack: list[tuple[Any, str]] = [(config, "")]
    while stack:
        node, layer = stack.pop()
        if isinstance(node, dict):
            if "class_name" in node:
                if not _is_helper(node):  # a layer (or model): name it in messages
                    layer = _layer_name(node) or layer
                yield node, layer
            for key, value in node.items():
                if key != "compile_config":  # ignored: models are loaded with compile=False
                    stack.append((value, layer))
        elif isinstance(node, list):
            stack.extend((item, layer) for item in node)


def _safe(value: Any, limit: int = 60) -> str:
    """repr() for a message, short, and safe for anything (huge ints and deep lists raise)."""
    try:
        text = repr(value)
    except (ValueError, RecursionError):
        text = f"<a {type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(layer: str) -> str:
    return f"layer '{layer[:60]}'" if layer else "the model"


def check_model_config(config: Any) -> None:
    """Refuse any class that is not a built-in Keras layer/helper on the allowlist."""
    top = (config.get("module"), config.get("class_name")) if isinstance(config, dict) else None
    if not all(isinstance(part, str) for part in top or [None]) or top not in MODEL_CLASSES:
        shown = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise UploadError(f"the file does not hold a Keras Sequential or Functional model "
                          f"(its top level is {_safe(shown)})")
    for node, layer in _objects(config):
        module, class_name = node.get("module"), node.get("class_name")
        registered = node.get("registered_name")
        if not isinstance(class_name, str) or not all(
                isinstance(value, (str, type(None))) for value in (module, registered)):
            raise UploadError(f"{_describe(layer)} has an unreadable class description")
        shown = class_name[:60]
        if class_name == "__lambda__" or class_name == "Lambda":
            raise UploadError(f"{_describe(layer)} is a Lambda layer: it carries Python code, and code "
                              f"from an upload is never run. Rebuild the model from built-in layers")
        if class_name in WIRING_CLASSES and module is None:
            continue
        if registered not in (None, class_name):
            raise UploadError(f"{_describe(layer)} uses the custom class {shown!r} (registered as "
                              f"{str(registered)[:60]!r}); only built-in Keras layers are accepted")
        if (module, class_name) in MODEL_CLASSES:
            continue
        if module == "keras.layers":
            if class_name not in LAYER_CLASSES:
                raise UploadError(f"{_describe(layer)} is a {shown} layer, which is not accepted in "
                                  f"uploaded models. Accepted layers: {', '.join(sorted(LAYER_CLASSES))}")
            continue
        if class_name in HELPER_CLASSES.get(module, ()):
            continue
        where = f"module {str(module)[:60]!r}" if module else "no Keras module (a custom object)"
        raise UploadError(f"{_describe(layer)} refers to {shown!r} from {where}; only built-in Keras "
                          f"layers, initializers, regularizers and constraints are accepted")


def load_uploaded_model(data: Any, dataset_info, *, max_bytes: int = MAX_MODEL_BYTES,
                        max_params: int | None = None):
    """An uploaded `.keras` file → a Keras model that fits `dataset_info`, or UploadError.

    Imports TensorFlow (lazily). The model is loaded uncompiled, with safe_mode=True.
    """
    from cnnkit.limits import Limits

    max_params = Limits.from_env().max_params if max_params is None else max_params
    raw = read_upload(data, max_bytes, "model file")
    # float32 weights are 4 bytes a parameter; the config and metadata get a few MB on top.
    check_keras_archive(raw, max_uncompressed=4 * max_params + 2 * MAX_CONFIG_BYTES)

    from cnnkit.model.models import load_model  # TensorFlow loads here

    with tempfile.TemporaryDirectory(prefix="cnnkit-upload-") as folder:
        path = os.path.join(folder, "upload.keras")  # Keras wants the suffix
        with open(path, "wb") as handle:
            handle.write(raw)
        try:
            model = load_model(path)
        except Exception as exc:  # Keras raises many types for a bad file; the person needs one message
            raise UploadError(f"Keras could not load the model: {_short(exc)}") from None
    check_model_fits(model, dataset_info, max_params)
    return model


def check_model_fits(model, dataset_info, max_params: int) -> None:
    """One image input of the dataset's shape, one output over its classes, within the cap."""
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
        raise UploadError(f"the spec file is not valid JSON ({_short(exc)})") from None
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
