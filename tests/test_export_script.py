"""The Keras script exporter (cnnkit.views.script): valid, safe, standalone, and the same model.

Oracles: the shape calculator's parameter count, cnnkit's own data preparation and model
builder (same split, same initial weights), `TrainingSpec.learning_rate_at`, and the AST of
the script (a hostile name changes string constants only).
"""

from __future__ import annotations

import ast
import dataclasses
import gzip
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.idx import IDX_FILES, write_idx
from cnnkit.data.sources import SAMPLES_DIR
from cnnkit.errors import ArchitectureError, SpecError
from cnnkit.presets import PRESETS
from cnnkit.shapes import summarize_spec
from cnnkit.specs import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    ExperimentSpec,
    Flatten,
    GlobalAvgPool,
    MaxPool2D,
)
from cnnkit.views.script import SECTIONS, python_script, script_filename

ALLOWED_IMPORTS = {"argparse", "gzip", "json", "os", "struct", "keras", "numpy"}
HOSTILE = 'x"""\nimport os; os.system("echo pwned")\n#'

# Every layer type, strides, padding, a full recipe: the spec the presets do not cover.
KITCHEN_SINK = ExperimentSpec.from_dict({
    "name": "kitchen sink",
    "dataset": {"name": "fashion_mnist", "normalization": "standardize", "validation_split": 0.2,
                "train_limit": 500, "test_limit": 300},
    "layers": [Conv2D(8, 3, padding="same").to_dict(), BatchNorm().to_dict(),
               MaxPool2D(3, strides=2, padding="same").to_dict(), Dropout(0.1).to_dict(),
               Conv2D(12, 5, strides=2, activation="tanh").to_dict(), AvgPool2D(2).to_dict(),
               GlobalAvgPool().to_dict(), Dense(16, activation="elu").to_dict(), Dropout(0.3).to_dict()],
    "training": {"optimizer": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True,
                 "batch_size": 50, "epochs": 3, "seed": 7, "schedule": "step", "decay_rate": 0.5,
                 "decay_epochs": 1, "weight_decay": 0.0005},
    "output": "logits",
})
FLAT = ExperimentSpec.from_dict({  # no conv at all, scale, an odd seed and a test subset
    "name": "flat", "dataset": {"name": "mnist", "validation_split": 0.05, "test_limit": 123},
    "layers": [Flatten().to_dict(), Dense(20, activation="sigmoid").to_dict()],
    "training": {"optimizer": "adagrad", "seed": 12345, "schedule": "exponential"}})
EQUIVALENCE_SPECS = {**{name: p.experiment() for name, p in PRESETS.items()},
                     "kitchen-sink": KITCHEN_SINK, "flat": FLAT}


def tree(script: str) -> ast.Module:
    return ast.parse(script)


def imports_of(module: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(module):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module or "")
    return names


def calls_of(module: ast.Module, name: str) -> list[ast.Call]:
    """Calls whose callee ends in `name` (`keras.layers.Dense`, `SGD`, ...)."""
    return [node for node in ast.walk(module) if isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) == name or getattr(node.func, "id", None) == name)]


def keywords(call: ast.Call) -> dict:
    return {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords
            if isinstance(kw.value, ast.Constant)}


def assigned(module: ast.Module, name: str):
    for node in module.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
            return ast.literal_eval(node.value)
    raise AssertionError(f"no top-level assignment to {name}")


class _BlankStrings(ast.NodeTransformer):
    """Every string constant emptied: what is left is the program's shape."""

    def __repr__(self) -> str:
        return "_BlankStrings()"

    def visit_Constant(self, node):
        return ast.Constant("") if isinstance(node.value, str) else node


def shape_without_strings(script: str) -> str:
    return ast.dump(_BlankStrings().visit(ast.parse(script)))


