"""ThunderNet: SNet's counts and complexity, its taps, CEM, SAM, the large separable convolution
and the `thundernet_features` model.

The SNet classifiers pass tests/test_models.py's ModelPattern, thundernet_features its
MapPattern (count, a training step, saving, weights files, the minimum size); here: Table 1's
multiply-adds, the C4/C5 taps a detector reads, the blocks against NumPy and against their
parameter formulas, and for thundernet_features the derived count for each backbone, shapes
and stride, and its options' errors.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params, model_macs, receptive_field
from cnnkit.models.thundernet import (C4_LAYER, C5_LAYER, context_enhancement,
                                      large_separable_conv, rpn_features, spatial_attention)

from derived_snet import CEM_CHANNELS, SNET_PARAMS, THUNDERNET_FEATURES_PARAMS, conv
from helpers import small, to_numpy
from reference import REFERENCE_PARAMS

SNETS = ("snet49", "snet146", "snet535")
PAPER_MFLOPS = {"snet49": 49, "snet146": 146, "snet535": 535}  # Table 1, at 224x224
MEASURED_MMACS = {"snet49": 51.2, "snet146": 161.1, "snet535": 535.4}  # the docstring's row


def rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# --- SNet: Table 1 -----------------------------------------------------------------------------

def test_snet_references_are_the_table_1_derivation():
    assert {n: REFERENCE_PARAMS[n][0] for n in SNETS} == SNET_PARAMS == {
        "snet49": 875_548, "snet146": 1_572_748, "snet535": 4_535_144}
    assert all(cnnkit.model_info(n).params == SNET_PARAMS[n] for n in SNETS)


@pytest.mark.parametrize("name", SNETS)
def test_multiply_adds_at_224_against_table_1(name):
    """Table 1's FLOPs are at 224x224: 320x320 would double them. SNet535 agrees to 0.1%."""
    macs = model_macs(small(name, 224)) / 1e6
    assert round(macs, 1) == MEASURED_MMACS[name]
    assert abs(macs / PAPER_MFLOPS[name] - 1) < 0.11


def test_snet_costs_twice_as_much_at_the_detectors_320():
    macs = [model_macs(small("snet49", size)) for size in (224, 320)]
    assert round(macs[1] / 1e6, 1) == 104.0
    assert 2.0 < macs[1] / macs[0] < (320 / 224) ** 2 + 0.01


@pytest.mark.parametrize("name, c5_channels", [("snet49", 512), ("snet146", 528)])
def test_c4_and_c5_taps_at_strides_16_and_32(name, c5_channels):
    model = small(name, 320)
    c4_channels = {"snet49": 120, "snet146": 264}[name]
    assert model.get_layer(C4_LAYER).output.shape[1:] == (20, 20, c4_channels)
    assert model.get_layer(C5_LAYER[name]).output.shape[1:] == (10, 10, c5_channels)
    # every depthwise convolution is 5x5
    kernels = {layer.kernel_size for layer in model.layers
               if isinstance(layer, keras.layers.DepthwiseConv2D)}
    assert kernels == {(5, 5)}


# --- CEM and SAM -------------------------------------------------------------------------------

def test_cem_sums_c4_upsampled_c5_and_global_context_as_numpy_does():
    c4_in, c5_in = keras.Input((4, 6, 8)), keras.Input((2, 3, 12))
    model = keras.Model([c4_in, c5_in], context_enhancement(c4_in, c5_in, channels=5, name="cem"))
    assert model.output.shape[1:] == (4, 6, 5)
    assert count_params(model) == conv(1, 8, 5, bias=True) + 2 * conv(1, 12, 5, bias=True)
    c4, c5 = rand(2, 4, 6, 8), rand(2, 2, 3, 12, seed=1)

    def project(x, layer):
        kernel, bias = layer.get_weights()
        return x @ kernel[0, 0] + bias

    up = project(c5, model.get_layer("cem_c5_conv")).repeat(2, axis=1).repeat(2, axis=2)
    glb = project(c5.mean(axis=(1, 2), keepdims=True), model.get_layer("cem_glb_conv"))
    expected = project(c4, model.get_layer("cem_c4_conv")) + up + glb
    np.testing.assert_allclose(to_numpy(model([c4, c5])), expected, rtol=1e-5, atol=1e-5)


def test_sam_reweights_cem_by_a_sigmoid_of_the_rpn_features():
    rpn_in, cem_in = keras.Input((3, 3, 4)), keras.Input((3, 3, 6))
    model = keras.Model([rpn_in, cem_in], spatial_attention(rpn_in, cem_in, name="sam"))
    assert count_params(model) == 4 * 6 + 2 * 6  # 1x1 conv without bias, BN's gamma and beta
    rpn, cem = rand(1, 3, 3, 4), rand(1, 3, 3, 6, seed=1)
    kernel = model.get_layer("sam_conv").get_weights()[0][0, 0]
    logits = (rpn @ kernel) / np.sqrt(1 + 1e-5)  # a fresh BatchNorm at inference
    expected = cem / (1 + np.exp(-logits))
    np.testing.assert_allclose(to_numpy(model([rpn, cem])), expected, rtol=1e-5, atol=1e-6)


