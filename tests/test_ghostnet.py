"""GhostNet: what the shared model tests cannot see.

The Ghost module's saving against an ordinary convolution (the paper's Eq. 4 and 5), its
trimming, bottlenecks counted by hand, the SE layers of Table 1, the paper's 141 MFLOPs and the
stage outputs a detector taps.
"""

import functools
from fractions import Fraction

import numpy as np

import cnnkit
import keras
from cnnkit.analysis import block_params, count_params, model_macs
from cnnkit.blocks import conv_bn
from cnnkit.models.ghostnet import BLOCKS, ghost_module

from helpers import to_numpy


@functools.cache
def ghostnet_224():
    return cnnkit.build("ghostnet")


def conv_weights(model):
    """Weights of the convolutions alone (Eq. 5 leaves BatchNorm out)."""
    return sum(count_params(layer) for layer in model.layers
               if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)))


def test_ghost_module_saves_about_s_times_an_ordinary_convolution():
    """Eq. 5: n c k k / ((n/s) c k k + (s-1)(n/s) d d) = s c / (c + s - 1) with k = 1, d = 3."""
    image = keras.Input((14, 14, 64))
    ghost = keras.Model(image, ghost_module(image, 128, name="g"))
    plain = keras.Model(image, conv_bn(image, 128, 1, name="c"))
    assert ghost.output.shape == plain.output.shape == (None, 14, 14, 128)
    n, c, s, d = 128, 64, 2, 3
    assert conv_weights(plain) == n * c == 8192
    assert conv_weights(ghost) == n // s * c + (s - 1) * n // s * d * d == 4096 + 576
    ratio = Fraction(conv_weights(plain), conv_weights(ghost))
    assert ratio == Fraction(n * c, n // s * c + (s - 1) * (n // s) * d * d)
    assert 1.7 < ratio < s  # -> s as c grows (Eq. 5's s*c / (c + s - 1))
    # Eq. 4: multiply-adds save the same factor, every output pixel costing what a weight does.
    assert Fraction(model_macs(plain), model_macs(ghost)) == ratio
    # With BatchNorm (2 per channel): 4,928 against 8,448 trainable parameters.
    assert (count_params(ghost), count_params(plain)) == (4928, 8448)


def test_ghost_module_concatenates_intrinsic_maps_and_ghosts_and_trims_the_excess():
    image = keras.Input((6, 6, 8))
    model = keras.Model(image, ghost_module(image, 16, ratio=3, name="g"))
    # ceil(16 / 3) = 6 intrinsic maps, 2 ghosts each: 18 maps, trimmed to 16.
    assert model.get_layer("g_primary_conv").filters == 6
    assert model.get_layer("g_cheap_conv").depth_multiplier == 2
    assert model.get_layer("g_concat").output.shape[-1] == 18
    assert model.output.shape == (None, 6, 6, 16)
    probe = keras.Model(image, [model.get_layer(name).output for name in (
        "g_primary_relu", "g_concat")] + [model.output])
    x = np.random.default_rng(0).random((1, 6, 6, 8), dtype=np.float32)
    intrinsic, full, trimmed = (to_numpy(t) for t in probe(x))
    np.testing.assert_array_equal(full[..., :6], intrinsic)  # intrinsic maps first, then ghosts
    np.testing.assert_array_equal(trimmed, full[..., :16])


def test_ghost_bottlenecks_by_hand():
    model = ghostnet_224()
    # stage1_block1: 16 -> 16, #exp 16, stride 1, identity shortcut. A Ghost module to n maps is
    # 1x1 conv c -> n/2 + BN, 3x3 depthwise n/2 -> n/2 + BN.
    assert block_params(model, "stage1_block1_") == 2 * (16 * 8 + 16 + 9 * 8 + 16) == 464
    # stage2_block1: 16 -> 24, #exp 48, stride 2: depthwise 3x3/2 + BN between the modules, and
    # a shortcut of depthwise 3x3/2 + BN, 1x1 16 -> 24 + BN.
    assert block_params(model, "stage2_block1_") == (
        (16 * 24 + 48 + 9 * 24 + 48) + (9 * 48 + 96) + (48 * 12 + 24 + 9 * 12 + 24)
        + (9 * 16 + 32 + 16 * 24 + 48)) == 2564


def test_se_layers_sit_where_table_1_marks_them_with_a_hard_sigmoid_gate():
    model = ghostnet_224()
    reduce = {layer.name.removesuffix("_se_reduce"): layer.filters for layer in model.layers
              if layer.name.endswith("_se_reduce")}
    counts, marked = {}, []
    for stage, _k, expand, _out, se, _s in BLOCKS:
        counts[stage] = counts.get(stage, 0) + 1
        if se:
            marked.append((f"stage{stage}_block{counts[stage]}", expand))
    # make_divisible(#exp / 4, 4): 72 -> 20 (18 rounded to a multiple of 4), 120 -> 32 ...
    assert reduce == {name: {72: 20, 120: 32, 480: 120, 672: 168, 960: 240}[expand]
                      for name, expand in marked}
    assert len(reduce) == 7
    assert model.get_layer("stage3_block1_se_expand").activation.__name__ == "hard_sigmoid"


def test_complexity_is_the_papers_141_mflops():
    assert model_macs(ghostnet_224()) == 141_150_512  # paper: 141M FLOPs (multiply-adds)


def test_head_applies_its_1280_channel_convolution_after_the_pool():
    model = ghostnet_224()
    assert model.get_layer("head_conv").input.shape == (None, 1, 1, 960)
    assert model.get_layer("head_conv").use_bias and count_params(
        model.get_layer("head_conv")) == 960 * 1280 + 1280
    assert model.get_layer("dropout").rate == 0.2


def test_stage_outputs_a_detector_taps():
    model = ghostnet_224()
    taps = {"stem_relu": (112, 112, 16), "stage1_block1_out": (112, 112, 16),
            "stage2_block2_out": (56, 56, 24), "stage3_block2_out": (28, 28, 40),
            "stage4_block6_out": (14, 14, 112), "stage5_block5_out": (7, 7, 160),
            "last_relu": (7, 7, 960)}
    assert {tap: tuple(model.get_layer(tap).output.shape[1:]) for tap in taps} == taps
    headless = cnnkit.build("ghostnet", include_top=False, input_shape=(64, 64, 3))
    assert headless.output.shape == (None, 2, 2, 960)
