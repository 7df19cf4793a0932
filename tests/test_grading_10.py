"""Graders of exercise 10 (channel attention): right passes, typical wrong answers fail."""

import numpy as np
import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def right_se_params(channels, r):
    d = channels // r
    return channels * d + d + d * channels + channels


def se_weights_only(channels, r):  # the paper's Eq. 5
    return 2 * channels * (channels // r)


def se_one_bias(channels, r):
    return 2 * channels * (channels // r) + channels


def se_one_layer(channels, r):
    d = channels // r
    return channels * d + d


def se_true_division(channels, r):
    return int(2 * channels * channels / r + channels / r + channels)


def se_float(channels, r):
    return float(right_se_params(channels, r))


def sigmoid(v):
    return 1 / (1 + np.exp(-v))


def right_se_numpy(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    s = sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)
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


def se_returns_gates(x, w1, b1, w2, b2):
    z = x.mean(axis=(1, 2))
    return sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)


def softmax(v, axis):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def right_sk_select(branches, logits):
    a = softmax(logits, axis=1)  # (N, M, C): across the branches
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_softmax_over_channels(branches, logits):
    a = softmax(logits, axis=-1)
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_sigmoid(branches, logits):
    a = sigmoid(logits)
    return sum(a[:, m, None, None, :] * b for m, b in enumerate(branches))


def sk_plain_sum(branches, logits):
    return sum(branches)


def sk_stacked(branches, logits):  # forgets to sum over the branches
    a = softmax(logits, axis=1)
    return np.stack([a[:, m, None, None, :] * b for m, b in enumerate(branches)], axis=1)


CASES = [
    (grading.check_se_params, right_se_params,
     [(se_weights_only, "weights only (the paper's Eq. 5)"),
      (se_one_bias, "one bias is missing"),
      (se_one_layer, "two FC layers"),
      (se_true_division, "whole number of units, C // r"),
      (se_float, "return a whole number")]),
    (grading.check_squeeze_excite_numpy, right_se_numpy,
     [(se_without_sigmoid, "ends with a sigmoid"),
      (se_without_relu, "followed by a ReLU"),
      (se_max_squeeze, "global AVERAGE"),
      (se_returns_gates, "the gates alone")]),
    (grading.check_sk_select, right_sk_select,
     [(sk_softmax_over_channels, "across the M BRANCHES"),
      (sk_sigmoid, "a sigmoid per branch is SE's gate"),
      (sk_plain_sum, "a plain sum ignores the attention"),
      (sk_stacked, "summed into one map")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_se_params_summary_gives_se_resnet50s_overhead(capsys):
    grading.check_se_params(right_se_params)
    assert "add 2,530,992 parameters to ResNet-50" in capsys.readouterr().out


def test_sk_select_with_two_branches_and_equal_logits_is_the_mean():
    rng = np.random.default_rng(0)
    branches = [rng.normal(size=(1, 3, 3, 4)).astype("float32") for _ in range(2)]
    got = grading._reference_sk_select(branches, np.zeros((1, 2, 4), "float32"))
    np.testing.assert_allclose(got, (branches[0] + branches[1]) / 2, atol=1e-6)
