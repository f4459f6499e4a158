"""Deployment caps: hand-counted parameters and activation memory, env configuration, data size.

Every refusal is a SpecError naming the field and the setting that would raise the cap.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cnnkit.data.sources import load_raw
from cnnkit.errors import SpecError
from cnnkit.limits import Limits, check_data_size, check_spec
from cnnkit.specs import ExperimentSpec

REPO = Path(__file__).resolve().parent.parent


def mlp(units=100, batch_size=128, epochs=5, **dataset) -> ExperimentSpec:
    return ExperimentSpec.from_dict({
        "layers": [{"type": "flatten"}, {"type": "dense", "units": units}],
        "training": {"batch_size": batch_size, "epochs": epochs}, "dataset": dataset})


# By hand: Dense(100) on 784 inputs = 78,400 + 100; output Dense(10) = 1,000 + 10.
MLP_PARAMS = 784 * 100 + 100 + 100 * 10 + 10            # 79,510
# Activations kept per image: input 784 + flatten 784 + dense 100 + output 10 = 1,678 floats;
# float32 (4 bytes) and their gradients (×2): 13,424 bytes an image, ×128 a batch.
MLP_ACTIVATION_BYTES = 2 * 4 * (784 + 784 + 100 + 10) * 128  # 1,718,272


def test_hand_counts_match_the_summary():
    summary = check_spec(mlp(), Limits())
    assert summary.total_params == MLP_PARAMS == 79_510
    assert summary.activation_bytes(128) == MLP_ACTIVATION_BYTES


def test_parameter_cap_is_inclusive_and_names_the_setting():
    check_spec(mlp(), Limits(max_params=79_510))
    with pytest.raises(SpecError) as caught:
        check_spec(mlp(), Limits(max_params=79_509))
    assert caught.value.field == "layers"
    assert "79,510 parameters" in str(caught.value) and "79,509" in str(caught.value)
    assert "CNNKIT_MAX_PARAMS" in str(caught.value)


def test_activation_cap():
    check_spec(mlp(), Limits(max_activation_mb=1.72))
    with pytest.raises(SpecError, match=r"about 2 MB of activations.*allows 2 MB.*CNNKIT_MAX_ACTIVATION_MB"):
        check_spec(mlp(), Limits(max_activation_mb=1.71))
    # Memory grows with the batch: the same net at batch 64 needs half, and fits.
    check_spec(mlp(batch_size=64), Limits(max_activation_mb=0.86))


def test_a_huge_conv_stack_is_refused_by_activation_memory_before_building():
    spec = ExperimentSpec.from_dict({
        "layers": [{"type": "conv2d", "filters": 2048, "kernel_size": 3, "padding": "same"},
                   {"type": "globalavgpool"}],
        "training": {"batch_size": 4096}})
    # 28*28*2048 floats an image for the conv alone, ×8 bytes ×4096 images ≈ 52.6 GB.
    with pytest.raises(SpecError, match="activations"):
        check_spec(spec, Limits())


@pytest.mark.parametrize("field, cap, ok, over", [
    ("epochs", "max_epochs", 10, 11),
    ("batch_size", "max_batch_size", 256, 257),
])
def test_epoch_and_batch_caps(field, cap, ok, over):
    limits = Limits(**{cap: ok})
    check_spec(mlp(**{field: ok}), limits)
    with pytest.raises(SpecError) as caught:
        check_spec(mlp(**{field: over}), limits)
    assert caught.value.field == f"training.{field}"
    assert f"{over} is above this server's limit of {ok}" in str(caught.value)


def test_caps_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("CNNKIT_MAX_PARAMS", "50000")
    monkeypatch.setenv("CNNKIT_MAX_EPOCHS", "3")
    monkeypatch.setenv("CNNKIT_MAX_BATCH_SIZE", "1e3")
    monkeypatch.setenv("CNNKIT_MAX_ACTIVATION_MB", "2.5")
    monkeypatch.setenv("CNNKIT_MAX_JOB_MINUTES", "15")
    assert Limits.from_env() == Limits(max_params=50_000, max_activation_mb=2.5, max_epochs=3,
                                       max_batch_size=1000, max_job_minutes=15.0)
    assert Limits().max_job_minutes == 0  # no time limit unless a server sets one
    with pytest.raises(SpecError, match="training.epochs"):
        check_spec(mlp(epochs=4))
    with pytest.raises(SpecError, match="79,510 parameters"):
        check_spec(mlp(epochs=3))


@pytest.mark.parametrize("bad", ["", "abc", "nan", "inf", "-inf", "-5", "0", "1e999"])
def test_a_bad_setting_falls_back_to_the_default(monkeypatch, bad):
    for name in ("CNNKIT_MAX_PARAMS", "CNNKIT_MAX_EPOCHS", "CNNKIT_MAX_BATCH_SIZE", "CNNKIT_MAX_ACTIVATION_MB",
                 "CNNKIT_MAX_JOB_MINUTES"):
        monkeypatch.setenv(name, bad)
    assert Limits.from_env() == Limits()


def test_train_subset_beyond_the_data_names_the_field():
    raw = load_raw("mnist")  # the bundled sample in tests: 4,000 training, 1,000 test images
    assert len(raw.y_train) == 4000 and len(raw.y_test) == 1000
    check_data_size(mlp(train_limit=4000), len(raw.y_train), len(raw.y_test))
    with pytest.raises(SpecError) as caught:
        check_data_size(mlp(train_limit=4001), len(raw.y_train), len(raw.y_test))
    assert caught.value.field == "dataset.train_limit"
    assert "4,001 is more than the 4,000 training images" in str(caught.value)
    with pytest.raises(SpecError, match="dataset.test_limit: 1,001 is more than the 1,000 test"):
        check_data_size(mlp(test_limit=1001), len(raw.y_train), len(raw.y_test))


def _run(args, env_extra, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "CNNKIT_RUNS_DIR": str(tmp_path / "runs"), **env_extra}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=120)


def test_checking_caps_never_imports_tensorflow(tmp_path):
    code = ("import sys; from cnnkit.limits import check_spec; from cnnkit.presets import PRESETS; "
            "check_spec(PRESETS['chollet-cnn'].experiment()); "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    result = _run(["-c", code], {}, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("env, spec_changes, words", [
    ({"CNNKIT_MAX_EPOCHS": "3"}, {"epochs": 5}, "training.epochs: 5 is above this server's limit of 3"),
    ({"CNNKIT_MAX_PARAMS": "1000"}, {}, "CNNKIT_MAX_PARAMS"),
    ({}, {"train_limit": 5000}, "train_limit 5000 is more than the 4,000 training images"),
])
def test_cli_refuses_before_training_without_a_traceback(tmp_path, env, spec_changes, words):
    doc = mlp().to_dict()
    for key, value in spec_changes.items():
        (doc["dataset"] if key == "train_limit" else doc["training"])[key] = value
    path = tmp_path / "spec.json"
    path.write_text(json.dumps(doc))
    result = _run(["-m", "cnnkit", "train", "--spec", str(path)], {"CNNKIT_OFFLINE": "1", **env}, tmp_path)
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
