"""GoogLeNet, BN-Inception and Xception: what the model test pattern cannot see.

The auxiliary classifiers of GoogLeNet, the inception modules' widths against the papers'
tables, module parameter counts worked out by hand, Xception's flows and their taps.
"""

import math

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.layers import LocalResponseNormalization

from reference import VARIANT_PARAMS

AUX_SIZE = 65  # the smallest input whose 4a maps hold one 5x5 pooling window
SIZE = 64  # small, and a multiple of 32, so each stage's stride shows exactly


def layer_params(model, prefix):
    return sum(math.prod(w.shape) for layer in model.layers if layer.name.startswith(prefix)
               for w in layer.trainable_weights)


@pytest.fixture(scope="module")
def googlenet_maps():
    return cnnkit.build("googlenet", include_top=False, input_shape=(SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def inception_v2_maps():
    return cnnkit.build("inception_v2", include_top=False, input_shape=(SIZE, SIZE, 3))


@pytest.fixture(scope="module")
def xception_maps():
    return cnnkit.build("xception", include_top=False, input_shape=(71, 71, 3))


# --- GoogLeNet's auxiliary classifiers ---------------------------------------------------------

def test_aux_logits_count_equals_the_reference():
    model = cnnkit.build("googlenet", aux_logits=True)
    assert count_params(model) == VARIANT_PARAMS[("googlenet", "aux_logits=True")][0]
    # Section 5 by hand: 5x5/3 pooling leaves 4x4 maps, 1x1 conv 128, dense 2048 -> 1024 -> 1000.
    head = 2048 * 1024 + 1024 + 1024 * 1000 + 1000
    assert layer_params(model, "aux_4a_") == 512 * 128 + 128 + head
    assert layer_params(model, "aux_4d_") == 528 * 128 + 128 + head
    assert model.get_layer("aux_4a_pool").output.shape[1:] == (4, 4, 512)


def test_aux_logits_gives_three_outputs_main_first_and_trains():
    keras.utils.set_random_seed(0)
    model = cnnkit.build("googlenet", aux_logits=True, classes=3,
                         input_shape=(AUX_SIZE, AUX_SIZE, 3))
    assert model.outputs[0] is model.get_layer("predictions").output
    assert model.outputs[1] is model.get_layer("aux_4a_predictions").output
    assert model.outputs[2] is model.get_layer("aux_4d_predictions").output
    images = np.random.default_rng(0).random((4, AUX_SIZE, AUX_SIZE, 3), dtype=np.float32)
    outputs = [keras.ops.convert_to_numpy(y) for y in model(images)]
    assert [y.shape for y in outputs] == [(4, 3)] * 3
    for y in outputs:
        np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-5)
    # The paper weights the auxiliary losses by 0.3; eager, one step is faster than tracing it.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=["sparse_categorical_crossentropy"] * 3,
                  loss_weights=[1.0, 0.3, 0.3], run_eagerly=True)
    aux_fc = model.get_layer("aux_4d_fc").kernel
    before = np.array(aux_fc)
    labels = np.array([0, 1, 2, 1])
    loss = model.train_on_batch(images, [labels, labels, labels])
    assert np.all(np.isfinite(loss))
    assert not np.array_equal(np.array(aux_fc), before)


@pytest.mark.parametrize("kwargs, message", [
    (dict(aux_logits="yes"), "aux_logits must be True or False"),
    (dict(aux_logits=1), "aux_logits must be True or False"),
    (dict(aux_logits=True, include_top=False), "needs include_top=True"),
    (dict(aux_logits=True, input_shape=(None, None, 3)), "needs a fixed input size"),
    (dict(aux_logits=True, input_shape=(AUX_SIZE - 1, 224, 3)), "at least 65x65"),
])
def test_invalid_aux_option_raises_a_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("googlenet", **kwargs)


@pytest.mark.parametrize("name", ["inception_v2", "xception"])
def test_models_without_aux_classifiers_refuse_the_option(name):
    with pytest.raises(ValueError, match="does not take 'aux_logits'"):
        cnnkit.build(name, aux_logits=True)


# --- the modules against the papers' tables ----------------------------------------------------

# Table 1's output depth per module and the stride of its maps.
GOOGLENET_OUTPUTS = {"3a": (256, 8), "3b": (480, 8), "4a": (512, 16), "4b": (512, 16),
                     "4c": (512, 16), "4d": (528, 16), "4e": (832, 16), "5a": (832, 32),
                     "5b": (1024, 32)}
# Figure 5's filter columns summed (the figure's printed sizes for 3c, 4c, 4d, 4e contradict them).
INCEPTION_V2_OUTPUTS = {"3a": (256, 8), "3b": (320, 8), "3c": (576, 16), "4a": (576, 16),
                        "4b": (576, 16), "4c": (608, 16), "4d": (608, 16), "4e": (1056, 32),
                        "5a": (1024, 32), "5b": (1024, 32)}


