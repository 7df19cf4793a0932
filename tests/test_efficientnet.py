"""EfficientNet B0-B7: what the model test pattern cannot see.

The compound-scaled widths and depths of every variant, an MBConv block counted by hand,
stochastic depth and the stage outputs a detector taps by name. That each variant computes what
keras.applications' EfficientNetB0-B7 compute: tests/test_weights.py.
"""

import functools

import pytest

import cnnkit
from cnnkit.analysis import block_params
from cnnkit.models.efficientnet import VARIANTS, round_filters, scaled_stages

import helpers


SHAPE = (40, 40, 3)  # 40 -> 20 -> 10 -> 5 -> 3 -> 2: strided layers meet even and odd sizes


# The model at 40x40 with 5 logits, built once (tests/helpers.py): weights do not depend on the
# size.
small = functools.partial(helpers.small, size=SHAPE[0], classes=5, classifier_activation=None)


# --- Compound scaling --------------------------------------------------------------------------

# stem channels, output channels of stages 2-8, blocks per stage, last 1x1, resolution, dropout
SCALED = {
    "efficientnet_b0": (32, (16, 24, 40, 80, 112, 192, 320), (1, 2, 2, 3, 3, 4, 1), 1280, 224, .2),
    "efficientnet_b1": (32, (16, 24, 40, 80, 112, 192, 320), (2, 3, 3, 4, 4, 5, 2), 1280, 240, .2),
    "efficientnet_b2": (32, (16, 24, 48, 88, 120, 208, 352), (2, 3, 3, 4, 4, 5, 2), 1408, 260, .3),
    "efficientnet_b3": (40, (24, 32, 48, 96, 136, 232, 384), (2, 3, 3, 5, 5, 6, 2), 1536, 300, .3),
    "efficientnet_b4": (48, (24, 32, 56, 112, 160, 272, 448), (2, 4, 4, 6, 6, 8, 2), 1792, 380,
                        .4),
    "efficientnet_b5": (48, (24, 40, 64, 128, 176, 304, 512), (3, 5, 5, 7, 7, 9, 3), 2048, 456,
                        .4),
    "efficientnet_b6": (56, (32, 40, 72, 144, 200, 344, 576), (3, 6, 6, 8, 8, 11, 3), 2304, 528,
                        .5),
    "efficientnet_b7": (64, (32, 48, 80, 160, 224, 384, 640), (4, 7, 7, 10, 10, 13, 4), 2560, 600,
                        .5),
}


@pytest.mark.parametrize("name", list(SCALED))
def test_scaled_stages_give_each_variants_widths_and_depths(name):
    stem, widths, depths, top, resolution, dropout = SCALED[name]
    width, depth, res, rate = VARIANTS[name]
    stages = scaled_stages(width, depth)
    assert round_filters(32, width) == stem and round_filters(1280, width) == top
    assert tuple(stage.filters_out for stage in stages) == widths
    assert tuple(stage.repeats for stage in stages) == depths
    assert [stage.filters_in for stage in stages] == [stem, *widths[:-1]]
    assert (res, rate) == (resolution, dropout)
    assert cnnkit.model_info(name).input_shape == (resolution, resolution, 3)


def test_blocks_and_dropout_of_the_built_models_follow_the_table():
    for name in ("efficientnet_b0", "efficientnet_b3"):
        model = small(name)
        blocks = [layer.name[:-len("_project_bn")] for layer in model.layers
                  if layer.name.endswith("_project_bn")]
        stem, widths, depths, top, _, dropout = SCALED[name]
        per_stage = [sum(b.startswith(f"block{i}") for b in blocks) for i in range(1, 8)]
        assert tuple(per_stage) == depths
        assert model.get_layer("stem_conv").filters == stem
        assert model.get_layer("top_conv").filters == top
        assert model.get_layer("dropout").rate == dropout
    assert sum(SCALED["efficientnet_b7"][2]) == 55  # B7 is 55 MBConv blocks deep, B0 16


# --- MBConv ------------------------------------------------------------------------------------

def test_an_mbconv_block_counted_by_hand():
    model = small("efficientnet_b0")
    # block2a: 16 -> 1x1 to 96 -> 3x3 depthwise, stride 2 -> SE 96 -> 4 -> 96 -> 1x1 to 24.
    # Each convolution without bias + BN (2 per channel); the SE's 1x1 convolutions have biases.
    expand, depthwise = 16 * 96 + 2 * 96, 9 * 96 + 2 * 96
    se, project = (96 * 4 + 4) + (4 * 96 + 96), 96 * 24 + 2 * 24
    assert block_params(model, "block2a_") == expand + depthwise + se + project == 6_004
    # The squeeze width is a quarter of the block's input (16), not of its expansion (96).
    assert model.get_layer("block2a_se_reduce").filters == 4
    assert model.get_layer("block6a_se_reduce").filters == 112 // 4
    assert model.get_layer("block2a_depthwise_conv").strides == (2, 2)
    assert "block1a_expand_conv" not in [layer.name for layer in model.layers]  # MBConv1


def test_stochastic_depth_grows_linearly_to_the_last_block():
    model = small("efficientnet_b0")
    drops = {layer.name: layer for layer in model.layers if layer.name.endswith("_drop")}
    # Block b of 16 (from 0) drops with 0.2 * b / 16; only blocks with a residual sum have one.
    assert drops["block2b_drop"].rate == pytest.approx(0.2 * 2 / 16)
    assert drops["block6d_drop"].rate == pytest.approx(0.2 * 14 / 16)
    assert len(drops) == 16 - 7  # the first block of each stage changes shape
    assert drops["block2b_drop"].noise_shape == (None, 1, 1, 1)  # a whole sample at once


def test_stochastic_depth_can_be_turned_off():
    model = cnnkit.build("efficientnet_b0", include_top=False, input_shape=(32, 32, 3),
                         drop_connect_rate=0)
    assert not any(layer.name.endswith("_drop") for layer in model.layers)


@pytest.mark.parametrize("rate", [1.0, -0.1, "0.2", True])
def test_invalid_drop_connect_rate_raises_a_value_error(rate):
    with pytest.raises(ValueError, match=r"drop_connect_rate .* must be in \[0, 1\)"):
        cnnkit.build("efficientnet_b0", drop_connect_rate=rate)


# --- Stage outputs -----------------------------------------------------------------------------

def test_stage_outputs_by_name_and_stride():
    model = cnnkit.build("efficientnet_b0", include_top=False, input_shape=(64, 64, 3))
    taps = {"block1a_project_bn": (2, 16), "block2b_add": (4, 24), "block3b_add": (8, 40),
            "block5c_add": (16, 112), "block7a_project_bn": (32, 320), "top_swish": (32, 1280)}
    for tap, (stride, channels) in taps.items():
        assert model.get_layer(tap).output.shape == (None, 64 // stride, 64 // stride, channels)
