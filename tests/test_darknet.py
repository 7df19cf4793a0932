"""Darknet-53: what the shared model tests cannot see.

The count derived from the paper's Table 1, the 53 weight layers, a residual block counted by
hand, LeakyReLU(0.1) with a linear shortcut, and the stage outputs YOLOv3 taps.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params, weight_depth
from cnnkit.models.darknet import DARKNET53_STAGES

from helpers import small
from reference import REFERENCE_PARAMS


@pytest.fixture(scope="module")
def odd():
    """With its classifier, at an odd size."""
    return cnnkit.build("darknet53", input_shape=(65, 65, 3))


def conv_bn_params(c_in, c_out, k):
    return k * k * c_in * c_out + 2 * c_out  # no bias; BatchNorm's gamma and beta


def table1_params(classes=1000):
    """Table 1 of the YOLOv3 paper, layer by layer."""
    total, c = conv_bn_params(3, 32, 3), 32
    for filters, blocks in ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4)):
        total += conv_bn_params(c, filters, 3)
        total += blocks * (conv_bn_params(filters, filters // 2, 1)
                           + conv_bn_params(filters // 2, filters, 3))
        c = filters
    return total + c * classes + classes


def test_table1_gives_the_reference_count():
    assert DARKNET53_STAGES == ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))
    assert table1_params() == REFERENCE_PARAMS["darknet53"][0] == 41_609_928


def test_fifty_three_weight_layers(odd):
    convs = [layer for layer in odd.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 52
    # With the connected layer, 53 on the longest path: the residual sums add no depth.
    assert weight_depth(odd) == 53


def test_a_residual_block_counted_by_hand():
    model = small("darknet53", include_top=False)
    params = sum(count_params(layer) for layer in model.layers
                 if layer.name.startswith("stage3_block5_"))
    assert params == conv_bn_params(256, 128, 1) + conv_bn_params(128, 256, 3) == 328_448


def test_leaky_relu_after_every_convolution_and_no_activation_after_the_sum():
    model = small("darknet53", include_top=False)
    leaky = [layer for layer in model.layers if isinstance(layer, keras.layers.LeakyReLU)]
    assert len(leaky) == 52
    assert all(layer.negative_slope == pytest.approx(0.1) for layer in leaky)
    # The sum feeds the next block directly ("activation=linear" shortcut in darknet's cfg).
    nxt = model.get_layer("stage3_block2_1x1_conv")
    assert nxt.input is model.get_layer("stage3_block1_add").output


def test_stage_outputs_have_stride_two_to_the_stage():
    model = small("darknet53", include_top=False)
    shapes = [tuple(model.get_layer(f"stage{s}_out").output.shape) for s in range(1, 6)]
    assert shapes == [(None, 32, 32, 64), (None, 16, 16, 128), (None, 8, 8, 256),
                      (None, 4, 4, 512), (None, 2, 2, 1024)]
    assert model.output is model.get_layer("stage5_out").output


def test_yolov3_scales_can_be_tapped_by_name():
    model = small("darknet53", include_top=False)
    taps = keras.Model(model.input, [model.get_layer(f"stage{s}_out").output for s in (3, 4, 5)])
    outs = taps(np.zeros((1, 64, 64, 3), "float32"))
    assert [tuple(o.shape) for o in outs] == [(1, 8, 8, 256), (1, 4, 4, 512), (1, 2, 2, 1024)]


def test_downsampling_pads_one_pixel_on_every_side_as_darknet(odd):
    # 65 -> 33 -> 17 -> 9 -> 5 -> 3: (n + 2 - 3) // 2 + 1, darknet's and PyTorch's formula.
    assert [odd.get_layer(f"stage{s}_out").output.shape[1] for s in range(1, 6)] == [
        33, 17, 9, 5, 3]
    down = odd.get_layer("stage1_down_pad")
    assert down.padding == ((1, 1), (1, 1))
