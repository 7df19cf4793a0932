"""Graders of exercise 09 · Dense connections (solutions/09_dense_connections.ipynb).

The student writes three counting functions, each checked on random sizes (every argument
varied away from its default) against the layers of cnnkit.models.densenet: the channels after
each layer of a dense block (a list of ints), a dense layer's trainable parameters (an int), and
a transition's output shape (a tuple of three ints).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .core import expect, grade, student, whole_number

__all__ = ["check_dense_block_channels", "check_dense_layer_params", "check_transition_output"]


@functools.lru_cache(maxsize=None)
def _reference_block_channels(k0, k, depth):
    """The channels out of each `_concat` of cnnkit's `dense_block`."""
    import keras

    from cnnkit.models.densenet import dense_block

    inputs = keras.Input((1, 1, k0))
    reference = keras.Model(inputs, dense_block(inputs, depth, k, name="reference"))
    return [reference.get_layer(f"reference_block{b}_concat").output.shape[-1]
            for b in range(1, depth + 1)]


@functools.lru_cache(maxsize=None)
def _reference_transition(shape, theta):
    import keras

    from cnnkit.models.densenet import transition

    return tuple(transition(keras.Input(shape), theta, name="reference").shape[1:])


def check_dense_block_channels(dense_block_channels):
    """`dense_block_channels(k0, k, layers)` -> the channels after each layer of a dense block.

    Checked against the `_concat` outputs of cnnkit's `dense_block` (DenseNet's BN-ReLU-1x1(4k)-
    BN-ReLU-3x3(k) layers, each concatenated to its input) on random sizes.
    """
    dense_block_channels = student(dense_block_channels)

    def run():
        rng = np.random.default_rng(13)
        cases = [(64, 32, 6), (24, 12, 8), (16, 48, 3), (3, 1, 1)]
        cases += [(int(rng.integers(1, 129)), int(rng.integers(1, 49)), int(rng.integers(1, 9)))
                  for _ in range(6)]
        for k0, k, depth in cases:
            want = _reference_block_channels(k0, k, depth)
            call = f"dense_block_channels({k0}, {k}, {depth})"
            got = dense_block_channels(k0, k, depth)
            expect(isinstance(got, (list, tuple)),
                   f"{call} returned {got!r:.80} of type {type(got).__name__}: return a list "
                   f"with the channels after each of the {depth} layers, e.g. "
                   f"[{k0 + k}, {k0 + 2 * k}, ...].")
            got = [whole_number(value, call) for value in got]
            if len(got) != depth:
                hint = f"one number per dense layer: {depth} of them"
            elif got == [k0 + layer * k for layer in range(depth)]:
                hint = ("off by one: after layer l the block holds k0 + l·k channels, so the "
                        "first entry is k0 + k")
            elif got == [k0 + layer * 4 * k for layer in range(1, depth + 1)]:
                hint = ("the 1x1 bottleneck's 4k maps stay inside the layer: only the k maps of "
                        "its 3x3 convolution are concatenated")
            elif got == [layer * k for layer in range(1, depth + 1)]:
                hint = ("concatenation keeps the block's input: its k0 channels are part of "
                        "every layer's output")
            elif got == [k0] * depth or got == [k] * depth:
                hint = ("a dense layer concatenates, it does not add: the channels grow by k "
                        "per layer")
            elif got == [k0 + layer * k for layer in range(depth, 0, -1)]:
                hint = "list the layers in order, the first layer's output first"
            else:
                hint = "each layer appends its k new maps to everything before it: k0 + l·k"
            expect(got == want, f"{call} returned {got}; cnnkit's dense_block gives {want}: "
                   f"{hint}.")
        ends = [int(dense_block_channels(k0, 32, depth)[-1])
                for k0, depth in ((64, 6), (128, 12), (256, 24), (512, 16))]
        return (f"{len(cases)} blocks agree with cnnkit's dense_block; DenseNet-121's four "
                f"blocks end with {', '.join(map(str, ends))} channels.")

    return grade("dense_block_channels", run)


@functools.lru_cache(maxsize=None)
def _reference_dense_layer_params(c_in, k, bottleneck):
    """Trainable parameters of a dense layer: cnnkit's `dense_layer` (its bottleneck is 4), or
    the same BN-ReLU-1x1(bottleneck·k)-BN-ReLU-3x3(k) built from Keras layers for another."""
    import keras
    from keras import layers

    from cnnkit.analysis import count_params
    from cnnkit.models.densenet import BOTTLENECK, dense_layer

    inputs = keras.Input((3, 3, c_in))
    if bottleneck == BOTTLENECK:
        outputs = dense_layer(inputs, k, name="reference")
    else:
        y = layers.ReLU()(layers.BatchNormalization()(inputs))
        y = layers.Conv2D(bottleneck * k, 1, use_bias=False)(y)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(k, 3, padding="same", use_bias=False)(y)
        outputs = layers.Concatenate()([inputs, y])
    return count_params(keras.Model(inputs, outputs))


