"""Graders of exercise 06 · Classic CNNs (solutions/06_classic_cnns.ipynb).

The student writes three counts: `conv_output_size(n, kernel, stride=1, padding=0)`,
`stack_vs_large_kernel(channels, n_convs)` and `dense_params_after_flatten(height, width,
channels, n_pools, units)`. Each is compared, on fixed classic cases and random ones, with what
Keras layers report (computed once per session: a grader runs many times).
"""

from __future__ import annotations

import functools
import numbers

import numpy as np

from .core import expect, grade, student, whole_number

__all__ = ["check_conv_output_size", "check_stack_vs_large_kernel",
           "check_dense_params_after_flatten"]


def _number(got, call):
    """`got` if it is a number (int or float, NumPy's too, for the formula hints), else the
    whole-number FAIL that names the type expected."""
    if isinstance(got, np.ndarray) and got.shape == ():
        got = got[()]
    if isinstance(got, numbers.Real) and not isinstance(got, (bool, np.bool_)):
        return got
    return whole_number(got, call)  # fails, naming the type


def _slip(answers, slips, fallback):
    """The hint of the first slip whose formula gives the student's number on EVERY case (so a
    hint never fires on a number that another slip, or luck, gives on one case), else fallback.
    `answers` holds (case, got, ...) rows; each slip is (hint, case -> the numbers it gives)."""
    for hint, numbers_of in slips:
        if all(row[1] in numbers_of(*row[0]) for row in answers):
            return hint
    return fallback


@functools.lru_cache(maxsize=None)
def _keras_output_size(n, k, s, p, pooling):
    import keras

    inputs = keras.Input((n, n, 1))
    x = keras.layers.ZeroPadding2D(p)(inputs) if p else inputs
    layer = keras.layers.MaxPooling2D(k, strides=s) if pooling else keras.layers.Conv2D(
        1, k, strides=s)
    return int(layer(x).shape[1])


