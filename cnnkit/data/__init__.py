"""Datasets, as numpy arrays: no TensorFlow, no Streamlit.

- `catalog`: what each dataset is (shapes, classes, licence) and the types a load returns;
- `idx`: the IDX file format MNIST and Fashion-MNIST are published in, and the official checksums;
- `keras_cache`: Keras' download cache, read with numpy (a download runs in a subprocess);
- `sources`: `load_raw`, which tries a data directory, then Keras' cache, then the bundled sample;
- `prepare`: subset, split and normalization statistics for training;
- `drawing`: a canvas drawing or an uploaded image → an MNIST-style 28×28;
- `samples/`: the bundled 4,000 + 1,000 image samples.
"""
