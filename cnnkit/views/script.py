"""An experiment spec as a standalone Keras training script, in the style of the keras-io examples.

`python_script(spec)` returns the text of a linear, top-down script (numpy + Keras only, no
cnnkit) that loads the dataset, takes the same subset and validation split as
`cnnkit.data.prepare` (the same stratified draw from the same seed), builds the same network
(`model.count_params()` equals `cnnkit.shapes.summarize_spec(spec).total_params`), trains it
with the spec's recipe and prints, as its last line, ``{"test_accuracy": ..., "params": ...}``.

Pure text generation: nothing here imports TensorFlow or Keras. Names someone typed (the
spec's name, a title) reach the script only as a `repr` string literal, or in the docstring
after every quote, backslash and control character is removed, so no name can end a string.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata

from cnnkit.data.catalog import get_dataset_info
from cnnkit.data.idx import IDX_FILES
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
    Layer,
    MaxPool2D,
    TrainingSpec,
)

# Section headers of the script (keras-io style); tests split the script at them.
SECTIONS = ("Setup", "Load the data", "Prepare the data", "Build the model", "Train the model",
            "Evaluate on the test images")


# ---------------------------------------------------------------------------
# Putting values into Python source safely


def docstring_text(text: str, limit: int = 100) -> str:
    """`text` made harmless inside a docstring or comment: one line, no control or format
    characters, no quote or backslash (so no escape sequence and no way to close the string)."""
    words = " ".join(str(text).split())
    kept = "".join(c for c in words if unicodedata.category(c)[0] != "C")
    kept = kept.replace("\\", "/").replace('"', "'")
    return kept if len(kept) <= limit else kept[: limit - 3] + "..."


def str_literal(text: str) -> str:
    """A Python string literal for `text`: "plain" when that is exact, else repr (escaped)."""
    if all(c.isascii() and c.isprintable() and c not in '"\\' for c in text):
        return f'"{text}"'
    return repr(str(text))


def num(value: float) -> str:
    """A float as a literal that reads back to the same float ("0.001", "1e-05")."""
    return repr(float(value))


def script_filename(spec: ExperimentSpec, *, title: str | None = None) -> str:
    """A file name for the script: "train_moroney_cnn.py"."""
    slug = re.sub(r"[^a-z0-9]+", "_", _title(spec, title).lower()).strip("_")[:60].strip("_")
    return f"train_{slug or 'experiment'}.py"


def _title(spec: ExperimentSpec, title: str | None) -> str:
    return title or spec.name or spec.preset or "cnnkit experiment"


def short_description(layer: Layer) -> str:
    """A layer in a few words for the docstring: "Conv2D 32 3x3", "MaxPool 2", "Dense 128"."""
    if isinstance(layer, Conv2D):
        return f"Conv2D {layer.filters} {layer.kernel_size}x{layer.kernel_size}"
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        return f"{'MaxPool' if isinstance(layer, MaxPool2D) else 'AvgPool'} {layer.pool_size}"
    if isinstance(layer, Dropout):
        return f"Dropout {layer.rate:g}"
    if isinstance(layer, Dense):
        return f"Dense {layer.units}"
    return layer.describe()


# ---------------------------------------------------------------------------
# Layers and the recipe as code


def layer_code(layer: Layer, l2: str | None) -> str:
    """One spec layer as the Keras layer cnnkit.model.models.keras_layer builds."""
    reg = f", kernel_regularizer={l2}" if l2 else ""
    if isinstance(layer, Conv2D):
        extra = f", strides={layer.strides}" if layer.strides != 1 else ""
        extra += f", padding={str_literal(layer.padding)}" if layer.padding != "valid" else ""
        return (f"keras.layers.Conv2D({layer.filters}, kernel_size={layer.kernel_size}{extra}, "
                f"activation={str_literal(layer.activation)}{reg})")
    if isinstance(layer, (MaxPool2D, AvgPool2D)):
        kind = "MaxPooling2D" if isinstance(layer, MaxPool2D) else "AveragePooling2D"
        extra = f", strides={layer.strides}" if layer.effective_strides != layer.pool_size else ""
        extra += f", padding={str_literal(layer.padding)}" if layer.padding != "valid" else ""
        return f"keras.layers.{kind}(pool_size={layer.pool_size}{extra})"
    if isinstance(layer, Dropout):
        return f"keras.layers.Dropout({num(layer.rate)})"
    if isinstance(layer, BatchNorm):
        return "keras.layers.BatchNormalization()"
    if isinstance(layer, Flatten):
        return "keras.layers.Flatten()"
    if isinstance(layer, GlobalAvgPool):
        return "keras.layers.GlobalAveragePooling2D()"
    if isinstance(layer, Dense):
        return f"keras.layers.Dense({layer.units}, activation={str_literal(layer.activation)}{reg})"
    raise TypeError(f"no Keras layer for {layer!r}")


def optimizer_code(training: TrainingSpec) -> str:
    lr = num(training.learning_rate_at(0))  # what cnnkit's make_optimizer starts from
    if training.optimizer == "sgd":
        return (f"keras.optimizers.SGD(learning_rate={lr}, momentum={num(training.momentum)}, "
                f"nesterov={training.nesterov})")
    name = {"adam": "Adam", "rmsprop": "RMSprop", "adagrad": "Adagrad"}[training.optimizer]
    return f"keras.optimizers.{name}(learning_rate={lr})"


def schedule_code(training: TrainingSpec, has_val: bool) -> list[str]:
    """The callbacks list: the LR schedule as cnnkit applies it (at the start of each epoch)."""
    lr, rate, every = num(training.learning_rate), num(training.decay_rate), training.decay_epochs
    if training.schedule == "constant":
        return ["callbacks = []  # constant learning rate: no schedule"]
    if training.schedule == "plateau":
        monitor = '"val_loss" if validation_data else "loss"' if has_val else '"loss"'
        return [f"# Multiply the rate by {rate} when the loss has not improved for {every} epochs.",
                "callbacks = [",
                f"    keras.callbacks.ReduceLROnPlateau(monitor={monitor}, factor={rate},",
                f"                                      patience={every}, verbose=0)",
                "]"]
    formula = {
        "step": (f"x{rate} every {every} epochs", f"{lr} * {rate} ** (epoch // {every})"),
        "exponential": (f"x{rate} every epoch", f"{lr} * {rate} ** epoch"),
        "cosine": ("cosine decay towards 0 over the epochs",
                   f"{lr} * 0.5 * (1.0 + float(np.cos(np.pi * epoch / epochs)))"),
    }[training.schedule]
    return ["",
            "",
            "def schedule(epoch, learning_rate):",
            f"    # {formula[0]} (cnnkit's learning_rate_at; epoch counts from 0)",
            f"    return {formula[1]}",
            "",
            "",
            "callbacks = [keras.callbacks.LearningRateScheduler(schedule)]"]


# ---------------------------------------------------------------------------
# The sections of the script


def _section(name: str) -> list[str]:
    return ["", f'"""\n## {name}\n"""', ""]


