"""Graders of exercise 12 (re-parameterization): right passes, each typical slip fails with its
hint, the kit's own folding functions pass."""

import numpy as np
import pytest

from cnnkit import grading
from cnnkit.models.repvgg import fuse_bn, identity_kernel, pad_1x1_to_3x3

from grader_verdicts import assert_verdicts


def right_fuse(kernel, gamma, beta, mean, var, eps):
    scale = gamma / np.sqrt(var + eps)
    return kernel * scale, beta - mean * scale


def eps_forgotten(kernel, gamma, beta, mean, var, eps):
    return right_fuse(kernel, gamma, beta, mean, var, 0.0)


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


def right_pad(kernel):
    return np.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))


def padded_every_axis(kernel):
    return np.pad(kernel, 1)


def in_the_corner(kernel):
    return np.pad(kernel, ((0, 2), (0, 2), (0, 0), (0, 0)))


def copied_to_every_tap(kernel):
    return np.tile(kernel, (3, 3, 1, 1))


def right_identity(channels):
    kernel = np.zeros((3, 3, channels, channels))
    kernel[1, 1] = np.eye(channels)
    return kernel


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


CASES = [
    (grading.check_fuse_conv_bn, right_fuse,
     [(eps_forgotten, "add eps = 0.001 to the variance"),
      (divided_by_the_variance, "not by the variance"),
      (kernel_left_alone, "the kernel changes too"),
      (scaled_along_the_input_channels, "one factor per OUTPUT channel"),
      (mean_not_scaled, "the mean is scaled too"),
      (mean_left_out, "BatchNorm subtracts the moving mean")]),
    (grading.check_pad_to_3x3, right_pad,
     [(padded_every_axis, "pad only the two spatial axes"),
      (in_the_corner, "centre tap [1, 1]"),
      (copied_to_every_tap, "every tap but the centre must be zero")]),
    (grading.check_identity_as_3x3, right_identity,
     [(all_ones_at_the_centre, "np.eye(c), not all ones"),
      (eye_at_every_tap, "only the centre tap [1, 1] is non-zero"),
      (eye_in_the_corner, "shifts the image by one pixel"),
      (just_the_eye, "expected (3, 3, 1, 1)")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_the_kits_own_folding_functions_pass(capsys):
    assert grading.check_fuse_conv_bn(
        lambda kernel, gamma, beta, mean, var, eps: fuse_bn(kernel, [gamma, beta, mean, var], eps))
    assert grading.check_pad_to_3x3(pad_1x1_to_3x3)
    assert grading.check_identity_as_3x3(identity_kernel)
    assert capsys.readouterr().out.count("✅ PASS") == 3


def test_a_wrong_return_type_fails_clearly(capsys):
    with pytest.raises(grading.GradeFailure, match="return a pair \\(kernel, bias\\)"):
        grading.check_fuse_conv_bn(lambda *args: args[0])
    with pytest.raises(grading.GradeFailure, match="returned None"):
        grading.check_identity_as_3x3(lambda channels: None)
