"""How a spec becomes a Keras model that trains fast here, and the data pipeline that feeds it.

Each speed lever is kept because it measured faster on this kind of machine
(docs/PERFORMANCE.md): bfloat16 convolutions on a CPU that has them natively, many steps per
call into TensorFlow for networks whose steps are short, a gather-based tf.data pipeline. None
of them may change what a seed means: the weights are built in float32 first, and the saved
model is float32.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnkit import settings
from cnnkit.model.models import build_model, compile_model
from cnnkit.model.tf_import import keras, tf  # TensorFlow, imported quietly
from cnnkit.shapes import summarize
from cnnkit.specs import ExperimentSpec, Layer
from cnnkit.sysinfo import cpu_has_bf16


def configure_determinism(seed: int) -> None:
    """Same seed + same data + same spec on CPU → identical weights."""
    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # pragma: no cover - older TF
        pass


def use_op_threads(count: int) -> int:
    """Let each TensorFlow op use `count` threads (0: every core; runs/threads.py says why),
    if TensorFlow has not run an op yet; returns the count in force. A process that has (a test,
    a warm spare given a job) keeps its own: the server only gives a spare the jobs of its count."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(count)
    except RuntimeError:  # "cannot be modified after initialization"
        pass
    return op_threads_in_force()


def op_threads_in_force() -> int:
    """Threads each TensorFlow op may use in this process (0: every core, TensorFlow's default)."""
    return tf.config.threading.get_intra_op_parallelism_threads()


def make_dataset(x: np.ndarray, y: np.ndarray, batch_size: int, *, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Batches of (float32 images, int32 labels), shuffled each epoch with `seed`.

    The pipeline shuffles indices and gathers whole batches: shuffling 60,000 image tensors one
    by one cost CPU time and a second copy of the images in the shuffle buffer. The images stay
    uint8 until a batch is gathered (4× less memory traffic); the model scales them itself.
    """
    images, labels = tf.constant(x), tf.constant(y.astype("int32"))

    def gather(index):
        return tf.cast(tf.gather(images, index), tf.float32), tf.gather(labels, index)

    ds = tf.data.Dataset.range(len(x))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size).map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.prefetch(tf.data.AUTOTUNE).with_options(without_autotune_thread())


def without_autotune_thread() -> tf.data.Options:
    """tf.data options that leave out its autotuning thread.

    Freeing an iterator (Keras drops each epoch's at the start of the next one, and the last one
    when fit returns) waits for that thread, which sleeps out its optimization period first
    (seconds, growing with the iterator's age): 3–10 s with the process idle, seen at the start
    of epoch 2 (so epoch 2 measured ~2× epoch 1) and between the last batch and the test, in
    about half the runs here, in plain Keras too. This pipeline is a gather and a cast: the
    fixed parallelism AUTOTUNE falls back to (the core count) and the prefetch's own buffer
    tuning keep it ahead of the model; the batches, their order and the weights do not change.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return options


def augmenter(augmentation, seed: int) -> keras.Sequential:
    """Keras' own random layers for a spec's augmentation, black fill (never "reflect": it would
    draw new strokes at the border), each seeded from the run's seed."""
    layers = []
    if augmentation.shift:
        layers.append(keras.layers.RandomTranslation(augmentation.shift, augmentation.shift, fill_mode="constant",
                                                     fill_value=0.0, seed=seed))
    if augmentation.rotation:
        layers.append(keras.layers.RandomRotation(augmentation.rotation / 360.0, fill_mode="constant",
                                                  fill_value=0.0, seed=seed + 1))
    if augmentation.zoom:
        layers.append(keras.layers.RandomZoom(augmentation.zoom, fill_mode="constant", fill_value=0.0,
                                              seed=seed + 2))
    if augmentation.flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed + 3))
    if augmentation.noise:  # GaussianNoise takes a std of at most 1: it works on the 0–1 scale
        layers += [keras.layers.Rescaling(1 / 255.0), keras.layers.GaussianNoise(augmentation.noise, seed=seed + 4),
                   keras.layers.Rescaling(255.0)]
    return keras.Sequential(layers, name="augmentation")


