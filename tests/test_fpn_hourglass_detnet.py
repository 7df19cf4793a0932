"""FPN, the stacked hourglass and DetNet-59: what the shared model tests cannot see.

fpn and hourglass output lists of maps (task="features"): tests/test_models.py's MapPattern
checks their counts against tests/reference.py, a training step with a loss on every output,
the .keras round trip, weights files and the minimum size (fpn on resnet18, two hourglasses of
order 2). Here: the counts derived from the papers' layer sizes (that reference.py holds),
shapes and strides per level, options and bad options. detnet59 is a classifier and passes the
shared pattern; here: its stride-16 stages, dilation and receptive field, 59 weight layers and
the paper's 4.8 GFLOPs.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import (block_params, count_params, model_macs, receptive_fields,
                             weight_depth)

from derived_detnet import DETNET59_PARAMS, bottleneck
from helpers import to_numpy
from reference import REFERENCE_PARAMS, VARIANT_PARAMS


def conv(k, c_in, c_out, bias=False):
    return k * k * c_in * c_out + (c_out if bias else 0)


def bn(channels):
    return 2 * channels  # gamma and beta


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def outputs(model, x):
    out = model(x, training=False)
    return [to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


# --- FPN ------------------------------------------------------------------------------------------

FPN_SMALL = (64, 64, 3)
# torchvision's resnet50 (the shared reference) without its 2048 -> 1000 classifier.
RESNET50_HEADLESS = REFERENCE_PARAMS["resnet50"][0] - (2048 * 1000 + 1000)
RESNET18_HEADLESS = REFERENCE_PARAMS["resnet18"][0] - (512 * 1000 + 1000)


def pyramid_params(c_channels, d=256):
    """Sec. 3: a 1x1 lateral per C (with bias, no BN) and a 3x3 on each merged map; P6 is free."""
    return sum(conv(1, c, d, bias=True) + conv(3, d, d, bias=True) for c in c_channels)


@pytest.fixture(scope="module")
def fpn_default():
    return cnnkit.build("fpn")


@pytest.fixture(scope="module")
def fpn_small():
    """On resnet18 (same FPN code, a third of the layers to build, save and load)."""
    return cnnkit.build("fpn", backbone="resnet18", input_shape=FPN_SMALL)


def test_fpn_count_is_resnet50_plus_the_pyramid(fpn_default):
    assert RESNET50_HEADLESS == 23_508_032
    pyramid = pyramid_params((256, 512, 1024, 2048))
    assert pyramid == 984_064 + 2_360_320 == 3_344_384  # laterals + 3x3 convolutions
    assert count_params(fpn_default) == RESNET50_HEADLESS + pyramid == 26_852_416
    assert cnnkit.model_info("fpn").params == 26_852_416
    assert block_params(fpn_default, "P") == pyramid  # the backbone's names start lowercase
    assert block_params(fpn_default, "P5_") == conv(1, 2048, 256, bias=True) == 524_544


def test_fpn_levels_have_strides_4_to_64_at_the_default_size(fpn_default):
    assert [tuple(o.shape) for o in fpn_default.outputs] == [
        (None, 56, 56, 256), (None, 28, 28, 256), (None, 14, 14, 256), (None, 7, 7, 256),
        (None, 4, 4, 256)]  # P6: ceil(7 / 2), as PyTorch's max_pool2d(P5, 1, 2)


def test_fpn_levels_at_64x64(fpn_small):
    assert [tuple(o.shape) for o in fpn_small.outputs] == [
        (None, 64 // s, 64 // s, 256) for s in (4, 8, 16, 32, 64)]


def test_fpn_outputs_are_the_named_levels_and_the_laterals_tap_c2_to_c5(fpn_default):
    model = fpn_default
    for out, level in zip(model.outputs, range(2, 7)):
        assert out is model.get_layer(f"P{level}").output
    for level, tap in zip(range(2, 6), ["conv2_block3_out", "conv3_block4_out",
                                        "conv4_block6_out", "conv5_block3_out"]):
        assert model.get_layer(f"P{level}_lateral").input is model.get_layer(tap).output
        assert model.get_layer(f"P{level}").kernel_size == (3, 3)
        assert model.get_layer(f"P{level}").activation is keras.activations.linear
    upsample = model.get_layer("P4_upsample")
    assert upsample.size == (2, 2) and upsample.interpolation == "nearest"
    assert upsample.input is model.get_layer("P5_lateral").output  # C5 has nothing above it
    assert model.get_layer("P3_upsample").input is model.get_layer("P4_merge").output
    assert not {"P5_upsample", "P5_merge"} & {layer.name for layer in model.layers}
    p6 = model.get_layer("P6")
    assert (p6.pool_size, p6.strides) == ((1, 1), (2, 2))


def test_fpn_p6_is_every_other_pixel_of_p5(fpn_small):
    p5, p6 = outputs(fpn_small, images(FPN_SMALL))[-2:]
    np.testing.assert_array_equal(p6, p5[:, ::2, ::2])


def test_fpn_options_backbone_channels_p6_and_any_size_divisible_by_32():
    model = cnnkit.build("fpn", backbone="resnet18", channels=128, p6=False,
                         input_shape=(None, None, 3))
    assert count_params(model) == RESNET18_HEADLESS + pyramid_params((64, 128, 256, 512), 128)
    # What the model pattern builds: resnet18 with the paper's 256 channels.
    assert RESNET18_HEADLESS + pyramid_params((64, 128, 256, 512)) == VARIANT_PARAMS[
        ("fpn", "backbone='resnet18'")][0]
    assert len(model.outputs) == 4
    for h, w in ((32, 32), (64, 96)):
        shapes = [o.shape for o in outputs(model, np.zeros((1, h, w, 3), "float32"))]
        assert shapes == [(1, h // s, w // s, 128) for s in (4, 8, 16, 32)]


# --- Stacked hourglass ----------------------------------------------------------------------------

HG_SMALL = (64, 64, 3)


def residual(c_in, c_out, bias=False):
    """Fig. 4 left: BN-ReLU-1x1 (c_out/2), BN-ReLU-3x3, BN-ReLU-1x1 (c_out), 1x1 skip if needed."""
    w = c_out // 2
    total = (bn(c_in) + conv(1, c_in, w, bias) + bn(w) + conv(3, w, w, bias) + bn(w)
             + conv(1, w, c_out, bias))
    return total + (conv(1, c_in, c_out, bias) if c_in != c_out else 0)


def hourglass_params(stacks=8, order=4, classes=16, f=256, bias=False):
    """The network of hg.lua; bias=True counts the Torch model's biases too (heatmaps: always)."""
    stem = (conv(7, 3, 64, bias) + bn(64) + residual(64, 128, bias) + residual(128, 128, bias)
            + residual(128, f, bias))
    hourglass = (3 * order + 1) * residual(f, f, bias)  # up, low1, low3 per order; low2 once
    stack = (hourglass + residual(f, f, bias) + conv(1, f, f, bias) + bn(f)
             + conv(1, f, classes, bias=True))
    remap = conv(1, f, f, bias) + conv(1, classes, f, bias)
    return stem + stacks * stack + (stacks - 1) * remap


