"""What a lesson measures about a network: parameters, receptive fields, multiply-accumulates and
memory access, per layer and per model, for any Keras functional model.

- `count_params(model)`: trainable parameters, as Keras counts them.
- `layer_params(layer)`: the same count from each layer type's formula, e.g. a convolution has
  k_h·k_w·(c_in/groups)·c_out weights plus c_out biases.
- `receptive_fields(model)`: receptive field and jump (effective stride) of every layer, by the
  recurrence r_out = r_in + (k − 1)·d·j_in, j_out = j_in·s; where branches merge, the larger field.
- `layer_stats(model)` / `model_macs(model)`: multiply-accumulates (MACs; one MAC is a multiply
  and an add, so FLOPs ≈ 2·MACs) and memory access cost, for one image.

What the MAC count includes depends on the convention, and figures quoted in papers and tools
differ by a few percent because of it:
- "papers" (the default): convolutions of every kind (grouped, depthwise, separable,
  transposed) and dense layers, i.e. the multiplications by weights; biases, BatchNorm,
  activations, pooling, additions and concatenations are left out. This is how ResNet's
  "3.8 × 10⁹ FLOPs" and MobileNetV2's "300M multiply-adds" were counted.
- "fvcore" (what fvcore's FlopCountAnalysis reports for a PyTorch model, often quoted as the
  reference): the same, plus 2 per element for a BatchNorm with scale or offset (1 without),
  1 per input element for global average pooling, and 1 (nearest) or 4 (bilinear) per output
  element for upsampling. Activations, additions and max pooling stay uncounted.

Memory access cost (MAC in ShuffleNet V2's sense, "Practical Guidelines for Efficient CNN
Architecture Design", Ma et al., 2018) counts elements read and written: every input, the
output, and the weights, for every layer, element-wise ones included (their guideline G4).
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import keras
from keras import layers as L

from cnnkit._keras_internals import inbound_nodes

__all__ = ["count_params", "block_params", "tap", "layer_params", "receptive_fields",
           "receptive_field", "layer_stats", "model_macs", "memory_access", "weight_depth", "format_table", "RFRow",
           "LayerStats",
           "CONVENTIONS"]


def count_params(model, trainable=True) -> int:
    """Trainable (or, with trainable=False, non-trainable) parameters of a built model."""
    weights = model.trainable_weights if trainable else model.non_trainable_weights
    return int(sum(math.prod(w.shape) for w in weights))


def block_params(model, prefix) -> int:
    """Trainable parameters of the layers whose names start with `prefix` ("conv3_block2_")."""
    return sum(count_params(layer) for layer in model.layers if layer.name.startswith(prefix))


def tap(model, layer_names, x):
    """The outputs of the named layers for input `x` (inference mode), as NumPy arrays."""
    probe = keras.Model(model.inputs, [model.get_layer(name).output for name in layer_names])
    outputs = probe(x, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [keras.ops.convert_to_numpy(t) for t in outputs]


def _pair(value):
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


# ---------------------------------------------------------------------------------------------
# Parameters by formula

def layer_params(layer) -> int:
    """All parameters (trainable and not) of one built layer, from its type's formula.

    Raises ValueError for a layer with weights whose type has no formula here, so a new layer
    type in the kit is noticed rather than counted as zero.
    """
    if isinstance(layer, L.SeparableConv2D):
        kh, kw = _pair(layer.kernel_size)
        c_in = layer.depthwise_kernel.shape[2]
        depthwise = kh * kw * c_in * layer.depth_multiplier
        pointwise = c_in * layer.depth_multiplier * layer.filters
        return depthwise + pointwise + (layer.filters if layer.use_bias else 0)
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw = _pair(layer.kernel_size)
        c_in = layer.kernel.shape[2]
        c_out = c_in * layer.depth_multiplier
        return kh * kw * c_in * layer.depth_multiplier + (c_out if layer.use_bias else 0)
    if isinstance(layer, (L.Conv2D, L.Conv2DTranspose)):
        kh, kw = _pair(layer.kernel_size)
        # Conv2D's kernel is (kh, kw, c_in/groups, c_out); Conv2DTranspose's (kh, kw, c_out, c_in).
        groups = getattr(layer, "groups", 1)
        axis = 2 if isinstance(layer, L.Conv2D) else 3
        c_in = layer.kernel.shape[axis] * (groups if axis == 2 else 1)
        return kh * kw * (c_in // groups) * layer.filters + (
            layer.filters if layer.use_bias else 0)
    if isinstance(layer, L.Dense):
        c_in = layer.kernel.shape[0]
        return c_in * layer.units + (layer.units if layer.use_bias else 0)
    if isinstance(layer, L.BatchNormalization):
        c = layer.moving_mean.shape[0]
        return c * (2 + int(layer.scale) + int(layer.center))  # moving mean and variance, γ, β
    if isinstance(layer, L.LayerNormalization):
        c = layer.gamma.shape[0] if layer.scale else layer.beta.shape[0]
        return c * (int(layer.scale) + int(layer.center))
    if isinstance(layer, L.PReLU):
        return math.prod(layer.alpha.shape)
    if isinstance(layer, keras.Model):
        return sum(layer_params(inner) for inner in layer.layers)
    if layer.weights:
        raise ValueError(f"no parameter formula for {type(layer).__name__} ({layer.name}); "
                         "add one to cnnkit.analysis.layer_params.")
    return 0


WEIGHT_LAYERS = (L.Conv2D, L.Conv2DTranspose, L.DepthwiseConv2D, L.SeparableConv2D, L.Dense)


def weight_depth(model) -> int:
    """Convolution and dense layers on the longest path from input to output: a paper's "depth".

    GoogLeNet is "22 layers deep when counting only layers with parameters"; BatchNorm, pooling
    and activations do not count, and where branches merge the deepest branch does.
    """
    deep = {id(t): 0 for t in model.inputs}
    for layer, node in _nodes(model):
        below = max(deep[id(t)] for t in node.input_tensors)
        for t in node.output_tensors:
            deep[id(t)] = below + isinstance(layer, WEIGHT_LAYERS)
    return max(deep[id(t)] for t in model.outputs)


# ---------------------------------------------------------------------------------------------
# Receptive fields

class RFRow(NamedTuple):
    """One layer's receptive field: `size` and `jump` are (height, width); size None = global."""

    layer: str
    kind: str
    kernel: tuple
    stride: tuple
    dilation: tuple
    jump: tuple
    size: tuple | None


