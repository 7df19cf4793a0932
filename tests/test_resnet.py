"""ResNet v1/v2 and ResNeXt: what the shared model tests cannot see.

Counts derived from the papers, the plain nets of the degradation experiment, the stage outputs
a detector taps, where the stride sits and grouped convolutions. That every twin computes what
its keras.applications model computes is tests/test_weights.py's.
"""

import functools
import math

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import block_params, count_params

from derived_resnet import (PLAIN18_PARAMS, PLAIN34_PARAMS, RESNET152_V2_PARAMS,
                            basic_resnet_params, preact_bottleneck_resnet_params)
import helpers
from helpers import to_numpy
from reference import REFERENCE_PARAMS


# A headless model at 32x32, built once (tests/helpers.py): layers and weights do not depend on
# the size.
small = functools.partial(helpers.small, size=32, include_top=False)


# --- Counts derived from the papers ------------------------------------------------------------

def test_preact_derivation_reproduces_the_v2_references_and_gives_resnet152_v2():
    assert preact_bottleneck_resnet_params((3, 4, 6, 3)) == REFERENCE_PARAMS["resnet50_v2"][0]
    assert preact_bottleneck_resnet_params((3, 4, 23, 3)) == REFERENCE_PARAMS["resnet101_v2"][0]
    assert RESNET152_V2_PARAMS == preact_bottleneck_resnet_params((3, 8, 36, 3)) == 60_185_192


def test_basic_derivation_reproduces_torchvision_resnet18_and_34():
    assert basic_resnet_params((2, 2, 2, 2)) == REFERENCE_PARAMS["resnet18"][0]
    assert basic_resnet_params((3, 4, 6, 3)) == REFERENCE_PARAMS["resnet34"][0]


def test_a_bottleneck_block_counted_by_hand():
    model = small("resnet50")
    # conv3_block2: 512 -> 1x1,128 -> 3x3,128 -> 1x1,512, each conv without bias + BN (2 x c).
    assert block_params(model, "conv3_block2_") == (
        512 * 128 + 2 * 128 + 9 * 128 * 128 + 2 * 128 + 128 * 512 + 2 * 512) == 280_064
    # conv2_block1 also projects its shortcut 64 -> 256.
    assert block_params(model, "conv2_block1_") == (
        64 * 64 + 128 + 9 * 64 * 64 + 128 + 64 * 256 + 512 + 64 * 256 + 512) == 75_008


# --- The degradation experiment: plain nets and option A ---------------------------------------

@pytest.mark.parametrize("name, plain", [("resnet18", PLAIN18_PARAMS),
                                         ("resnet34", PLAIN34_PARAMS)])
def test_plain_net_lacks_exactly_the_three_projection_shortcuts(name, plain):
    projections = sum(c * 2 * c + 2 * 2 * c for c in (64, 128, 256))  # 1x1 conv + BN, 3 stages
    assert plain == REFERENCE_PARAMS[name][0] - projections == REFERENCE_PARAMS[name][0] - 173_824
    model = cnnkit.build(name, shortcut=False)
    assert count_params(model) == plain
    assert not any(isinstance(layer, keras.layers.Add) for layer in model.layers)
    assert count_params(cnnkit.build(name, shortcut="zero_pad")) == plain  # option A: no params


def test_option_a_shortcut_is_the_subsampled_input_with_zero_channels():
    model = cnnkit.build("resnet18", shortcut="zero_pad", include_top=False,
                         input_shape=(32, 32, 3))
    probe = keras.Model(model.input, [model.get_layer("conv2_block2_out").output,
                                      model.get_layer("conv3_block1_0_pad").output])
    x = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    before, shortcut = (to_numpy(t) for t in probe(x))
    assert shortcut.shape == (2, 4, 4, 128)
    np.testing.assert_array_equal(shortcut[..., :64], before[:, ::2, ::2, :])
    np.testing.assert_array_equal(shortcut[..., 64:], 0.0)


# --- Stage outputs and strides -----------------------------------------------------------------