def _header(spec: ExperimentSpec, title: str | None) -> list[str]:
    info = get_dataset_info(spec.dataset.name)
    file = script_filename(spec, title=title)
    layers = ", ".join(short_description(layer) for layer in spec.layers) or "no hidden layers"
    description = textwrap.wrap(f"Description: {layers}, then Dense {info.num_classes} "
                                f"({spec.output}), trained on {info.title}.", 92)
    if info.idx_folder:
        how = [f"Run it (Keras downloads {info.title}), or with --data-dir DATA to read the four",
               f"IDX files in DATA/{info.idx_folder}/ or DATA; --epochs N overrides the spec's epochs:",
               "", f"    python {file}", f"    python {file} --data-dir DATA --epochs 1"]
        imports = ["argparse", "gzip", "json", "os", "struct"]
    else:
        how = [f"Run it (Keras downloads {info.title}; it has no IDX form, so no --data-dir);",
               "--epochs N overrides the spec's epochs:", "", f"    python {file}",
               f"    python {file} --epochs 1"]
        imports = ["argparse", "json"]
    return [
        '"""',
        f"Title: {docstring_text(_title(spec, title))}",
        "Generated by: cnnkit (cnnkit.views.script) from an experiment spec",
        *description,
        "",
        "A standalone Keras script (numpy and Keras, no cnnkit): the same network as cnnkit builds",
        "(the same parameter count), trained with the same recipe.",
        "",
        *how,
        "",
        'Its last line of output is one JSON object: {"test_accuracy": ..., "params": ...}.',
        '"""',
        "",
        *(f"import {name}" for name in imports),
        "",
        "import keras",
        "import numpy as np",
    ]


