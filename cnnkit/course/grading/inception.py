"""Graders of exercise 07 · Inception (solutions/07_inception.ipynb).

The student writes three counts: `inception_module_params(...)` -> (parameters, channels),
`factorized_params(n, c)` -> (square, factorized weights) and `separable_params(...)`. Each is
compared with Keras layers (built once per session: a grader runs many times) on the paper's
cases and on random ones.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import expect, grade, pair_of_whole_numbers, student, whole_number

__all__ = ["check_inception_module_params", "check_factorized_params",
           "check_separable_params"]


@functools.lru_cache(maxsize=None)
def _keras_module(c_in, filters):
    """(parameters, output channels) of the kit's inception_module on c_in channels."""
    import keras

    from cnnkit.models.googlenet import inception_module

    inputs = keras.Input((7, 7, c_in))
    outputs = inception_module(inputs, filters, name="module")
    return keras.Model(inputs, outputs).count_params(), int(outputs.shape[-1])


def check_inception_module_params(inception_module_params):
    """`inception_module_params(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)`
    -> (parameters, output_channels) of GoogLeNet's Inception module (Figure 2b).

    Checked against the kit's `inception_module` (Keras layers, every convolution with a bias)
    on GoogLeNet's nine modules of Table 1 and on random widths.
    """
    inception_module_params = student(inception_module_params)
    from cnnkit.models.googlenet import GOOGLENET_STAGES

    def run():
        cases, c_in, answers = [], 192, []  # GoogLeNet's modules, each fed by the one before
        for modules in GOOGLENET_STAGES.values():
            for filters in modules.values():
                cases.append((c_in, filters))
                c_in = sum(filters[i] for i in (0, 2, 4, 5))
        rng = np.random.default_rng(11)
        for _ in range(6):
            cases.append((int(rng.integers(1, 257)),
                          tuple(int(v) for v in rng.integers(1, 129, size=6))))
        for c_in, filters in cases:
            n1, r3, n3, r5, n5, proj = filters
            want_params, want_channels = _keras_module(c_in, filters)
            call = f"inception_module_params({c_in}, {', '.join(map(str, filters))})"
            got = inception_module_params(c_in, *filters)
            params, channels = pair_of_whole_numbers(got, call, "parameters, output_channels")
            expect((params, channels) != (want_channels, want_params), f"{call} returned "
                   f"{(params, channels)}: return (parameters, output_channels) in that order.")
            answers.append((params, channels))
            what = f"a module on {c_in} channels with widths {filters}"
            if params != want_params:
                biases = n1 + r3 + n3 + r5 + n5 + proj
                direct = (c_in * n1 + 9 * c_in * n3 + 25 * c_in * n5 + c_in * proj + biases
                          - r3 - r5)
                if params == want_params - biases:
                    hint = f"every convolution has a bias: one per filter, {biases} here"
                elif params == want_params - c_in * proj - proj:
                    hint = ("the pool branch has weights too: after the 3x3 max pooling comes a "
                            "1x1 convolution from c_in to pool_proj channels")
                elif params in (direct, direct + c_in * (r3 + r5) + r3 + r5):
                    hint = ("the 3x3 convolution sees the n3x3red channels of its 1x1 reduction, "
                            "not c_in (and the 5x5 sees n5x5red)")
                else:
                    hint = ("count each convolution as k·k·(channels in)·filters + filters: the "
                            "1x1, the 3x3 reduction and the 3x3, the 5x5 reduction and the 5x5, "
                            "and the pool projection")
                expect(False, f"{what} has {want_params:,} parameters in Keras; {call} gave "
                       f"{params!r}: {hint}.")
            if channels != want_channels:
                if channels == want_channels - proj + c_in:
                    hint = ("the pool branch ends with its 1x1 projection, so it adds pool_proj "
                            "channels, not c_in")
                elif channels == want_channels + r3 + r5:
                    hint = ("only the last layer of each branch is concatenated; the reductions "
                            "feed the 3x3 and 5x5 convolutions")
                else:
                    hint = ("the output is the four branches' last layers side by side: their "
                            "channels add up")
                expect(False, f"{what} outputs {want_channels} channels; {call} gave "
                       f"{channels!r}: {hint}.")
        params, channels = answers[0]
        return (f"{len(cases)} modules agree with Keras layers, GoogLeNet's nine among them; "
                f"inception_3a has {params:,} parameters and outputs {channels} channels.")

    return grade("inception_module_params", run)


@functools.lru_cache(maxsize=None)
def _keras_weights(c, *kernels):
    """Weights of Conv2D layers of c channels in and out, no bias, one per kernel shape."""
    import keras

    total = 0
    for kernel in kernels:
        layer = keras.layers.Conv2D(c, kernel, use_bias=False)
        layer.build((None, None, None, c))
        total += layer.count_params()
    return total


