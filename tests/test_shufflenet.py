"""ShuffleNet v1 and v2: what the shared model tests cannot see.

The channel shuffle against NumPy, Table 1's counts and complexity for every group count, the
units' shortcuts (v1's zero-padded average pool, v2's channel split), the stage outputs a
detector taps, PyTorch-style padding of strided layers, and the options' error messages.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params, model_macs
from cnnkit.layers import ChannelShuffle
from cnnkit.models.shufflenet import shufflenet_unit, shufflenet_v2_unit

from derived_shufflenet import SHUFFLENET_V1_PARAMS
import helpers
from helpers import to_numpy
from reference import REFERENCE_PARAMS, VARIANT_PARAMS
TABLE_1_MFLOPS = {1: 143, 2: 140, 3: 137, 4: 133, 8: 137}  # Table 1's "Complexity" row


@functools.cache
def v1_224(groups, scale=1.0):
    """ShuffleNet v1 at the paper's 224x224, built once (for counts and multiply-adds)."""
    return cnnkit.build("shufflenet_v1", groups=groups, scale=scale)


# Headless at 64x64, built once (tests/helpers.py).
small = functools.partial(helpers.small, size=64, include_top=False)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


# --- The channel shuffle -----------------------------------------------------------------------

def test_channel_shuffle_is_numpys_reshape_transpose():
    x = rand(2, 3, 2, 12)
    out = to_numpy(ChannelShuffle(3)(x))
    expected = x.reshape(2, 3, 2, 3, 4).transpose(0, 1, 2, 4, 3).reshape(2, 3, 2, 12)
    np.testing.assert_array_equal(out, expected)
    # Fig. 1c: 3 groups of 2 channels (a0 a1 | b0 b1 | c0 c1) come out as a0 b0 c0 a1 b1 c1.
    order = to_numpy(ChannelShuffle(3)(np.arange(6, dtype="float32").reshape(1, 1, 1, 6)))
    assert order.ravel().tolist() == [0, 2, 4, 1, 3, 5]


# --- ShuffleNet v1: Table 1 -------------------------------------------------------------------

@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_v1_counts_equal_table_1_derivation_for_every_group_count(groups):
    model = v1_224(groups)
    assert count_params(model) == SHUFFLENET_V1_PARAMS[groups]
    if groups == 3:
        assert REFERENCE_PARAMS["shufflenet_v1"][0] == SHUFFLENET_V1_PARAMS[3] == 1_865_728
    else:
        assert VARIANT_PARAMS[("shufflenet_v1", f"groups={groups}")][0] == count_params(model)


@pytest.mark.parametrize("groups, macs", [(1, 143_078_976), (2, 140_836_512), (3, 137_460_672),
                                          (4, 134_339_776), (8, 138_365_952)])
def test_v1_complexity_matches_table_1(groups, macs):
    """Table 1's MFLOPs (multiply-adds) are the convolutions' alone: without the 1000-way FC
    layer every column rounds to the paper's figure, with it g = 2, 4, 8 would be 1M over."""
    model = v1_224(groups)
    assert model_macs(model) == macs
    fc = model.get_layer("predictions").kernel.shape[0] * 1000
    assert round((macs - fc) / 1e6) == TABLE_1_MFLOPS[groups]
    assert 133e6 <= macs <= 143.5e6  # "about 140 MFLOPs" whatever g, the table's point


def test_v1_half_width_matches_the_authors_released_complexity():
    """The released code's README: ShuffleNet 0.5x has 38M (g = 3) and 40M (g = 8) MFLOPs."""
    assert [round(model_macs(v1_224(g, 0.5)) / 1e6) for g in (3, 8)] == [38, 40]


def test_v1_first_pointwise_of_stage2_is_not_grouped_and_g1_has_no_shuffle():
    model = v1_224(3)
    assert model.get_layer("stage2_unit1_gconv1_conv").groups == 1
    assert model.get_layer("stage2_unit2_gconv1_conv").groups == 3
    assert model.get_layer("stage4_unit1_gconv2_conv").groups == 3
    assert model.get_layer("stage3_unit2_shuffle").groups == 3
    plain = v1_224(1)
    assert not any(isinstance(layer, ChannelShuffle) for layer in plain.layers)


