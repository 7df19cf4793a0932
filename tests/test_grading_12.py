"""Graders of exercise 12 (re-parameterization): a mutation table per grader, each wrong answer
failing with the hint that names its mistake."""

import sys

import keras
import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.models.repvgg import fuse_bn, identity_kernel, pad_1x1_to_3x3

from grading_harness import Table, assert_verdict, verdict_cases

# --- fuse_conv_bn ----------------------------------------------------------------------------


def right_fuse(kernel, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    return kernel * scale, beta - mean * scale


def kit_fuse(kernel, gamma, beta, mean, var, eps):
    return fuse_bn(kernel, [gamma, beta, mean, var], eps)


def keras_ops_fuse(kernel, gamma, beta, mean, var, eps):  # tensors, in a list
    scale = keras.ops.divide(gamma, keras.ops.sqrt(keras.ops.add(var, eps)))
    return [keras.ops.multiply(kernel, scale), beta - keras.ops.multiply(mean, scale)]


def loop_fuse(kernel, gamma, beta, mean, var, eps):
    new, bias = np.empty_like(kernel), np.empty(len(gamma))
    for c in range(kernel.shape[-1]):
        std = (var[c] + eps) ** 0.5
        new[..., c] = kernel[..., c] * gamma[c] / std
        bias[c] = beta[c] - gamma[c] * mean[c] / std
    return new, bias


def eps_forgotten(kernel, gamma, beta, mean, var, eps):
    return right_fuse(kernel, gamma, beta, mean, var, 0.0)


def eps_fixed(kernel, gamma, beta, mean, var, eps):  # Keras's default, whatever eps is
    return right_fuse(kernel, gamma, beta, mean, var, 1e-3)


def divided_by_the_variance(kernel, gamma, beta, mean, var, eps):
    scale = gamma / (var + eps)
    return kernel * scale, beta - mean * scale


def kernel_left_alone(kernel, gamma, beta, mean, var, eps):
    return kernel, right_fuse(kernel, gamma, beta, mean, var, eps)[1]


def scaled_along_the_input_channels(kernel, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    if kernel.shape[2] == kernel.shape[3]:  # broadcasts without an error, and is wrong
        return kernel * scale[:, None], beta - mean * scale
    return kernel * scale, beta - mean * scale


def mean_not_scaled(kernel, gamma, beta, mean, var, eps):
    return right_fuse(kernel, gamma, beta, mean, var, eps)[0], beta - mean


def mean_left_out(kernel, gamma, beta, mean, var, eps):
    return right_fuse(kernel, gamma, beta, mean, var, eps)[0], beta


def beta_scaled_too(kernel, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    return kernel * scale, (beta - mean) * scale


def bias_then_kernel(kernel, gamma, beta, mean, var, eps):
    new, bias = right_fuse(kernel, gamma, beta, mean, var, eps)
    return bias, new


def kernel_only(kernel, gamma, beta, mean, var, eps):
    return right_fuse(kernel, gamma, beta, mean, var, eps)[0]


def scaled_in_place(kernel, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    kernel *= scale
    return kernel, beta - mean * scale


def fuse_exits(kernel, gamma, beta, mean, var, eps):
    sys.exit(1)


def nothing_returned(kernel, gamma, beta, mean, var, eps):
    right_fuse(kernel, gamma, beta, mean, var, eps)


# --- pad_to_3x3 ------------------------------------------------------------------------------


def right_pad(kernel):
    return np.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))


def zeros_then_centre(kernel):  # a nested list
    out = np.zeros((3, 3, *kernel.shape[2:]))
    out[1, 1] = kernel[0, 0]
    return out.tolist()


def keras_ops_pad(kernel):
    return keras.ops.pad(kernel, [[1, 1], [1, 1], [0, 0], [0, 0]])


def padded_every_axis(kernel):
    return np.pad(kernel, 1)


def in_the_corner(kernel):
    return np.pad(kernel, ((0, 2), (0, 2), (0, 0), (0, 0)))


def copied_to_every_tap(kernel):
    return np.tile(kernel, (3, 3, 1, 1))


def spread_over_the_taps(kernel):
    return np.tile(kernel, (3, 3, 1, 1)) / 9


def channels_swapped(kernel):
    return right_pad(np.transpose(kernel, (0, 1, 3, 2)))


def centre_of_ones(kernel):  # ignores the weights
    out = np.zeros((3, 3, *kernel.shape[2:]))
    out[1, 1] = 1.0
    return out


def left_as_1x1(kernel):
    return kernel


def pad_zeroes_its_input(kernel):
    out = right_pad(kernel)
    kernel[:] = 0
    return out


def pad_exits(kernel):
    sys.exit("done")


def pad_returns_none(kernel):
    return None


def pad_returns_text(kernel):
    return "np.pad(kernel, 1)"


# --- identity_as_3x3 -------------------------------------------------------------------------


def right_identity(channels):
    kernel = np.zeros((3, 3, channels, channels))
    kernel[1, 1, np.arange(channels), np.arange(channels)] = 1.0
    return kernel


def eye_at_the_centre(channels):  # int dtype, np.eye at once
    kernel = np.zeros((3, 3, channels, channels), dtype=int)
    kernel[1, 1] = np.eye(channels, dtype=int)
    return kernel


def keras_ops_identity(channels):
    centre = keras.ops.reshape(keras.ops.eye(channels), (1, 1, channels, channels))
    return keras.ops.pad(centre, [[1, 1], [1, 1], [0, 0], [0, 0]])


def all_ones_at_the_centre(channels):
    kernel = np.zeros((3, 3, channels, channels))
    kernel[1, 1] = 1.0
    return kernel


def eye_at_every_tap(channels):
    return np.tile(np.eye(channels), (3, 3, 1, 1))


def eye_in_the_corner(channels):
    kernel = np.zeros((3, 3, channels, channels))
    kernel[0, 0] = np.eye(channels)
    return kernel


def just_the_eye(channels):
    return np.eye(channels)


def three_channels_always(channels):
    return right_identity(3)


def averaging_kernel(channels):
    return np.tile(np.eye(channels), (3, 3, 1, 1)) / 9


def one_channel_too_many(channels):
    return right_identity(channels + 1)


def a_single_one(channels):
    return 1.0


def identity_exits(channels):
    raise SystemExit(0)


def identity_returns_none(channels):
    right_identity(channels)


TABLES = [
    Table(grading.check_fuse_conv_bn, right_fuse,
          right=[kit_fuse, keras_ops_fuse, loop_fuse],
          wrong=[(eps_forgotten, "add eps = 0.001 to the variance"),
                 (eps_fixed, "use the eps you are given (1e-05)"),
                 (divided_by_the_variance, "not by the variance"),
                 (kernel_left_alone, "the kernel changes too"),
                 (scaled_along_the_input_channels, "one factor per OUTPUT channel"),
                 (mean_not_scaled, "the mean is scaled too"),
                 (mean_left_out, "BatchNorm subtracts the moving mean"),
                 (beta_scaled_too, "beta is added after the scaling"),
                 (bias_then_kernel, "return them in the order (kernel, bias)"),
                 (kernel_only, "return a pair (kernel, bias)"),
                 (nothing_returned, "returned NoneType: return a pair (kernel, bias)"),
                 (scaled_in_place, "changed its input argument 1 in place"),
                 (fuse_exits, "sys.exit(1)")]),
    Table(grading.check_pad_to_3x3, right_pad,
          right=[pad_1x1_to_3x3, zeros_then_centre, keras_ops_pad],
          wrong=[(padded_every_axis, "pad only the two spatial axes"),
                 (in_the_corner, "go unchanged to the centre tap [1, 1]"),
                 (copied_to_every_tap, "every tap but the centre must be zero"),
                 (spread_over_the_taps, "go unchanged to the centre tap [1, 1]"),
                 (channels_swapped, "keep the kernel's axes in their order"),
                 (centre_of_ones, "go unchanged to the centre tap [1, 1]"),
                 (left_as_1x1, "a 3x3 kernel has shape (3, 3, c_in, c_out)"),
                 (pad_zeroes_its_input, "changed its input argument 1 in place"),
                 (pad_exits, "sys.exit('done')"),
                 (pad_returns_none, "returned None"),
                 (pad_returns_text, "returned str, not an array of numbers")]),
    Table(grading.check_identity_as_3x3, right_identity,
          right=[identity_kernel, eye_at_the_centre, keras_ops_identity],
          wrong=[(all_ones_at_the_centre, "np.eye(c), not all ones"),
                 (eye_at_every_tap, "only the centre tap [1, 1] is non-zero"),
                 (eye_in_the_corner, "shifts the image by one pixel"),
                 (averaging_kernel, "kernel[1, 1, i, i] = 1, and 0 everywhere else"),
                 (just_the_eye, "identity_as_3x3(1) has shape (1, 1), expected (3, 3, 1, 1)"),
                 (three_channels_always, "has shape (3, 3, 3, 3), expected (3, 3, 1, 1)"),
                 (one_channel_too_many, "has shape (3, 3, 2, 2), expected (3, 3, 1, 1)"),
                 (a_single_one, "has shape (), expected (3, 3, 1, 1)"),
                 (identity_returns_none, "returned None"),
                 (identity_exits, "sys.exit(0)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_a_fixed_eps_is_named_for_keras_default_too(capsys):
    """eps = 1e-5 hard-coded (PyTorch's default) fails on the graders' eps = 1e-3 cases."""
    def pytorch_eps(kernel, gamma, beta, mean, var, eps):
        return right_fuse(kernel, gamma, beta, mean, var, 1e-5)

    assert_verdict(grading.check_fuse_conv_bn, pytorch_eps, "use the eps you are given (0.001)",
                   capsys)
