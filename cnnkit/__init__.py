"""cnnkit: hands-on CNN experiments on MNIST-style data, with a tested core.

The modules split by cost: `specs`, `shapes`, `presets`, `data`, `drawing`, `store`,
`jobs` and `analysis` are plain Python + numpy and never import TensorFlow.
`models`, `training` and `inspection` build or run Keras models and import it.
"""

__version__ = "0.1.0"