def test_cem_rpn_and_sam_at_320_give_20x20x245():
    c4, c5 = keras.Input((20, 20, 264)), keras.Input((10, 10, 528))
    cem = context_enhancement(c4, c5, name="cem")
    rpn = rpn_features(cem, name="rpn")
    sam = spatial_attention(rpn, cem, name="sam")
    assert (cem.shape[1:], rpn.shape[1:], sam.shape[1:]) == (
        (20, 20, CEM_CHANNELS), (20, 20, 256), (20, 20, CEM_CHANNELS))
    assert CEM_CHANNELS == 5 * 7 * 7 == 245


# --- Light-Head R-CNN's large separable convolution ----------------------------------------------

@pytest.mark.parametrize("c_in, mid, separable, dense", [
    (2048, 256, 19_493_332, 225_792_490),  # Light-Head R-CNN's heavy head on ResNet-101
    (2048, 64, 4_874_068, 225_792_490),  # its light head
    (1024, 64, 2_907_988, 112_896_490),
])
def test_large_separable_conv_parameters_against_a_dense_15x15(c_in, mid, separable, dense):
    k, out = 15, 490  # out = 10 x 7 x 7
    x = keras.Input((None, None, c_in))
    model = keras.Model(x, large_separable_conv(x, kernel_size=k, mid_channels=mid,
                                                out_channels=out, name="gc"))
    assert count_params(model) == 2 * (k * (c_in + out) * mid + mid + out) == separable
    assert k * k * c_in * out + out == dense  # what one dense k x k convolution would cost
    assert model.output.shape[-1] == out


def test_large_separable_conv_sees_a_k_by_k_window():
    x = keras.Input((21, 21, 1))
    model = keras.Model(x, large_separable_conv(x, kernel_size=7, mid_channels=1,
                                                out_channels=1, name="gc"))
    assert receptive_field(model) == (7, 7)
    for layer in model.layers:  # all-ones kernels, zero biases: the output marks what it sees
        if layer.weights:
            layer.set_weights([np.ones_like(layer.get_weights()[0]), np.zeros(1)])
    impulse = np.zeros((1, 21, 21, 1), "float32")
    impulse[0, 10, 10, 0] = 1
    seen = to_numpy(model(impulse))[0, :, :, 0] != 0
    expected = np.zeros((21, 21), bool)
    expected[7:14, 7:14] = True
    np.testing.assert_array_equal(seen, expected)


# --- thundernet_features -----------------------------------------------------------------------

def test_features_count_is_the_derivation_for_every_backbone():
    info = cnnkit.model_info("thundernet_features")
    assert (info.task, info.input_shape, info.min_size) == ("features", (320, 320, 3), 32)
    assert info.params == THUNDERNET_FEATURES_PARAMS["snet146"] == 1_500_940
    for backbone in ("snet146", "snet49"):
        model = small("thundernet_features", backbone=backbone)  # at 64x64
        assert count_params(model) == THUNDERNET_FEATURES_PARAMS[backbone]
    assert THUNDERNET_FEATURES_PARAMS["snet49"] == 776_620


def test_features_output_is_245_channels_at_stride_16():
    model = cnnkit.build("thundernet_features")
    assert model.output.shape == (None, 20, 20, 245)
    assert model.layers[-1].name == "sam_out"
    assert model.get_layer("rpn_pw_relu").output.shape[1:] == (20, 20, 256)
    # 64x64, a multiple of 32: C4 4x4, C5 2x2, the output at C4's size
    assert small("thundernet_features", backbone="snet49").output.shape[1:] == (4, 4, 245)
    smallest = cnnkit.build("thundernet_features", input_shape=(32, 32, 3))
    assert smallest.output.shape[1:] == (2, 2, 245)


# --- Invalid options ---------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    (dict(backbone="snet50"), "backbone must be one of 'snet49', 'snet146', 'snet535'"),
    (dict(input_shape=(48, 48, 3)), "divisible by 32 .* 48 to 32 or 64"),
    (dict(input_shape=(31, 64, 3)), "at least 32x32"),
    (dict(weights="imagenet"), "No ImageNet weights exist for thundernet_features"),
])
def test_features_invalid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("thundernet_features", **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(kernel_size=14), "odd whole number"),
    (dict(kernel_size=0), "odd whole number"),
    (dict(kernel_size=True), "odd whole number"),
    (dict(mid_channels=0), "mid_channels must be a whole number >= 1"),
    (dict(out_channels=2.5), "out_channels must be a whole number >= 1"),
])
def test_large_separable_conv_invalid_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        large_separable_conv(keras.Input((8, 8, 4)), name="gc", **kwargs)


def test_cem_and_sam_refuse_maps_that_do_not_line_up():
    with pytest.raises(ValueError, match="C4 twice the size of C5.*multiples of 32"):
        context_enhancement(keras.Input((5, 5, 8)), keras.Input((3, 3, 8)), name="cem")
    with pytest.raises(ValueError, match="channels must be a whole number >= 1"):
        context_enhancement(keras.Input((4, 4, 8)), keras.Input((2, 2, 8)), channels=0,
                            name="cem")
    with pytest.raises(ValueError, match="same size"):
        spatial_attention(keras.Input((4, 4, 8)), keras.Input((2, 2, 8)), name="sam")
