"""The shape calculator: output shape, parameters, receptive field and multiply-adds per layer.

Pure Python (no TensorFlow), so the Build page can show it on every keystroke and impossible
networks are refused before Keras is touched. It follows Keras' rules exactly:

- conv/pool, padding "valid": out = floor((n - k) / s) + 1, which needs n >= k;
  padding "same": out = ceil(n / s).
- Conv2D params = k*k*c_in*filters + filters; Dense params = n_in*units + units;
  BatchNorm params = 4*channels (gamma, beta trainable; moving mean/variance not).
- receptive field (on the input image): r_out = r_in + (k - 1) * j_in, j_out = j_in * s,
  starting from r = j = 1 at the input; after Flatten/Dense every unit sees the whole image.
- multiply-adds per image: conv = out_h*out_w*k*k*c_in*filters, dense = n_in*units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cnnkit.errors import ArchitectureError
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
)

Shape = tuple[int, ...]  # (H, W, C) for image-shaped tensors, (N,) for flat ones


@dataclass(frozen=True)
class LayerShape:
    """One row of the summary table. `index` is 1-based; the appended output layer has index 0."""

    index: int
    name: str                      # the Keras layer name, e.g. "conv2d_1"
    type: str
    description: str
    output_shape: Shape
    params: int
    trainable_params: int
    receptive_field: int | None    # side of the input patch one output unit sees; None: the whole image
    rf_stride: int | None          # effective stride on the input (the "jump"); None when flat
    macs: int                      # multiply-adds per image

    def __repr__(self) -> str:
        return f"LayerShape({self.name}: {self.output_shape}, params={self.params}, rf={self.receptive_field})"

    @property
    def activation_size(self) -> int:
        return math.prod(self.output_shape)

    def to_dict(self) -> dict:
        return {
            "name": self.name, "type": self.type, "description": self.description,
            "output_shape": list(self.output_shape), "params": self.params,
            "receptive_field": self.receptive_field, "rf_stride": self.rf_stride, "macs": self.macs,
        }


@dataclass(frozen=True)
class NetworkSummary:
    input_shape: Shape
    layers: tuple[LayerShape, ...]     # the spec's layers, then the output layer

    def __repr__(self) -> str:
        return f"NetworkSummary({len(self.layers)} layers, {self.total_params:,} params)"

    @property
    def total_params(self) -> int:
        return sum(row.params for row in self.layers)

    @property
    def trainable_params(self) -> int:
        return sum(row.trainable_params for row in self.layers)

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.layers)

    @property
    def activation_floats(self) -> int:
        """Activation values per image, input included: a floor for memory use in training."""
        return math.prod(self.input_shape) + sum(row.activation_size for row in self.layers)

    def activation_bytes(self, batch_size: int) -> int:
        # float32 activations, kept for backprop, plus their gradients: about 2 copies a batch.
        return 2 * 4 * self.activation_floats * batch_size

    def to_dict(self) -> dict:
        return {"input_shape": list(self.input_shape),
                "layers": [row.to_dict() for row in self.layers],
                "total_params": self.total_params, "total_macs": self.total_macs}



def format_shape(shape, *, spaced: bool = False) -> str:
    """(28, 28, 1) → "28×28×1" ("28 × 28 × 1" spaced, for tables); an unknown size is "?"."""
    return (" × " if spaced else "×").join("?" if side is None else str(side) for side in shape)

def layer_name(index: int, layer: Layer) -> str:
    """The Keras name of the spec's `index`-th layer (1-based), e.g. "conv2d_1"."""
    return f"{layer.type}_{index}"


