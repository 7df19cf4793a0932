"""Graders of exercise 06 (classic CNNs): the right answer passes, typical slips fail with a hint."""

import math

import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def right_conv_output_size(n, kernel, stride=1, padding=0):
    return (n + 2 * padding - kernel) // stride + 1


def true_division(n, kernel, stride=1, padding=0):  # right whenever the stride divides evenly
    return (n + 2 * padding - kernel) / stride + 1


def padding_on_one_side(n, kernel, stride=1, padding=0):
    return (n + padding - kernel) // stride + 1


def without_the_first_position(n, kernel, stride=1, padding=0):
    return (n + 2 * padding - kernel) // stride


def rounded_up(n, kernel, stride=1, padding=0):
    return math.ceil((n + 2 * padding - kernel) / stride) + 1


def right_stack(channels, n_convs):
    field = 2 * n_convs + 1
    return n_convs * 3 * 3 * channels * channels, field * field * channels * channels, field


def field_three_per_layer(channels, n_convs):
    stack, _, _ = right_stack(channels, n_convs)
    field = 3 * n_convs
    return stack, field * field * channels * channels, field


def stack_with_biases(channels, n_convs):
    stack, one, field = right_stack(channels, n_convs)
    return stack + n_convs * channels, one, field


def one_channel_factor(channels, n_convs):
    stack, _, field = right_stack(channels, n_convs)
    return stack, field * field * channels, field


def right_dense(height, width, channels, n_pools, units):
    return (height // 2 ** n_pools) * (width // 2 ** n_pools) * channels * units + units


def dense_without_bias(height, width, channels, n_pools, units):
    return right_dense(height, width, channels, n_pools, units) - units


def pooling_not_rounded(height, width, channels, n_pools, units):
    return height / 2 ** n_pools * width / 2 ** n_pools * channels * units + units


def pooling_rounded_once(height, width, channels, n_pools, units):  # rounds the product only
    return int(height / 2 ** n_pools * width / 2 ** n_pools * channels * units) + units



CASES = [
    (grading.check_conv_output_size, right_conv_output_size,
     [(true_division, "floor division //"),
      (padding_on_one_side, "padding goes on both sides"),
      (without_the_first_position, "first position too: + 1"),
      (rounded_up, "round down")]),
    (grading.check_stack_vs_large_kernel, right_stack,
     [(field_three_per_layer, "every further one adds 2"),
      (stack_with_biases, "no biases"),
      (one_channel_factor, "·C·C weights")]),
    (grading.check_dense_params_after_flatten, right_dense,
     [(dense_without_bias, "one bias per unit"),
      (pooling_not_rounded, "each 2x2 pooling rounds down"),
      (pooling_rounded_once, "each 2x2 pooling rounds down")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_a_float_that_is_right_still_fails_and_says_return_an_int(capsys):
    def float_but_exact(n, kernel, stride=1, padding=0):
        return float(right_conv_output_size(n, kernel, stride, padding))

    with pytest.raises(grading.GradeFailure, match="return a whole number"):
        grading.check_conv_output_size(float_but_exact)


def test_summaries_name_the_classic_numbers(capsys):
    grading.check_conv_output_size(right_conv_output_size)
    grading.check_stack_vs_large_kernel(right_stack)
    grading.check_dense_params_after_flatten(right_dense)
    out = capsys.readouterr().out
    assert "gives 55 on 227 pixels but 54 on the 224" in out
    assert "110,592 weights (27C²), one 7x7 has 200,704 (49C²)" in out
    assert "fc1 on 224x224 images has 102,764,544 parameters" in out
