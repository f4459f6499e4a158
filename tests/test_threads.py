"""Threads per TensorFlow op (runs/threads.py): one for a light step on a 2-core machine, every
core for a heavy one or on more cores, CNNKIT_OP_THREADS above both; and the count a training
process applies before TensorFlow's first op."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cnnkit.presets import get_preset
from cnnkit.runs import threads
from cnnkit.specs import ExperimentSpec


def spec_of(layers: list[dict], batch_size: int, dataset: str = "mnist") -> ExperimentSpec:
    return ExperimentSpec.from_dict({"layers": layers, "dataset": {"name": dataset},
                                     "training": {"batch_size": batch_size}})


def preset_spec(name: str) -> ExperimentSpec:
    preset = get_preset(name)
    return ExperimentSpec(layers=preset.layers, dataset=preset.dataset, training=preset.training)


CONV_64 = [{"type": "conv2d", "filters": 64, "kernel_size": 3}, {"type": "flatten"}]


def test_a_steps_multiply_adds_by_hand():
    # 3×3×1 → 64 filters over a 26×26 output: 26·26·64·9; flatten → 10 outputs: 26·26·64·10
    per_image = 26 * 26 * 64 * 9 + 26 * 26 * 64 * 10
    assert threads.step_macs(spec_of(CONV_64, batch_size=100)) == 100 * per_image


@pytest.mark.parametrize("batch_size, expected", [(364, 1), (365, 0)])  # 822,016 per image: 299.2 M | 300.04 M
def test_the_same_network_is_light_or_heavy_by_its_batch(monkeypatch, batch_size, expected):
    monkeypatch.delenv("CNNKIT_OP_THREADS", raising=False)
    assert threads.op_threads_for(spec_of(CONV_64, batch_size), cores=2) == expected


@pytest.mark.parametrize("preset, expected", [
    ("chollet-cnn", 1), ("moroney-cnn", 1), ("dense-128", 1), ("west-fashion", 1),  # measured faster with 1
    ("kruse-conv", 0), ("kruse-conv-nopool", 0)])  # measured faster on both cores
def test_the_presets_get_the_count_measured_best_for_them_on_two_cores(monkeypatch, preset, expected):
    monkeypatch.delenv("CNNKIT_OP_THREADS", raising=False)
    assert threads.op_threads_for(preset_spec(preset), cores=2) == expected


def test_more_cores_keep_tensorflows_default_and_the_spare_expects_a_light_job(monkeypatch):
    monkeypatch.delenv("CNNKIT_OP_THREADS", raising=False)
    assert threads.op_threads_for(preset_spec("chollet-cnn"), cores=4) == threads.EVERY_CORE
    assert threads.op_threads_for(None, cores=2) == 1
    assert threads.op_threads_for(None, cores=8) == threads.EVERY_CORE


@pytest.mark.parametrize("value, expected", [("3", 3), ("0", 0), ("auto", 1), ("two", 1), ("-1", 1),
                                             ("99999", 1)])
def test_the_setting_wins_and_anything_else_means_automatic(monkeypatch, value, expected):
    monkeypatch.setenv("CNNKIT_OP_THREADS", value)
    assert threads.op_threads_for(preset_spec("chollet-cnn"), cores=2) == expected
    assert threads.environment_for(preset_spec("chollet-cnn")) == {
        "CNNKIT_OP_THREADS": str(threads.op_threads_for(preset_spec("chollet-cnn")))}


def test_a_training_process_sets_the_count_before_the_first_op_and_keeps_it_after():
    code = ("from cnnkit.model.levers import use_op_threads\n"
            "from cnnkit.model.tf_import import tf\n"
            "print(use_op_threads(1))\n"
            "tf.constant(1.0) + 1.0  # TensorFlow's runtime starts here\n"
            "print(use_op_threads(2))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["1", "1"]