def _setup(spec: ExperimentSpec, title: str | None) -> list[str]:
    info, training = get_dataset_info(spec.dataset.name), spec.training
    data_help = (f"folder with {info.idx_folder}/ or its four IDX files"
                 if info.idx_folder else "not for CIFAR-10")
    return [
        f"experiment = {str_literal(_title(spec, title))}",
        f"num_classes = {info.num_classes}",
        f"input_shape = {info.input_shape}",
        f"batch_size = {training.batch_size}",
        f"seed = {training.seed}",
        "",
        'parser = argparse.ArgumentParser(description="Train a CNN exported from cnnkit.")',
        f'parser.add_argument("--epochs", type=int, default={training.epochs},',
        '                    help="epochs to train (default: %(default)s, the spec\'s)")',
        'parser.add_argument("--data-dir",',
        f'                    help="{data_help} (default: download)")',
        "args = parser.parse_args()",
        "epochs = args.epochs",
        'print("Experiment:", experiment)',
    ]


def _load(spec: ExperimentSpec) -> list[str]:
    info = get_dataset_info(spec.dataset.name)
    loader = f"keras.datasets.{info.name}.load_data()"  # mnist, fashion_mnist, cifar10
    if info.idx_folder is None:
        return [
            "if args.data_dir:",
            '    raise SystemExit("CIFAR-10 has no IDX form: this script, like cnnkit, only reads it "',
            '                     "from Keras\' download (~/.keras/datasets); run it without --data-dir.")',
            f"(x_train, y_train), (x_test, y_test) = {loader}",
            "y_train, y_test = y_train.ravel(), y_test.ravel()  # Keras gives labels as (N, 1)",
        ]
    (train_images, train_labels), (test_images, test_labels) = IDX_FILES["train"], IDX_FILES["test"]
    return [
        "",
        "def read_idx(path):",
        '    """An IDX file (gzip or not) of unsigned bytes as a numpy array."""',
        '    with open(path, "rb") as f:',
        "        data = f.read()",
        '    if data[:2] == b"\\x1f\\x8b":  # gzip, whatever the file is called',
        "        data = gzip.decompress(data)",
        '    zeros, kind, ndim = struct.unpack(">HBB", data[:4])',
        "    if zeros != 0 or kind != 0x08:",
        '        raise SystemExit(f"{path}: not an unsigned-byte IDX file")',
        '    shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])',
        "    if len(data) != 4 + 4 * ndim + int(np.prod(shape)):",
        '        raise SystemExit(f"{path}: truncated or damaged (header says shape {shape})")',
        "    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)",
        "",
        "",
        "def idx_path(data_dir, name):",
        f'    """DATA/{info.idx_folder}/name or DATA/name, compressed (.gz) or not."""',
        f'    for folder in (os.path.join(data_dir, "{info.idx_folder}"), data_dir):',
        '        for candidate in (name, name.removesuffix(".gz")):',
        "            if os.path.isfile(os.path.join(folder, candidate)):",
        "                return os.path.join(folder, candidate)",
        f'    raise SystemExit(f"{{name}} not found in {{data_dir}} or its {info.idx_folder}/ folder")',
        "",
        "",
        "if args.data_dir:  # the files as published; never downloads anything",
        f'    x_train = read_idx(idx_path(args.data_dir, "{train_images}"))',
        f'    y_train = read_idx(idx_path(args.data_dir, "{train_labels}"))',
        f'    x_test = read_idx(idx_path(args.data_dir, "{test_images}"))',
        f'    y_test = read_idx(idx_path(args.data_dir, "{test_labels}"))',
        "else:",
        f"    (x_train, y_train), (x_test, y_test) = {loader}",
        "# (N, 28, 28) -> (N, 28, 28, 1): one channel, channels last",
        "x_train = x_train.reshape((-1, *input_shape))",
        "x_test = x_test.reshape((-1, *input_shape))",
    ]


