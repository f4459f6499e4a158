"""cnnkit.sysinfo: the Home page's cheap source guess must agree with what load_raw really loads."""

from __future__ import annotations

import numpy as np
import pytest

from cnnkit import sysinfo
from cnnkit.data import clear_cache, load_raw, write_idx


@pytest.fixture(autouse=True)
def _fresh_data_cache():
    clear_cache()
    yield
    clear_cache()


def write_tiny_idx(folder, n_train=30, n_test=10):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", (np.arange(n) % 10).astype(np.uint8))


def test_offline_without_data_the_hint_is_the_sample_as_load_raw_says():
    for name in ("mnist", "fashion_mnist"):
        hint = sysinfo.source_hint(name)
        assert hint.kind == "sample" and hint.is_sample
        assert "SAMPLE (4,000 train / 1,000 test" in hint.text
        assert load_raw(name).source.kind == "sample"


def test_cifar10_offline_is_missing_with_how_to_get_it():
    hint = sysinfo.source_hint("cifar10")
    assert hint.kind == "missing" and "internet" in hint.text


def test_a_data_dir_wins_as_in_load_raw(tmp_path, monkeypatch):
    write_tiny_idx(tmp_path / "mnist")
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(tmp_path))
    hint = sysinfo.source_hint("mnist")
    assert hint.kind == "data_dir" and str(tmp_path / "mnist") in hint.text
    assert load_raw("mnist").source.kind == "data_dir"
    # Fashion-MNIST has no folder there: back to the sample, for both
    assert sysinfo.source_hint("fashion_mnist").kind == "sample" == load_raw("fashion_mnist").source.kind


def test_a_half_filled_data_dir_is_not_claimed(tmp_path):
    write_tiny_idx(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert sysinfo.source_hint("mnist", str(tmp_path)).kind == "sample"


def test_keras_cache_then_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_tiny_idx(tmp_path / "datasets" / "fashion-mnist")
    assert sysinfo.source_hint("fashion_mnist").kind == "keras"
    assert load_raw("fashion_mnist").source.kind == "keras"
    monkeypatch.setenv("CNNKIT_OFFLINE", "0")
    hint = sysinfo.source_hint("mnist")
    assert hint.kind == "download" and "the bundled SAMPLE" in hint.text


def test_gpu_from_the_driver_file(tmp_path, monkeypatch):
    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54\nGCC version: 12\n")
    assert sysinfo.gpu_description(str(proc)) == "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54"
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi there
    assert sysinfo.gpu_description(str(tmp_path / "absent")) is None


def test_versions_and_cpus_without_imports():
    import sys

    had_tf = "tensorflow" in sys.modules
    info = sysinfo.versions()
    assert info["streamlit"] and info["tensorflow"].startswith(("tensorflow", "not installed"))
    assert ("tensorflow" in sys.modules) == had_tf
    assert sysinfo.cpu_count() >= 1
