"""`python -m cnnkit.model.keras_download NAME`: fill Keras' dataset cache through Keras.

It runs in a subprocess of its own (`cnnkit.data.keras_cache.download_with_keras`), so the
dashboard and the data layer never import Keras themselves.
"""

from __future__ import annotations

import sys

from cnnkit.data.catalog import get_dataset_info
from cnnkit.model.tf_import import keras


def keras_download(name: str) -> None:
    """Load the dataset through Keras once: Keras downloads it into its cache."""
    info = get_dataset_info(name)
    getattr(keras.datasets, info.name).load_data()


if __name__ == "__main__":
    keras_download(sys.argv[1])
