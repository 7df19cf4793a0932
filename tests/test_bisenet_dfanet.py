"""BiSeNet and DFANet: real-time segmentation networks that output a class map, not a vector.

tests/test_models.py's MapPattern checks the count against tests/reference.py, one training
step, the `.keras` round trip in safe mode, a weights file with `input_tensor` and the minimum
size (bisenet with its auxiliary heads). Here: exact trainable counts derived by formula from
the papers' layer sizes (never from the builder), the shape and stride of every level a later
network taps, the modules' arithmetic (attention multiplies, fusion adds), and the family
options. Maps are computed at 64x64; the default 1024x1024 models are only built, for their
counts and static shapes.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import block_params, count_params, tap

from helpers import small, to_numpy
from reference import REFERENCE_PARAMS, VARIANT_PARAMS

CLASSES = 3  # not the default 19, so `classes` is exercised
SMALL = (64, 64, 3)


# ---- parameter counts from the papers' layer sizes -----------------------------------------

def conv(k, c_in, c_out, bias=False):
    return k * k * c_in * c_out + (c_out if bias else 0)


def conv_bn(k, c_in, c_out):  # no bias before BatchNorm; BN has gamma and beta
    return conv(k, c_in, c_out) + 2 * c_out


def headless(resnet, width):  # the registered classifier's count less its 1000-way layer
    return REFERENCE_PARAMS[resnet][0] - (width * 1000 + 1000)


def bisenet_parts(classes, backbone="resnet18"):
    """BiSeNet's parts; widths from Fig. 2 and the official code (TorchSeg)."""
    c4, c5, head = {"resnet18": (256, 512, 64), "resnet101": (1024, 2048, 256)}[backbone]
    return {
        "conv": headless(backbone, c5),  # the resnet's layers are conv1_..conv5_
        "spatial": conv_bn(7, 3, 64) + 2 * conv_bn(3, 64, 64) + conv_bn(1, 64, 128),
        "context_global": conv_bn(1, c5, 128),
        "arm32": conv_bn(3, c5, 128) + conv_bn(1, 128, 128),
        "arm16": conv_bn(3, c4, 128) + conv_bn(1, 128, 128),
        "context16_": conv_bn(3, 128, 128),
        "context8_": conv_bn(3, 128, 128),
        "ffm": conv_bn(1, 256, 256) + 2 * conv(1, 256, 256),
        "head": conv_bn(3, 256, head) + conv(1, head, classes, bias=True),
    }


def bisenet_aux(classes):  # one auxiliary head
    return conv_bn(3, 128, 256) + conv(1, 256, classes, bias=True)


XCEPTION = {"dfanet": (48, 96, 192), "dfanet_b": (32, 64, 128)}  # Table 1: enc2..enc4
DEPTHS = (4, 6, 4)


def separable(c_in, c_out):  # 3x3 depthwise, 1x1 pointwise + BN
    return 9 * c_in + conv_bn(1, c_in, c_out)


def block(c_in, c_out, first):
    mid = c_out // 4
    shortcut = conv_bn(1, c_in, c_out) if first else 0
    return separable(c_in, mid) + separable(mid, mid) + separable(mid, c_out) + shortcut


def xception(inputs, widths):
    """enc2..enc4 with the given input widths, then fc attention (fc 1000 without bias, 1x1
    conv-BN)."""
    stages = sum(block(c_in, w, True) + (n - 1) * block(w, w, False)
                 for c_in, w, n in zip(inputs, widths, DEPTHS))
    return stages + conv(1, widths[2], 1000) + conv_bn(1, 1000, widths[2])


def dfanet_parts(arch, classes):
    c2, c3, c4 = XCEPTION[arch]
    return {
        "conv1": conv_bn(3, 3, 8),
        "b1_": xception((8, c2, c3), (c2, c3, c4)),
        # Backbone 2 and 3: enc2 reads the attention output (c4) and enc2 of the backbone
        # before (c2); enc3 its own enc2 (c2) and enc3 before (c3); enc4 likewise.
        "b2_": xception((c4 + c2, c2 + c3, c3 + c4), (c2, c3, c4)),
        "b3_": xception((c4 + c2, c2 + c3, c3 + c4), (c2, c3, c4)),
        "decoder": 3 * conv_bn(1, c2, 32) + conv_bn(1, 32, 32) + 3 * conv_bn(1, c4, 32)
                   + conv(1, 32, classes, bias=True),
    }