@pytest.fixture(scope="module")
def hourglass_default():
    return cnnkit.build("hourglass")


@pytest.fixture(scope="module")
def hourglass_small():
    """Two stacks (the first feeds the second) of order 2: a fifth of the default's layers."""
    return cnnkit.build("hourglass", stacks=2, order=2, input_shape=HG_SMALL)


def test_hourglass_count_derived_from_the_paper(hourglass_default):
    assert residual(256, 256) == 214_016
    assert hourglass_params() == cnnkit.model_info("hourglass").params == 25_369_664
    assert count_params(hourglass_default) == hourglass_params()
    # What the Torch model counts: 64,448 more biases, all followed by a BatchNorm.
    assert hourglass_params(bias=True) == 25_434_112


def test_hourglass_eight_stacks_of_heatmaps_at_a_quarter_of_the_size(hourglass_default):
    model = hourglass_default
    assert [tuple(o.shape) for o in model.outputs] == [(None, 64, 64, 16)] * 8
    assert [o is model.get_layer(f"stack{s}_heatmaps").output
            for s, o in enumerate(model.outputs, 1)] == [True] * 8
    assert model.get_layer("stem_res3_out").output.shape == (None, 64, 64, 256)
    # Order 4: the pools of levels 4..1 give 32, 16, 8 and 4 pixels.
    assert [model.get_layer(f"stack3_hg{n}_pool").output.shape[1] for n in (4, 3, 2, 1)] == [
        32, 16, 8, 4]
    assert block_params(model, "stack1_hg4_up_") == residual(256, 256)
    assert block_params(model, "stem_res1_") == residual(64, 128) == 57_728


def test_hourglass_next_stack_adds_its_input_and_remapped_features_and_heatmaps(
        hourglass_small):
    model = hourglass_small
    merge = model.get_layer("stack2_input")
    sources = ("stem_res3_out", "stack1_remap_features", "stack1_remap_heatmaps")
    assert len(merge.input) == 3
    assert all(t is model.get_layer(n).output for t, n in zip(merge.input, sources))
    assert model.get_layer("stack1_remap_heatmaps").input is model.outputs[0]
    names = {layer.name for layer in model.layers}
    assert "stack2_remap_features" not in names and "stack3_input" not in names
    assert count_params(model) == hourglass_params(stacks=2, order=2) == VARIANT_PARAMS[
        ("hourglass", "stacks=2, order=2")][0]
    assert [model.get_layer(f"stack2_hg{n}_pool").output.shape[1] for n in (2, 1)] == [8, 4]