def _geometry(layer):
    """(kernel, stride, dilation, upsampling) of a layer; None for a layer that sees everything."""
    if isinstance(layer, L.Conv2DTranspose):
        return _pair(layer.kernel_size), _pair(layer.strides), (1, 1), True
    if isinstance(layer, (L.Conv2D, L.DepthwiseConv2D, L.SeparableConv2D)):
        return _pair(layer.kernel_size), _pair(layer.strides), _pair(layer.dilation_rate), False
    if isinstance(layer, (L.MaxPooling2D, L.AveragePooling2D)):
        return _pair(layer.pool_size), _pair(layer.strides), (1, 1), False
    if isinstance(layer, L.UpSampling2D):
        return (1, 1), _pair(layer.size), (1, 1), True
    if isinstance(layer, (L.GlobalAveragePooling2D, L.GlobalMaxPooling2D, L.Flatten, L.Dense)):
        return None
    return (1, 1), (1, 1), (1, 1), False  # element-wise, normalisation, padding, merges


def _nodes(model):
    """(layer, node) pairs of `model` in an order where every input is computed before use."""
    known = {id(t) for t in model.inputs}
    waiting = [(layer, node) for layer in model.layers for node in inbound_nodes(layer)
               if node.input_tensors]  # an InputLayer's node has none: it is `model.inputs`
    while waiting:
        ready = [(layer, node) for layer, node in waiting
                 if all(id(t) in known for t in node.input_tensors)]
        if not ready:  # what remains belongs to other models that reuse these layers
            return
        for layer, node in ready:
            known.update(id(t) for t in node.output_tensors)
            yield layer, node
        waiting = [pair for pair in waiting if pair not in ready]


def receptive_fields(model) -> list[RFRow]:
    """Receptive field and jump of every layer's output, in input pixels, in graph order."""
    # tensor id -> (jump, size); size None once a layer has seen the whole input
    state = {id(t): ((Fraction(1), Fraction(1)), (1, 1)) for t in model.inputs}
    rows = []
    for layer, node in _nodes(model):
        inputs = [state[id(t)] for t in node.input_tensors]
        jump = tuple(max(j[i] for j, _ in inputs) for i in range(2))
        sizes = [s for _, s in inputs]
        size = None if any(s is None for s in sizes) else tuple(
            max(s[i] for s in sizes) for i in range(2))
        geometry = _geometry(layer)
        if geometry is None:
            size, kernel, stride, dilation = None, None, None, None
        else:
            kernel, stride, dilation, upsampling = geometry
            if upsampling:  # output pixels are 1/s of an input pixel apart
                jump = tuple(j / s for j, s in zip(jump, stride))
            if size is not None:
                size = tuple(int(r + (k - 1) * d * j)
                             for r, k, d, j in zip(size, kernel, dilation, jump))
            if not upsampling:
                jump = tuple(j * s for j, s in zip(jump, stride))
        for t in node.output_tensors:
            state[id(t)] = (jump, size)
        rows.append(RFRow(layer.name, type(layer).__name__, kernel, stride, dilation,
                          tuple(j.numerator if j.denominator == 1 else float(j) for j in jump),
                          size))
    return rows