def _window_out(n: int, k: int, s: int, padding: str) -> int:
    if padding == "same":
        return -(-n // s)
    return (n - k) // s + 1


def _fail(index: int, layer: Layer, why: str) -> ArchitectureError:
    return ArchitectureError(f"layers[{index - 1}]", f"layer {index} ({layer.describe()}) {why}")


def _spatial(index: int, layer: Layer, shape: Shape, k: int, s: int, padding: str) -> Shape:
    if len(shape) != 3:
        raise _fail(index, layer, f"needs an image-shaped input (height, width, channels) but gets a flat "
                                  f"vector of {shape[0]}: put convolution and pooling layers before Flatten")
    h, w, _ = shape
    if padding == "valid" and (h < k or w < k):
        raise _fail(index, layer, f"has a {k}×{k} window but its input is only {h}×{w}: use padding 'same', "
                                  f"a smaller window, or fewer pooling/stride steps before it")
    return _window_out(h, k, s, padding), _window_out(w, k, s, padding)


def _row(index, layer, out, params, trainable, rf, jump, macs) -> LayerShape:
    return LayerShape(index=index, name=layer_name(index, layer), type=layer.type,
                      description=layer.describe(), output_shape=tuple(out), params=params,
                      trainable_params=trainable, receptive_field=rf, rf_stride=jump, macs=macs)


def summarize(layers: tuple[Layer, ...] | list[Layer], input_shape: Shape, num_classes: int) -> NetworkSummary:
    """Walk the layers from `input_shape`, appending the Dense(num_classes) output layer."""
    shape: Shape = tuple(input_shape)
    rf, jump = 1, 1
    rows: list[LayerShape] = []
    for index, layer in enumerate(layers, start=1):
        params = trainable = macs = 0
        if isinstance(layer, Conv2D):
            k, s = layer.kernel_size, layer.strides
            h, w = _spatial(index, layer, shape, k, s, layer.padding)
            c_in = shape[2]
            trainable = params = k * k * c_in * layer.filters + layer.filters
            macs = h * w * k * k * c_in * layer.filters
            rf, jump = rf + (k - 1) * jump, jump * s
            shape = (h, w, layer.filters)
        elif isinstance(layer, (MaxPool2D, AvgPool2D)):
            k, s = layer.pool_size, layer.effective_strides
            h, w = _spatial(index, layer, shape, k, s, layer.padding)
            rf, jump = rf + (k - 1) * jump, jump * s
            shape = (h, w, shape[2])
        elif isinstance(layer, Dropout):
            pass
        elif isinstance(layer, BatchNorm):
            params, trainable = 4 * shape[-1], 2 * shape[-1]
        elif isinstance(layer, Flatten):
            shape = (math.prod(shape),)
        elif isinstance(layer, GlobalAvgPool):
            if len(shape) != 3:
                raise _fail(index, layer, f"needs an image-shaped input but gets a flat vector of {shape[0]}")
            shape = (shape[2],)
        elif isinstance(layer, Dense):
            if len(shape) != 1:
                raise _fail(index, layer, f"needs a flat input but gets a {format_shape(shape)} map: "
                                          f"add a Flatten or GlobalAvgPool layer before it")
            trainable = params = shape[0] * layer.units + layer.units
            macs = shape[0] * layer.units
            shape = (layer.units,)
        else:  # pragma: no cover - every spec layer type is handled above
            raise _fail(index, layer, "is of an unknown type")
        if min(shape) < 1:
            raise _fail(index, layer, f"would produce an empty output {shape}")
        flat = len(shape) == 1  # a flat unit sees the whole image: no receptive field to show
        rows.append(_row(index, layer, shape, params, trainable, None if flat else rf,
                         None if flat else jump, macs))

    if len(shape) != 1:
        last = f"layer {len(layers)} ({layers[-1].describe()}) gives" if layers else "the input is"
        raise ArchitectureError(
            "layers", f"the network ends on an image-shaped map: {last} a {format_shape(shape)} map, "
                      f"but the output layer needs a flat input: add Flatten or GlobalAvgPool as the last "
                      f"hidden layer")
    out_params = shape[0] * num_classes + num_classes
    rows.append(LayerShape(index=0, name="output", type="dense",
                           description=f"Dense {num_classes} (output)", output_shape=(num_classes,),
                           params=out_params, trainable_params=out_params, receptive_field=None,
                           rf_stride=None, macs=shape[0] * num_classes))
    return NetworkSummary(input_shape=tuple(input_shape), layers=tuple(rows))


def summarize_spec(spec: ExperimentSpec) -> NetworkSummary:
    from cnnkit.data.catalog import get_dataset_info

    info = get_dataset_info(spec.dataset.name)
    return summarize(spec.layers, info.input_shape, info.num_classes)