def test_hourglass_classes_activation_and_the_smallest_input():
    model = cnnkit.build("hourglass", stacks=1, classes=17, classifier_activation="sigmoid",
                         input_shape=HG_SMALL)
    assert count_params(model) == hourglass_params(stacks=1, classes=17)
    out = outputs(model, images(HG_SMALL))
    assert [o.shape for o in out] == [(2, 16, 16, 17)]
    assert np.all((out[0] > 0) & (out[0] < 1))
    assert model.get_layer("stack1_hg1_pool").output.shape[1:3] == (1, 1)  # 64 is the least


# --- Invalid options ------------------------------------------------------------------------------

@pytest.mark.parametrize("name, kwargs, message", [
    ("fpn", dict(backbone="vgg16"), "backbone must be one of 'resnet18'"),
    ("fpn", dict(backbone="resnet50_v2"), "backbone must be one of"),
    ("fpn", dict(channels=0), "channels must be a whole number >= 1"),
    ("fpn", dict(channels=2.5), "channels must be a whole number >= 1"),
    ("fpn", dict(p6="yes"), "p6 must be True"),
    ("fpn", dict(input_shape=(100, 100, 3)), "divisible by 32.*e.g. 100 to 96 or 128"),
    ("fpn", dict(input_shape=(64, 100, 3)), "got 64x100.*e.g. 100 to 96 or 128"),
    ("hourglass", dict(stacks=0), "stacks must be a whole number >= 1"),
    ("hourglass", dict(order=0), "order must be a whole number >= 1"),
    ("hourglass", dict(order=True), "order must be a whole number >= 1"),
    ("hourglass", dict(input_shape=(96, 96, 3)), "divisible by 64.*e.g. 96 to 64 or 128"),
    ("hourglass", dict(order=5, input_shape=(192, 192, 3)), "order=5 needs .* by 128"),
])
def test_invalid_options_raise_a_value_error_that_says_what_to_do(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, **kwargs)


# --- DetNet-59 ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detnet():
    return cnnkit.build("detnet59")


def test_detnet_count_derived_from_table_1():
    assert DETNET59_PARAMS == REFERENCE_PARAMS["detnet59"][0] == 18_372_648
    # The new stages by hand: bottleneck B projects 1024 -> 1024, A adds its input.
    assert bottleneck(1024, 256, project=True) == 2_167_808
    assert bottleneck(1024, 256, project=False) == 1_117_184


def test_detnet_blocks_counted_in_the_model(detnet):
    assert block_params(detnet, "stage5_block1_") == bottleneck(1024, 256, project=True)
    assert block_params(detnet, "stage6_block3_") == bottleneck(1024, 256, project=False)
    assert block_params(detnet, "stage6_") == 2_167_808 + 2 * 1_117_184 == 4_402_176


def test_detnet_stages_4_to_6_keep_stride_16_and_dilate_their_3x3(detnet):
    shapes = [tuple(detnet.get_layer(n).output.shape) for n in (
        "conv3_block4_out", "conv4_block6_out", "stage5_out", "stage6_out")]
    assert shapes == [(None, 28, 28, 512)] + [(None, 14, 14, 1024)] * 3
    jumps = {row.layer: row.jump for row in receptive_fields(detnet)}
    assert jumps["conv4_block6_out"] == jumps["stage5_out"] == jumps["stage6_out"] == (16, 16)
    for stage in (5, 6):
        for b in (1, 2, 3):
            layer = detnet.get_layer(f"stage{stage}_block{b}_2_conv")
            assert (layer.dilation_rate, layer.strides) == ((2, 2), (1, 1))
    names = {layer.name for layer in detnet.layers}
    assert {"stage5_block1_0_conv", "stage6_block1_0_conv"} <= names  # bottleneck B
    assert not {"stage5_block2_0_conv", "stage6_block3_0_conv"} & names  # bottleneck A


def test_detnet_dilation_widens_the_receptive_field_at_stride_16(detnet):
    size = {row.layer: row.size for row in receptive_fields(detnet)}
    # A 3x3 with dilation 2 at jump 16 adds (3 - 1) * 2 * 16 = 64 pixels, twice an undilated 3x3.
    assert size["stage5_out"][0] - size["conv4_block6_out"][0] == 3 * 64
    assert size["stage6_out"][0] - size["stage5_out"][0] == 3 * 64
    assert [size[n] for n in ("conv4_block6_out", "stage5_out", "stage6_out")] == [
        (291, 291), (483, 483), (675, 675)]


def test_detnet_has_59_weight_layers_and_the_papers_flops(detnet):
    assert weight_depth(detnet) == 1 + 3 * (3 + 4 + 6 + 3 + 3) + 1 == 59
    # "our DetNet (4.8G FLOPs)": multiply-adds at 224x224, as the paper's 3.8G for ResNet-50.
    assert round(model_macs(detnet) / 1e9, 1) == 4.8
