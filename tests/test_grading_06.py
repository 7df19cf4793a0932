"""Graders of exercise 06 (classic CNNs): one mutation table per grader, right answers pass,
each typical slip fails with the hint that names it."""

import math
import sys

import numpy as np
import pytest

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases

# --- conv_output_size -----------------------------------------------------------------------


def right_conv_output_size(n, kernel, stride=1, padding=0):
    return (n + 2 * padding - kernel) // stride + 1


def conv_size_with_floor(n, kernel, stride=1, padding=0):
    return math.floor((n + 2 * padding - kernel) / stride) + 1


def conv_size_numpy_int(n, kernel, stride=1, padding=0):
    return np.floor_divide(n + 2 * padding - kernel, stride) + np.int64(1)


def true_division(n, kernel, stride=1, padding=0):  # right whenever the stride divides evenly
    return (n + 2 * padding - kernel) / stride + 1


def padding_on_one_side(n, kernel, stride=1, padding=0):
    return (n + padding - kernel) // stride + 1


def padding_ignored(n, kernel, stride=1, padding=0):
    return (n - kernel) // stride + 1


def stride_ignored(n, kernel, stride=1, padding=0):
    return n + 2 * padding - kernel + 1


def without_the_first_position(n, kernel, stride=1, padding=0):
    return (n + 2 * padding - kernel) // stride


def rounded_up(n, kernel, stride=1, padding=0):
    return math.ceil((n + 2 * padding - kernel) / stride) + 1


def same_padding_formula(n, kernel, stride=1, padding=0):
    return math.ceil(n / stride)


def default_stride_changed(n, kernel, stride=2, padding=0):
    return (n + 2 * padding - kernel) // stride + 1


def exact_but_float(n, kernel, stride=1, padding=0):
    return float(right_conv_output_size(n, kernel, stride, padding))


def side_as_a_pair(n, kernel, stride=1, padding=0):
    side = right_conv_output_size(n, kernel, stride, padding)
    return side, side


def conv_size_as_text(n, kernel, stride=1, padding=0):
    return str(right_conv_output_size(n, kernel, stride, padding))


def conv_size_exits(n, kernel, stride=1, padding=0):
    sys.exit(0)


# --- stack_vs_large_kernel ------------------------------------------------------------------


def right_stack(channels, n_convs):
    field = 2 * n_convs + 1
    return n_convs * 3 * 3 * channels * channels, field * field * channels * channels, field


def stack_as_list_of_numpy_ints(channels, n_convs):
    c, field = np.int64(channels), np.int64(1 + 2 * n_convs)
    return [sum(9 * c * c for _ in range(n_convs)), field ** 2 * c ** 2, field]


def field_three_per_layer(channels, n_convs):
    stack, _, _ = right_stack(channels, n_convs)
    field = 3 * n_convs
    return stack, field * field * channels * channels, field


def field_of_three_only(channels, n_convs):  # the number of layers ignored
    return n_convs * 9 * channels * channels, 9 * channels * channels, 3


def stack_with_biases(channels, n_convs):
    stack, one, field = right_stack(channels, n_convs)
    return stack + n_convs * channels, one, field


def one_kernel_with_bias(channels, n_convs):
    stack, one, field = right_stack(channels, n_convs)
    return stack, one + channels, field


def one_channel_factor(channels, n_convs):
    stack, _, field = right_stack(channels, n_convs)
    return stack, field * field * channels, field


def channels_fixed_at_64(channels, n_convs):
    return right_stack(64, n_convs)


def stack_in_another_order(channels, n_convs):
    stack, one, field = right_stack(channels, n_convs)
    return field, stack, one


def stack_as_floats(channels, n_convs):
    return tuple(float(v) for v in right_stack(channels, n_convs))


def stack_without_field(channels, n_convs):
    return right_stack(channels, n_convs)[:2]


def stack_exits(channels, n_convs):
    raise SystemExit


# --- dense_params_after_flatten -------------------------------------------------------------