_STRATIFIED = [
    "",
    "def stratified_choice(y, k, rng):",
    '    """Sorted indices of k items of y, drawn at random, keeping the class proportions."""',
    "    if k >= len(y):",
    "        return np.arange(len(y))",
    "    classes, counts = np.unique(y, return_counts=True)",
    "    quota, remainder = np.divmod(k * counts, len(y))",
    "    # the largest remainders get the leftover items, so the quotas add up to exactly k",
    '    quota[np.argsort(-remainder, kind="stable")[: k - quota.sum()]] += 1',
    "    picks = []",
    "    for c, q in zip(classes, quota, strict=True):",
    "        picks.append(rng.permutation(np.flatnonzero(y == c))[:q])",
    "    return np.sort(np.concatenate(picks))",
    "",
    "",
    "# cnnkit's draws (cnnkit.data.prepare), in its order, from one generator seeded with the",
    "# spec's seed: the same raw arrays give the same subset and split as cnnkit's.",
    "rng = np.random.default_rng(seed)",
]


def _limit_code(limit: int, split: str, noun: str) -> list[str]:
    return [
        f"if len(y_{split}) < {limit}:",
        f'    raise SystemExit(f"{split}_limit {limit} is more than the {{len(y_{split})}} {noun} images")',
        f"subset = stratified_choice(y_{split}, {limit}, rng)  # {limit:,} {noun} images, class-balanced",
        f"x_{split}, y_{split} = x_{split}[subset], y_{split}[subset]",
    ]


def _prepare(spec: ExperimentSpec) -> list[str]:
    dataset = spec.dataset
    lines: list[str] = []
    if dataset.train_limit is not None or dataset.test_limit is not None or dataset.validation_split > 0:
        lines += _STRATIFIED
    if dataset.train_limit is not None:
        lines += _limit_code(dataset.train_limit, "train", "training")
    if dataset.validation_split > 0:
        lines += [
            f"# Hold out {dataset.validation_split * 100:g}% of the training images for validation.",
            f"num_val = int(len(y_train) * {num(dataset.validation_split)} + 0.5)",
            "in_val = np.zeros(len(y_train), dtype=bool)",
            "if num_val:",
            "    in_val[stratified_choice(y_train, num_val, rng)] = True",
            "x_val, y_val = x_train[in_val], y_train[in_val]",
            "x_train, y_train = x_train[~in_val], y_train[~in_val]",
        ]
    if dataset.test_limit is not None:
        lines += _limit_code(dataset.test_limit, "test", "test")
    if dataset.normalization == "standardize":
        lines += [
            *([""] if lines else []),
            "# Per-pixel mean and variance of the training part only (no peeking at validation or",
            "# test), in exact integer sums a chunk at a time, as cnnkit computes them.",
            "n = len(x_train)",
            "total = np.zeros(input_shape, np.int64)",
            "total_sq = np.zeros(input_shape, np.int64)",
            "for start in range(0, n, 1024):",
            "    chunk = x_train[start : start + 1024].astype(np.int64)",
            "    total += chunk.sum(axis=0)",
            "    total_sq += (chunk * chunk).sum(axis=0)",
            "variance = (n * total_sq - total * total) / float(n) ** 2",
            "std = np.sqrt(variance)",
            "std[variance == 0] = 1.0  # constant pixels (MNIST's blank corners) stay unscaled",
            'mean, variance = (total / n).astype("float32"), np.square(std.astype("float32"))',
        ]
    has_val = dataset.validation_split > 0
    lines += [
        *([""] if lines else []),
        "# Raw 0-255 pixel values as float32: the model normalizes them itself (its first layer).",
        'x_train, x_test = x_train.astype("float32"), x_test.astype("float32")',
    ]
    if has_val:
        lines += [
            'x_val = x_val.astype("float32")',
            "validation_data = (x_val, y_val) if len(x_val) else None",
            'print(f"{len(x_train)} train, {len(x_val)} validation, {len(x_test)} test images")',
        ]
    else:
        lines += ['print(f"{len(x_train)} train, {len(x_test)} test images (no validation split)")']
    return lines


def _item(code: str, indent: int = 8) -> list[str]:
    """A list item, its arguments on their own line when it would pass 100 characters."""
    pad = " " * indent
    if len(pad) + len(code) + 1 <= 100:
        return [f"{pad}{code},"]
    head, _, args = code.partition("(")
    return [f"{pad}{head}(", f"{pad}    {args[:-1]}", f"{pad}),"]


