"""cnnkit.sysinfo: the machine's facts from /proc, and the Home page's cheap source guess, which
must agree with what load_raw really loads."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from cnnkit import sysinfo
from cnnkit.data import sources
from cnnkit.data.idx import write_idx
from cnnkit.data.sources import clear_cache, load_raw


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
        hint = sources.source_hint(name)
        assert hint.kind == "sample" and hint.is_sample
        assert "SAMPLE (4,000 train / 1,000 test" in hint.text
        assert load_raw(name).source.kind == "sample"


def test_cifar10_offline_is_missing_with_how_to_get_it():
    hint = sources.source_hint("cifar10")
    assert hint.kind == "missing" and "internet" in hint.text


def test_a_data_dir_wins_as_in_load_raw(tmp_path, monkeypatch):
    write_tiny_idx(tmp_path / "mnist")
    monkeypatch.setenv("CNNKIT_DATA_DIR", str(tmp_path))
    hint = sources.source_hint("mnist")
    assert hint.kind == "data_dir" and str(tmp_path / "mnist") in hint.text
    assert load_raw("mnist").source.kind == "data_dir"
    # Fashion-MNIST has no folder there: back to the sample, for both
    assert sources.source_hint("fashion_mnist").kind == "sample" == load_raw("fashion_mnist").source.kind


def test_a_half_filled_data_dir_is_not_claimed(tmp_path):
    write_tiny_idx(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    assert sources.source_hint("mnist", str(tmp_path)).kind == "sample"


def test_keras_cache_then_download(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    write_tiny_idx(tmp_path / "datasets" / "fashion-mnist")
    assert sources.source_hint("fashion_mnist").kind == "keras"
    assert load_raw("fashion_mnist").source.kind == "keras"
    monkeypatch.setenv("CNNKIT_OFFLINE", "0")
    hint = sources.source_hint("mnist")
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


# ---------------------------------------------------------------------------
# The machine and its processes (moved here from cnnkit.lab.bench)


def test_machine_description_names_cpu_cores_and_versions():
    info = sysinfo.machine_info(gpus=[])
    assert info["usable_cores"] >= 1 and isinstance(info["bf16"], bool)
    text = sysinfo.describe_machine(info)
    assert info["cpu"] in text and f"{info['usable_cores']} cores" in text and "no GPU" in text
    assert f"Keras {info['versions']['keras']}" in text


def test_rss_reads_this_process():
    memory = sysinfo.rss_mib()
    assert 0 < memory["rss_mib"] <= memory["peak_rss_mib"]


def test_cpu_flags_and_bf16_come_from_the_same_reader():
    flags = sysinfo.cpu_flags()
    assert isinstance(flags, set)
    assert sysinfo.cpu_has_bf16() == any(flag in flags for flag in sysinfo.BF16_FLAGS)
    assert sysinfo.machine_info(gpus=[])["bf16"] == sysinfo.cpu_has_bf16()


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_proc_stat_fields_of_a_process_whose_name_has_spaces_and_parentheses():
    # The command name may hold ") " itself: the fields start after its *last* parenthesis.
    code = ("import sys, time\n"
            "open('/proc/self/comm', 'w').write('odd) name (x')\n"
            "print('ready', flush=True)\ntime.sleep(30)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        fields = sysinfo.proc_stat_fields(child.pid)
        assert fields is not None and fields[0] in "RSD"  # running, sleeping, disk wait
        assert int(fields[1]) == os.getpid()  # the parent
        assert sysinfo.cpu_seconds(child.pid) >= 0.0
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert sysinfo.proc_stat_fields(child.pid) is None  # reaped: gone
    assert sysinfo.cpu_seconds(child.pid) == 0.0


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_this_process_has_used_cpu_time():
    sum(i * i for i in range(200_000))
    assert sysinfo.cpu_seconds(os.getpid()) > 0.0
    assert int(sysinfo.proc_stat_fields("self")[1]) == os.getppid()
