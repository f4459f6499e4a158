"""A `.keras` file is hostile until proven otherwise: checked here before Keras or numpy reads it.

A `.keras` file is a zip of config.json, metadata.json and model.weights.h5. Each wall comes
before anything is allocated on the file's word:
1. the zip: its members, their declared sizes, their checksums (`check_keras_archive`);
2. config.json: an allowlist of classes (`check_model_config`): no Lambda layers (they carry
   Python bytecode), no custom or registered classes, no layers that read files on the server;
   then the parameters and activations its layers imply (`keras_config.config_budget`);
3. model.weights.h5: every link and dataset inspected before one is read (`check_weights_file`):
   no external or soft links, no external storage, no virtual datasets (with keras 3.10 an
   upload whose weights pointed at /etc/passwd was accepted), declared shape × dtype within the
   cap (a shape bomb peaked at 13 GB), and no NaN or infinite weight.
`read_keras_file` runs all three; the upload path and the numpy loader (`lite`) both use it.
No TensorFlow here; h5py is imported when the weights are checked.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from cnnkit.errors import UploadError
from cnnkit.files import read_upload
from cnnkit.model.keras_config import ConfigBudget, config_budget

MB = 1_000_000
MAX_MODEL_BYTES = 100 * MB           # the .keras file as uploaded
MAX_CONFIG_BYTES = 5 * MB            # config.json inside it (a Normalization layer stores its mean)
MAX_H5_OBJECTS = 20_000              # groups and datasets in the weights file (cnnkit's: ~50)
WEIGHT_COPIES = 3                    # a compiled model also saves its optimizer state (Adam: 2 per weight)
EVAL_BATCH = 256                     # images per forward pass when a model is evaluated

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
    return _checked_archive(raw, max_uncompressed)[0]


def _checked_archive(raw: bytes, max_uncompressed: int) -> tuple[dict, bytes]:
    """The zip's checks, each member read once (which checks its CRC): (config, weights bytes)."""
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
        contents = {name: _read_member(archive, name) for name in names}
    try:
        config = json.loads(contents["config.json"])
    except (ValueError, RecursionError) as exc:
        raise UploadError(f"config.json in the .keras file is not valid JSON ({brief(exc)})") from None
    check_model_config(config)
    return config, contents["model.weights.h5"]


def _read_member(archive: zipfile.ZipFile, name: str) -> bytes:
    """One member's bytes; reading checks its CRC, so a truncated or altered file fails here."""
    try:
        return archive.read(name)
    except zipfile.BadZipFile as exc:
        if "CRC" in str(exc):
            raise UploadError(f"the .keras file is damaged: {name!r} fails its checksum") from None
        raise UploadError(f"the .keras file is truncated or damaged ({brief(exc)})") from None
    except (OSError, ValueError, EOFError, NotImplementedError, zlib.error) as exc:
        raise UploadError(f"the .keras file is truncated or damaged ({brief(exc)})") from None


def brief(exc: BaseException, limit: int = 200) -> str:
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


# ---------------------------------------------------------------------------
# model.weights.h5


def _h5_items(h5) -> Iterator[tuple[str, Any]]:
    """(path, object) of every group and dataset, refusing any link that leaves the file.
    Walked by hand: h5py follows external and soft links when an item is opened."""
    import h5py

    stack, seen = [("", h5)], 0
    while stack:
        prefix, group = stack.pop()
        for name in group:
            path = f"{prefix}/{name}"
            seen += 1
            if seen > MAX_H5_OBJECTS:
                raise UploadError(f"the weights file holds more than {MAX_H5_OBJECTS:,} objects")
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                raise UploadError(f"the weights file links {path[:80]!r} to another file "
                                  f"({str(link.filename)[:60]!r}): refused, a model's weights are in the model")
            if isinstance(link, h5py.SoftLink):
                raise UploadError(f"the weights file has a soft link at {path[:80]!r}; saved models have none")
            item = group[name]
            if isinstance(item, h5py.Group):
                stack.append((path, item))
            elif isinstance(item, h5py.Dataset):
                yield path, item
            else:
                raise UploadError(f"the weights file holds a {type(item).__name__} at {path[:80]!r}")


def check_weights_file(weights: bytes, max_floats: int) -> int:
    """Refuse a weights file that reaches outside itself, declares more than `max_floats`
    numbers in all, or holds a NaN/infinite weight; returns the number of weights."""
    import h5py

    try:
        h5 = h5py.File(io.BytesIO(weights), "r")
    except (OSError, ValueError) as exc:
        raise UploadError(f"model.weights.h5 is not a readable HDF5 file ({brief(exc)})") from None
    datasets, total = [], 0
    with h5:
        for path, dataset in _h5_items(h5):
            if dataset.is_virtual:
                raise UploadError(f"the weights {path[:80]!r} are a virtual dataset that maps other files: refused")
            if dataset.external:
                raise UploadError(f"the weights {path[:80]!r} are stored in an external file "
                                  f"({str(dataset.external[0][0])[:60]!r}): refused")
            if dataset.dtype.kind not in "fiub" or dataset.dtype.itemsize > 8 or dataset.shape is None:
                raise UploadError(f"the weights {path[:80]!r} are not numbers (HDF5 type {str(dataset.dtype)[:40]})")
            total += math.prod(dataset.shape)
            if total > max_floats:
                raise UploadError(f"the weights file declares more than {max_floats:,} numbers (its "
                                  f"{path[:80]!r} alone has shape {dataset.shape}): refused before reading")
            datasets.append((path, dataset))
        for path, dataset in datasets:  # within the cap: now they may be read
            try:
                values = dataset[()]
            except (OSError, ValueError, TypeError) as exc:
                raise UploadError(f"the weights {path[:80]!r} cannot be read ({brief(exc)})") from None
            if values.dtype.kind == "f" and not np.isfinite(values).all():
                bad = int(values.size - np.isfinite(values).sum())
                raise UploadError(f"the weights {path[:80]!r} hold {bad:,} NaN or infinite values of "
                                  f"{values.size:,}: the model diverged when it was trained")
    return total


# ---------------------------------------------------------------------------
# All three walls


@dataclass(frozen=True, repr=False)
class KerasFile:
    """A checked `.keras` file: its config, its weights file's bytes, and what the config implies."""

    config: dict
    weights: bytes
    budget: ConfigBudget

    def __repr__(self) -> str:
        return f"KerasFile({self.config.get('class_name')}, {self.budget!r})"


def read_model_file(path) -> KerasFile:
    """A model file from a runs folder, through the upload checks with this server's caps
    (CNNKIT_MAX_PARAMS, CNNKIT_MAX_ACTIVATION_MB): the folder may be an unpacked zip someone shared."""
    from cnnkit.limits import Limits

    limits = Limits.from_env()
    return read_keras_file(path, max_params=limits.max_params, max_activation_mb=limits.max_activation_mb)


def read_keras_file(data: Any, *, max_params: int, max_activation_mb: float,
                    max_bytes: int = MAX_MODEL_BYTES) -> KerasFile:
    """A path, bytes or file object → a checked KerasFile, or UploadError with the reason."""
    raw = read_upload(data, max_bytes, "model file")
    floats = WEIGHT_COPIES * max_params
    config, weights = _checked_archive(raw, 4 * floats + 2 * MAX_CONFIG_BYTES)
    # an evaluation batch of float32 activations within the deployment's activation cap
    budget = config_budget(config, max_params=max_params,
                           max_activation_floats=int(max_activation_mb * 1e6 / 4 / EVAL_BATCH))
    check_weights_file(weights, floats)
    return KerasFile(config, weights, budget)
