"""Dual Path Networks: what the shared model tests cannot see.

The paper's channel arithmetic (a residual path of fixed width c, a dense path growing by k per
block), the dual path wiring checked numerically, a block's parameters counted by hand, the
bottleneck width rule, and the stage outputs a detector taps.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import block_params

import helpers
from helpers import to_numpy


SIZE = 64  # every stage keeps at least 2x2 pixels: 64 / 32

# Table 1 (DPN-92) and the authors' DPN-68: per stage (c, k, blocks) and the bottleneck width r.
PAPER = {
    "dpn92": dict(stages=((256, 16, 3), (512, 32, 4), (1024, 24, 20), (2048, 128, 3)),
                  r=(96, 192, 384, 768), groups=32, stem=(7, 64)),
    "dpn68": dict(stages=((64, 16, 3), (128, 32, 4), (256, 32, 12), (512, 64, 3)),
                  r=(128, 256, 512, 1024), groups=32, stem=(3, 10)),
}


# A headless model at 64x64, built once (tests/helpers.py): layers and weights do not depend on
# the size.
small = functools.partial(helpers.small, size=SIZE, include_top=False)


def channels(model, layer):
    return model.get_layer(layer).output.shape[-1]


@pytest.mark.parametrize("name", PAPER)
def test_residual_width_is_fixed_and_dense_path_grows_by_k_per_block(name):
    model = small(name)
    for s, (c, k, blocks) in enumerate(PAPER[name]["stages"], start=2):
        for b in range(1, blocks + 1):
            block = f"conv{s}_block{b}"
            assert channels(model, f"{block}_add") == c
            # The projection starts the dense path with 2k channels; each block appends k.
            assert channels(model, f"{block}_dense") == (b + 2) * k
            assert channels(model, f"{block}_out") == c + (b + 2) * k
    assert model.output.shape[-1] == {"dpn92": 2048 + 5 * 128, "dpn68": 512 + 5 * 64}[name]


def test_dpn92_block_outputs_match_the_papers_numbers():
    model = small("dpn92")
    # Table 1: conv2 is [1x1, 96; 3x3, 96; 1x1, 256(+16)] x 3 after a 64-channel stem.
    assert [channels(model, f"conv2_block{b}_out") for b in (1, 2, 3)] == [304, 320, 336]
    assert channels(model, "conv3_block4_out") == 512 + 6 * 32 == 704
    assert channels(model, "conv4_block20_out") == 1024 + 22 * 24 == 1552
    assert channels(model, "conv5_block3_out") == 2048 + 5 * 128 == 2688


@pytest.mark.parametrize("name", PAPER)
def test_bottleneck_width_groups_and_stem_follow_the_table(name):
    model, paper = small(name), PAPER[name]
    kernel, filters = paper["stem"]
    assert model.get_layer("conv1_conv").kernel.shape == (kernel, kernel, 3, filters)
    for s, r in enumerate(paper["r"], start=2):
        assert channels(model, f"conv{s}_block2_1_conv") == r
        conv = model.get_layer(f"conv{s}_block2_2_conv")
        assert (conv.filters, conv.groups) == (r, paper["groups"])
        assert conv.kernel.shape == (3, 3, r // paper["groups"], r)


def test_a_dual_path_block_counted_by_hand():
    model = small("dpn92")
    bn = 2  # gamma and beta per channel
    # conv3_block2 reads 512 + 3 * 32 = 608 channels; r = 192 in 32 groups; writes 512 + 32.
    assert block_params(model, "conv3_block2_") == (
        bn * 608 + 608 * 192 + bn * 192 + 9 * (192 // 32) * 192 + bn * 192 + 192 * 544
    ) == 233_536
    # conv3_block1 also projects conv2's 256 + 5 * 16 = 336 channels to 512 + 2 * 32.
    assert block_params(model, "conv3_block1_") == (
        bn * 336 + 336 * 576 + bn * 336 + 336 * 192 + bn * 192 + 9 * 6 * 192
        + bn * 192 + 192 * 544) == 374_976


def test_stage_outputs_a_detector_taps():
    model = small("dpn92")
    last = {2: 3, 3: 4, 4: 20, 5: 3}
    shapes = [tuple(model.get_layer(f"conv{s}_block{b}_out").output.shape[1:])
              for s, b in last.items()]
    assert shapes == [(16, 16, 336), (8, 8, 704), (4, 4, 1552), (2, 2, 2688)]  # strides 4-32
    assert model.get_layer("pool1_pool").output.shape[1:3] == (16, 16)
    # Stride 2 sits on the grouped 3x3 and on the projection, never in conv2.
    assert model.get_layer("conv2_block1_proj_conv").strides == (1, 1)
    for s in (3, 4, 5):
        assert model.get_layer(f"conv{s}_block1_proj_conv").strides == (2, 2)
        assert model.get_layer(f"conv{s}_block1_2_conv").strides == (2, 2)
        assert model.get_layer(f"conv{s}_block1_2_pad").padding == ((1, 1), (1, 1))


@pytest.mark.parametrize("block, source", [("conv2_block2", "conv2_block1_out"),
                                           ("conv3_block1", "conv3_block1_proj_conv")])
def test_dual_path_adds_the_first_c_channels_and_appends_the_last_k(block, source):
    """out = [x_res + y[:c], x_dense, y[c:]] where y is the bottleneck's last 1x1 output."""
    model = small("dpn68")
    c = channels(model, f"{block}_add")
    probe = keras.Model(model.input, [model.get_layer(source).output,
                                      model.get_layer(f"{block}_3_conv").output,
                                      model.get_layer(f"{block}_out").output])
    images = np.random.default_rng(0).random((2, SIZE, SIZE, 3), dtype=np.float32)
    x, y, out = (to_numpy(t) for t in probe(images))
    assert out.shape[-1] == x.shape[-1] + y.shape[-1] - c
    np.testing.assert_allclose(out[..., :c], x[..., :c] + y[..., :c], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out[..., c:], np.concatenate([x[..., c:], y[..., c:]], -1))


def test_final_batch_norm_reads_both_paths():
    model = small("dpn68")
    assert model.get_layer("post_bn").input is model.get_layer("conv5_block3_out").output
    assert model.output is model.get_layer("post_relu").output