def _model(spec: ExperimentSpec) -> list[str]:
    wd = spec.training.weight_decay
    l2 = "l2" if wd > 0 else None
    preprocess = {
        "scale": "keras.layers.Rescaling(1.0 / 255),  # pixels 0-255 -> 0-1",
        "none": "keras.layers.Rescaling(1.0),  # raw 0-255 values, as the spec says",
        "standardize": "keras.layers.Normalization(axis=(1, 2, 3), mean=mean, variance=variance),",
    }[spec.dataset.normalization]
    activation = '"softmax"' if spec.output == "softmax" else "None"
    lines = [
        "# Seeded just before the build, as cnnkit does: the same seed and the same layers in",
        "# the same order give the same initial weights.",
        "keras.utils.set_random_seed(seed)",
    ]
    if l2:
        lines += [f"l2 = keras.regularizers.L2({num(wd)})  # weight decay on every conv/dense kernel"]
    lines += ["", "model = keras.Sequential(", "    [", "        keras.Input(shape=input_shape),",
              f"        {preprocess}"]
    lines += [line for layer in spec.layers for line in _item(layer_code(layer, l2))]
    reg = f", kernel_regularizer={l2}" if l2 else ""
    if spec.output == "logits":
        lines += ["        # no softmax: the model outputs logits, and the loss applies the softmax"]
    lines += [*_item(f"keras.layers.Dense(num_classes, activation={activation}{reg})"),
              "    ],", '    name="cnn",', ")", "model.summary()"]
    return lines


def _train(spec: ExperimentSpec) -> list[str]:
    training, has_val = spec.training, spec.dataset.validation_split > 0
    loss = ('"sparse_categorical_crossentropy"' if spec.output == "softmax"
            else "keras.losses.SparseCategoricalCrossentropy(from_logits=True)")
    return [
        "model.compile(",
        f"    loss={loss},",
        f"    optimizer={optimizer_code(training)},",
        '    metrics=["accuracy"],',
        ")",
        *schedule_code(training, has_val),
        "",
        "# Plain float32 throughout. cnnkit may train convolution networks in mixed bfloat16 on CPUs",
        "# with native bf16 (AVX512-BF16), and it shuffles with a seeded tf.data pipeline under",
        "# TensorFlow's op determinism; Keras' own (seeded) shuffling here draws other batches, so",
        "# the trained weights, not the recipe, differ a little from a cnnkit run.",
        "model.fit(",
        "    x_train,",
        "    y_train,",
        "    batch_size=batch_size,",
        "    epochs=epochs,",
        f"    validation_data={'validation_data' if has_val else 'None'},",
        "    callbacks=callbacks,",
        "    verbose=2,  # one line per epoch: keeps the JSON result the last line of output",
        ")",
    ]


def _evaluate() -> list[str]:
    return [
        "score = model.evaluate(x_test, y_test, batch_size=256, verbose=0, return_dict=True)",
        'print("Test loss:", score["loss"])',
        'print("Test accuracy:", score["accuracy"])',
        'print(json.dumps({"test_accuracy": float(score["accuracy"]), "params": model.count_params()}))',
    ]


def python_script(spec: ExperimentSpec, *, title: str | None = None) -> str:
    """The spec as a standalone Keras training script (see the module docstring).

    Every field but the name is validated first (SpecError / ArchitectureError), so only the
    name and `title` can be arbitrary text, and those are embedded safely.
    """
    checked = ExperimentSpec.from_dict({**spec.to_dict(), "name": None, "preset": None})
    summarize_spec(checked)  # an impossible network fails here, naming the layer
    named = ExperimentSpec(layers=checked.layers, dataset=checked.dataset, training=checked.training,
                           output=checked.output, name=spec.name, preset=spec.preset)
    for what, text in (("title", title), ("spec.name", spec.name), ("spec.preset", spec.preset)):
        if text is not None and not isinstance(text, str):
            raise TypeError(f"{what} must be text, got {type(text).__name__}")
    parts = [_header(named, title), _section(SECTIONS[0]), _setup(named, title),
             _section(SECTIONS[1]), _load(named), _section(SECTIONS[2]), _prepare(named),
             _section(SECTIONS[3]), _model(named), _section(SECTIONS[4]), _train(named),
             _section(SECTIONS[5]), _evaluate()]
    return "\n".join(line for part in parts for line in part) + "\n"
