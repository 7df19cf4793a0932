"""MobileNet v1, v2 and v3: what the model test pattern cannot see.

The width multiplier against keras.applications' counts, the depthwise separable arithmetic
of the v1 paper, the inverted residual's expansion and linear projection, the v3 tables
(expansion sizes, squeeze-excite widths, activations), the stage outputs a U-Net or an FPN taps
by name. That each computes what its keras.applications twin computes: tests/test_weights.py.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.blocks import inverted_residual
from cnnkit.models.mobilenet import V3_LARGE, V3_SMALL, depthwise_separable

import helpers
from helpers import to_numpy

A = keras.applications

# The headless model at a small size (64 unless given), built once (tests/helpers.py): weights
# do not depend on the size.
headless = functools.partial(helpers.small, include_top=False)


def weights_of(layer):
    return sum(int(np.prod(w.shape)) for w in layer.weights)


# --- Width multiplier --------------------------------------------------------------------------

@pytest.mark.parametrize("name, alpha, twin, kwargs", [
    ("mobilenet_v1", 0.5, A.MobileNet, {}),
    ("mobilenet_v2", 0.35, A.MobileNetV2, {}),
    ("mobilenet_v2", 1.4, A.MobileNetV2, {}),  # > 1 also widens the last 1x1
    ("mobilenet_v3_small", 0.75, A.MobileNetV3Small, dict(include_preprocessing=False)),
])
def test_alpha_gives_keras_applications_trainable_count(name, alpha, twin, kwargs):
    shape = (32, 32, 3)  # no layer's weights depend on the input size
    reference = count_params(twin(weights=None, alpha=alpha, input_shape=shape, **kwargs))
    assert count_params(cnnkit.build(name, alpha=alpha, input_shape=shape)) == reference


def test_alpha_thins_v1_every_layer_and_quarters_its_cost():
    full, half = headless("mobilenet_v1"), cnnkit.build(
        "mobilenet_v1", alpha=0.5, include_top=False, input_shape=(64, 64, 3))
    assert half.get_layer("conv_pw_13_conv").filters == 512
    assert half.get_layer("conv1_conv").filters == 16
    # The 1x1 layers dominate and scale with alpha**2; the depthwise ones only with alpha.
    assert 0.25 < count_params(half) / count_params(full) < 0.26


@pytest.mark.parametrize("name, alpha, message", [
    ("mobilenet_v1", 0, "must be a number > 0"),
    ("mobilenet_v2", -0.5, "must be a number > 0"),
    ("mobilenet_v3_large", "0.75", "must be a number > 0"),
    ("mobilenet_v3_small", True, "must be a number > 0"),
    ("mobilenet_v1", 0.01, "use alpha >= 0.03125"),
])
def test_invalid_alpha_raises_a_value_error(name, alpha, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, alpha=alpha)


# --- Depthwise separable convolution (v1, Sec. 3.1) --------------------------------------------

def test_depthwise_separable_16_to_32_has_656_weights_against_4608():
    x = keras.Input((8, 8, 16))
    model = keras.Model(x, depthwise_separable(x, 32, strides=1, block=1))
    dw, pw = model.get_layer("conv_dw_1_conv"), model.get_layer("conv_pw_1_conv")
    assert (weights_of(dw), weights_of(pw)) == (3 * 3 * 16, 16 * 32)
    assert weights_of(dw) + weights_of(pw) == 656
    # A standard 3x3 convolution 16 -> 32: 4,608, so 1/N + 1/D_K^2 = 1/32 + 1/9 of it (Eq. 5).
    assert 656 / (3 * 3 * 16 * 32) == pytest.approx(1 / 32 + 1 / 9)
    assert [layer.name for layer in model.layers[1:]] == [
        "conv_dw_1_conv", "conv_dw_1_bn", "conv_dw_1_relu6",
        "conv_pw_1_conv", "conv_pw_1_bn", "conv_pw_1_relu6"]


def test_v1_is_one_conv_and_13_separable_layers_with_the_paper_widths():
    model = headless("mobilenet_v1")
    pointwise = [model.get_layer(f"conv_pw_{i}_conv").filters for i in range(1, 14)]
    assert pointwise == [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    strided = [i for i in range(1, 14) if model.get_layer(f"conv_dw_{i}_conv").strides == (2, 2)]
    assert strided == [2, 4, 6, 12]  # Table 1, with its 13th "s2" read as s1 (7x7 stays 7x7)


# --- Inverted residual (v2, Sec. 3.3) ----------------------------------------------------------

def test_inverted_residual_expands_filters_and_projects_linearly():
    x = keras.Input((8, 8, 24))
    y = inverted_residual(x, 24, expansion=6, name="b", epsilon=1e-3)
    model = keras.Model(x, y)
    assert model.get_layer("b_expand_conv").kernel.shape == (1, 1, 24, 144)
    assert model.get_layer("b_depthwise_conv").kernel.shape == (3, 3, 144, 1)
    assert model.get_layer("b_project_conv").kernel.shape == (1, 1, 144, 24)
    names = [layer.name for layer in model.layers[1:]]
    assert names == ["b_expand_conv", "b_expand_bn", "b_expand_relu6", "b_depthwise_conv",
                     "b_depthwise_bn", "b_depthwise_relu6", "b_project_conv", "b_project_bn",
                     "b_add"]  # no activation after the projection: the linear bottleneck
    probe = keras.Model(x, [model.get_layer("b_project_bn").output, y])
    inputs = np.random.default_rng(0).normal(size=(2, 8, 8, 24)).astype("float32")
    projected, out = (to_numpy(t) for t in probe(inputs))
    assert projected.min() < 0  # negative values survive: nothing clips them
    np.testing.assert_allclose(out, inputs + projected, rtol=1e-6, atol=1e-6)


def test_inverted_residual_without_expansion_or_shortcut():
    x = keras.Input((8, 8, 32))
    model = keras.Model(x, inverted_residual(x, 16, expansion=1, name="b", strides=2))
    names = [layer.name for layer in model.layers[1:]]
    assert names[0] == "b_depthwise_conv" and names[-1] == "b_project_bn"
    assert model.output_shape == (None, 4, 4, 16)


def test_v2_expands_six_times_except_the_first_block():
    model = headless("mobilenet_v2")
    assert "block_0_expand_conv" not in [layer.name for layer in model.layers]
    assert model.get_layer("block_1_expand_conv").filters == 6 * 16
    assert model.get_layer("block_16_expand_conv").filters == 6 * 160
    adds = [layer.name for layer in model.layers if layer.name.endswith("_add")]
    assert len(adds) == 17 - 7  # every repeat after the first of a sequence of Table 2


# --- MobileNetV3 tables ------------------------------------------------------------------------

# Squeeze-excite to a quarter of the expansion, rounded to a multiple of 8 (at most 10% down).
SE_WIDTHS = {16: 8, 72: 24, 96: 24, 120: 32, 144: 40, 240: 64, 288: 72, 480: 120, 576: 144,
             672: 168, 960: 240}


@pytest.mark.parametrize("name, rows", [("mobilenet_v3_large", V3_LARGE),
                                        ("mobilenet_v3_small", V3_SMALL)])
def test_v3_blocks_follow_the_paper_table(name, rows):
    model = headless(name)
    names = {layer.name for layer in model.layers}
    for b, (kernel, expanded, out, se, activation, stride) in enumerate(rows):
        dw = model.get_layer(f"block_{b}_depthwise_conv")
        assert dw.kernel.shape == (kernel, kernel, expanded, 1)
        assert dw.strides == (stride, stride)
        assert model.get_layer(f"block_{b}_project_conv").filters == out
        assert f"block_{b}_depthwise_{activation}" in names
        assert (f"block_{b}_se_reduce" in names) == se
        if se:
            assert model.get_layer(f"block_{b}_se_reduce").filters == SE_WIDTHS[expanded]
            assert model.get_layer(f"block_{b}_se_expand").activation.__name__ == "hard_sigmoid"


def test_v3_large_last_layers_as_keras():
    model = cnnkit.build("mobilenet_v3_large", input_shape=(64, 64, 3))
    # 72 / 4 = 18 would round down to 16, more than 10% less, so it rounds up to 24.
    assert model.get_layer("block_3_se_reduce").filters == 24
    assert model.get_layer("top_conv").filters == 960
    head = model.get_layer("head")
    assert (head.units, head.activation.__name__) == (1280, "hard_silu")
    assert model.get_layer("dropout").rate == 0.2


# --- Stage outputs -----------------------------------------------------------------------------

@pytest.mark.parametrize("name, taps", [
    ("mobilenet_v1", {"conv_pw_1_relu6": (2, 64), "conv_pw_3_relu6": (4, 128),
                      "conv_pw_5_relu6": (8, 256), "conv_pw_11_relu6": (16, 512),
                      "conv_pw_13_relu6": (32, 1024)}),
    ("mobilenet_v2", {"block_1_expand_relu6": (2, 96), "block_3_expand_relu6": (4, 144),
                      "block_6_expand_relu6": (8, 192), "block_13_expand_relu6": (16, 576),
                      "block_16_project_bn": (32, 320), "top_relu6": (32, 1280)}),
    ("mobilenet_v3_large", {"block_2_add": (4, 24), "block_5_add": (8, 40),
                            "block_11_add": (16, 112), "block_14_add": (32, 160),
                            "top_hard_swish": (32, 960)}),
    ("mobilenet_v3_small", {"block_0_project_bn": (4, 16), "block_2_add": (8, 24),
                            "block_7_add": (16, 48), "block_10_add": (32, 96),
                            "top_hard_swish": (32, 576)}),
])
def test_stage_outputs_by_name_and_stride(name, taps):
    model = headless(name)
    for tap, (stride, channels) in taps.items():
        assert model.get_layer(tap).output.shape == (None, 64 // stride, 64 // stride, channels)