def right_dense(height, width, channels, n_pools, units):
    return (height // 2 ** n_pools) * (width // 2 ** n_pools) * channels * units + units


def dense_halving_in_a_loop(height, width, channels, n_pools, units):
    for _ in range(n_pools):
        height, width = math.floor(height / 2), math.floor(width / 2)
    return np.int64(height * width * channels + 1) * units


def dense_without_bias(height, width, channels, n_pools, units):
    return right_dense(height, width, channels, n_pools, units) - units


def pooling_not_rounded(height, width, channels, n_pools, units):
    return height / 2 ** n_pools * width / 2 ** n_pools * channels * units + units


def pooling_rounded_once(height, width, channels, n_pools, units):  # rounds the product only
    return int(height / 2 ** n_pools * width / 2 ** n_pools * channels * units) + units


def pooling_rounded_up(height, width, channels, n_pools, units):
    return -(-height // 2 ** n_pools) * -(-width // 2 ** n_pools) * channels * units + units


def pools_ignored(height, width, channels, n_pools, units):
    return right_dense(height, width, channels, 0, units)


def channels_ignored(height, width, channels, n_pools, units):
    return right_dense(height, width, 1, n_pools, units)


def dense_as_exact_float(height, width, channels, n_pools, units):
    return float(right_dense(height, width, channels, n_pools, units))


def dense_as_text(height, width, channels, n_pools, units):
    return f"{right_dense(height, width, channels, n_pools, units):,}"


def dense_returning_none(height, width, channels, n_pools, units):
    right_dense(height, width, channels, n_pools, units)


def dense_exits(height, width, channels, n_pools, units):
    sys.exit("no")


TABLES = [
    Table(grading.check_conv_output_size, solution=right_conv_output_size,
          right=[conv_size_with_floor, conv_size_numpy_int],
          wrong=[(true_division, "floor division //"),
                 (padding_on_one_side, "padding goes on both sides"),
                 (padding_ignored, "the padding adds pixels to the map"),
                 (stride_ignored, "divide by the stride"),
                 (without_the_first_position, "first position too: + 1"),
                 (rounded_up, "round down"),
                 (same_padding_formula, "moves `stride` pixels at a time while it still fits"),
                 (default_stride_changed, "conv_output_size(32, 5) returned 14"),
                 (exact_but_float, "return a whole number"),
                 (side_as_a_pair, "of type tuple: return a whole number"),
                 (conv_size_as_text, "of type str: return a whole number"),
                 (conv_size_exits, "sys.exit(0)")]),
    Table(grading.check_stack_vs_large_kernel, solution=right_stack,
          right=[stack_as_list_of_numpy_ints],
          wrong=[(field_three_per_layer, "every further one adds 2"),
                 (field_of_three_only, "every 3x3 of stride 1 widens it by 2"),
                 (stack_with_biases, "the paper's 27C² has no biases"),
                 (one_kernel_with_bias, "count weights only, no bias"),
                 (one_channel_factor, "7·7·C·C weights"),
                 (channels_fixed_at_64, "3·3·C·C weights (C = 1 maps"),
                 (stack_in_another_order, "the numbers are right but in another order"),
                 (stack_as_floats, "return a whole number"),
                 (stack_without_field, "return a tuple (stack_weights, one_kernel_weights, field)"),
                 (stack_exits, "sys.exit(None)")]),
    Table(grading.check_dense_params_after_flatten, solution=right_dense,
          right=[dense_halving_in_a_loop],
          wrong=[(dense_without_bias, "one bias per unit"),
                 (pooling_not_rounded, "each 2x2 pooling rounds down (7 pixels become 3)"),
                 (pooling_rounded_once, "each 2x2 pooling rounds down (7 pixels become 3)"),
                 (pooling_rounded_up, "rounds DOWN (7 pixels become 3, not 4)"),
                 (pools_ignored, "the maps become 7x7x512"),
                 (channels_ignored, "the maps become 7x7x512"),
                 (dense_as_exact_float, "return a whole number"),
                 (dense_as_text, "of type str: return a whole number"),
                 (dense_returning_none, "of type NoneType: return a whole number"),
                 (dense_exits, "sys.exit('no')")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_summaries_name_the_classic_numbers(capsys):
    grading.check_conv_output_size(right_conv_output_size)
    grading.check_stack_vs_large_kernel(right_stack)
    grading.check_dense_params_after_flatten(right_dense)
    out = capsys.readouterr().out
    assert "gives 55 on 227 pixels but 54 on the 224" in out
    assert "110,592 weights (27C²), one 7x7 has 200,704 (49C²)" in out
    assert "fc1 on 224x224 images has 102,764,544 parameters" in out
