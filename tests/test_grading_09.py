"""Graders of exercise 09 (dense connections): every right answer passes, each wrong one fails
with its hint."""

import math
import sys

import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.course.grading.dense_connections import _reference_dense_layer_params
from grading_harness import Table, assert_verdict, verdict_cases


def right_dense_block_channels(k0, k, layers):  # the solution
    return [k0 + l * k for l in range(1, layers + 1)]


def channels_by_loop_numpy(k0, k, layers):  # NumPy integers in a list
    return list(k0 + k * np.arange(1, layers + 1))


def channels_as_tuple(k0, k, layers):
    channels, out = k0, []
    for _ in range(layers):
        channels += k
        out.append(channels)
    return tuple(out)


def starts_at_k0(k0, k, layers):
    return [k0 + l * k for l in range(layers)]


def bottleneck_concatenated(k0, k, layers):
    return [k0 + l * 4 * k for l in range(1, layers + 1)]


def input_dropped(k0, k, layers):
    return [l * k for l in range(1, layers + 1)]


def added_not_concatenated(k0, k, layers):
    return [k0] * layers


def reversed_order(k0, k, layers):
    return [k0 + l * k for l in range(layers, 0, -1)]


def one_layer_missing(k0, k, layers):
    return [k0 + l * k for l in range(1, layers)]


def only_the_last(k0, k, layers):
    return k0 + layers * k


def channels_as_array(k0, k, layers):
    return k0 + k * np.arange(1, layers + 1)


def channels_as_floats(k0, k, layers):
    return [float(k0 + l * k) for l in range(1, layers + 1)]


def channels_exit(k0, k, layers):
    sys.exit("done")


def right_dense_layer_params(c_in, k, bottleneck=4):  # the solution
    width = bottleneck * k
    return 2 * c_in + c_in * width + 2 * width + 3 * 3 * width * k


def dense_layer_params_numpy(c_in, k, bottleneck=4):
    bn = np.array([c_in, bottleneck * k]) * 2
    kernels = np.array([c_in * bottleneck * k, 9 * bottleneck * k * k])
    return bn.sum() + kernels.sum()


def moving_stats_counted(c_in, k, bottleneck=4):
    return right_dense_layer_params(c_in, k, bottleneck) + 2 * c_in + 2 * bottleneck * k


def bn_forgotten(c_in, k, bottleneck=4):
    return c_in * bottleneck * k + 9 * bottleneck * k * k


def with_biases(c_in, k, bottleneck=4):
    return right_dense_layer_params(c_in, k, bottleneck) + bottleneck * k + k


def no_bottleneck(c_in, k, bottleneck=4):
    return 2 * c_in + 9 * c_in * k


def three_by_three_reads_c_in(c_in, k, bottleneck=4):
    width = bottleneck * k
    return 2 * c_in + c_in * width + 2 * width + 9 * c_in * k


def bottleneck_fixed_at_4(c_in, k, bottleneck=4):  # the default hard-coded
    return right_dense_layer_params(c_in, k, 4)


def three_by_three_counted_once(c_in, k, bottleneck=4):  # 3 instead of 3·3
    width = bottleneck * k
    return 2 * c_in + c_in * width + 2 * width + 3 * width * k


def params_as_float(c_in, k, bottleneck=4):
    return float(right_dense_layer_params(c_in, k, bottleneck))


def params_none(c_in, k, bottleneck=4):
    right_dense_layer_params(c_in, k, bottleneck)


def params_raise_keyboard_interrupt(c_in, k, bottleneck=4):
    raise KeyboardInterrupt


def right_transition_output(shape, compression=0.5):  # the solution
    height, width, channels = shape
    return height // 2, width // 2, int(channels * compression)


def transition_as_list_with_floor(shape, compression=0.5):
    return [shape[0] // 2, shape[1] // 2, math.floor(compression * shape[2])]


def size_kept(shape, compression=0.5):
    return shape[0], shape[1], int(shape[2] * compression)


def size_rounded_up(shape, compression=0.5):
    h, w, c = shape
    return math.ceil(h / 2), math.ceil(w / 2), int(c * compression)


def size_plus_one(shape, compression=0.5):
    h, w, c = shape
    return h // 2 + 1, w // 2 + 1, int(c * compression)


def channels_kept(shape, compression=0.5):
    return shape[0] // 2, shape[1] // 2, shape[2]


def always_half(shape, compression=0.5):  # the default compression hard-coded
    return shape[0] // 2, shape[1] // 2, shape[2] // 2


def channels_rounded(shape, compression=0.5):
    h, w, c = shape
    return h // 2, w // 2, round(c * compression)


def channels_first(shape, compression=0.5):
    h, w, c = shape
    return int(c * compression), h // 2, w // 2


def channels_as_float(shape, compression=0.5):
    h, w, c = shape
    return h // 2, w // 2, c * compression


def size_as_float(shape, compression=0.5):
    h, w, c = shape
    return h / 2, w / 2, int(c * compression)


def only_channels(shape, compression=0.5):
    return int(shape[2] * compression)


def transition_exit(shape, compression=0.5):
    sys.exit()


TABLES = [
    Table(grading.check_dense_block_channels, right_dense_block_channels,
          right=[channels_by_loop_numpy, channels_as_tuple],
          wrong=[(starts_at_k0, "off by one"),
                 (bottleneck_concatenated, "only the k maps of its 3x3"),
                 (input_dropped, "concatenation keeps the block's input"),
                 (added_not_concatenated, "it does not add"),
                 (reversed_order, "the first layer's output first"),
                 (one_layer_missing, "one number per dense layer"),
                 (only_the_last, "of type int: return a list"),
                 (channels_as_array, "of type ndarray: return a list"),
                 (channels_as_floats, "return a whole number"),
                 (channels_exit, "sys.exit('done')")]),
    Table(grading.check_dense_layer_params, right_dense_layer_params,
          right=[dense_layer_params_numpy],
          wrong=[(moving_stats_counted, "moving mean and variance are not trainable"),
                 (bn_forgotten, "γ and β per channel"),
                 (with_biases, "use_bias=False"),
                 (no_bottleneck, "the layer has a bottleneck"),
                 (three_by_three_reads_c_in, "the 3x3 convolution reads the bottleneck's"),
                 (bottleneck_fixed_at_4, "use the bottleneck argument"),
                 (three_by_three_counted_once, "3x3 bottleneck·k → k"),
                 (params_as_float, "return a whole number"),
                 (params_none, "of type NoneType"),
                 (params_raise_keyboard_interrupt, "interrupted")]),
    Table(grading.check_transition_output, right_transition_output,
          right=[transition_as_list_with_floor],
          wrong=[(size_kept, "halves the height and the width"),
                 (size_rounded_up, "an odd size loses its last row"),
                 (size_plus_one, "the size halves, rounded down"),
                 (channels_kept, "keeps only a share θ"),
                 (always_half, "use the compression argument"),
                 (channels_rounded, "rounded down: ⌊θ·m⌋, int(θ·m)"),
                 (channels_first, "the channels come last"),
                 (channels_as_float, "return a whole number"),
                 (size_as_float, "return a whole number"),
                 (only_channels, "of type int: return a tuple"),
                 (transition_exit, "sys.exit(None)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


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
    for c_in, k in [(64, 32), (37, 5)]:
        assert _reference_dense_layer_params(c_in, k, 4) == right_dense_layer_params(c_in, k)
        assert _reference_dense_layer_params(c_in, k, 2) == right_dense_layer_params(c_in, k, 2)