def receptive_field(model, layer_name=None):
    """(height, width) receptive field of one layer's output (default: the model's last layer)."""
    rows = receptive_fields(model)
    if layer_name is None:
        return rows[-1].size
    for row in rows:
        if row.layer == layer_name:
            return row.size
    raise ValueError(f"{model.name} has no layer named {layer_name!r}.")


# ---------------------------------------------------------------------------------------------
# Multiply-accumulates and memory access

class LayerStats(NamedTuple):
    """What one layer costs for one image."""

    layer: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    memory: int  # elements read and written: inputs + output + weights


def _elements(shape):
    dims = shape[1:]
    if any(d is None for d in dims):
        raise ValueError(f"analysis needs a fixed input size; a tensor has shape {shape}. "
                         "Build the model with input_shape=(height, width, channels).")
    return math.prod(dims)


def _macs(layer, in_shape, out_shape):
    if isinstance(layer, L.SeparableConv2D):
        kh, kw = _pair(layer.kernel_size)
        mid = in_shape[-1] * layer.depth_multiplier
        pixels = out_shape[1] * out_shape[2]
        return pixels * (kh * kw * mid + mid * layer.filters)
    if isinstance(layer, L.DepthwiseConv2D):
        kh, kw = _pair(layer.kernel_size)
        return _elements(out_shape) * kh * kw
    if isinstance(layer, L.Conv2DTranspose):  # every input pixel spreads over a k x k window
        kh, kw = _pair(layer.kernel_size)
        return in_shape[1] * in_shape[2] * kh * kw * in_shape[-1] * layer.filters // getattr(layer, "groups", 1)
    if isinstance(layer, L.Conv2D):
        kh, kw = _pair(layer.kernel_size)
        return _elements(out_shape) * kh * kw * in_shape[-1] // layer.groups
    if isinstance(layer, L.Dense):
        return _elements(out_shape) * in_shape[-1]
    if isinstance(layer, keras.Model):
        raise ValueError(f"{layer.name} is a model inside the model; analyse it on its own.")
    return 0


CONVENTIONS = ("papers", "fvcore")


def _extra_ops(layer, in_shape, out_shape):
    """What fvcore adds to the multiplications by weights (see the module docstring)."""
    if isinstance(layer, L.BatchNormalization):
        return _elements(out_shape) * (2 if layer.scale or layer.center else 1)
    if isinstance(layer, L.GlobalAveragePooling2D):
        return _elements(in_shape)
    if isinstance(layer, L.UpSampling2D):
        return _elements(out_shape) * (4 if layer.interpolation == "bilinear" else 1)
    return 0


def layer_stats(model, convention="papers") -> list[LayerStats]:
    """Parameters, MACs and memory access of every layer for one image, in graph order."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}; got {convention!r}.")
    rows = []
    for layer, node in _nodes(model):
        in_shapes = [tuple(t.shape) for t in node.input_tensors]
        out_shape = tuple(node.output_tensors[0].shape)
        params = layer_params(layer)
        memory = (sum(_elements(s) for s in in_shapes)
                  + sum(_elements(tuple(t.shape)) for t in node.output_tensors) + params)
        macs = _macs(layer, in_shapes[0], out_shape)
        if convention == "fvcore":
            macs += _extra_ops(layer, in_shapes[0], out_shape)
        rows.append(LayerStats(layer.name, type(layer).__name__, out_shape[1:], params,
                               int(macs), int(memory)))
    return rows


def model_macs(model, convention="papers") -> int:
    """Multiply-accumulates of one forward pass of one image, counted by `convention`."""
    return sum(row.macs for row in layer_stats(model, convention))


def memory_access(model) -> int:
    """Memory access cost of one forward pass of one image, in elements (ShuffleNet V2's MAC)."""
    return sum(row.memory for row in layer_stats(model))


def format_table(rows, columns=None, max_rows=None) -> str:
    """Rows of `receptive_fields` or `layer_stats` as an aligned text table, ready to print."""
    rows = list(rows)
    if not rows:
        return ""
    columns = columns or list(rows[0]._fields)

    def show(value):
        if value is None:
            return "all"
        if isinstance(value, tuple):
            if len(value) == 2 and value[0] == value[1]:
                return str(value[0])
            return "x".join(str(v) for v in value)
        return f"{value:,}" if isinstance(value, int) else str(value)

    shown = rows if max_rows is None or len(rows) <= max_rows else rows[:max_rows]
    cells = [columns] + [[show(getattr(r, c)) for c in columns] for r in shown]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) if i < 2 else v.rjust(w) for i, (v, w) in
                       enumerate(zip(row, widths))) for row in cells]
    if len(shown) < len(rows):
        lines.append(f"... {len(rows) - len(shown)} more layers")
    return "\n".join(lines)
