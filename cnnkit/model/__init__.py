"""Keras models: the only sub-package that imports TensorFlow or Keras (through `tf_import`).

`models` builds a spec; `levers`, `callbacks` and `training` train it in a worker process;
`outputs`, `lite`, `inspection` and `predictor` run a saved model; `uploads` checks a model
file from outside; `keras_download` fills Keras' dataset cache in a subprocess.
"""