def check_dense_layer_params(dense_layer_params):
    """`dense_layer_params(c_in, k, bottleneck=4)` -> trainable parameters of a DenseNet-B layer.

    BN-ReLU-1x1 conv (bottleneck·k maps)-BN-ReLU-3x3 conv (k maps), no biases, BatchNorm with γ
    and β: checked against cnnkit's `dense_layer` (bottleneck 4) and the same Keras layers with
    other bottlenecks, on random sizes.
    """
    dense_layer_params = student(dense_layer_params)

    def run():
        rng = np.random.default_rng(14)
        cases = [(64, 32, 4), (992, 32, 4), (24, 12, 4), (128, 48, 4), (64, 32, 2), (40, 12, 1)]
        cases += [(int(rng.integers(1, 1025)), int(rng.integers(1, 65)),
                   int(rng.choice([4, 4, 4, 1, 2, 3, 6]))) for _ in range(12)]
        for c, k, b in cases:
            want = _reference_dense_layer_params(c, k, b)
            call = f"dense_layer_params({c}, {k}, bottleneck={b})"
            got = whole_number(dense_layer_params(c, k, bottleneck=b), call)
            if got == want:
                continue
            bn = 2 * c + 2 * b * k
            if got == want + bn:
                hint = ("count only γ and β of each BatchNorm: its moving mean and variance are "
                        "not trainable")
            elif got == want - bn:
                hint = ("each BatchNorm has γ and β per channel: 2·c_in before the 1x1, "
                        "2·bottleneck·k before the 3x3")
            elif got == want + b * k + k:
                hint = ("the convolutions have no bias (BatchNorm follows each one): "
                        "use_bias=False")
            elif got == 2 * c + 9 * c * k:
                hint = ("the layer has a bottleneck: a 1x1 convolution to bottleneck·k maps, "
                        "and the 3x3 reads those, not the c_in input channels")
            elif got == want - 9 * b * k * k + 9 * c * k:
                hint = "the 3x3 convolution reads the bottleneck's bottleneck·k maps, not c_in"
            elif b != 4 and got == _reference_dense_layer_params(c, k, 4):
                hint = "use the bottleneck argument: the 1x1 makes bottleneck·k maps"
            else:
                hint = ("BN on c_in (2·c_in), 1x1 c_in → bottleneck·k, BN (2·bottleneck·k), "
                        "3x3 bottleneck·k → k")
            expect(False, f"{call} returned {got!r}; the real layer has {want:,} "
                   f"trainable parameters: {hint}.")
        first = whole_number(dense_layer_params(64, 32), "dense_layer_params(64, 32)")
        last = whole_number(dense_layer_params(992, 32), "dense_layer_params(992, 32)")
        return (f"{len(cases)} layers agree with the real ones; in DenseNet-121 the first dense "
                f"layer has {first:,} parameters and the last of block 3 (992 channels in) "
                f"{last:,}.")

    return grade("dense_layer_params", run)


def check_transition_output(transition_output):
    """`transition_output(shape, compression=0.5)` -> (height, width, channels) it outputs.

    Checked against cnnkit's `transition` (BN-ReLU, 1x1 conv to ⌊θ·m⌋ channels, 2x2 average pool
    with stride 2) on random shapes, odd sizes included.
    """
    transition_output = student(transition_output)

    def run():
        rng = np.random.default_rng(15)
        cases = [((56, 56, 256), 0.5), ((28, 28, 512), 0.5), ((14, 14, 1024), 0.5),
                 ((7, 9, 15), 0.5), ((8, 8, 96), 1.0), ((13, 12, 30), 0.75)]
        # Dyadic shares (0.375 = 3/8, ...) keep θ·m exact in floating point.
        for _ in range(12):
            shape = tuple(int(n) for n in (rng.integers(2, 40), rng.integers(2, 40),
                                           rng.integers(4, 513)))
            cases.append((shape, float(rng.choice([0.5, 0.5, 0.25, 0.375, 0.625, 0.75, 1.0]))))
        for shape, theta in cases:
            want = _reference_transition(shape, theta)
            call = f"transition_output({shape}, compression={theta})"
            got = transition_output(shape, compression=theta)
            expect(isinstance(got, (tuple, list)) and len(got) == 3,
                   f"{call} returned {got!r:.80} of type {type(got).__name__}: return a tuple "
                   "(height, width, channels).")
            got = tuple(whole_number(value, call) for value in got)
            h, w, c = shape
            size_wrong = got[:2] != want[:2]
            if got != want and got in ((want[2], want[0], want[1]), (want[2], want[1], want[0])):
                hint = "the channels come last: (height, width, channels)"
            elif size_wrong and got[:2] == (h, w):
                hint = "the 2x2 average pooling with stride 2 halves the height and the width"
            elif size_wrong and got[:2] == (-(-h // 2), -(-w // 2)):
                hint = ("the pooling has no padding: an odd size loses its last row or column, "
                        "⌊h/2⌋")
            elif size_wrong:
                hint = "the size halves, rounded down: (⌊h/2⌋, ⌊w/2⌋)"
            elif got[2] == c and theta != 1:
                hint = "the 1x1 convolution keeps only a share θ of the channels: ⌊θ·m⌋"
            elif got[2] == c // 2 and theta != 0.5:
                hint = "use the compression argument θ: ⌊θ·m⌋ channels, not always half"
            elif got[2] == round(c * theta) or got[2] == math.ceil(c * theta):
                hint = "the channels are rounded down: ⌊θ·m⌋, int(θ·m)"
            else:
                hint = "(⌊h/2⌋, ⌊w/2⌋, ⌊θ·m⌋)"
            expect(got == want, f"{call} returned {got}; cnnkit's transition gives {want}: "
                   f"{hint}.")
        shapes = [tuple(whole_number(n, "transition_output") for n in transition_output(
            s, compression=0.5)) for s in ((56, 56, 256), (28, 28, 512), (14, 14, 1024))]
        return (f"{len(cases)} transitions agree with cnnkit's; DenseNet-121's three give "
                + ", ".join("x".join(map(str, s)) for s in shapes) + ".")

    return grade("transition_output", run)