def check_conv_output_size(conv_output_size):
    """`conv_output_size(n, kernel, stride=1, padding=0)` -> side of the output map.

    Checked against Keras on fixed and random cases: ZeroPadding2D(padding), then a Conv2D or a
    MaxPooling2D with that kernel and stride and no padding of its own; called with the
    arguments by position, by name, and with the defaults left out.
    """
    conv_output_size = student(conv_output_size)

    def run():
        rng = np.random.default_rng(8)
        cases = [(227, 11, 4, 0), (224, 11, 4, 0), (224, 7, 2, 1), (55, 3, 2, 0),
                 (27, 5, 1, 2), (32, 5, 1, 0), (13, 3, 1, 1), (110, 3, 2, 0), (30, 3, 1, 0)]
        while len(cases) < 30:
            k = int(rng.choice([1, 2, 3, 5, 7, 11]))
            s, p = int(rng.integers(1, 5)), int(rng.integers(0, 4))
            cases.append((int(rng.integers(max(1, k - 2 * p), 120)), k, s, p))
        answers = []  # (case, the student's number, call, Keras's answer)
        for index, (n, k, s, p) in enumerate(cases):
            want = _keras_output_size(n, k, s, p, index % 3 == 2)
            if s == 1 and p == 0 and index % 2:
                call, got = f"conv_output_size({n}, {k})", conv_output_size(n, k)
            elif index % 2:
                call = f"conv_output_size({n}, {k}, stride={s}, padding={p})"
                got = conv_output_size(n, k, stride=s, padding=p)
            else:
                call, got = f"conv_output_size({n}, {k}, {s}, {p})", conv_output_size(n, k, s, p)
            answers.append(((n, k, s, p), _number(got, call), call, want))
        for index, ((n, k, s, p), got, call, want) in enumerate(answers):
            if got == want:
                continue
            hint = _slip(answers, [
                ("round down: a window that would hang over the edge is not computed, so use "
                 "floor division //", lambda n, k, s, p: ((n + 2 * p - k) / s + 1,
                                                           -(-(n + 2 * p - k) // s) + 1)),
                ("count the window's first position too: + 1",
                 lambda n, k, s, p: ((n + 2 * p - k) // s,)),
                ("the padding goes on both sides: n + 2·padding",
                 lambda n, k, s, p: ((n + p - k) // s + 1,)),
                ("the padding adds pixels to the map: n + 2·padding",
                 lambda n, k, s, p: ((n - k) // s + 1,)),
                ("the window moves `stride` pixels at a time: divide by the stride",
                 lambda n, k, s, p: (n + 2 * p - k + 1,)),
            ], "the window starts at the first pixel of the padded input and moves `stride` "
               "pixels at a time while it still fits")
            what = (f"a {k}x{k} {'max pooling' if index % 3 == 2 else 'convolution'} with stride "
                    f"{s} on {n}x{n} pixels padded by {p}")
            expect(False, f"{what} gives {want}x{want} maps in Keras; {call} returned {got!r}: "
                   f"{hint}.")
        for _, got, call, _ in answers:  # right values, but are they ints? (55.0 is not a side)
            whole_number(got, call)
        return (f"{len(cases)} convolutions and poolings agree with Keras; AlexNet's 11x11 stride "
                f"4 gives {int(answers[0][1])} on 227 pixels but {int(answers[1][1])} on the 224 "
                "the paper states.")

    return grade("conv_output_size", run)


@functools.lru_cache(maxsize=None)
def _keras_stack(channels, n):
    """(weights of n 3x3 convolutions, of one with the same field, the field), from Keras."""
    import keras

    from cnnkit.analysis import receptive_field

    def weights(kernel):
        layer = keras.layers.Conv2D(channels, kernel, use_bias=False)
        layer.build((None, None, None, channels))
        return layer.count_params()

    inputs = keras.Input((None, None, 1))
    x = inputs
    for _ in range(n):
        x = keras.layers.Conv2D(1, 3, padding="same", use_bias=False)(x)
    field = receptive_field(keras.Model(inputs, x))[0]
    return n * weights(3), weights(field), field


def check_stack_vs_large_kernel(stack_vs_large_kernel):
    """`stack_vs_large_kernel(channels, n_convs)` -> (stack_weights, one_kernel_weights, field).

    n_convs 3x3 convolutions from `channels` to `channels` maps, without biases, against one
    convolution with the same receptive field: checked against Keras layers and cnnkit.analysis.
    """
    stack_vs_large_kernel = student(stack_vs_large_kernel)

    def run():
        rng = np.random.default_rng(9)
        cases = [(64, 3), (64, 2), (1, 1), (3, 4), (5, 1)] + [
            (int(rng.integers(2, 129)), int(rng.integers(1, 6))) for _ in range(10)]
        answers = []
        for channels, n in cases:
            want = _keras_stack(channels, n)
            call = f"stack_vs_large_kernel({channels}, {n})"
            got = stack_vs_large_kernel(channels, n)
            expect(isinstance(got, (tuple, list)) and len(got) == 3,
                   f"return a tuple (stack_weights, one_kernel_weights, field); {call} "
                   f"returned {got!r:.80} of type {type(got).__name__}.")
            got = tuple(whole_number(value, call) for value in got)
            what = f"{n} stacked 3x3 convolutions of {channels} maps"
            expect(got == want or sorted(got) != sorted(want),
                   f"{call} returned {got}: the numbers are right but in another order; return "
                   "(stack_weights, one_kernel_weights, field).")
            if got[2] != want[2]:
                hint = ("the first 3x3 sees 3 pixels and every further one adds 2"
                        if got[2] == 3 * n else
                        "one pixel to start with, and every 3x3 of stride 1 widens it by 2")
                expect(False, f"{what} see {want[2]}x{want[2]} pixels; {call} gave a field of "
                       f"{got[2]}: {hint}.")
            if got[0] != want[0]:
                hint = ("count weights only: the paper's 27C² has no biases"
                        if got[0] == want[0] + n * channels else
                        f"each layer has 3·3·C·C weights (C = {channels} maps in and out)")
                expect(False, f"{what} have {want[0]:,} weights; {call} gave {got[0]!r}: "
                       f"{hint}.")
            if got[1] != want[1]:
                hint = ("count weights only, no bias" if got[1] == want[1] + channels else
                        f"one {want[2]}x{want[2]} layer has {want[2]}·{want[2]}·C·C weights")
                expect(False, f"one {want[2]}x{want[2]} convolution of {channels} maps has "
                       f"{want[1]:,} weights; {call} gave {got[1]!r}: {hint}.")
            answers.append(got)
        three, seven, _ = answers[0]
        return (f"{len(cases)} stacks agree with Keras layers; three 3x3 layers of 64 maps have "
                f"{three:,} weights (27C²), one 7x7 has {seven:,} (49C²).")

    return grade("stack_vs_large_kernel", run)


@functools.lru_cache(maxsize=None)
def _keras_dense(h, w, c, n_pools, units):
    import keras

    x = keras.Input((h, w, c))
    for _ in range(n_pools):
        x = keras.layers.MaxPooling2D(2)(x)
    flat = int(keras.layers.Flatten()(x).shape[-1])
    return flat * units + units  # Dense(units)'s kernel and bias (not built: fc1 is 400 MB)


def check_dense_params_after_flatten(dense_params_after_flatten):
    """`dense_params_after_flatten(height, width, channels, n_pools, units)` -> parameters.

    Maps of height x width x channels go through n_pools 2x2 max poolings (stride 2), are
    flattened and feed Dense(units): checked against those Keras layers on random sizes, odd
    ones among them, and on VGG-16's fc1.
    """
    dense_params_after_flatten = student(dense_params_after_flatten)

    def run():
        rng = np.random.default_rng(10)
        cases = [(224, 224, 512, 5, 4096), (28, 28, 64, 2, 10), (7, 7, 512, 0, 16),
                 (13, 13, 256, 1, 100), (100, 60, 3, 3, 7), (7, 9, 5, 1, 3)]
        for _ in range(14):
            n_pools = int(rng.integers(0, 6))
            h, w = (int(rng.integers(1, 9)) * 2 ** n_pools + int(rng.integers(0, 2 ** n_pools))
                    for _ in range(2))
            cases.append((h, w, int(rng.integers(1, 65)), n_pools, int(rng.integers(1, 129))))
        answers = []  # (case, the student's number, call, Keras's answer)
        for h, w, c, n_pools, units in cases:
            call = f"dense_params_after_flatten({h}, {w}, {c}, {n_pools}, {units})"
            got = _number(dense_params_after_flatten(h, w, c, n_pools, units), call)
            answers.append(((h, w, c, n_pools, units), got, call,
                            _keras_dense(h, w, c, n_pools, units)))

        def unrounded(h, w, c, n_pools, units):  # the halvings not rounded, or rounded once
            exact = h / 2 ** n_pools * w / 2 ** n_pools * c * units
            return (exact + units, round(exact + units), int(exact + units), int(exact) + units,
                    h * w // 4 ** n_pools * c * units + units)

        for (h, w, c, n_pools, units), got, call, want in answers:
            if got == want:
                continue
            side_h, side_w = h // 2 ** n_pools, w // 2 ** n_pools
            hint = _slip(answers, [
                ("add one bias per unit", lambda *case: (_keras_dense(*case) - case[-1],)),
                (f"each 2x2 pooling rounds down (7 pixels become 3), so after {n_pools} poolings "
                 f"{h}x{w} maps are {side_h}x{side_w}", unrounded),
                (f"each 2x2 pooling rounds DOWN (7 pixels become 3, not 4): after {n_pools} "
                 f"poolings {h}x{w} maps are {side_h}x{side_w}",
                 lambda h, w, c, n, u: (-(-h // 2 ** n) * -(-w // 2 ** n) * c * u + u,)),
            ], f"the maps become {side_h}x{side_w}x{c}; flattened, every one of those values "
               "connects to every unit, plus one bias per unit")
            expect(False, f"Dense({units}) after {n_pools} poolings of {h}x{w}x{c} maps has "
                   f"{want:,} parameters; {call} returned {got!r}: {hint}.")
        for _, got, call, _ in answers:
            whole_number(got, call)
        return (f"{len(cases)} cases agree with Keras layers; VGG-16's fc1 on 224x224 images has "
                f"{int(answers[0][1]):,} parameters.")

    return grade("dense_params_after_flatten", run)
