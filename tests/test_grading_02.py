"""Graders of exercise 02 (building blocks): every right answer passes, every wrong one fails
with the hint that names its mistake."""

import itertools
import sys

import numpy as np
import pytest

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


# receptive_field -----------------------------------------------------------------------------

def right_receptive_field(stack):
    field, jump, rows = 1, 1, []
    for kernel, stride, dilation in stack:
        field += (kernel - 1) * dilation * jump
        jump *= stride
        rows.append((field, jump))
    return rows


def receptive_field_with_numpy(stack):
    k, s, d = np.array(stack).T
    jumps = np.cumprod(s)
    below = np.concatenate([[1], jumps[:-1]])
    return np.stack([1 + np.cumsum((k - 1) * d * below), jumps], axis=1)


def receptive_field_as_lists(stack):
    jumps = list(itertools.accumulate((s for _, s, _ in stack), lambda a, b: a * b))
    below = [1] + jumps[:-1]
    fields = itertools.accumulate(((k - 1) * d * j for (k, _, d), j in zip(stack, below)),
                                  initial=1)
    return [[f, j] for f, j in zip(list(fields)[1:], jumps)]


def stride_applied_too_early(stack):
    field, jump, rows = 1, 1, []
    for k, s, d in stack:
        jump *= s
        field += (k - 1) * d * jump
        rows.append((field, jump))
    return rows


def dilation_forgotten(stack):
    return right_receptive_field([(k, s, 1) for k, s, _ in stack])


def jump_forgotten(stack):
    field, jump, rows = 1, 1, []
    for k, s, d in stack:
        field += (k - 1) * d
        jump *= s
        rows.append((field, jump))
    return rows


def whole_kernel(stack):
    return right_receptive_field([(k + 1, s, d) for k, s, d in stack])


def field_from_zero(stack):
    return [(f - 1, j) for f, j in right_receptive_field(stack)]


def stride_ignored(stack):
    return [(f, 1) for f, _ in jump_forgotten(stack)]


def jump_then_field(stack):
    return [(j, f) for f, j in right_receptive_field(stack)]


def only_the_last_pair(stack):
    return right_receptive_field(stack)[-1]


def with_the_input_row(stack):
    return [(1, 1)] + right_receptive_field(stack)


def float_jumps(stack):
    return [(f, j / 1) for f, j in right_receptive_field(stack)]


def consumes_the_stack(stack):
    rows, field, jump = [], 1, 1
    while stack:
        k, s, d = stack.pop(0)
        field += (k - 1) * d * jump
        jump *= s
        rows.append((field, jump))
    return rows


def receptive_field_none(stack):
    right_receptive_field(stack)


def receptive_field_exit(stack):
    sys.exit(0)


# conv_params ---------------------------------------------------------------------------------

