"""Shared test setup: offline, no real data unless a test asks for it, runs in a tmp folder."""

from __future__ import annotations

import os

import pytest

# The real data directory is only for tests marked `realdata`; remember it, then hide it.
REAL_DATA_DIR = os.environ.get("CNNKIT_DATA_DIR")
# No warm spare workers (runs/warm.py) behind every page a test opens: each would import
# TensorFlow on the same 2 cores. The tests of the warm worker turn it on themselves.
os.environ["CNNKIT_WARM_WORKER"] = "off"


@pytest.fixture(scope="session")
def empty_keras_home(tmp_path_factory):
    return tmp_path_factory.mktemp("keras_home")


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch, empty_keras_home):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    monkeypatch.delenv("CNNKIT_DATA_DIR", raising=False)
    # An empty Keras cache, so the bundled sample is what loads.
    monkeypatch.setenv("KERAS_HOME", str(empty_keras_home))


@pytest.fixture
def real_data_dir():
    if not REAL_DATA_DIR or not os.path.isdir(REAL_DATA_DIR):
        pytest.skip("CNNKIT_DATA_DIR not set (or missing): real-data check skipped")
    return REAL_DATA_DIR


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    path = tmp_path / "runs"
    monkeypatch.setenv("CNNKIT_RUNS_DIR", str(path))
    monkeypatch.setenv("CNNKIT_SLOTS_DIR", str(tmp_path / "slots"))
    return path
