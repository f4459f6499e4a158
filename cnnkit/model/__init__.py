"""Keras models: the only sub-package that imports TensorFlow or Keras (through `tf_import`).

`models` builds a spec; `levers`, `callbacks` and `training` train it in a worker process;
`outputs`, `lite`, `inspection` and `predictor` run a saved model; `keras_file` and
`keras_config` check a model file before anything reads it, `uploads` loads one from outside;
`keras_download` fills Keras' dataset cache in a subprocess.
"""