def augment_dataset(ds: tf.data.Dataset, augmentation, seed: int) -> tf.data.Dataset:
    """The training batches through `augmenter`, in the tf.data pipeline (the saved model stays
    as it is: inference, the numpy predictor and the exported files never see it)."""
    if not augmentation.active:
        return ds
    layers = augmenter(augmentation, seed)

    def apply(images, labels):
        return tf.clip_by_value(layers(images, training=True), 0.0, 255.0), labels

    return ds.map(apply, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def stop_when_file_exists(ds: tf.data.Dataset, path) -> tf.data.Dataset:
    """The dataset, ending at the first element requested after `path` exists.

    The check is a graph op run as each batch is pulled, so it works inside a multi-step
    execution, where no Python callback runs between the steps. A dataset of known length keeps
    it (`assert_cardinality`): Keras makes its iterators differently for a dataset of unknown
    length, which shifted the shuffled order a seed gives. Ending early then raises
    `FailedPreconditionError` out of `fit` (`ended_by_stop_file` tells it from a real error).
    A path with glob characters (which TensorFlow's pattern matching would read as a pattern)
    is returned unchecked.
    """
    pattern = str(path)
    if set(pattern) & set("*?[]{}\\"):
        return ds
    # In a variable: with a constant pattern the optimizer folds the file check into a constant.
    where = tf.Variable(pattern, trainable=False)

    @tf.autograph.experimental.do_not_convert
    def no_stop_file(*_):
        return tf.equal(tf.size(tf.io.matching_files(where)), 0)

    # No prefetch injected after the check: it would run the check a few batches ahead.
    options = tf.data.Options()
    options.experimental_optimization.inject_prefetch = False
    length = int(ds.cardinality())
    checked = ds.take_while(no_stop_file)
    if length >= 0:
        checked = checked.apply(tf.data.experimental.assert_cardinality(length))
    return checked.with_options(options)


def ended_by_stop_file(exc: Exception, path) -> bool:
    """Whether `exc`, raised out of `fit`, is `stop_when_file_exists` ending a dataset of known
    length early because `path` appeared."""
    return isinstance(exc, tf.errors.FailedPreconditionError) and Path(path).exists()


def training_precision(layers: tuple[Layer, ...]) -> str:
    """bfloat16 compute for convolution networks on a CPU that has it natively.

    Measured on an AVX512-BF16 CPU: 1.35–1.5× less CPU per image for the classic CNNs; test
    accuracy moved by less than the seed-to-seed spread except on tf-tutorial-cnn (-0.27 pt,
    mean of 3 seeds; docs/RESULTS.md). Dense-only networks gain little (their cost is per-step
    overhead, not arithmetic) and without native bf16 it is emulated: those keep float32.
    Weights stay float32 either way, and the saved model is float32 (see `float32_twin`).
    On a GPU: mixed_float16 (float16 compute, float32 variables, the loss scaled), the GPU's own
    lever; not measured here (no GPU). CNNKIT_PRECISION=float32, mixed_bfloat16 or mixed_float16
    overrides the choice.
    """
    choice = settings.get().precision
    if choice != "auto":
        return choice
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    has_conv = any(layer.type == "conv2d" for layer in layers)
    return "mixed_bfloat16" if has_conv and cpu_has_bf16() else "float32"


MAX_STEPS_PER_EXECUTION = 16
MACS_PER_EXECUTION = 3_000_000_000  # forward multiply-adds one call into TensorFlow may run


def steps_per_execution_for(layers: tuple[Layer, ...], input_shape: tuple[int, int, int], num_classes: int,
                            batch_size: int) -> int:
    """How many training steps one call into TensorFlow runs.

    Each call has a fixed cost of ~1.5–2 ms here (Python, callbacks, the function call): most of
    a dense step, and a third of a chollet-cnn step (64 images, ~5 ms). So a network runs up to
    16 steps a call, as many as fit in 3 G forward multiply-adds: 16 for the classic CNNs (one
    call is ~0.1 s of work; 1.18× the images/s of chollet-cnn, epoch 2), 5 for kruse-conv, 1
    for kruse-conv-nopool. Callbacks then run once a call: the live curve (a point every
    0.25 s) and the steering (pause, a new rate) keep their pace; a stop still takes effect
    within one batch because the data checks for it (`stop_when_file_exists`). The trained
    weights do not change with it. CNNKIT_TEST_HOLD_AT (a test hook that holds after one exact
    batch) runs one step a call.
    """
    if settings.get().test_hold_at:
        return 1
    macs_per_step = summarize(layers, input_shape, num_classes).total_macs * batch_size
    return max(1, min(MAX_STEPS_PER_EXECUTION, MACS_PER_EXECUTION // max(macs_per_step, 1)))


def _build(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared, precision: str) -> keras.Model:
    """Built in float32, so the initial weights never depend on the precision; for bfloat16,
    rebuilt from its config with every layer but the input and the output computing in it.
    (bfloat16 only in the conv/pool layers gave the same accuracy: 91.68% vs 91.68% on
    tf-tutorial-cnn, mean of 3 seeds.)"""
    model = build_model(layers, prepared.info.input_shape, prepared.info.num_classes, output=spec.output,
                        normalization=prepared.normalization, mean=prepared.mean, std=prepared.std,
                        weight_decay=spec.training.weight_decay, name=key)
    if precision == "float32":
        return model
    config = model.get_config()
    for layer in config["layers"]:
        if layer["class_name"] != "InputLayer" and layer["config"].get("name") != "output":
            layer["config"]["dtype"] = precision
    mixed = keras.Model.from_config(config)
    mixed.set_weights(model.get_weights())
    return mixed


def is_float32(model: keras.Model) -> bool:
    return all(layer.dtype_policy.name == "float32" for layer in model.layers)


def build_compiled(key: str, layers: tuple[Layer, ...], spec: ExperimentSpec, prepared,
                   steps_per_execution: int | None = None) -> keras.Model:
    """The model as run_job trains it: in its precision, compiled (None: the automatic steps
    per execution)."""
    precision = training_precision(layers)
    model = _build(key, layers, spec, prepared, precision)
    info = prepared.info
    steps_per_execution = steps_per_execution or steps_per_execution_for(
        layers, info.input_shape, info.num_classes, spec.training.batch_size)
    compile_model(model, spec.training, spec.output, steps_per_execution,
                  loss_scale=precision == "mixed_float16")
    return model


def float32_twin(model: keras.Model, key: str, layers: tuple[Layer, ...], spec: ExperimentSpec,
                 prepared) -> keras.Model:
    """The trained model in plain float32 with the same weights: what is saved, evaluated and
    inspected, so a saved model never depends on how it was trained."""
    if is_float32(model):
        return model
    twin = _build(key, layers, spec, prepared, "float32")
    twin.set_weights(model.get_weights())
    return twin


