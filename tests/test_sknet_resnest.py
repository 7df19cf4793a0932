"""SKNet and ResNeSt: what the shared model tests cannot see.

The parameters one selective kernel and one split-attention convolution add (by hand, from the
papers' numbers), that the branch weights are a softmax summing to 1 per channel and mix the
branches, the stage outputs a detector taps, the exact rebuild of a strided dilated convolution,
ResNeSt's average pools, the radix and kernel_sizes options, and invalid options.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import block_params, tap
from cnnkit.models.sknet import dilated_conv3x3_bn, radix_softmax

import helpers
from helpers import to_numpy
from reference import REFERENCE_PARAMS

SIZE = 64  # small, yet every stage keeps at least 2x2 pixels


# A headless model at SIZE x SIZE, built once per name and options (tests/helpers.py).
small = functools.partial(helpers.small, size=SIZE, include_top=False)


def images(n=2, seed=0):
    return np.random.default_rng(seed).random((n, SIZE, SIZE, 3), dtype=np.float32)


# --- Parameters by hand ------------------------------------------------------------------------

def sk_overhead(w, groups=32, r=16, L=32, branches=2):
    """What SK[M, G, r] adds to a ResNeXt block of width w: a second branch and the attention."""
    d = max(w // r, L)
    branch = 9 * w * w // groups + 2 * w  # grouped 3x3 without bias + BN
    return (branches - 1) * branch + (w * d + 2 * d) + d * branches * w


def test_sknet50_is_resnext50_plus_one_sk_overhead_per_block():
    # Table 1: SKNet-50 is ResNeXt-50 (32x4d) with every grouped 3x3 made SK[2, 32, 16], L = 32.
    overhead = sum(depth * sk_overhead(w) for depth, w in zip((3, 4, 6, 3),
                                                               (128, 256, 512, 1024)))
    assert overhead == 2_450_880
    assert (REFERENCE_PARAMS["sk_resnext50_32x4d"][0] - REFERENCE_PARAMS["resnext50_32x4d"][0]
            == overhead)
    assert round(REFERENCE_PARAMS["sk_resnext50_32x4d"][0] / 1e6, 1) == 27.5  # the paper's 27.5M


def test_one_sk_convolution_counted_by_hand():
    model = small("sk_resnext50_32x4d")
    # conv3_block2: two grouped 3x3 branches 256 -> 256 (G=32) with BN, d = max(256/16, 32) = 32.
    assert block_params(model, "conv3_block2_sk_") == (
        2 * (9 * 256 * 256 // 32 + 2 * 256) + 256 * 32 + 2 * 32 + 32 * 2 * 256) == 62_528
    assert block_params(model, "conv3_block2_sk_") - (9 * 256 * 256 // 32 + 2 * 256) == (
        sk_overhead(256))
    # sk_resnet18's conv3_block1: each branch sees half of the 64 input channels (split_input),
    # d = make_divisible(128 / 8, 16) = 16.
    model = small("sk_resnet18")
    assert block_params(model, "conv3_block1_sk_") == (
        2 * (9 * 32 * 128 + 2 * 128) + 128 * 16 + 2 * 16 + 16 * 2 * 128) == 80_416


def test_one_split_attention_convolution_counted_by_hand():
    model = small("resnest14")
    # conv3_block1_2: 3x3 in 2 groups 128 -> 2 x 128 + BN; attention 2 * 128 / 4 = 64 channels;
    # fc1 and fc2 are 1x1 convolutions with bias, fc1 followed by BN.
    assert block_params(model, "conv3_block1_2_") == (
        9 * 64 * 256 + 2 * 256 + 128 * 64 + 64 + 2 * 64 + 64 * 256 + 256) == 172_992
    # conv2_block1_2: 2 * 64 / 4 = 32, the minimum width.
    assert block_params(model, "conv2_block1_2_") == (
        9 * 32 * 128 + 2 * 128 + 64 * 32 + 32 + 2 * 32 + 32 * 128 + 128) == 43_488


# --- The attention ------------------------------------------------------------------------------

def test_sk_branch_weights_sum_to_one_and_mix_the_branches():
    model = small("sk_resnet18")
    p = "conv3_block1_sk_"
    soft, w, b3, b5, out = tap(model, [p + "select_softmax", p + "select_weights", p + "3x3_relu",
                                       p + "5x5_relu", p + "select"], images())
    assert soft.shape == (2, 2, 128)  # (batch, branches, channels)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert (soft > 0).all() and (soft < 1).all() and soft.std() > 1e-4
    assert b3.shape == b5.shape == out.shape == (2, SIZE // 8, SIZE // 8, 128)
    np.testing.assert_allclose(out, w[..., :128] * b3 + w[..., 128:] * b5, rtol=1e-5, atol=1e-6)


def test_split_attention_weights_sum_to_one_per_channel():
    model = small("resnest14")
    p = "conv3_block1_2_"
    soft, w, splits, out = tap(model, [p + "attn_softmax", p + "attn_weights", p + "relu",
                                       p + "attn"], images())
    assert soft.shape == (2, 2, 128)
    np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-6)
    assert splits.shape == (2, SIZE // 4, SIZE // 4, 256)  # radix-major, before the avd pool
    np.testing.assert_allclose(out, w[..., :128] * splits[..., :128]
                               + w[..., 128:] * splits[..., 128:], rtol=1e-5, atol=1e-6)


def test_radix_softmax_with_groups_matches_the_resnest_code():
    # timm's RadixSoftmax: view (batch, groups, radix, -1), softmax over radix, radix-major out.
    groups, radix, c = 2, 3, 4
    logits = keras.Input((1, 1, groups * radix * c))
    model = keras.Model(logits, radix_softmax(logits, radix, groups=groups, name="t"))
    x = np.random.default_rng(1).normal(size=(2, 1, 1, groups * radix * c)).astype("float32")
    e = np.exp(x.reshape(2, groups, radix, c).transpose(0, 2, 1, 3))
    expected = (e / e.sum(axis=1, keepdims=True)).reshape(2, 1, 1, -1)
    np.testing.assert_allclose(to_numpy(model(x)), expected, rtol=1e-5)


# --- Stage taps and strides ---------------------------------------------------------------------

@pytest.mark.parametrize("name, last, widths", [
    ("sk_resnet18", (2, 2, 2, 2), (64, 128, 256, 512)),
    ("sk_resnext50_32x4d", (3, 4, 6, 3), (256, 512, 1024, 2048)),
    ("resnest14", (1, 1, 1, 1), (256, 512, 1024, 2048)),
])
def test_stage_outputs_have_strides_4_8_16_32(name, last, widths):
    model = small(name)
    for stage, (b, c) in enumerate(zip(last, widths)):
        stride = 4 * 2 ** stage
        assert model.get_layer(f"conv{stage + 2}_block{b}_out").output.shape == (
            None, SIZE // stride, SIZE // stride, c)
    assert model.output.shape == (None, SIZE // 32, SIZE // 32, widths[-1])


# --- Where the stride sits ----------------------------------------------------------------------

@pytest.mark.parametrize("dilation, size", [(2, 8), (2, 9), (3, 9)])
def test_strided_dilated_conv_equals_every_other_pixel_of_the_unstrided_one(dilation, size):
    x = keras.Input((size, size, 3))
    strided = keras.Model(x, dilated_conv3x3_bn(x, 4, strides=2, dilation=dilation, name="s"))
    full = keras.Model(x, dilated_conv3x3_bn(x, 4, strides=1, dilation=dilation, name="f"))
    rng = np.random.default_rng(2)
    weights = [rng.normal(size=w.shape).astype("float32") for w in full.get_weights()]
    weights[-1] = np.abs(weights[-1]) + 0.5  # BN moving variance
    full.set_weights(weights)
    strided.set_weights(weights)
    image = rng.random((1, size, size, 3), dtype=np.float32)
    expected = to_numpy(full(image))[:, ::2, ::2]
    assert strided.output.shape[1] == (size + 1) // 2  # PyTorch's floor((n - 1) / 2) + 1
    np.testing.assert_allclose(to_numpy(strided(image)), expected, rtol=1e-4, atol=1e-5)


def test_resnest_strides_with_average_pools():
    model = small("resnest14")
    assert model.get_layer("conv1_1_conv").strides == (2, 2)
    assert model.get_layer("conv1_3_relu").output.shape == (None, SIZE // 2, SIZE // 2, 64)
    assert model.get_layer("conv3_block1_2_conv").strides == (1, 1)  # avd strides instead
    assert model.get_layer("conv3_block1_0_conv").strides == (1, 1)  # avg_down strides instead
    ones = np.ones((1, 4, 4, 1), dtype="float32")
    avd = model.get_layer("conv3_block1_avd_pool")(model.get_layer("conv3_block1_avd_pad")(ones))
    # PyTorch's AvgPool2d(3, 2, padding=1) divides by 9 also where it reads zero padding.
    np.testing.assert_allclose(to_numpy(avd)[0, :, :, 0], [[4 / 9, 6 / 9], [6 / 9, 1.0]],
                               rtol=1e-6)
    # avg_down's AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False): a lone edge pixel
    # is averaged with itself only.
    down = model.get_layer("conv3_block1_0_pool")(np.ones((1, 5, 5, 1), dtype="float32"))
    np.testing.assert_allclose(to_numpy(down), np.ones((1, 3, 3, 1)), rtol=1e-6)


# --- Options ----------------------------------------------------------------------------------

def test_radix_one_is_a_sigmoid_gate_and_radix_four_counts_by_hand():
    gated = small("resnest14", radix=1)
    assert gated.get_layer("conv3_block1_2_attn_sigmoid").output.shape == (None, 1, 1, 128)
    # radix 1: plain 3x3 + BN, attention max(128 / 4, 32) = 32.
    assert block_params(gated, "conv3_block1_2_") == (
        9 * 128 * 128 + 2 * 128 + 128 * 32 + 32 + 2 * 32 + 32 * 128 + 128)
    four = small("resnest14", radix=4)
    assert four.get_layer("conv3_block1_2_attn_softmax").output.shape == (None, 4, 128)
    assert block_params(four, "conv3_block1_2_") == (
        9 * 32 * 512 + 2 * 512 + 128 * 128 + 128 + 2 * 128 + 128 * 512 + 512)


def test_four_kernel_sizes_give_four_dilated_branches():
    model = small("sk_resnet18", kernel_sizes=(3, 5, 7, 9))
    assert [model.get_layer(f"conv2_block1_sk_{k}x{k}_conv").dilation_rate[0]
            for k in (3, 5, 7, 9)] == [1, 2, 3, 4]
    assert model.get_layer("conv2_block1_sk_select_softmax").output.shape == (None, 4, 64)
    assert model.get_layer("conv2_block1_sk_3x3_conv").input.shape[-1] == 16  # 64 / 4 each


@pytest.mark.parametrize("name, options, match", [
    ("sk_resnext50_32x4d", dict(kernel_sizes=(3,)), "two or more"),
    ("sk_resnext50_32x4d", dict(kernel_sizes=(3, 4)), "odd sizes"),
    ("sk_resnext50_32x4d", dict(kernel_sizes=(5, 5)), "different"),
    ("sk_resnext50_32x4d", dict(kernel_sizes=35), "such as \\(3, 5\\)"),
    ("sk_resnet18", dict(kernel_sizes=(3, 5, 7)), "use 2 or 4 kernel sizes"),
    ("resnest50", dict(radix=0), "radix must be"),
    ("resnest50", dict(radix=3), "divides the width 64"),
    ("resnest50", dict(radix=2.0), "whole number"),
    ("resnest50", dict(radix=True), "whole number"),
    ("resnest50", dict(kernel_sizes=(3, 5)), "does not take 'kernel_sizes'"),
])
def test_invalid_options_say_what_to_do(name, options, match):
    with pytest.raises(ValueError, match=match):
        cnnkit.build(name, **options)