def check_factorized_params(factorized_params):
    """`factorized_params(n, c)` -> (weights of an n×n convolution, weights of a 1×n followed by
    an n×1), c channels in and out, no biases: checked against Keras Conv2D layers on
    Inception-v3's 7x7 and random n and c."""
    factorized_params = student(factorized_params)

    def run():
        rng = np.random.default_rng(12)
        cases = [(7, 192), (3, 64), (5, 1), (2, 3)] + [
            (int(rng.integers(2, 10)), int(rng.integers(2, 160))) for _ in range(12)]
        answers = []
        for n, c in cases:
            want = (_keras_weights(c, (n, n)), _keras_weights(c, (1, n), (n, 1)))
            call = f"factorized_params({n}, {c})"
            got = factorized_params(n, c)
            square, pair = pair_of_whole_numbers(got, call, "square_weights, factorized_weights")
            expect((square, pair) == want or (pair, square) != want, f"{call} returned "
                   f"{(square, pair)}: return (square_weights, factorized_weights) in that order.")
            if square != want[0]:
                hint = ("count weights only, no biases" if square == want[0] + c else
                        "an n×n kernel has n·n taps for every pair of input and output "
                        "channels: n·n·c·c")
                expect(False, f"a {n}x{n} convolution of {c} channels has {want[0]:,} weights; "
                       f"{call} gave {square!r} for it: {hint}.")
            if pair != want[1]:
                if pair == want[1] + 2 * c:
                    hint = "count weights only, no biases"
                elif pair == 2 * n * c:
                    hint = ("each of the two layers has n·c·c weights: n taps for every pair of "
                            "input and output channels")
                elif pair == want[1] // 2:
                    hint = "there are two layers, a 1×n and an n×1: count both"
                else:
                    hint = "a 1×n layer has n·c·c weights, and so has the n×1 after it"
                expect(False, f"a 1x{n} then a {n}x1 convolution of {c} channels have "
                       f"{want[1]:,} weights; {call} gave {pair!r} for them: {hint}.")
            answers.append((square, pair))
        square, pair = answers[0]
        return (f"{len(cases)} cases agree with Keras layers; on 192 channels a 7x7 has "
                f"{square:,} weights, a 1x7 and a 7x1 {pair:,}: {1 - pair / square:.0%} fewer, "
                "1 − 2/7.")

    return grade("factorized_params", run)


@functools.lru_cache(maxsize=None)
def _keras_separable(k, c_in, c_out, m, bias):
    import keras

    layer = keras.layers.SeparableConv2D(c_out, k, depth_multiplier=m, use_bias=bias)
    layer.build((None, None, None, c_in))
    return layer.count_params()


def check_separable_params(separable_params):
    """`separable_params(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True)`
    -> parameters of keras.layers.SeparableConv2D on c_in channels, checked against Keras on
    Xception's layer and random ones, called with the arguments by position, by name, and with
    the defaults left out."""
    separable_params = student(separable_params)

    def run():
        rng = np.random.default_rng(13)
        cases = [(3, 728, 728, 1, False), (3, 32, 64, 1, True), (5, 16, 32, 2, True),
                 (3, 3, 8, 4, False), (1, 10, 20, 1, True), (3, 12, 5, 3, True)]
        for _ in range(14):
            cases.append((int(rng.choice([1, 3, 5, 7])), int(rng.integers(2, 257)),
                          int(rng.integers(2, 257)), int(rng.choice([1, 2, 3])),
                          bool(rng.integers(2))))
        answers = []
        for index, (k, c_in, c_out, m, bias) in enumerate(cases):
            want = _keras_separable(k, c_in, c_out, m, bias)
            if m == 1 and bias and index % 2:
                call, got = f"separable_params({k}, {c_in}, {c_out})", separable_params(
                    k, c_in, c_out)
            elif index % 2:
                call, got = (f"separable_params({k}, {c_in}, {c_out}, {m}, {bias})",
                             separable_params(k, c_in, c_out, m, bias))
            else:
                call = (f"separable_params({k}, {c_in}, {c_out}, depth_multiplier={m}, "
                        f"use_bias={bias})")
                got = separable_params(k, c_in, c_out, depth_multiplier=m, use_bias=bias)
            got = whole_number(got, call)
            b = c_out if bias else 0
            if got == k * k * c_in * c_out + b:
                hint = ("that is a regular convolution; a separable one filters each channel on "
                        "its own (k·k·c_in·depth_multiplier weights), then mixes the channels "
                        "with a 1x1 (c_in·depth_multiplier·c_out weights)")
            elif got == want - b + (0 if bias else c_out):
                hint = ("with use_bias=True there is one bias per output filter, none with "
                        "use_bias=False")
            elif bias and got == want + c_in * m:
                hint = "SeparableConv2D has a single bias vector, after the pointwise step"
            elif got == k * k * c_in * m + c_in * c_out + b:
                hint = ("the pointwise 1x1 sees all c_in·depth_multiplier channels that the "
                        "depthwise step makes")
            elif got == k * k * c_in + c_in * c_out + b:
                hint = ("the depthwise step makes depth_multiplier maps from each input "
                        "channel: k·k·c_in·depth_multiplier weights, and the 1x1 after it sees "
                        "c_in·depth_multiplier channels")
            else:
                hint = ("depthwise k·k·c_in·depth_multiplier, pointwise "
                        "c_in·depth_multiplier·c_out, plus c_out biases if use_bias")
            expect(got == want, f"SeparableConv2D({c_out}, {k}, depth_multiplier={m}, "
                   f"use_bias={bias}) on {c_in} channels has {want:,} parameters; {call} "
                   f"returned {got!r}: {hint}.")
            answers.append(got)
        return (f"{len(cases)} layers agree with Keras; Xception's 3x3 separable convolution "
                f"of 728 channels has {answers[0]:,} weights, a regular one "
                f"{3 * 3 * 728 * 728:,}.")

    return grade("separable_params", run)