@pytest.mark.parametrize("name, taps, channels", [
    ("resnet50", ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
     (256, 512, 1024, 2048)),
    ("resnet18", ("conv2_block2_out", "conv3_block2_out", "conv4_block2_out", "conv5_block2_out"),
     (64, 128, 256, 512)),
    ("resnext50_32x4d",
     ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out", "conv5_block3_out"),
     (256, 512, 1024, 2048)),
])
def test_stage_outputs_have_strides_4_8_16_32(name, taps, channels):
    model = cnnkit.build(name, include_top=False, input_shape=(224, 224, 3))
    for tap, c, stride in zip(taps, channels, (4, 8, 16, 32)):
        assert model.get_layer(tap).output.shape == (None, 224 // stride, 224 // stride, c)


def test_v2_strides_the_last_block_of_a_stage_as_keras_does():
    model = cnnkit.build("resnet50_v2", include_top=False, input_shape=(224, 224, 3))
    size = {n: model.get_layer(n).output.shape[1] for n in (
        "conv2_block2_out", "conv2_block3_out", "conv4_block6_out", "conv5_block3_out")}
    assert size == {"conv2_block2_out": 56, "conv2_block3_out": 28,
                    "conv4_block6_out": 7, "conv5_block3_out": 7}
    assert model.get_layer("conv2_block3_2_conv").strides == (2, 2)
    assert model.get_layer("conv5_block3_2_conv").strides == (1, 1)
    assert model.layers[-1].name == "post_relu"


@pytest.mark.parametrize("name, strided, unstrided", [
    ("resnet50", "conv3_block1_1_conv", "conv3_block1_2_conv"),  # paper and Keras: first 1x1
    ("resnext50_32x4d", "conv3_block1_2_conv", "conv3_block1_1_conv"),  # torchvision: the 3x3
    ("resnet18", "conv3_block1_1_conv", "conv3_block1_2_conv"),
])
def test_where_a_stage_halves_the_size(name, strided, unstrided):
    model = small(name)
    assert model.get_layer(strided).strides == (2, 2)
    assert model.get_layer(unstrided).strides == (1, 1)
    assert model.get_layer("conv3_block1_0_conv").strides == (2, 2)


# --- ResNeXt's grouped convolution -------------------------------------------------------------

def test_grouped_3x3_has_one_32nd_of_the_dense_weights():
    conv = small("resnext50_32x4d").get_layer("conv2_block1_2_conv")
    assert conv.groups == 32 and tuple(conv.kernel.shape) == (3, 3, 128 // 32, 128)
    assert math.prod(conv.kernel.shape) * 32 == 3 * 3 * 128 * 128  # a dense 3x3, 128 -> 128
    # ResNet-50's same layer is a dense 3x3, 64 -> 64: ResNeXt is twice as wide, 1/8 the weights.
    dense = small("resnet50").get_layer("conv2_block1_2_conv")
    assert math.prod(dense.kernel.shape) == 3 * 3 * 64 * 64 == 8 * math.prod(conv.kernel.shape)


def test_only_the_v2_stem_has_a_bias_as_no_batch_norm_follows_it():
    model = small("resnet50_v2")
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 1 + 3 * 16 + 4
    assert [conv.name for conv in convs if conv.use_bias] == ["conv1_conv"]
    assert not any(conv.use_bias for conv in small("resnet50").layers
                   if isinstance(conv, keras.layers.Conv2D))


# --- Invalid options ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, shortcut, message", [
    ("resnet18", "A", "shortcut must be True"),
    ("resnet34", None, "shortcut must be True"),
    ("resnet18", 1, "shortcut must be True"),
    ("resnet50", False, "only for the paper's degradation experiment"),
    ("resnet50_v2", "zero_pad", "Build resnet18 or resnet34 instead"),
    ("resnext50_32x4d", False, "resnext50_32x4d always has shortcuts"),
])
def test_invalid_shortcut_option_raises_a_value_error(name, shortcut, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, shortcut=shortcut)


def test_downsample_3x3_is_torchvisions_layout_with_the_same_parameters():
    paper = cnnkit.build("resnet50", include_top=False, input_shape=(64, 64, 3))
    v15 = cnnkit.build("resnet50", include_top=False, input_shape=(64, 64, 3), downsample="3x3")
    assert count_params(paper) == count_params(v15)
    assert paper.get_layer("conv3_block1_1_conv").strides == (2, 2)
    assert v15.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert v15.get_layer("conv3_block1_2_conv").strides == (2, 2)
    assert paper.output.shape == v15.output.shape


@pytest.mark.parametrize("name, kwargs, message", [
    ("resnet50", dict(downsample="2x2"), "downsample must be '1x1'"),
    ("resnet18", dict(downsample="3x3"), "applies to bottleneck blocks"),
    ("resnet50_v2", dict(downsample="3x3"), "applies to bottleneck blocks"),
])
def test_bad_downsample_is_refused(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, **kwargs)
