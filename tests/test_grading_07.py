"""Graders of exercise 07 (Inception): one mutation table per grader, right answers pass, each
typical slip fails with the hint that names it."""

import sys

import keras
import numpy as np
import pytest

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


# --- inception_module_params ----------------------------------------------------------------


def right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params = (conv(1, c_in, n1x1) + conv(1, c_in, n3x3red) + conv(3, n3x3red, n3x3)
              + conv(1, c_in, n5x5red) + conv(5, n5x5red, n5x5) + conv(1, c_in, pool_proj))
    return params, n1x1 + n3x3 + n5x5 + pool_proj


def module_as_a_list_from_branches(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    branches = [[(1, c_in, n1x1)], [(1, c_in, n3x3red), (3, n3x3red, n3x3)],
                [(1, c_in, n5x5red), (5, n5x5red, n5x5)], [(1, c_in, pool_proj)]]
    params = sum(np.int64(k * k * i * o + o) for branch in branches for k, i, o in branch)
    return [params, sum(branch[-1][2] for branch in branches)]


def module_without_biases(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, channels = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params - (n1x1 + n3x3red + n3x3 + n5x5red + n5x5 + pool_proj), channels


def module_without_pool_projection(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, channels = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params - conv(1, c_in, pool_proj), channels


def module_ignoring_reductions(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params = (conv(1, c_in, n1x1) + conv(1, c_in, n3x3red) + conv(3, c_in, n3x3)
              + conv(1, c_in, n5x5red) + conv(5, c_in, n5x5) + conv(1, c_in, pool_proj))
    return params, n1x1 + n3x3 + n5x5 + pool_proj


def module_kernels_swapped(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params = (conv(1, c_in, n1x1) + conv(1, c_in, n3x3red) + conv(5, n3x3red, n3x3)
              + conv(1, c_in, n5x5red) + conv(3, n5x5red, n5x5) + conv(1, c_in, pool_proj))
    return params, n1x1 + n3x3 + n5x5 + pool_proj


def module_c_in_fixed_at_192(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    return right_module(192, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)


def module_passing_the_pool_through(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, _ = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params, n1x1 + n3x3 + n5x5 + c_in


def module_concatenating_the_reductions(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, channels = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params, channels + n3x3red + n5x5red


def module_in_another_order(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    return right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)[::-1]


def module_as_floats(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    return tuple(float(v) for v in right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5,
                                                pool_proj))


def module_params_only(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    return right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)[0]


def module_exits(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    sys.exit(2)


# --- factorized_params ----------------------------------------------------------------------


def right_factorized(n, c):
    return n * n * c * c, 2 * n * c * c


def factorized_as_list_from_layers(n, c):
    layers = [keras.layers.Conv2D(c, kernel, use_bias=False) for kernel in [(n, n), (1, n), (n, 1)]]
    for layer in layers:
        layer.build((None, None, None, c))
    return [layers[0].count_params(), layers[1].count_params() + layers[2].count_params()]


def factorized_one_channel_factor(n, c):
    return n * n * c * c, 2 * n * c


def factorized_one_layer(n, c):
    return n * n * c * c, n * c * c


def factorized_with_biases(n, c):
    return n * n * c * c, 2 * n * c * c + 2 * c


def square_with_bias(n, c):
    return n * n * c * c + c, 2 * n * c * c


def factorized_squared_taps(n, c):
    return n * n * c * c, 2 * n * n * c * c


def factorized_c_fixed_at_192(n, c):
    return right_factorized(n, 192)


def factorized_in_another_order(n, c):
    return right_factorized(n, c)[::-1]


def factorized_as_floats(n, c):
    return float(n * n * c * c), float(2 * n * c * c)


def factorized_ratio_only(n, c):
    return 2 / n


def factorized_exits(n, c):
    raise SystemExit(3)


# --- separable_params -----------------------------------------------------------------------


def right_separable(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    mid = c_in * depth_multiplier
    return kernel_size * kernel_size * mid + mid * c_out + (c_out if use_bias else 0)


def separable_in_two_steps(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    depthwise = np.int64(kernel_size) ** 2 * c_in * depth_multiplier
    pointwise = c_in * depth_multiplier * c_out
    return depthwise + pointwise + int(use_bias) * c_out


def separable_as_regular(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return conv(kernel_size, c_in, c_out, use_bias)


def separable_multiplier_forgotten_in_pointwise(kernel_size, c_in, c_out, depth_multiplier=1,
                                                use_bias=True):
    return (kernel_size * kernel_size * c_in * depth_multiplier + c_in * c_out
            + (c_out if use_bias else 0))


def separable_multiplier_ignored(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return right_separable(kernel_size, c_in, c_out, 1, use_bias)


def separable_with_two_biases(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    extra = c_in * depth_multiplier if use_bias else 0
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, use_bias) + extra


def separable_bias_always(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, True)


def separable_bias_never(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, False)


def separable_channels_swapped(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return right_separable(kernel_size, c_out, c_in, depth_multiplier, use_bias)


def separable_default_changed(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=False):
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, use_bias)


def separable_as_float(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return float(right_separable(kernel_size, c_in, c_out, depth_multiplier, use_bias))


def separable_returning_none(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    right_separable(kernel_size, c_in, c_out, depth_multiplier, use_bias)


def separable_exits(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    sys.exit()


TABLES = [
    Table(grading.check_inception_module_params, solution=right_module,
          right=[module_as_a_list_from_branches],
          wrong=[(module_without_biases, "every convolution has a bias"),
                 (module_without_pool_projection, "the pool branch has weights too"),
                 (module_ignoring_reductions, "sees the n3x3red channels"),
                 (module_kernels_swapped, "count each convolution as k·k·(channels in)"),
                 (module_c_in_fixed_at_192, "a module on 256 channels"),
                 (module_passing_the_pool_through, "adds pool_proj channels, not c_in"),
                 (module_concatenating_the_reductions, "only the last layer of each branch"),
                 (module_in_another_order, "return (parameters, output_channels) in that order"),
                 (module_as_floats, "return a whole number"),
                 (module_params_only, "return a pair (parameters, output_channels)"),
                 (module_exits, "sys.exit(2)")]),
    Table(grading.check_factorized_params, solution=right_factorized,
          right=[factorized_as_list_from_layers],
          wrong=[(factorized_one_channel_factor, "each of the two layers has n·c·c weights"),
                 (factorized_one_layer, "count both"),
                 (factorized_with_biases, "count weights only, no biases"),
                 (square_with_bias, "count weights only, no biases"),
                 (factorized_squared_taps, "a 1×n layer has n·c·c weights, and so has the n×1"),
                 (factorized_c_fixed_at_192, "n·n·c·c"),
                 (factorized_in_another_order, "factorized_weights) in that order"),
                 (factorized_as_floats, "return a whole number"),
                 (factorized_ratio_only, "return a pair (square_weights, factorized_weights)"),
                 (factorized_exits, "sys.exit(3)")]),
    Table(grading.check_separable_params, solution=right_separable,
          right=[separable_in_two_steps],
          wrong=[(separable_as_regular, "that is a regular convolution"),
                 (separable_multiplier_forgotten_in_pointwise, "c_in·depth_multiplier channels"),
                 (separable_multiplier_ignored, "makes depth_multiplier maps from each input"),
                 (separable_with_two_biases, "a single bias vector"),
                 (separable_bias_always, "none with use_bias=False"),
                 (separable_bias_never, "one bias per output filter"),
                 (separable_channels_swapped, "depthwise k·k·c_in·depth_multiplier, pointwise"),
                 (separable_default_changed, "separable_params(3, 32, 64) returned 2336"),
                 (separable_as_float, "return a whole number"),
                 (separable_returning_none, "of type NoneType: return a whole number"),
                 (separable_exits, "sys.exit(None)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_summaries_name_the_papers_numbers(capsys):
    grading.check_inception_module_params(right_module)
    grading.check_factorized_params(right_factorized)
    grading.check_separable_params(right_separable)
    out = capsys.readouterr().out
    assert "inception_3a has 163,696 parameters and outputs 256 channels" in out
    assert "a 7x7 has 1,806,336 weights, a 1x7 and a 7x1 516,096: 71% fewer" in out
    assert "has 536,536 weights, a regular one 4,769,856" in out
