"""Hostile `.keras` files, made from a good one: what the import checks must refuse.

The tests refuse each of them; `python -m cnnkit.lab.bench hostile` times each refusal through
`cnnkit import` and measures its peak memory. Each maker takes the bytes of a good model file
(a Sequential ending in a Dense layer named "dense", as `good_model_bytes` saves) and returns
new bytes. Plain zip and h5py edits: no TensorFlow.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable

import h5py
import numpy as np


def rezip(raw: bytes, *, config=None, weights: bytes | None = None, extra: dict | None = None) -> bytes:
    """A copy of a .keras archive with config.json edited by `config(dict)`, new weights and/or
    `extra` members ({name: bytes}) added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "config.json" and config is not None:
                parsed = json.loads(data)
                config(parsed)
                data = json.dumps(parsed).encode()
            if name == "model.weights.h5" and weights is not None:
                data = weights
            dst.writestr(name, data)
        for name, data in (extra or {}).items():
            dst.writestr(name, data)
    return out.getvalue()


def edit_weights(raw: bytes, edit: Callable[[h5py.File], None]) -> bytes:
    """The archive with its weights file rewritten by `edit(h5 file opened for writing)`."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        buffer = io.BytesIO(archive.read("model.weights.h5"))
    with h5py.File(buffer, "r+") as h5:
        edit(h5)
    return rezip(raw, weights=buffer.getvalue())


def _dense(config: dict) -> dict:
    return next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Dense")


def huge_dense(raw: bytes, units: int = 750_000_000) -> bytes:
    """config.json declares Dense(750,000,000): 9.7 GB if Keras builds it."""
    def edit(config):
        _dense(config)["config"]["units"] = units
    return rezip(raw, config=edit)


def lying_build_shape(raw: bytes) -> bytes:
    """The Dense layer's build_config declares a 10⁸-wide input (Keras builds from it)."""
    def edit(config):
        _dense(config)["build_config"] = {"input_shape": [None, 100_000_000]}
    return rezip(raw, config=edit)


def unbuilt(raw: bytes) -> bytes:
    """A Sequential with no input layer and no built shape (saved before it saw data)."""
    def edit(config):
        layers = config["config"]["layers"]
        config["config"]["layers"] = [layer for layer in layers if layer["class_name"] != "InputLayer"]
        config["config"].pop("build_input_shape", None)
        for layer in config["config"]["layers"]:
            layer.pop("build_config", None)
    return rezip(raw, config=edit)


def _replace_kernel(h5: h5py.File, make: Callable[[h5py.Group, str], None]) -> None:
    group = h5["layers/dense/vars"]
    del group["0"]
    make(group, "0")


def shape_bomb(raw: bytes) -> bytes:
    """The Dense kernel declared as 60,000 × 60,000 float32 (13 GB) but storing almost nothing."""
    return edit_weights(raw, lambda h5: _replace_kernel(h5, lambda g, n: g.create_dataset(
        n, shape=(60_000, 60_000), dtype="float32", chunks=(1000, 1000), compression="gzip")))


def external_link(raw: bytes, target: str = "/tmp/cnnkit-other.h5") -> bytes:
    """The kernel is an HDF5 external link into another file on the server."""
    return edit_weights(raw, lambda h5: _replace_kernel(h5, lambda g, n: g.__setitem__(
        n, h5py.ExternalLink(target, "/secret"))))


def external_storage(raw: bytes, target: str = "/etc/passwd") -> bytes:
    """The kernel's bytes are stored in an external raw file: it reads /etc/passwd as weights."""
    def make(group, name):
        group.create_dataset(name, shape=(64,), dtype="uint8", external=[(target, 0, 64)])
    return edit_weights(raw, lambda h5: _replace_kernel(h5, make))


def virtual_dataset(raw: bytes, target: str = "/tmp/cnnkit-other.h5") -> bytes:
    """The kernel is a virtual dataset mapping a dataset of another file."""
    def make(group, name):
        layout = h5py.VirtualLayout(shape=(16,), dtype="float32")
        layout[:] = h5py.VirtualSource(target, "/secret", shape=(16,))
        group.create_virtual_dataset(name, layout, fillvalue=0)
    return edit_weights(raw, lambda h5: _replace_kernel(h5, make))


def nan_weights(raw: bytes) -> bytes:
    """Every weight of the Dense kernel is NaN (what a diverged run saves)."""
    def edit(h5):
        h5["layers/dense/vars/0"][...] = np.nan
    return edit_weights(raw, edit)


def inf_weights(raw: bytes) -> bytes:
    def edit(h5):
        h5["layers/dense/vars/0"][...] = np.inf
    return edit_weights(raw, edit)


HOSTILE: dict[str, Callable[[bytes], bytes]] = {
    "huge Dense in config.json": huge_dense,
    "build_config lies about the input": lying_build_shape,
    "unbuilt model": unbuilt,
    "HDF5 shape bomb": shape_bomb,
    "HDF5 external link": external_link,
    "HDF5 external storage (/etc/passwd)": external_storage,
    "HDF5 virtual dataset": virtual_dataset,
    "all-NaN weights": nan_weights,
    "all-inf weights": inf_weights,
}