# ---------------------------------------------------------------------------
# Data: the bundled samples written as IDX files, as a data directory holds them


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """DIR/mnist/*.gz and DIR/fashion-mnist/*.gz from the bundled samples (cnnkit's layout)."""
    root = tmp_path_factory.mktemp("idx_data")
    for name in ("mnist", "fashion_mnist"):
        folder = root / get_dataset_info(name).idx_folder
        folder.mkdir()
        with np.load(SAMPLES_DIR / f"{name}_sample.npz", allow_pickle=False) as npz:
            for split, (images, labels) in IDX_FILES.items():
                write_idx(folder / images, npz[f"x_{split}"])
                write_idx(folder / labels, npz[f"y_{split}"])
    return root


def flat_uncompressed_copy(data_dir, dataset: str, target):
    """The four files straight in `target`, without .gz and uncompressed: the reader's other path."""
    target.mkdir(parents=True, exist_ok=True)
    for path in (data_dir / get_dataset_info(dataset).idx_folder).iterdir():
        (target / path.name.removesuffix(".gz")).write_bytes(gzip.decompress(path.read_bytes()))
    return target


def run_until(script: str, section: str, argv: list[str], monkeypatch) -> dict:
    """Execute the script in this process up to a section header; its variables."""
    assert section in SECTIONS
    head, marker, _ = script.partition(f'"""\n## {section}\n"""')
    assert marker, f"no section {section!r} in the script"
    monkeypatch.setattr(sys, "argv", ["exported.py", *argv])
    namespace: dict = {"__name__": "__exported__"}
    exec(compile(head, "exported.py", "exec"), namespace)
    return namespace


# ---------------------------------------------------------------------------
# Every preset: valid, standalone Python with the spec's numbers in it


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_gives_a_valid_standalone_script(name):
    spec = PRESETS[name].experiment()
    script = python_script(spec)
    compile(script, f"{name}.py", "exec")
    module = tree(script)
    assert imports_of(module) <= ALLOWED_IMPORTS
    assert "cnnkit" not in {n.split(".")[0] for n in imports_of(module)}
    doc = ast.get_docstring(module)
    assert doc.splitlines()[0] == f"Title: {name}"
    assert f"python {script_filename(spec)}" in doc
    assert assigned(module, "experiment") == name
    assert assigned(module, "seed") == spec.training.seed
    assert assigned(module, "batch_size") == spec.training.batch_size
    epochs = next(c for c in calls_of(module, "add_argument") if ast.literal_eval(c.args[0]) == "--epochs")
    assert keywords(epochs)["default"] == spec.training.epochs
    # one Keras layer call per spec layer, plus the input's preprocessing and the output layer
    sequential = calls_of(module, "Sequential")[0]
    assert len(sequential.args[0].elts) == len(spec.layers) + 3


def test_generated_scripts_are_clean_by_the_repos_lint_rules(tmp_path):
    if shutil.which("ruff") is None and subprocess.run([sys.executable, "-m", "ruff", "--version"],
                                                       capture_output=True).returncode != 0:
        pytest.skip("ruff is not installed")
    specs = [*EQUIVALENCE_SPECS.values(), KITCHEN_SINK.updated({"dataset.name": "cifar10"}),
             KITCHEN_SINK.updated({"training.schedule": "plateau"}),
             KITCHEN_SINK.updated({"training.schedule": "cosine", "output": "softmax"})]
    for i, spec in enumerate(specs):
        (tmp_path / f"script_{i}.py").write_text(python_script(spec), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", "--isolated", "--line-length", "100",
         "--select", "E,F,W,I,B,UP", "--target-version", "py310", str(tmp_path)],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# ---------------------------------------------------------------------------
# The same data and the same model as cnnkit, checked against cnnkit itself


