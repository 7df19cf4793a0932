"""Graders of exercise 11 (efficient design): every right answer passes, each wrong one fails
with its hint."""

import math
import sys

import numpy as np
import pytest

from cnnkit.course import grading
from grading_harness import Table, assert_verdict, verdict_cases


def right_channel_shuffle(x, groups):  # the solution
    *rest, channels = x.shape
    x = np.asarray(x).reshape(*rest, groups, channels // groups)
    return np.swapaxes(x, -1, -2).reshape(*rest, channels)


def shuffle_by_indices(x, groups):  # deal the channels out by index
    channels = x.shape[-1]
    order = [g * (channels // groups) + i for i in range(channels // groups)
             for g in range(groups)]
    return x[..., order]


def shuffle_with_transpose(x, groups):
    n, h, w, c = x.shape
    return x.reshape(n, h, w, groups, c // groups).transpose(0, 1, 2, 4, 3).reshape(n, h, w, c)


def inverse_shuffle(x, groups):  # groups last instead of first: the shuffle undone
    *rest, channels = x.shape
    x = x.reshape(*rest, channels // groups, groups)
    return np.swapaxes(x, -1, -2).reshape(*rest, channels)


def no_shuffle(x, groups):
    return x.copy()


def two_groups_always(x, groups):  # a default of 2 hard-coded
    return right_channel_shuffle(x, 2)


def reversed_channels(x, groups):
    return x[..., ::-1]


def shuffled_pixels_too(x, groups):  # reshapes all of x, not the channel axis
    n, h, w, c = x.shape
    return np.swapaxes(x.reshape(groups, -1), 0, 1).reshape(n, h, w, c)


def flattened_shuffle(x, groups):  # forgets to keep the batch and map axes
    return right_channel_shuffle(x, groups).reshape(-1)


def shuffle_in_place(x, groups):
    x[...] = right_channel_shuffle(x.copy(), groups)
    return x


def shuffle_none(x, groups):
    right_channel_shuffle(x, groups)


def shuffle_exit(x, groups):
    sys.exit(0)


def right_ghost_params(c_in, filters, ratio=2, dw_size=3):  # the solution
    intrinsic = math.ceil(filters / ratio)
    ghosts = intrinsic * (ratio - 1)
    return c_in * intrinsic + dw_size * dw_size * ghosts + 2 * (intrinsic + ghosts)


def ghost_params_integer_ceil(c_in, filters, ratio=2, dw_size=3):
    m = -(-filters // ratio)
    channels = m * ratio  # intrinsic and ghosts, before the trim
    return np.int64(c_in * m + dw_size ** 2 * (channels - m) + 2 * channels)


def ghost_without_batchnorm(c_in, filters, ratio=2, dw_size=3):
    m = math.ceil(filters / ratio)
    return c_in * m + dw_size * dw_size * m * (ratio - 1)


def ghost_moving_stats_counted(c_in, filters, ratio=2, dw_size=3):
    m = math.ceil(filters / ratio)
    return right_ghost_params(c_in, filters, ratio, dw_size) + 2 * m * ratio


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


def ghost_ratio_fixed_at_2(c_in, filters, ratio=2, dw_size=3):
    return right_ghost_params(c_in, filters, 2, dw_size)


def ghost_dw_size_fixed_at_3(c_in, filters, ratio=2, dw_size=3):
    return right_ghost_params(c_in, filters, ratio, 3)


def ghost_cheap_as_full_conv(c_in, filters, ratio=2, dw_size=3):  # not depthwise
    m = math.ceil(filters / ratio)
    ghosts = m * (ratio - 1)
    return c_in * m + dw_size * dw_size * m * ghosts + 2 * (m + ghosts)


def ghost_float(c_in, filters, ratio=2, dw_size=3):
    m = filters / ratio
    return c_in * m + dw_size * dw_size * m * (ratio - 1) + 2 * m * ratio


def ghost_none(c_in, filters, ratio=2, dw_size=3):
    right_ghost_params(c_in, filters, ratio, dw_size)


def ghost_exit(c_in, filters, ratio=2, dw_size=3):
    raise SystemExit("bye")


def right_round_filters(filters, width):  # the solution
    value = filters * width
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * value else rounded


def round_filters_python_round(filters, width):  # ties to even: "nearest" allows it
    value = filters * width
    rounded = max(8, 8 * round(value / 8))
    if rounded < 0.9 * value:
        rounded += 8
    return rounded


def without_ten_percent_rule(filters, width):
    return max(8, int(filters * width + 4) // 8 * 8)


def rounded_down(filters, width):
    return max(8, int(filters * width) // 8 * 8)


def rounded_up(filters, width):
    return max(8, math.ceil(filters * width / 8) * 8)


def width_ignored(filters, width):  # the default width of 1 hard-coded
    return right_round_filters(filters, 1.0)


def ten_percent_of_the_rounded(filters, width):
    value = filters * width
    rounded = max(8, int(value + 4) // 8 * 8)
    return rounded + 8 if value - rounded > 0.1 * rounded else rounded


def returns_float(filters, width):
    return float(right_round_filters(filters, width))


def returns_numpy_float(filters, width):
    return np.round(filters * width / 8) * 8


def round_none(filters, width):
    right_round_filters(filters, width)


def round_exit(filters, width):
    sys.exit(3)


TABLES = [
    Table(grading.check_channel_shuffle, right_channel_shuffle,
          right=[shuffle_by_indices, shuffle_with_transpose],
          wrong=[(inverse_shuffle, "that is the inverse shuffle"),
                 (no_shuffle, "original order"),
                 (two_groups_always, "use the groups argument"),
                 (reversed_channels, "it does not reverse the channels"),
                 (shuffled_pixels_too, "swap those two axes"),
                 (flattened_shuffle, "the shape stays"),
                 (shuffle_in_place, "changed its input argument 1 in place"),
                 (shuffle_none, "returned None"),
                 (shuffle_exit, "sys.exit(0)")]),
    Table(grading.check_ghost_module_params, right_ghost_params,
          right=[ghost_params_integer_ceil],
          wrong=[(ghost_without_batchnorm, "followed by BatchNorm"),
                 (ghost_moving_stats_counted, "moving mean and variance are not trainable"),
                 (ghost_with_floor, "ceil(filters / ratio)"),
                 (ghost_counts_trimmed_maps, "ghosts of every one"),
                 (plain_conv_params, "plain 1x1 convolution"),
                 (ghost_ratio_fixed_at_2, "use the ratio argument"),
                 (ghost_dw_size_fixed_at_3, "use the dw_size argument"),
                 (ghost_cheap_as_full_conv, "cheap depthwise: dw_size²·m·(ratio − 1)"),
                 (ghost_float, "return a whole number"),
                 (ghost_none, "of type NoneType"),
                 (ghost_exit, "sys.exit('bye')")]),
    Table(grading.check_round_filters, right_round_filters,
          right=[round_filters_python_round],
          wrong=[(without_ten_percent_rule, "more than 10% below it: then add 8"),
                 (rounded_down, "not down"),
                 (rounded_up, "not up"),
                 (width_ignored, "not filters alone"),
                 (ten_percent_of_the_rounded, "add 8 only when that result is below 0.9·v"),
                 (returns_float, "return a whole number"),
                 (returns_numpy_float, "of type float64"),
                 (round_none, "of type NoneType"),
                 (round_exit, "sys.exit(3)")]),
    Table(grading.check_design, {"alpha": 0.5, "resolution": 224}, untouched=False,
          right=[{"alpha": 1.0, "resolution": 112}, {"resolution": np.int64(224), "alpha": 0.5},
                 {"alpha": 1, "resolution": 112}, {"alpha": np.float32(0.5), "resolution": 224}],
          wrong=[({"alpha": 1.0, "resolution": 224}, "568.7 M multiply-accumulates, over"),
                 ({"alpha": 0.75, "resolution": 160}, "166.4 M multiply-accumulates, over"),
                 ({"alpha": 0.25, "resolution": 224}, "less than 90% of the 150 M budget"),
                 ({"alpha": 0.75, "resolution": 128}, "less than 90% of the 150 M budget"),
                 ({"alpha": 0.5}, 'it needs exactly "alpha" and "resolution"'),
                 ({"alpha": 0.5, "resolution": 224, "depth": 1}, "it needs exactly"),
                 ({"alpha": "0.5", "resolution": 224}, "the width multiplier is a number > 0"),
                 ({"alpha": 0, "resolution": 224}, "the width multiplier is a number > 0"),
                 ({"alpha": True, "resolution": 224}, "the width multiplier is a number > 0"),
                 ({"alpha": 0.5, "resolution": 224.0}, "is a whole number"),
                 ({"alpha": 0.5, "resolution": (224, 224, 3)}, "is a whole number"),
                 ({"alpha": 1.0, "resolution": 16}, "below MobileNet's smallest input"),
                 ([0.5, 224], "make it a dict"),
                 (None, "not implemented yet")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_summaries_show_the_real_numbers(capsys):
    grading.check_channel_shuffle(right_channel_shuffle)
    grading.check_ghost_module_params(right_ghost_params)
    grading.check_round_filters(right_round_filters)
    out = capsys.readouterr().out
    assert "6 channels in 3 groups become [0 2 4 1 3 5]" in out
    assert "80 -> 200 channels takes 9,300 parameters, a plain 1x1 16,000 weights" in out
    assert "last stage has 640 channels, MobileNetV2 0.35's first conv 16" in out


def test_an_exact_tie_may_round_either_way(capsys):
    # 100 = 8·12 + 4: the exercise says "nearest", so 96 (ties down or to even) passes as 104 does
    grading.check_round_filters(round_filters_python_round)
    assert round_filters_python_round(100, 1.0) == 96 and right_round_filters(100, 1.0) == 104


def test_the_budget_window_holds_the_papers_half_width_mobilenet(capsys):
    # MobileNet's Table 6: 0.5 MobileNet-224, 149 M multiply-adds; 1.0 at 224 is 569 M
    macs = grading.efficient_design.design_macs
    assert round(macs(0.5, 224) / 1e6) == 149 and round(macs(1.0, 224) / 1e6) == 569
    low, high = grading.efficient_design.BUDGET_MACS
    assert low <= macs(0.5, 224) <= high < macs(0.75, 160)
