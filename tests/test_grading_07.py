"""Graders of exercise 07 (Inception): the right answer passes, typical slips fail with a hint."""

import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params = (conv(1, c_in, n1x1) + conv(1, c_in, n3x3red) + conv(3, n3x3red, n3x3)
              + conv(1, c_in, n5x5red) + conv(5, n5x5red, n5x5) + conv(1, c_in, pool_proj))
    return params, n1x1 + n3x3 + n5x5 + pool_proj


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


def module_passing_the_pool_through(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, _ = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params, n1x1 + n3x3 + n5x5 + c_in


def module_concatenating_the_reductions(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj):
    params, channels = right_module(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)
    return params, channels + n3x3red + n5x5red


def right_factorized(n, c):
    return n * n * c * c, 2 * n * c * c


def factorized_one_channel_factor(n, c):
    return n * n * c * c, 2 * n * c


def factorized_one_layer(n, c):
    return n * n * c * c, n * c * c


def factorized_with_biases(n, c):
    return n * n * c * c, 2 * n * c * c + 2 * c


def factorized_as_floats(n, c):
    return float(n * n * c * c), float(2 * n * c * c)


def right_separable(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    mid = c_in * depth_multiplier
    return kernel_size * kernel_size * mid + mid * c_out + (c_out if use_bias else 0)


def separable_as_regular(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return conv(kernel_size, c_in, c_out, use_bias)


def separable_multiplier_forgotten_in_pointwise(kernel_size, c_in, c_out, depth_multiplier=1,
                                                use_bias=True):
    return (kernel_size * kernel_size * c_in * depth_multiplier + c_in * c_out
            + (c_out if use_bias else 0))


def separable_with_two_biases(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    extra = c_in * depth_multiplier if use_bias else 0
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, use_bias) + extra


def separable_bias_always(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True):
    return right_separable(kernel_size, c_in, c_out, depth_multiplier, True)



CASES = [
    (grading.check_inception_module_params, right_module,
     [(module_without_biases, "every convolution has a bias"),
      (module_without_pool_projection, "the pool branch has weights too"),
      (module_ignoring_reductions, "sees the n3x3red channels"),
      (module_passing_the_pool_through, "adds pool_proj channels, not c_in"),
      (module_concatenating_the_reductions, "only the last layer of each branch")]),
    (grading.check_factorized_params, right_factorized,
     [(factorized_one_channel_factor, "n·c·c weights"),
      (factorized_one_layer, "count both"),
      (factorized_with_biases, "no biases"),
      (factorized_as_floats, "whole numbers")]),
    (grading.check_separable_params, right_separable,
     [(separable_as_regular, "that is a regular convolution"),
      (separable_multiplier_forgotten_in_pointwise, "c_in·depth_multiplier channels"),
      (separable_with_two_biases, "a single bias vector"),
      (separable_bias_always, "none with use_bias=False")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_a_crash_in_the_learners_code_is_reported_not_raised(capsys):
    with pytest.raises(grading.GradeFailure, match="your code raised ZeroDivisionError"):
        grading.check_factorized_params(lambda n, c: (1 // 0, 0))


def test_module_summary_names_googlenets_first_module(capsys):
    grading.check_inception_module_params(right_module)
    assert "inception_3a has 163,696 parameters and outputs 256 channels" in capsys.readouterr().out


def test_factorized_summary_shows_the_seven_by_seven_saving(capsys):
    grading.check_factorized_params(right_factorized)
    assert "a 7x7 has 1,806,336 weights, a 1x7 and a 7x1 516,096: 71% fewer" in (
        capsys.readouterr().out)


def test_separable_summary_shows_xceptions_layer(capsys):
    grading.check_separable_params(right_separable)
    assert "has 536,536 weights, a regular one 4,769,856" in capsys.readouterr().out