def right_conv_params(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * (c_in // groups) * c_out + (c_out if use_bias else 0)


def conv_params_with_numpy(k, c_in, c_out, groups=1, use_bias=True):
    return np.prod([k, k, c_in // groups, c_out]) + np.int64(use_bias) * c_out


def groups_ignored(k, c_in, c_out, groups=1, use_bias=True):
    return right_conv_params(k, c_in, c_out, 1, use_bias)


def c_out_divided_too(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * (c_in // groups) * (c_out // groups) + (c_out if use_bias else 0)


def bias_always(k, c_in, c_out, groups=1, use_bias=True):
    return right_conv_params(k, c_in, c_out, groups, True)


def bias_never(k, c_in, c_out, groups=1, use_bias=True):
    return right_conv_params(k, c_in, c_out, groups, False)


def kernel_not_squared(k, c_in, c_out, groups=1, use_bias=True):
    return k * (c_in // groups) * c_out + (c_out if use_bias else 0)


def bias_per_input_channel(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * (c_in // groups) * c_out + (c_in if use_bias else 0)


def true_division(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * c_in / groups * c_out + (c_out if use_bias else 0)


def weights_and_biases(k, c_in, c_out, groups=1, use_bias=True):
    return k * k * (c_in // groups) * c_out, (c_out if use_bias else 0)


def default_without_bias(k, c_in, c_out, groups=1, use_bias=False):
    return right_conv_params(k, c_in, c_out, groups, use_bias)


def conv_params_exit(k, c_in, c_out, groups=1, use_bias=True):
    raise SystemExit


# predicted_shapes (a value, not a function): the solution as a learner writes it by hand ---------

PREDICTED = [(25, 25, 16), (21, 21, 32), (11, 11, 32), (5, 5, 32), (10, 10, 8), (8, 8, 16), (16,)]


def replaced(at, *shapes):
    """PREDICTED with the shapes from index `at` on replaced, as a slip carried forward."""
    return PREDICTED[:at] + list(shapes) + PREDICTED[at + len(shapes):]


TABLES = [
    Table(grading.check_receptive_field, right_receptive_field,
          right=[receptive_field_with_numpy, receptive_field_as_lists],
          wrong=[(stride_applied_too_early, "jump of the layer BELOW"),
                 (dilation_forgotten, "multiply by the dilation"),
                 (jump_forgotten, "(kernel − 1)·dilation times the jump"),
                 (whole_kernel, "not kernel·dilation·jump"),
                 (field_from_zero, "before the first layer the field is 1"),
                 (stride_ignored, "multiplies the jump by its stride"),
                 (jump_then_field, "each pair is (field, jump), in that order"),
                 (only_the_last_pair, "one (field, jump) pair per layer"),
                 (with_the_input_row, "one (field, jump) pair per layer, 3 here"),
                 (float_jumps, "of type float: return a whole number (int)"),
                 (consumes_the_stack, "changed the list it was given"),
                 (receptive_field_none, "returned None"),
                 (receptive_field_exit, "sys.exit(0)")]),
    Table(grading.check_conv_params, right_conv_params,
          right=[conv_params_with_numpy],
          wrong=[(groups_ignored, "each of the c_out filters sees only c_in / groups channels"),
                 (c_out_divided_too, "there are c_out filters in all"),
                 (bias_always, "use_bias=False: no biases"),
                 (bias_never, "plus one bias per filter when use_bias=True"),
                 (kernel_not_squared, "k·k weights per input channel"),
                 (bias_per_input_channel, "not per input channel"),
                 (true_division, "of type float: return a whole number (int)"),
                 (weights_and_biases, "of type tuple: return a whole number (int)"),
                 (default_without_bias, "conv_params(3, 16, 32) returned 4,608"),
                 (conv_params_exit, "sys.exit(None)")]),
    Table(grading.check_predicted_shapes, PRED := PREDICTED, untouched=False,
          right=[[list(s) for s in PRED], tuple(np.array(s) for s in PRED), PRED[:-1] + [16],
                 PRED[:-1] + [[16]]],
          wrong=[(replaced(0, (29, 29, 16)), "padding='valid' (Keras's default)"),
                 (replaced(0, (25, 25, 3)), "one channel per filter: 16"),
                 (replaced(1, (23, 23, 32), (12, 12, 32), (5, 5, 32)), "spans 5 pixels"),
                 (replaced(2, (10, 10, 32), (4, 4, 32), (8, 8, 8), (6, 6, 16)),
                  "ceil(21 / 2) = 11"),
                 (replaced(3, (6, 6, 32), (12, 12, 8), (10, 10, 16)),
                  "pooling is 'valid' unless told otherwise"),
                 (replaced(4, (11, 11, 8), (9, 9, 16)), "that is the 'valid' size"),
                 (replaced(5, (8, 8, 8), (8,)), "two output channels per input channel"),
                 (replaced(6, (1, 1, 16)), "drops the spatial axes"),
                 ([(None, *s) for s in PRED], "leave out the batch axis"),
                 (replaced(0, (16, 25, 25)), "channels-last"),
                 ([tuple(float(d) for d in s) for s in PRED], "sizes are whole numbers"),
                 (PRED[:-1], "one shape per layer"),
                 ({i: s for i, s in enumerate(PRED)}, "make it a list"),
                 (["x".join(map(str, s)) for s in PRED], "write each shape as a tuple"),
                 (None, "not implemented yet")]),
]


def test_the_hand_derived_shapes_are_what_keras_measures():
    assert grading.building_blocks.measured_shapes() == PREDICTED


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_summaries_name_the_classic_results(capsys):
    grading.check_receptive_field(right_receptive_field)
    grading.check_conv_params(right_conv_params)
    out = capsys.readouterr().out
    assert "three 3x3 convolutions see 7x7" in out
    assert "has 73,728 weights, one eighth of 589,824" in out
