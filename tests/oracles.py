"""Helpers shared by the tests that check cnnkit against Keras itself (the oracle).

Importing this module is cheap: TensorFlow loads on the first call, as in the tests' fixtures.
"""


def spec_layers(model) -> list:
    """The model's layers that correspond to shape-calculator rows (input and preprocessing left out)."""
    from cnnkit.model.models import PREPROCESS_LAYER
    from cnnkit.model.tf_import import keras

    return [layer for layer in model.layers
            if not isinstance(layer, keras.layers.InputLayer) and layer.name != PREPROCESS_LAYER]


def trained_run(folder, spec_dict: dict):
    """A finished run of `spec_dict` in `folder`, trained in this process on the bundled sample
    (module fixtures run before conftest hides the real data, so this hides it itself)."""
    import pytest

    from cnnkit.model.training import run_job
    from cnnkit.runs.store import RunStore
    from cnnkit.specs import ExperimentSpec

    store = RunStore(folder)
    record = store.create(ExperimentSpec.from_dict(spec_dict))
    with pytest.MonkeyPatch.context() as env:
        env.delenv("CNNKIT_DATA_DIR", raising=False)
        run_job(store, record.run_id)
    return store.get(record.run_id)