def test_v1_unit_by_hand():
    model = v1_224(3)
    params = sum(count_params(layer) for layer in model.layers
                 if layer.name.startswith("stage3_unit2_"))
    # 480 -> 1x1 GConv (g=3) 120 + BN -> 3x3 DWConv + BN -> 1x1 GConv 480 + BN
    assert params == 480 * 120 // 3 + 240 + 9 * 120 + 240 + 120 * 480 // 3 + 960 == 40_920


def test_v1_stride_2_unit_concatenates_a_zero_padded_average_pool():
    image = keras.Input((6, 6, 24))
    model = keras.Model(image, shufflenet_unit(image, 240, groups=3, strides=2, name="u",
                                               group_first=False))
    x = rand(1, 6, 6, 24)  # >= 0, so the final ReLU keeps the pooled channels as they are
    out = to_numpy(model(x))
    assert out.shape == (1, 3, 3, 240)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    pooled = np.stack([[padded[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].sum(axis=(0, 1)) / 9
                        for j in range(3)] for i in range(3)])  # the padding counts in the 9
    np.testing.assert_allclose(out[0, ..., :24], pooled, rtol=1e-6)


def test_v1_options_are_validated_with_the_choices():
    with pytest.raises(ValueError, match=r"groups must be one of 1, 2, 3, 4, 8.*got 5"):
        cnnkit.build("shufflenet_v1", groups=5)
    with pytest.raises(ValueError, match=r"groups must be one of .*got True"):
        cnnkit.build("shufflenet_v1", groups=True)
    with pytest.raises(ValueError, match=r"scale must be one of 0.25, 0.5, 1.0, 1.5, 2.0.*0.75"):
        cnnkit.build("shufflenet_v1", scale=0.75)
    with pytest.raises(ValueError, match="does not take 'groups'"):
        cnnkit.build("shufflenet_v2_x1_0", groups=3)


# --- ShuffleNet v2 ----------------------------------------------------------------------------

def test_v2_unit_keeps_the_shape_and_passes_half_the_channels_through():
    image = keras.Input((8, 8, 16))
    model = keras.Model(image, shufflenet_v2_unit(image, 16, strides=1, name="u"))
    x = rand(2, 8, 8, 16)
    out = to_numpy(model(x))
    assert out.shape == x.shape
    # Split: the first 8 channels skip the branch; shuffle(2) puts them at the even positions.
    np.testing.assert_array_equal(out[..., 0::2], x[..., :8])
    assert not np.allclose(out[..., 1::2], x[..., 8:])


def test_v2_stride_2_unit_halves_the_size_and_both_branches_see_every_channel():
    image = keras.Input((8, 8, 24))
    model = keras.Model(image, shufflenet_v2_unit(image, 116, strides=2, name="u"))
    assert model.output.shape == (None, 4, 4, 116)
    assert model.get_layer("u_branch1_dw_conv").input.shape[-1] == 24
    assert model.get_layer("u_branch2_pw1_conv").input.shape[-1] == 24


def test_strided_layers_pad_every_side_as_pytorch_does():
    """Keras's "same" pads an even map only at the bottom and right; PyTorch pads 1 all round."""
    model = small("shufflenet_v2_x1_0")
    conv = model.get_layer("conv1_conv")
    probe = keras.Model(model.input, conv.output)
    conv.kernel.assign(np.ones(conv.kernel.shape, "float32"))
    out = to_numpy(probe(np.ones((1, 64, 64, 3), "float32")))
    # The top-left output sees rows and columns -1..1: 2 x 2 real pixels x 3 channels.
    assert out[0, 0, 0, 0] == 12 and out[0, 1, 1, 0] == 27 and out[0, -1, -1, 0] == 27


def shapes(model, taps):
    return {tap: tuple(model.get_layer(tap).output.shape[1:]) for tap in taps}


def test_stage_outputs_a_detector_taps():
    v1 = {"pool1_pool": (56, 56, 24), "stage2_unit4_out": (28, 28, 240),
          "stage3_unit8_out": (14, 14, 480), "stage4_unit4_out": (7, 7, 960)}
    assert shapes(v1_224(3), v1) == v1
    v2 = {"stage2_unit4_out": (8, 8, 116), "stage3_unit8_out": (4, 4, 232),
          "stage4_unit4_out": (2, 2, 464), "conv5_relu": (2, 2, 1024)}
    model = small("shufflenet_v2_x1_0")
    assert shapes(model, v2) == v2 and model.output.shape[1:] == (2, 2, 1024)