@pytest.mark.parametrize("module, expected", GOOGLENET_OUTPUTS.items())
def test_googlenet_module_outputs_match_table_1(googlenet_maps, module, expected):
    channels, stride = expected
    shape = googlenet_maps.get_layer(f"inception_{module}_output").output.shape
    assert tuple(shape[1:]) == (SIZE // stride, SIZE // stride, channels)


@pytest.mark.parametrize("module, expected", INCEPTION_V2_OUTPUTS.items())
def test_inception_v2_module_outputs_match_figure_5(inception_v2_maps, module, expected):
    channels, stride = expected
    shape = inception_v2_maps.get_layer(f"inception_{module}_output").output.shape
    assert tuple(shape[1:]) == (SIZE // stride, SIZE // stride, channels)


def test_inception_3a_parameters_by_hand_from_table_1(googlenet_maps):
    cin = 192  # 3a reads pool2's 192 maps
    by_hand = ((cin * 64 + 64)  # #1x1
               + (cin * 96 + 96) + (3 * 3 * 96 * 128 + 128)  # #3x3 reduce, #3x3
               + (cin * 16 + 16) + (5 * 5 * 16 * 32 + 32)  # #5x5 reduce, #5x5
               + (cin * 32 + 32))  # pool proj
    assert by_hand == 163_696
    assert layer_params(googlenet_maps, "inception_3a_") == by_hand


def test_inception_v2_3c_parameters_by_hand_from_figure_5(inception_v2_maps):
    cin, bn = 320, 2  # 3c reads 3b's 320 maps; BatchNorm learns gamma and beta per channel
    by_hand = ((cin * 128 + bn * 128) + (9 * 128 * 160 + bn * 160)  # #3x3 reduce, #3x3
               + (cin * 64 + bn * 64) + (9 * 64 * 96 + bn * 96)  # double #3x3 reduce, first
               + (9 * 96 * 96 + bn * 96))  # double #3x3, second; max pool passes through
    assert by_hand == 385_088
    assert layer_params(inception_v2_maps, "inception_3c_") == by_hand


def test_googlenet_normalizes_where_figure_3_does_and_has_no_batchnorm(googlenet_maps):
    def follows(layer, previous):
        return googlenet_maps.get_layer(layer).input is googlenet_maps.get_layer(previous).output

    assert follows("pool1_norm1", "pool1_3x3_s2") and follows("conv2_3x3_reduce", "pool1_norm1")
    assert follows("conv2_norm2", "conv2_3x3") and follows("pool2_3x3_s2", "conv2_norm2")
    kinds = [type(layer) for layer in googlenet_maps.layers]
    assert kinds.count(LocalResponseNormalization) == 2
    assert keras.layers.BatchNormalization not in kinds
    assert all(layer.use_bias for layer in googlenet_maps.layers
               if isinstance(layer, keras.layers.Conv2D))


def test_inception_v2_convolutions_have_no_bias_and_each_a_batchnorm(inception_v2_maps):
    convs = [layer for layer in inception_v2_maps.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in inception_v2_maps.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    assert not any(conv.use_bias for conv in convs) and len(norms) == len(convs) == 69
    assert not any(isinstance(layer, LocalResponseNormalization)
                   for layer in inception_v2_maps.layers)


# --- Xception ----------------------------------------------------------------------------------

def test_xception_middle_flow_is_eight_identical_blocks(xception_maps):
    middle = sorted({int(layer.name.split("_")[0][5:]) for layer in xception_maps.layers
                     if layer.name.endswith("_sepconv3")})
    assert middle == list(range(5, 13))
    one_block = 3 * (3 * 3 * 728 + 728 * 728 + 2 * 728)  # depthwise + pointwise + BN, x3
    assert one_block == 1_613_976
    assert {layer_params(xception_maps, f"block{i}_") for i in middle} == {one_block}


@pytest.mark.parametrize("layer, shape", [
    ("block1_conv2_act", (33, 33, 64)),  # two valid 3x3 convolutions: 71 -> 35 -> 33
    ("block2_add", (17, 17, 128)),
    ("block3_add", (9, 9, 256)),
    ("block4_add", (5, 5, 728)),
    ("block12_add", (5, 5, 728)),
    ("block13_add", (3, 3, 1024)),
    ("block14_sepconv2_act", (3, 3, 2048)),
])
def test_xception_flow_taps(xception_maps, layer, shape):
    assert tuple(xception_maps.get_layer(layer).output.shape[1:]) == shape


def test_xception_entry_blocks_add_a_strided_projection(xception_maps):
    for block, filters in (("block2", 128), ("block3", 256), ("block4", 728)):
        shortcut = xception_maps.get_layer(f"{block}_shortcut")
        assert shortcut.strides == (2, 2) and shortcut.kernel_size == (1, 1)
        assert shortcut.filters == filters and not shortcut.use_bias
