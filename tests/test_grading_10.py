"""Graders of exercise 10 (channel attention): every right answer passes, each wrong one fails
with its hint."""

import sys

import keras
import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.course.grading.channel_attention import _reference_sk_select
from grading_harness import Table, assert_verdict, verdict_cases


def right_se_params(channels, r):  # the solution
    hidden = channels // r
    return channels * hidden + hidden + hidden * channels + channels


def se_params_factored(channels, r):
    hidden = channels // r
    return (channels + 1) * hidden + (hidden + 1) * channels


def se_weights_only(channels, r):  # the paper's Eq. 5
    return 2 * channels * (channels // r)


def se_one_bias(channels, r):
    return 2 * channels * (channels // r) + channels


def se_one_layer(channels, r):
    d = channels // r
    return channels * d + d


def se_true_division(channels, r):
    return int(2 * channels * channels / r + channels / r + channels)


def se_r_fixed_at_16(channels, r):  # SENet's r hard-coded
    return right_se_params(channels, 16)


def se_squeeze_counted(channels, r):  # a "weight" and a bias per channel for the pooling
    return right_se_params(channels, r) + 2 * channels


def se_hidden_times_r(channels, r):
    hidden = channels * r
    return channels * hidden + hidden + hidden * channels + channels


def se_float(channels, r):
    return float(right_se_params(channels, r))


def se_string(channels, r):
    return f"{right_se_params(channels, r):,}"


def se_exit(channels, r):
    sys.exit(2)


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def right_se_numpy(x, w1, b1, w2, b2):  # the solution
    z = x.mean(axis=(1, 2))
    hidden = np.maximum(z @ w1 + b1, 0)
    s = 1 / (1 + np.exp(-(hidden @ w2 + b2)))
    return x * s[:, None, None, :]


def se_numpy_keepdims(x, w1, b1, w2, b2):  # (N, 1, 1, C) all the way, np.matmul, np.multiply
    z = np.mean(x, axis=(1, 2), keepdims=True)
    s = sigmoid(np.matmul(np.clip(np.matmul(z, w1) + b1, 0, None), w2) + b2)
    return np.multiply(x, s)


def se_keras_ops(x, w1, b1, w2, b2):  # a Keras tensor is fine too
    z = keras.ops.mean(x, axis=(1, 2))
    s = keras.ops.sigmoid(keras.ops.relu(z @ w1 + b1) @ w2 + b2)
    return x * s[:, None, None, :]


def se_without_sigmoid(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return x * (np.maximum(z @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]


def se_without_relu(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return x * sigmoid((z @ w1 + b1) @ w2 + b2)[:, None, None, :]


def se_max_squeeze(x, w1, b1, w2, b2):
    z = x.max(axis=(1, 2))
    return x * sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]


def se_sum_squeeze(x, w1, b1, w2, b2):
    z = x.sum(axis=(1, 2))
    return x * sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]


def se_batch_mean(x, w1, b1, w2, b2):
    z = x.mean(axis=(0, 1, 2))
    return x * sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)


def se_without_biases(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return x * sigmoid(np.maximum(z @ w1, 0) @ w2)[:, None, None, :]


def se_activations_swapped(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return x * np.maximum(sigmoid(z @ w1 + b1) @ w2 + b2, 0)[:, None, None, :]


def se_adds_gates(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return x + sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)[:, None, None, :]


def se_returns_gates(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)


def se_in_place(x, w1, b1, w2, b2):
    x *= right_se_numpy(np.ones_like(x), w1, b1, w2, b2)
    return x


def se_none(x, w1, b1, w2, b2):
    right_se_numpy(x, w1, b1, w2, b2)


def softmax(v, axis):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def right_sk_select(branches, logits):  # the solution
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    a = e / e.sum(axis=1, keepdims=True)
    return sum(a[:, m, None, None, :] * branch for m, branch in enumerate(branches))


def sk_select_stacked(branches, logits):  # no max subtracted, einsum over a stacked array
    a = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return np.einsum("nmhwc,nmc->nhwc", np.stack(branches, axis=1), a)


def sk_softmax_over_channels(branches, logits):
    a = softmax(logits, axis=-1)
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_softmax_over_batch(branches, logits):
    a = softmax(logits, axis=0)
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_sigmoid(branches, logits):
    a = sigmoid(logits)
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_logits_as_weights(branches, logits):
    return sum(logits[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_plain_sum(branches, logits):
    return sum(branches)


def sk_plain_mean(branches, logits):
    return np.mean(branches, axis=0)


def sk_two_branches(branches, logits):  # M = 2 hard-coded
    a = softmax(logits, axis=1)
    return a[:, 0, None, None, :] * branches[0] + a[:, 1, None, None, :] * branches[1]


def sk_stacked(branches, logits):  # forgets to sum over the branches
    a = softmax(logits, axis=1)
    return np.stack([a[:, m, None, None, :] * b for m, b in enumerate(branches)], axis=1)


def sk_in_place(branches, logits):
    logits -= logits.max(axis=1, keepdims=True)
    return right_sk_select(branches, logits)


def sk_string(branches, logits):
    return "V"


TABLES = [
    Table(grading.check_se_params, right_se_params,
          right=[se_params_factored],
          wrong=[(se_weights_only, "weights only (the paper's Eq. 5)"),
                 (se_one_bias, "one bias is missing"),
                 (se_one_layer, "two FC layers"),
                 (se_true_division, "whole number of units, C // r"),
                 (se_r_fixed_at_16, "use the argument r"),
                 (se_squeeze_counted, "have no parameters"),
                 (se_hidden_times_r, "two FC layers with biases"),
                 (se_float, "return a whole number"),
                 (se_string, "of type str"),
                 (se_exit, "sys.exit(2)")]),
    Table(grading.check_squeeze_excite_numpy, right_se_numpy,
          right=[se_numpy_keepdims, se_keras_ops],
          wrong=[(se_without_sigmoid, "ends with a sigmoid"),
                 (se_without_relu, "followed by a ReLU"),
                 (se_max_squeeze, "not its maximum"),
                 (se_sum_squeeze, "not its sum"),
                 (se_batch_mean, "not over the batch too"),
                 (se_without_biases, "each FC layer adds its bias"),
                 (se_activations_swapped, "not the other way round"),
                 (se_adds_gates, "do not add it"),
                 (se_returns_gates, "the gates alone"),
                 (se_in_place, "changed its input argument 1 in place"),
                 (se_none, "returned None")]),
    Table(grading.check_sk_select, right_sk_select,
          right=[sk_select_stacked],
          wrong=[(sk_softmax_over_channels, "across the M BRANCHES"),
                 (sk_softmax_over_batch, "not across the batch"),
                 (sk_sigmoid, "a sigmoid per branch is SE's gate"),
                 (sk_logits_as_weights, "with a softmax across the branches first"),
                 (sk_plain_sum, "a plain sum ignores the attention"),
                 (sk_plain_mean, "a plain mean ignores the attention"),
                 (sk_two_branches, "not only the first two"),
                 (sk_stacked, "summed into one map"),
                 (sk_in_place, "changed its input argument 2 in place"),
                 (sk_string, "not an array of numbers")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_se_params_summary_gives_se_resnet50s_overhead(capsys):
    grading.check_se_params(right_se_params)
    assert "add 2,530,992 parameters to ResNet-50" in capsys.readouterr().out


def test_sk_select_with_two_branches_and_equal_logits_is_the_mean():
    rng = np.random.default_rng(0)
    branches = [rng.normal(size=(1, 3, 3, 4)).astype("float32") for _ in range(2)]
    got = _reference_sk_select(branches, np.zeros((1, 2, 4), "float32"))
    np.testing.assert_allclose(got, (branches[0] + branches[1]) / 2, atol=1e-6)
