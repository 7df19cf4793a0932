"""Graders of exercise 11 (efficient design): right passes, typical wrong answers fail."""

import math

import numpy as np

import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def right_channel_shuffle(x, groups):
    *rest, channels = x.shape
    x = x.reshape(*rest, groups, channels // groups)
    return np.swapaxes(x, -1, -2).reshape(*rest, channels)


def inverse_shuffle(x, groups):  # groups last instead of first: the shuffle undone
    *rest, channels = x.shape
    x = x.reshape(*rest, channels // groups, groups)
    return np.swapaxes(x, -1, -2).reshape(*rest, channels)


def no_shuffle(x, groups):
    return x


def flattened_shuffle(x, groups):  # forgets to keep the batch and map axes
    return right_channel_shuffle(x, groups).reshape(-1)


def right_ghost_params(c_in, filters, ratio=2, dw_size=3):
    m = math.ceil(filters / ratio)
    ghosts = m * (ratio - 1)
    return c_in * m + dw_size * dw_size * ghosts + 2 * (m + ghosts)


def ghost_without_batchnorm(c_in, filters, ratio=2, dw_size=3):
    m = math.ceil(filters / ratio)
    return c_in * m + dw_size * dw_size * m * (ratio - 1)


def ghost_with_floor(c_in, filters, ratio=2, dw_size=3):
    m = filters // ratio
    ghosts = m * (ratio - 1)
    return c_in * m + dw_size * dw_size * ghosts + 2 * (m + ghosts)


def ghost_counts_trimmed_maps(c_in, filters, ratio=2, dw_size=3):
    m = math.ceil(filters / ratio)
    ghosts = filters - m
    return c_in * m + dw_size * dw_size * ghosts + 2 * (m + ghosts)


def plain_conv_params(c_in, filters, ratio=2, dw_size=3):
    return c_in * filters + 2 * filters


def right_round_filters(filters, width):
    value = filters * width
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def without_ten_percent_rule(filters, width):
    return max(8, int(filters * width + 4) // 8 * 8)


def rounded_down(filters, width):
    return max(8, int(filters * width) // 8 * 8)


def returns_float(filters, width):
    return float(right_round_filters(filters, width))


CASES = [
    (grading.check_channel_shuffle, right_channel_shuffle,
     [(inverse_shuffle, "that is the inverse shuffle"),
      (no_shuffle, "original order"),
      (flattened_shuffle, "the shape stays")]),
    (grading.check_ghost_module_params, right_ghost_params,
     [(ghost_without_batchnorm, "followed by BatchNorm"),
      (ghost_with_floor, "ceil(filters / ratio)"),
      (ghost_counts_trimmed_maps, "ghosts of every one"),
      (plain_conv_params, "plain 1x1 convolution")]),
    (grading.check_round_filters, right_round_filters,
     [(without_ten_percent_rule, "more than 10% below it: then add 8"),
      (rounded_down, "not down"),
      (returns_float, "return a whole number")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_summaries_show_the_real_numbers(capsys):
    grading.check_channel_shuffle(right_channel_shuffle)
    grading.check_ghost_module_params(right_ghost_params)
    grading.check_round_filters(right_round_filters)
    out = capsys.readouterr().out
    assert "6 channels in 3 groups become [0 2 4 1 3 5]" in out
    assert "80 -> 200 channels takes 9,300 parameters, a plain 1x1 16,000 weights" in out
    assert "last stage has 640 channels, MobileNetV2 0.35's first conv 16" in out
