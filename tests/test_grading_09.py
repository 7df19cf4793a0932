"""Graders of exercise 09 (dense connections): the right answer passes, typical wrong ones fail
with hints."""

import math

import pytest

from cnnkit import grading

from grader_verdicts import assert_verdicts


def right_dense_block_channels(k0, k, layers):
    return [k0 + l * k for l in range(1, layers + 1)]


def starts_at_k0(k0, k, layers):
    return [k0 + l * k for l in range(layers)]


def bottleneck_concatenated(k0, k, layers):
    return [k0 + l * 4 * k for l in range(1, layers + 1)]


def input_dropped(k0, k, layers):
    return [l * k for l in range(1, layers + 1)]


def added_not_concatenated(k0, k, layers):
    return [k0] * layers


def only_the_last(k0, k, layers):
    return k0 + layers * k


def right_dense_layer_params(c_in, k, bottleneck=4):
    return 2 * c_in + c_in * bottleneck * k + 2 * bottleneck * k + 9 * bottleneck * k * k


def moving_stats_counted(c_in, k, bottleneck=4):
    return right_dense_layer_params(c_in, k, bottleneck) + 2 * c_in + 2 * bottleneck * k


def bn_forgotten(c_in, k, bottleneck=4):
    return c_in * bottleneck * k + 9 * bottleneck * k * k


def with_biases(c_in, k, bottleneck=4):
    return right_dense_layer_params(c_in, k, bottleneck) + bottleneck * k + k


def no_bottleneck(c_in, k, bottleneck=4):
    return 2 * c_in + 9 * c_in * k


def bottleneck_fixed_at_4(c_in, k, bottleneck=4):
    return right_dense_layer_params(c_in, k, 4)


def params_as_float(c_in, k, bottleneck=4):
    return float(right_dense_layer_params(c_in, k, bottleneck))


def right_transition_output(shape, compression=0.5):
    h, w, c = shape
    return h // 2, w // 2, int(c * compression)


def size_kept(shape, compression=0.5):
    return shape[0], shape[1], int(shape[2] * compression)


def size_rounded_up(shape, compression=0.5):
    h, w, c = shape
    return math.ceil(h / 2), math.ceil(w / 2), int(c * compression)


def channels_kept(shape, compression=0.5):
    return shape[0] // 2, shape[1] // 2, shape[2]


def always_half(shape, compression=0.5):
    return shape[0] // 2, shape[1] // 2, shape[2] // 2


def channels_rounded(shape, compression=0.5):
    h, w, c = shape
    return h // 2, w // 2, round(c * compression)


def channels_as_float(shape, compression=0.5):
    h, w, c = shape
    return h // 2, w // 2, c * compression


CASES = [
    (grading.check_dense_block_channels, right_dense_block_channels,
     [(starts_at_k0, "off by one"),
      (bottleneck_concatenated, "only the k maps of its 3x3"),
      (input_dropped, "concatenation keeps the block's input"),
      (added_not_concatenated, "it does not add"),
      (only_the_last, "return a list")]),
    (grading.check_dense_layer_params, right_dense_layer_params,
     [(moving_stats_counted, "moving mean and variance are not trainable"),
      (bn_forgotten, "γ and β per channel"),
      (with_biases, "use_bias=False"),
      (no_bottleneck, "the layer has a bottleneck"),
      (bottleneck_fixed_at_4, "use the bottleneck argument"),
      (params_as_float, "return a whole number")]),
    (grading.check_transition_output, right_transition_output,
     [(size_kept, "halves the height and the width"),
      (size_rounded_up, "an odd size loses its last row"),
      (channels_kept, "keeps only a share θ"),
      (always_half, "use the compression argument"),
      (channels_rounded, "rounded down"),
      (channels_as_float, "return a whole number")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_summaries_name_densenet121(capsys):
    grading.check_dense_block_channels(right_dense_block_channels)
    grading.check_dense_layer_params(right_dense_layer_params)
    grading.check_transition_output(right_transition_output)
    out = capsys.readouterr().out
    assert "four blocks end with 256, 512, 1024, 1024 channels" in out
    assert "the first dense layer has 45,440 parameters" in out
    assert "(992 channels in) 166,080" in out
    assert "three give 28x28x128, 14x14x256, 7x7x512" in out


def test_the_keras_reference_for_other_bottlenecks_matches_the_kits_layer_at_4():
    # The grader builds Keras layers where cnnkit's dense_layer (bottleneck 4) cannot serve.
    from cnnkit.grading import _reference_dense_layer_params

    for c_in, k in [(64, 32), (37, 5)]:
        assert _reference_dense_layer_params(c_in, k, 4) == right_dense_layer_params(c_in, k)
        assert _reference_dense_layer_params(c_in, k, 2) == right_dense_layer_params(c_in, k, 2)