def test_hand_counts_of_two_blocks():
    # XceptionA's first enc4 block: 96 -> 48 -> 48 -> 192 separable, strided 1x1 shortcut.
    assert block(96, 192, True) == (9 * 96 + 96 * 48 + 96) + (9 * 48 + 48 * 48 + 96) \
        + (9 * 48 + 48 * 192 + 384) + (96 * 192 + 384) == 37_248
    # BiSeNet's ARM on the 1/32 stage: 3x3 512 -> 128, then the 1x1 attention 128 -> 128.
    assert bisenet_parts(19)["arm32"] == 512 * 128 * 9 + 256 + 128 * 128 + 256 == 606_720
    # The auxiliary heads the model pattern trains: one 3x3 conv-BN 128 -> 256 and a 1x1 each.
    assert sum(bisenet_parts(19).values()) + 2 * bisenet_aux(19) == VARIANT_PARAMS[
        ("bisenet", "aux_heads=True")][0]


# ---- the default models: counts and the stride of every tapped level ------------------------

@pytest.fixture(scope="module")
def default_bisenet():
    return cnnkit.build("bisenet")


@pytest.fixture(scope="module")
def default_dfanet():
    return cnnkit.build("dfanet")


def _level_shapes(model, strides):
    h, w, _ = cnnkit.model_info(model.name).input_shape
    return ({layer: model.get_layer(layer).output.shape[1:] for layer in strides},
            {layer: (h // s, w // s, c) for layer, (s, c) in strides.items()})


def test_bisenet_count_and_levels(default_bisenet):
    parts = bisenet_parts(19)
    assert cnnkit.model_info("bisenet").params == sum(parts.values()) == 12_894_163
    assert count_params(default_bisenet) == sum(parts.values())
    assert {p: block_params(default_bisenet, p) for p in parts} == parts
    got, expected = _level_shapes(default_bisenet, {
        "spatial3_relu": (8, 64), "spatial_proj_relu": (8, 128),
        "conv4_block2_out": (16, 256), "conv5_block2_out": (32, 512),
        "arm32_scale": (32, 128), "context16_relu": (16, 128), "arm16_scale": (16, 128),
        "context8_relu": (8, 128), "ffm_add": (8, 256), "head_logits": (8, 19),
        "predictions": (1, 19)})
    assert got == expected
    assert default_bisenet.output_shape == (None, 1024, 1024, 19)
    assert default_bisenet.layers[-1].name == "predictions"


@pytest.mark.parametrize("arch", ["dfanet", "dfanet_b"])
def test_dfanet_counts(arch, default_dfanet):
    model = default_dfanet if arch == "dfanet" else cnnkit.build(arch)
    parts = dfanet_parts(arch, 19)
    assert cnnkit.model_info(arch).params == sum(parts.values())
    assert count_params(model) == sum(parts.values())
    assert {p: block_params(model, p) for p in parts} == parts


def test_dfanet_levels(default_dfanet):
    """Backbone k works at half the resolution of backbone k-1: its stage enc_i has stride
    2**(i + k - 1), from 4 (backbone 1's enc2) to 64 (backbone 3's enc4)."""
    last_block = dict(zip((2, 3, 4), DEPTHS))
    widths = dict(zip((2, 3, 4), XCEPTION["dfanet"]))
    strides = {"conv1_relu": (2, 8), "decoder_sum": (4, 32), "predictions": (1, 19)}
    for k in (1, 2, 3):
        for i in (2, 3, 4):
            strides[f"b{k}_enc{i}_block{last_block[i]}_out"] = (2 ** (i + k - 1), widths[i])
        strides[f"b{k}_fca_scale"] = (2 ** (k + 3), 192)
    for k in (2, 3):  # sub-stage aggregation: the concatenated input of each stage
        strides[f"b{k}_enc2_concat"] = (2 ** k, 192 + 48)
        strides[f"b{k}_enc3_concat"] = (2 ** (k + 1), 48 + 96)
        strides[f"b{k}_enc4_concat"] = (2 ** (k + 2), 96 + 192)
    got, expected = _level_shapes(default_dfanet, strides)
    assert got == expected
    assert default_dfanet.layers[-1].name == "predictions"


# ---- small models: forward, modules ----------------------------------------------------------

# bisenet with its auxiliary heads and dfanet, at 64x64
SMALL_OPTIONS = {"bisenet": dict(aux_heads=True, classes=CLASSES),
                 "dfanet": dict(classes=CLASSES)}


def images(n=2, seed=0):
    return np.random.default_rng(seed).random((n, *SMALL), dtype=np.float32)


def outputs(model, x):
    out = model(x)
    return [to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


@pytest.mark.parametrize("name", ["bisenet", "dfanet"])
def test_forward_gives_a_probability_map_per_image(name):
    model = small(name, **SMALL_OPTIONS[name])
    out = outputs(model, images(3))
    assert len(out) == (3 if name == "bisenet" else 1)
    for o in out:
        assert o.shape == (3, 64, 64, CLASSES) and np.all(np.isfinite(o))
        np.testing.assert_allclose(o.sum(axis=-1), 1.0, rtol=1e-5)
    if name == "bisenet":
        assert model.output_names == ["predictions", "aux16_predictions", "aux8_predictions"]
        assert count_params(model) == sum(bisenet_parts(CLASSES).values()) \
            + 2 * bisenet_aux(CLASSES)
    else:
        assert count_params(model) == sum(dfanet_parts(name, CLASSES).values())


def test_bisenet_modules_compute_the_papers_formulas():
    model = small("bisenet", **SMALL_OPTIONS["bisenet"])
    features, attention, refined, ffm, ffm_attention, fused = tap(model, [
        "arm32_relu", "arm32_attention_sigmoid", "arm32_scale",
        "ffm_relu", "ffm_expand", "ffm_add"], images())
    assert attention.shape == (2, 1, 1, 128) and np.all((attention >= 0) & (attention <= 1))
    np.testing.assert_allclose(refined, features * attention, rtol=1e-6)
    np.testing.assert_allclose(fused, ffm * (1 + ffm_attention), rtol=1e-5, atol=1e-6)


def test_dfanet_aggregation():
    enc4, attention, out, up, enc2, concat = tap(small("dfanet", **SMALL_OPTIONS["dfanet"]), [
        "b1_enc4_block4_out", "b1_fca_relu", "b1_fca_scale", "b1_fca_up",
        "b1_enc2_block4_out", "b2_enc2_concat"], images())
    np.testing.assert_allclose(out, enc4 * attention, rtol=1e-6)
    assert up.shape[1:3] == enc2.shape[1:3] == (16, 16)  # x4 reaches backbone 1's enc2
    np.testing.assert_array_equal(concat, np.concatenate([up, enc2], axis=-1))


# ---- options and sizes -----------------------------------------------------------------------

def test_bisenet_resnet101_context_path():
    model = cnnkit.build("bisenet", backbone="resnet101", input_shape=SMALL, classes=CLASSES)
    assert model.output_shape == (None, 64, 64, CLASSES)
    assert count_params(model) == sum(bisenet_parts(CLASSES, "resnet101").values())
    assert model.get_layer("conv4_block23_out").output.shape[1:] == (4, 4, 1024)


def test_bisenet_accepts_any_multiple_of_32_and_unknown_sizes():
    model = cnnkit.build("bisenet", input_shape=(None, None, 3), classes=CLASSES)
    assert outputs(model, np.zeros((1, 32, 96, 3), "float32"))[0].shape == (1, 32, 96, CLASSES)


@pytest.mark.parametrize("name, kwargs, message", [
    ("bisenet", dict(backbone="resnet50"), "backbone must be one of 'resnet18', 'resnet101'"),
    ("bisenet", dict(backbone=None), "backbone must be one of"),
    ("bisenet", dict(aux_heads="yes"), "aux_heads must be True"),
    ("bisenet", dict(input_shape=(100, 200, 3)),
     r"divisible by 32 .* got 100x200. Resize or pad the images, e.g. 100 to 96 or 128"),
    ("bisenet", dict(input_shape=(31, 64, 3)), "at least 32x32"),
    ("bisenet", dict(include_top=False), "does not take 'include_top'"),
    ("dfanet", dict(input_shape=(96, 128, 3)), "divisible by 64 .* e.g. 96 to 64 or 128"),
    ("dfanet_b", dict(input_shape=(None, 100, 3)), "e.g. 100 to 64 or 128"),
    ("dfanet", dict(input_shape=(63, 63, 3)), "at least 64x64"),
    ("dfanet_b", dict(backbone="resnet18"), "does not take 'backbone'"),
])
def test_bad_options_raise_a_value_error_that_says_what_to_do(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, **kwargs)


@pytest.mark.parametrize("name", ["bisenet", "dfanet", "dfanet_b"])
def test_registry_metadata(name):
    info = cnnkit.model_info(name)
    assert (info.task, info.classes, info.input_shape, info.imagenet) == (
        "segmentation", 19, (1024, 1024, 3), False)
    assert info.min_size == {"bisenet": 32}.get(name, 64)
