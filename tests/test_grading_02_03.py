"""Graders of exercises 02 (building blocks) and 03 (optimizers): right passes, wrong fails."""

import numpy as np
import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def right_receptive_field(stack):
    field, jump, rows = 1, 1, []
    for k, s, d in stack:
        field += (k - 1) * d * jump
        jump *= s
        rows.append((field, jump))
    return rows


def stride_applied_too_early(stack):  # a classic slip: multiply the jump before using it
    field, jump, rows = 1, 1, []
    for k, s, d in stack:
        jump *= s
        field += (k - 1) * d * jump
        rows.append((field, jump))
    return rows


def dilation_forgotten(stack):
    return right_receptive_field([(k, s, 1) for k, s, _ in stack])


def right_conv_params(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * (c_in // groups) * c_out + (c_out if use_bias else 0)


def groups_ignored(k, c_in, c_out, groups=1, use_bias=True):
    return right_conv_params(k, c_in, c_out, 1, use_bias)


def right_momentum(w, g, velocity, learning_rate, momentum):
    velocity = momentum * velocity - learning_rate * g
    return w + velocity, velocity


def momentum_without_memory(w, g, velocity, learning_rate, momentum):
    return w - learning_rate * g, velocity


def right_rmsprop(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square = rho * mean_square + (1 - rho) * g ** 2
    return w - learning_rate * g / np.sqrt(mean_square + epsilon), mean_square


def rmsprop_with_rho_swapped(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, 1 - rho, epsilon)



CASES = [
    (grading.check_receptive_field, right_receptive_field,
     [(stride_applied_too_early, "product of the strides BEFORE it"),
      (dilation_forgotten, "dilation 2")]),
    (grading.check_conv_params, right_conv_params,
     [(groups_ignored, "c_in / groups channels")]),
    (grading.check_momentum_step, right_momentum,
     [(momentum_without_memory, "velocity = momentum·velocity − learning_rate·g")]),
    (grading.check_rmsprop_step, right_rmsprop,
     [(rmsprop_with_rho_swapped, "rho·mean_square + (1 − rho)·g²")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_receptive_field_summary_names_the_classic_results(capsys):
    grading.check_receptive_field(right_receptive_field)
    out = capsys.readouterr().out
    assert "three 3x3 convolutions see 7x7" in out


def test_conv_params_summary_shows_the_group_saving(capsys):
    grading.check_conv_params(right_conv_params)
    assert "has 73,728 weights, one eighth of 589,824" in capsys.readouterr().out