@pytest.mark.parametrize("name", sorted(EQUIVALENCE_SPECS))
def test_the_script_builds_cnnkits_model_on_cnnkits_split(name, data_dir, monkeypatch):
    from cnnkit.data.prepare import prepare_data
    from cnnkit.model.models import build_model
    from cnnkit.model.tf_import import keras

    spec = EQUIVALENCE_SPECS[name]
    got = run_until(python_script(spec), "Train the model", ["--data-dir", str(data_dir)], monkeypatch)
    model = got["model"]
    assert model.count_params() == summarize_spec(spec).total_params

    # The split: exactly the images cnnkit trains, validates and tests on.
    prepared = prepare_data(spec, str(data_dir))
    np.testing.assert_array_equal(got["x_train"], prepared.x_train.astype("float32"))
    np.testing.assert_array_equal(got["y_train"], prepared.y_train)
    np.testing.assert_array_equal(got["x_test"], prepared.x_test.astype("float32"))
    np.testing.assert_array_equal(got["y_test"], prepared.y_test)
    if spec.dataset.validation_split > 0:
        np.testing.assert_array_equal(got["x_val"], prepared.x_val.astype("float32"))
        np.testing.assert_array_equal(got["y_val"], prepared.y_val)
    else:
        assert "x_val" not in got and len(prepared.x_val) == 0

    # The model: cnnkit's builder, seeded the same way, has the same initial weights ...
    keras.utils.set_random_seed(spec.training.seed)
    reference = build_model(spec.layers, prepared.input_shape, prepared.num_classes, output=spec.output,
                            normalization=prepared.normalization, mean=prepared.mean, std=prepared.std,
                            weight_decay=spec.training.weight_decay)
    ours, theirs = model.get_weights(), reference.get_weights()
    assert [w.shape for w in ours] == [w.shape for w in theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and the same function, preprocessing (standardize statistics) included.
    x = got["x_test"][:32]
    np.testing.assert_allclose(np.asarray(model(x, training=False)),
                               np.asarray(reference(x, training=False)), rtol=1e-5, atol=1e-6)
    assert len(model.losses) == len(reference.losses)  # one L2 term per conv/dense kernel


def test_a_flat_folder_of_uncompressed_files_reads_the_same(data_dir, tmp_path, monkeypatch):
    flat = flat_uncompressed_copy(data_dir, "mnist", tmp_path / "flat")
    spec = FLAT
    a = run_until(python_script(spec), "Build the model", ["--data-dir", str(flat)], monkeypatch)
    b = run_until(python_script(spec), "Build the model", ["--data-dir", str(data_dir)], monkeypatch)
    for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        np.testing.assert_array_equal(a[key], b[key])


def test_a_missing_or_damaged_idx_file_stops_with_a_message(data_dir, tmp_path, monkeypatch):
    script = python_script(FLAT)
    with pytest.raises(SystemExit, match="not found"):
        run_until(script, "Prepare the data", ["--data-dir", str(tmp_path)], monkeypatch)
    broken = flat_uncompressed_copy(data_dir, "mnist", tmp_path / "broken")
    path = broken / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(SystemExit, match="truncated"):
        run_until(script, "Prepare the data", ["--data-dir", str(broken)], monkeypatch)


def test_cifar10_with_a_data_dir_says_only_keras_download_is_supported(tmp_path, monkeypatch):
    spec = KITCHEN_SINK.updated({"dataset.name": "cifar10", "dataset.normalization": "scale"})
    script = python_script(spec)
    assert assigned(tree(script), "input_shape") == (32, 32, 3)
    assert "cifar10.load_data()" in script
    with pytest.raises(SystemExit, match="CIFAR-10.*only reads it.*Keras' download"):
        run_until(script, "Prepare the data", ["--data-dir", str(tmp_path)], monkeypatch)


# ---------------------------------------------------------------------------
# The recipe: schedules, optimizers, output, weight decay


@pytest.mark.parametrize("schedule", ["constant", "step", "exponential", "cosine", "plateau"])
def test_each_schedule_is_cnnkits(schedule):
    spec = KITCHEN_SINK.updated({"training.schedule": schedule, "training.decay_epochs": 2,
                                 "training.decay_rate": 0.3, "training.epochs": 7})
    module = tree(python_script(spec))
    schedulers, plateaus = calls_of(module, "LearningRateScheduler"), calls_of(module, "ReduceLROnPlateau")
    if schedule in ("step", "exponential", "cosine"):
        assert len(schedulers) == 1 and not plateaus
        function = next(n for n in module.body if isinstance(n, ast.FunctionDef) and n.name == "schedule")
        namespace = {"np": np, "epochs": spec.training.epochs}
        exec(compile(ast.Module([function], []), "schedule", "exec"), namespace)
        for epoch in range(spec.training.epochs):
            assert namespace["schedule"](epoch, 123.0) == pytest.approx(
                spec.training.learning_rate_at(epoch), rel=1e-12)
    elif schedule == "plateau":
        assert len(plateaus) == 1 and not schedulers
        assert keywords(plateaus[0]) == {"factor": 0.3, "patience": 2, "verbose": 0}
    else:
        assert not schedulers and not plateaus


def test_sgd_nesterov_logits_and_weight_decay_are_in_the_script():
    module = tree(python_script(KITCHEN_SINK))
    assert keywords(calls_of(module, "SGD")[0]) == {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}
    assert keywords(calls_of(module, "SparseCategoricalCrossentropy")[0]) == {"from_logits": True}
    output = calls_of(module, "Dense")[-1]
    assert keywords(output)["activation"] is None
    assert assigned(module, "num_classes") == 10
    assert ast.literal_eval(calls_of(module, "L2")[0].args[0]) == 0.0005
    regularized = [c for c in ast.walk(module) if isinstance(c, ast.Call)
                   and any(kw.arg == "kernel_regularizer" for kw in c.keywords)]
    assert len(regularized) == 2 + 1 + 1  # two convs, one dense, the output


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "adagrad"])
def test_other_optimizers_and_softmax(optimizer):
    spec = FLAT.updated({"training.optimizer": optimizer, "training.learning_rate": 0.02})
    module = tree(python_script(spec))
    call = calls_of(module, {"adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[optimizer])[0]
    assert keywords(call) == {"learning_rate": 0.02}
    assert keywords(calls_of(module, "Dense")[-1])["activation"] == "softmax"
    assert not calls_of(module, "L2")


def test_invalid_specs_are_refused_not_exported():
    with pytest.raises(ArchitectureError):
        python_script(ExperimentSpec(layers=(Conv2D(8),)))  # ends on an image-shaped map
    bad = dataclasses.replace(FLAT, training=dataclasses.replace(FLAT.training, optimizer='adam")#'))
    with pytest.raises(SpecError, match="optimizer"):
        python_script(bad)


# ---------------------------------------------------------------------------
# User text: only ever data


NASTY_NAMES = [
    HOSTILE,
    "ends in a backslash \\",
    "\\N{oops} \\x \\u12 escapes",
    "''' single quotes \"\"\" and both",
    "nul\x00 line\u2028sep\r\nescape\x1b[31m tab\t",
    "emoji \U0001f9ea and a lone surrogate \ud800",
    "%(prog)s {} {x} f-string braces",
    "#" + "x" * 3000,
]


@pytest.mark.parametrize("name", NASTY_NAMES, ids=range(len(NASTY_NAMES)))
def test_a_hostile_name_is_only_data(name):
    plain = python_script(PRESETS["west-fashion"].experiment())
    spec = dataclasses.replace(PRESETS["west-fashion"].experiment(), name=name)  # unvalidated
    script = python_script(spec)
    script.encode("utf-8")  # writable as a file (no lone surrogate left in it)
    compile(script, "hostile.py", "exec")
    module = tree(script)
    assert assigned(module, "experiment") == name  # the exact name, as a string value
    # Apart from string contents the program is the benign one: same imports, same calls.
    assert shape_without_strings(script) == shape_without_strings(plain)
    assert imports_of(module) == imports_of(tree(plain))
    assert not calls_of(module, "system")
    assert len(ast.get_docstring(module).splitlines()) == len(ast.get_docstring(tree(plain)).splitlines())


def test_the_brief_hostile_name_in_detail():
    spec = dataclasses.replace(PRESETS["moroney-cnn"].experiment(), name=HOSTILE)
    module = tree(python_script(spec))
    os_uses = [n for n in ast.walk(module) if isinstance(n, ast.Attribute)
               and isinstance(n.value, ast.Name) and n.value.id == "os"]
    assert {n.attr for n in os_uses} <= {"path"}  # the template only joins paths
    title = ast.get_docstring(module).splitlines()[0]
    assert title.startswith("Title: x") and "\n" not in title and '"' not in title


@pytest.mark.parametrize("title", [HOSTILE, "My run: 'quoted' \\ done"])
def test_a_title_is_embedded_the_same_way(title):
    spec = PRESETS["dense-128"].experiment()
    script = python_script(spec, title=title)
    module = tree(script)
    assert assigned(module, "experiment") == title
    assert shape_without_strings(script) == shape_without_strings(python_script(spec))
    assert script_filename(spec, title=title).endswith(".py")
    assert "/" not in script_filename(spec, title=title)


def test_the_exporter_imports_nothing_heavy():
    from pathlib import Path

    import cnnkit.views.script as exporter

    heavy = {"tensorflow", "keras", "streamlit"}
    assert not imports_of(ast.parse(Path(exporter.__file__).read_text(encoding="utf-8"))) & heavy


# ---------------------------------------------------------------------------
# For real: the script as a subprocess, offline, on IDX files, 1-2 epochs


def run_script(script: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "exported.py"
    path.write_text(script, encoding="utf-8")
    keras_home = tmp_path / "keras_home"
    keras_home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CNNKIT_DATA_DIR")}
    # offline: KERAS_HOME empty and every proxy a dead port, so a download would fail, not hang
    env.update(CNNKIT_OFFLINE="1", KERAS_HOME=str(keras_home), HTTP_PROXY="http://127.0.0.1:9",
               HTTPS_PROXY="http://127.0.0.1:9", http_proxy="http://127.0.0.1:9",
               https_proxy="http://127.0.0.1:9", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True,
                            cwd=tmp_path, env=env, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not (keras_home / "datasets").exists()  # nothing downloaded
    return result


def epoch_logs(result: subprocess.CompletedProcess) -> list[str]:
    """fit's verbose=2 lines, one per epoch: "15/15 - 1s - 83ms/step - accuracy: ... - loss: ..."."""
    return [line for line in result.stdout.splitlines() if "/step - " in line and " loss: " in line]


def last_json(result: subprocess.CompletedProcess) -> dict:
    lines = result.stdout.strip().splitlines()
    payload = json.loads(lines[-1])
    assert set(payload) == {"test_accuracy", "params"}
    assert isinstance(payload["params"], int) and 0.0 <= payload["test_accuracy"] <= 1.0
    return payload


@pytest.mark.slow
@pytest.mark.parametrize("name", ["west-fashion", "chollet-cnn"])  # small conv; standardize
def test_a_preset_script_trains_offline_on_idx_files(name, data_dir, tmp_path):
    spec = PRESETS[name].experiment().updated({"dataset.train_limit": 500, "training.epochs": 4})
    result = run_script(python_script(spec), tmp_path, "--epochs", "1", "--data-dir", str(data_dir))
    payload = last_json(result)
    assert payload["params"] == summarize_spec(spec).total_params
    assert len(epoch_logs(result)) == 1  # --epochs 1 wins over the spec's 4
    assert payload["test_accuracy"] > 0.2  # 500 images, one epoch: well above chance (0.1)


@pytest.mark.slow
def test_the_full_recipe_trains_on_a_flat_folder(data_dir, tmp_path):
    # sgd + nesterov, a step schedule halving every epoch, logits, weight decay, BatchNorm
    flat = flat_uncompressed_copy(data_dir, "fashion_mnist", tmp_path / "flat")
    result = run_script(python_script(KITCHEN_SINK), tmp_path, "--epochs", "2", "--data-dir", str(flat))
    payload = last_json(result)
    assert payload["params"] == summarize_spec(KITCHEN_SINK).total_params
    logs = epoch_logs(result)
    assert len(logs) == 2
    rates = [float(line.rsplit("learning_rate:", 1)[1].split()[0]) for line in logs]
    assert rates == pytest.approx([0.05, 0.025])  # learning_rate_at(0), learning_rate_at(1)
    assert "400 train, 100 validation, 300 test images" in result.stdout
