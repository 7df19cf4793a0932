"""SENet: what the shared model tests cannot see.

The SE block's parameters and computation by hand, SE-ResNet-50 as ResNet-50 plus its SE blocks
(and exactly ResNet-50 when every gate is open), SENet-154's count derived from the paper's
appendix, its stem, shortcuts and widths, the stage outputs a detector taps, and `reduction`.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.models.senet import deep_stem, se_block

import helpers
from helpers import to_numpy
from reference import REFERENCE_PARAMS

SIZE = 64  # small enough to build fast, large enough for conv5_x to be 2x2
DEPTHS = {"50": (3, 4, 6, 3), "154": (3, 8, 36, 3)}
CHANNELS = (256, 512, 1024, 2048)  # the output C of each stage's bottlenecks, where SE sits


def se_params(c, r):
    """An SE block on C channels: FC C -> C/r with bias, FC C/r -> C with bias (Fig. 3)."""
    return 2 * c * c // r + c // r + c


def se_overhead(depths, r=16):
    return sum(n * se_params(c, r) for n, c in zip(depths, CHANNELS))


# A model at SIZE x SIZE with 10 classes, built once (tests/helpers.py).
small = functools.partial(helpers.small, size=SIZE, classes=10)


def layers_named(model, part):
    return [layer for layer in model.layers if part in layer.name]


# --- The SE block ------------------------------------------------------------------------------

@pytest.mark.parametrize("c, r", [(64, 16), (256, 16), (96, 4), (32, 32)])
def test_se_block_parameters_by_hand(c, r):
    x = keras.Input((4, 4, c))
    model = keras.Model(x, se_block(x, name="b", reduction=r))
    assert count_params(model) == 2 * c * (c // r) + c // r + c == se_params(c, r)
    assert [layer.name for layer in model.layers[1:]] == [
        "b_se_squeeze", "b_se_reduce", "b_se_expand", "b_se_excite"]
    assert model.get_layer("b_se_reduce").filters == c // r


def test_se_gate_is_in_0_1_and_scales_each_channel_as_numpy_computes_it():
    keras.utils.set_random_seed(0)
    x = keras.Input((5, 5, 32))
    out = se_block(x, name="b", reduction=4)
    model = keras.Model(x, out)
    gate_model = keras.Model(x, model.get_layer("b_se_expand").output)
    rng = np.random.default_rng(0)
    for layer in (model.get_layer("b_se_reduce"), model.get_layer("b_se_expand")):
        layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    images = rng.normal(0, 1, (3, 5, 5, 32)).astype("float32")
    (w1, b1), (w2, b2) = (model.get_layer(n).get_weights() for n in ("b_se_reduce",
                                                                      "b_se_expand"))
    squeezed = images.mean(axis=(1, 2))  # (3, 32): one number per channel
    hidden = np.maximum(squeezed @ w1[0, 0] + b1, 0.0)  # (3, 8)
    gate = 1 / (1 + np.exp(-(hidden @ w2[0, 0] + b2)))  # (3, 32)
    got = to_numpy(gate_model(images))
    assert got.shape == (3, 1, 1, 32) and np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got[:, 0, 0], gate, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(to_numpy(model(images)), images * gate[:, None, None, :],
                               rtol=1e-5, atol=1e-6)


# --- SE-ResNet-50 is ResNet-50 plus SE blocks ---------------------------------------------------

def test_se_overhead_reproduces_the_reference_differences_and_the_papers_eq_5():
    assert se_overhead(DEPTHS["50"]) == 2_530_992
    assert REFERENCE_PARAMS["se_resnet50"][0] - REFERENCE_PARAMS["resnet50"][0] == 2_530_992
    assert (REFERENCE_PARAMS["se_resnext50_32x4d"][0]
            - REFERENCE_PARAMS["resnext50_32x4d"][0] == 2_530_992)
    # Eq. 5 counts the FC weights only: 2/r * sum over stages of blocks * C^2, "~10%" of 25.6M.
    assert 2 * sum(n * c * c for n, c in zip(DEPTHS["50"], CHANNELS)) // 16 == 2_514_944


def test_se_resnet50_is_timms_resnet50_layout_plus_16_se_blocks():
    se, plain = small("se_resnet50"), small("resnet50", downsample="3x3")
    se_layers = layers_named(se, "_se_")
    assert len(se_layers) == 4 * 16
    assert count_params(se) - count_params(plain) == sum(map(count_params, se_layers)) == (
        se_overhead(DEPTHS["50"]))
    rest = {layer.name: [tuple(w.shape) for w in layer.weights] for layer in se.layers
            if layer not in se_layers}
    assert rest == {layer.name: [tuple(w.shape) for w in layer.weights]
                    for layer in plain.layers}
    # timm strides the 3x3; the SE branch joins before the sum.
    assert se.get_layer("conv3_block1_1_conv").strides == (1, 1)
    assert se.get_layer("conv3_block1_2_conv").strides == (2, 2)
    add = se.get_layer("conv3_block1_add")
    assert add.input[1] is se.get_layer("conv3_block1_se_excite").output


def test_with_every_gate_open_se_resnet50_computes_resnet50():
    se, plain = small("se_resnet50"), small("resnet50", downsample="3x3")
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    for layer in plain.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.normal(1, 0.1, c), rng.normal(0, 0.1, c),
                               rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])
        if layer.weights:
            se.get_layer(layer.name).set_weights(layer.get_weights())
    for layer in layers_named(se, "_se_expand"):
        kernel, bias = layer.get_weights()
        layer.set_weights([np.zeros_like(kernel), np.full_like(bias, 40.0)])  # sigmoid(40) = 1
    x = rng.random((2, SIZE, SIZE, 3), dtype=np.float32)
    # BatchNorm epsilons differ (timm 1e-5, Keras 1.001e-5): equal up to float rounding.
    np.testing.assert_allclose(to_numpy(se(x, training=False)), to_numpy(plain(x, training=False)),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name, taps, channels", [
    ("se_resnet50", ("conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                     "conv5_block3_out"), CHANNELS),
    ("senet154", ("conv2_block3_out", "conv3_block8_out", "conv4_block36_out",
                  "conv5_block3_out"), CHANNELS),
])
def test_stage_outputs_have_strides_4_8_16_32(name, taps, channels):
    model = small(name)
    for tap, c, stride in zip(taps, channels, (4, 8, 16, 32)):
        assert model.get_layer(tap).output.shape == (None, SIZE // stride, SIZE // stride, c)


# --- SENet-154 ---------------------------------------------------------------------------------

def senet154_params_from_the_appendix(classes=1000):
    """ResNeXt-152 64x4d with SE, first 1x1 halved, 3-conv stem, 3x3 strided projections."""
    bn = 2  # gamma and beta per channel
    total = 3 * 9 * 64 + bn * 64 + 64 * 9 * 64 + bn * 64 + 64 * 9 * 128 + bn * 128  # stem
    inputs = 128
    for stage, (n, planes) in enumerate(zip(DEPTHS["154"], (64, 128, 256, 512))):
        first, width, out = 2 * planes, 4 * planes, 4 * planes
        for b in range(n):
            total += inputs * first + bn * first  # 1x1, halved
            total += 9 * (first // 64) * width + bn * width  # 3x3 in 64 groups, first -> width
            total += width * out + bn * out + se_params(out, 16)  # 1x1, then SE
            if b == 0:
                k = 1 if stage == 0 else 3  # the strided projections are 3x3
                total += k * k * inputs * out + bn * out
            inputs = out
    return total + 2048 * classes + classes


def test_senet154_count_derived_from_the_paper():
    assert senet154_params_from_the_appendix() == REFERENCE_PARAMS["senet154"][0] == 115_088_984
    assert count_params(small("senet154")) == senet154_params_from_the_appendix(classes=10)


def test_senet154_layout():
    model = small("senet154")
    stem = [model.get_layer(f"conv1_{i}_conv") for i in (1, 2, 3)]
    assert [(c.filters, c.kernel_size, c.strides) for c in stem] == [
        (64, (3, 3), (2, 2)), (64, (3, 3), (1, 1)), (128, (3, 3), (1, 1))]
    assert model.get_layer("pool1_pool").output.shape == (None, SIZE // 4, SIZE // 4, 128)
    # Halved first 1x1; the 3x3 widens it again in 64 groups (2 -> 4 channels each in conv2_x).
    for block, (first, width) in {"conv2_block2": (128, 256), "conv5_block3": (1024, 2048)}.items():
        assert model.get_layer(f"{block}_1_conv").filters == first
        conv = model.get_layer(f"{block}_2_conv")
        assert (conv.filters, conv.groups) == (width, 64)
        assert tuple(conv.kernel.shape) == (3, 3, first // 64, width)
        assert model.get_layer(f"{block}_se_reduce").filters == width // 16
    # conv2_x only widens 128 -> 256 with a 1x1; later stages stride a padded 3x3.
    assert model.get_layer("conv2_block1_0_conv").kernel_size == (1, 1)
    for stage in (3, 4, 5):
        conv = model.get_layer(f"conv{stage}_block1_0_conv")
        assert (conv.kernel_size, conv.strides) == ((3, 3), (2, 2))
        assert model.get_layer(f"conv{stage}_block1_0_pad").padding == ((1, 1), (1, 1))
    dropout = model.get_layer("dropout")
    assert dropout.rate == 0.2 and model.get_layer("predictions").input is dropout.output


@pytest.mark.parametrize("size", [12, 13, 15, 224])
def test_senet154_stem_pool_rounds_up_as_caffe_does(size):
    x = keras.Input((size, size, 3))
    stem = keras.Model(x, deep_stem(x, epsilon=1e-5))
    model = keras.Model(x, [stem.get_layer("conv1_3_relu").output, stem.output])
    maps, pooled = model(np.random.default_rng(0).random((1, size, size, 3), dtype=np.float32))
    maps, pooled = to_numpy(maps)[0], to_numpy(pooled)[0]
    h = (size - 1) // 2 + 1  # 3x3, stride 2, padding 1
    expected = -(-(h - 3) // 2) + 1  # PyTorch's MaxPool2d(3, 2, ceil_mode=True)
    assert pooled.shape[:2] == (expected, expected)
    hand = np.array([[maps[2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(0, 1))
                      for j in range(expected)] for i in range(expected)])
    np.testing.assert_array_equal(pooled, hand)


# --- The reduction option ------------------------------------------------------------------------

def test_reduction_ratio_changes_only_the_se_blocks():
    model = cnnkit.build("se_resnet50", reduction=32, input_shape=(SIZE, SIZE, 3), classes=10)
    assert count_params(model) == count_params(small("se_resnet50")) - se_overhead(
        DEPTHS["50"], 16) + se_overhead(DEPTHS["50"], 32)
    assert model.get_layer("conv2_block1_se_reduce").filters == 256 // 32


@pytest.mark.parametrize("reduction", [0, 257, 2.5, True, "16", None])
def test_invalid_reduction_raises_a_value_error_that_says_what_to_do(reduction):
    with pytest.raises(ValueError, match=r"reduction is the SE ratio r, a whole number from 1 "
                                         r"to 256 .*the paper uses 16"):
        cnnkit.build("se_resnext50_32x4d", reduction=reduction)
