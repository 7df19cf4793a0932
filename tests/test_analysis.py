"""cnnkit.analysis: parameter formulas, receptive fields, multiply-accumulates, memory access."""

import math

import keras
import numpy as np
import pytest
from keras import layers

import cnnkit
from cnnkit import analysis as A


def stack(*layer_list, shape=(64, 64, 3)):
    inputs = keras.Input(shape)
    x = inputs
    for layer in layer_list:
        x = layer(x)
    return keras.Model(inputs, x)


# --- receptive fields ------------------------------------------------------------------------

def test_three_stacked_3x3_convolutions_see_7x7():
    model = stack(*[layers.Conv2D(4, 3, padding="same") for _ in range(3)])
    assert [row.size for row in A.receptive_fields(model)] == [(3, 3), (5, 5), (7, 7)]
    assert A.receptive_field(model) == (7, 7)


def test_a_dilated_3x3_after_a_3x3_sees_7x7():
    model = stack(layers.Conv2D(4, 3), layers.Conv2D(4, 3, dilation_rate=2))
    assert A.receptive_field(model) == (7, 7)


def test_dilation_rates_1_2_4_grow_the_field_exponentially():
    model = stack(*[layers.Conv2D(4, 3, dilation_rate=d, padding="same") for d in (1, 2, 4)])
    assert [row.size[0] for row in A.receptive_fields(model)] == [3, 7, 15]  # 2^(n+1) - 1


def test_pooling_multiplies_the_jump_of_every_later_layer():
    model = stack(layers.Conv2D(4, 3), layers.MaxPooling2D(2), layers.Conv2D(4, 3),
                  layers.AveragePooling2D(3, strides=2), layers.Conv2D(4, 1))
    rows = A.receptive_fields(model)
    assert [(r.size[0], r.jump[0]) for r in rows] == [(3, 1), (4, 2), (8, 2), (12, 4), (12, 4)]


def test_asymmetric_kernels_keep_height_and_width_apart():
    model = stack(layers.Conv2D(4, (1, 7)), layers.Conv2D(4, (7, 1)), layers.Conv2D(4, (3, 1)))
    assert A.receptive_field(model) == (9, 7)


def test_global_pooling_and_dense_layers_see_the_whole_image():
    model = stack(layers.Conv2D(4, 3), layers.GlobalAveragePooling2D(), layers.Dense(2))
    assert [row.size for row in A.receptive_fields(model)] == [(3, 3), None, None]
    assert "all" in A.format_table(A.receptive_fields(model))


def test_upsampling_halves_the_jump():
    model = stack(layers.Conv2D(4, 3, strides=2), layers.UpSampling2D(2), layers.Conv2D(4, 3))
    rows = A.receptive_fields(model)
    assert [r.jump[0] for r in rows] == [2, 1, 1] and rows[-1].size == (5, 5)


def test_branches_merge_with_the_larger_field():
    inputs = keras.Input((32, 32, 3))
    a = layers.Conv2D(4, 3, padding="same")(inputs)
    b = layers.Conv2D(4, 5, padding="same")(inputs)
    model = keras.Model(inputs, layers.Add()([a, b]))
    assert A.receptive_field(model) == (5, 5)


def test_resnet50_last_stage_matches_the_published_receptive_field():
    # Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional Neural Networks",
    # Distill 2019, Table 1: ResNet-50 (v1) receptive field 483, effective stride 32.
    model = cnnkit.build("resnet50", include_top=False)
    rows = {row.layer: row for row in A.receptive_fields(model)}
    assert rows["conv5_block3_out"].size == (483, 483)
    assert rows["conv5_block3_out"].jump == (32, 32)
    assert rows["conv2_block3_out"].size == (35, 35) and rows["conv2_block3_out"].jump == (4, 4)


# --- parameters by formula -------------------------------------------------------------------

LAYERS = [
    (layers.Conv2D(32, 3), (8, 8, 16), 3 * 3 * 16 * 32 + 32),
    (layers.Conv2D(32, 3, use_bias=False), (8, 8, 16), 3 * 3 * 16 * 32),
    (layers.Conv2D(256, 3, groups=8, use_bias=False), (8, 8, 256), 3 * 3 * 32 * 256),
    (layers.Conv2D(8, (1, 7)), (8, 8, 4), 7 * 4 * 8 + 8),
    (layers.DepthwiseConv2D(3), (8, 8, 16), 3 * 3 * 16 + 16),
    (layers.DepthwiseConv2D(5, depth_multiplier=2, use_bias=False), (8, 8, 4), 5 * 5 * 4 * 2),
    (layers.SeparableConv2D(32, 3), (8, 8, 16), 3 * 3 * 16 + 16 * 32 + 32),
    (layers.Conv2DTranspose(8, 2, strides=2), (4, 4, 16), 2 * 2 * 16 * 8 + 8),
    (layers.Dense(10), (120,), 120 * 10 + 10),
    (layers.BatchNormalization(), (4, 4, 16), 4 * 16),
    (layers.BatchNormalization(scale=False), (4, 4, 16), 3 * 16),
    (layers.LayerNormalization(), (4, 4, 16), 2 * 16),
    (layers.PReLU(shared_axes=[1, 2]), (4, 4, 16), 16),
    (cnnkit.layers.LocalResponseNormalization(), (4, 4, 16), 0),
    (layers.MaxPooling2D(2), (4, 4, 16), 0),
]


@pytest.mark.parametrize("layer, shape, expected", LAYERS, ids=lambda v: getattr(v, "name", ""))
def test_parameter_formula_equals_the_hand_count_and_keras(layer, shape, expected):
    layer.build((None, *shape))
    assert A.layer_params(layer) == expected == layer.count_params()


def test_a_layer_without_a_formula_is_reported_not_counted_as_zero():
    layer = layers.Embedding(10, 4)
    layer.build((None, 3))
    with pytest.raises(ValueError, match="no parameter formula for Embedding"):
        A.layer_params(layer)


# --- multiply-accumulates --------------------------------------------------------------------

@pytest.mark.parametrize("layer, shape, expected", [
    (layers.Conv2D(32, 3, padding="same"), (8, 8, 16), 8 * 8 * 3 * 3 * 16 * 32),
    (layers.Conv2D(32, 3, strides=2, padding="same"), (8, 8, 16), 4 * 4 * 3 * 3 * 16 * 32),
    (layers.Conv2D(64, 3, groups=4, padding="same"), (8, 8, 16), 8 * 8 * 3 * 3 * 4 * 64),
    (layers.DepthwiseConv2D(3, padding="same"), (8, 8, 16), 8 * 8 * 3 * 3 * 16),
    (layers.SeparableConv2D(32, 3, padding="same"), (8, 8, 16), 8 * 8 * (3 * 3 * 16 + 16 * 32)),
    (layers.Conv2DTranspose(8, 2, strides=2), (4, 4, 16), 4 * 4 * 2 * 2 * 16 * 8),
    (layers.Dense(10), (120,), 1200),
    (layers.BatchNormalization(), (8, 8, 16), 0),
])
def test_multiply_accumulates_of_one_layer(layer, shape, expected):
    model = stack(layer, shape=shape)
    assert A.model_macs(model) == expected


def test_fvcore_convention_adds_normalisation_and_global_pooling():
    model = stack(layers.BatchNormalization(), layers.GlobalAveragePooling2D(), shape=(8, 8, 16))
    assert A.model_macs(model) == 0
    assert A.model_macs(model, "fvcore") == 2 * 8 * 8 * 16 + 8 * 8 * 16
    with pytest.raises(ValueError, match="convention must be one of"):
        A.model_macs(model, "thop")


def test_resnet50_macs_match_the_reference_counter():
    # fvcore on torchvision's resnet50 at 224x224: 4,111,512,576. torchvision downsamples with
    # the 3x3 of each stage's first block ("ResNet v1.5"); the paper and Keras do it with the
    # 1x1 before it, which halves the resolution earlier and saves 6% of the MACs.
    reference = 4_111_512_576
    torchvision_layout = cnnkit.build("resnet50", downsample="3x3")
    assert A.model_macs(torchvision_layout, "fvcore") == reference
    assert abs(A.model_macs(torchvision_layout) / reference - 1) < 0.01
    paper_layout = A.model_macs(cnnkit.build("resnet50"))
    assert abs(paper_layout / 3.8e9 - 1) < 0.02  # He et al. 2015, Table 1: 3.8 x 10^9 FLOPs


def test_mobilenet_v2_macs_match_the_reference_counter():
    # fvcore on torchvision's mobilenet_v2 at 224x224: 314,193,216.
    model = cnnkit.build("mobilenet_v2")
    assert A.model_macs(model, "fvcore") == 314_193_216
    assert abs(A.model_macs(model) / 300e6 - 1) < 0.01  # Sandler et al. 2018: 300M multiply-adds


def test_densenet121_macs_match_the_reference_counter():
    # fvcore on torchvision's densenet121 at 224x224: 2,865,546,752 (its BatchNorms and the
    # global pool included); the papers' convention leaves those out and stays below it.
    model = cnnkit.build("densenet121")
    assert A.model_macs(model, "fvcore") == 2_865_546_752
    assert 2.8e9 < A.model_macs(model) < 2_865_546_752


def test_variable_input_sizes_are_refused_with_advice():
    model = stack(layers.Conv2D(4, 3), shape=(None, None, 3))
    with pytest.raises(ValueError, match="needs a fixed input size"):
        A.model_macs(model)


# --- memory access cost ----------------------------------------------------------------------

def test_memory_access_of_a_1x1_convolution_is_shufflenet_v2s_formula():
    h = w = 56
    c1 = c2 = 128
    model = stack(layers.Conv2D(c2, 1, use_bias=False), shape=(h, w, c1))
    assert A.memory_access(model) == h * w * (c1 + c2) + c1 * c2  # Ma et al. 2018, Eq. (1)


def test_equal_channel_widths_minimise_memory_access_at_equal_flops():
    # Guideline G1: for a fixed FLOP budget B = h·w·c1·c2, MAC is smallest when c1 = c2.
    h = w = 28
    budget = 256 * 256
    costs = []
    for ratio in (1, 2, 6, 12):
        c1 = round(math.sqrt(budget / ratio))
        c2 = budget // c1
        model = stack(layers.Conv2D(c2, 1, use_bias=False), shape=(h, w, c1))
        assert abs(A.model_macs(model) / (h * w * budget) - 1) < 0.01
        costs.append(A.memory_access(model))
    assert costs == sorted(costs) and costs[0] < costs[-1]


def test_element_wise_layers_cost_memory_access_but_no_macs():
    inputs = keras.Input((8, 8, 4))
    model = keras.Model(inputs, layers.Add()([inputs, layers.ReLU()(inputs)]))
    rows = A.layer_stats(model)
    assert [(r.kind, r.macs, r.memory) for r in rows] == [("ReLU", 0, 512), ("Add", 0, 768)]


def test_layer_table_prints_every_layer_with_thousands_separators():
    model = stack(layers.Conv2D(32, 3, padding="same"), layers.ReLU(), shape=(8, 8, 16))
    table = A.format_table(A.layer_stats(model))
    lines = table.splitlines()
    assert lines[0].split() == ["layer", "kind", "output_shape", "params", "macs", "memory"]
    assert "4,640" in lines[1] and "294,912" in lines[1] and len(lines) == 3
    assert np.isclose(A.count_params(model), 4640)


# --- depth -----------------------------------------------------------------------------------

def test_weight_depth_counts_weight_layers_on_the_longest_path():
    inputs = keras.Input((16, 16, 3))
    short = layers.Conv2D(4, 1)(inputs)
    long = layers.Conv2D(4, 3, padding="same")(layers.Conv2D(4, 1)(inputs))
    long = layers.ReLU()(layers.BatchNormalization()(long))
    x = layers.Concatenate()([short, layers.MaxPooling2D(1)(long)])
    model = keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(x)))
    assert A.weight_depth(model) == 3  # two convolutions on the long branch, then the dense


def test_googlenet_is_22_layers_deep():
    # Szegedy et al. 2014: "22 layers deep when counting only layers with parameters".
    assert A.weight_depth(cnnkit.build("googlenet", input_shape=(32, 32, 3))) == 22


# --- tapping a model ---------------------------------------------------------------------------

def test_tap_returns_the_named_layers_outputs_and_block_params_sums_a_prefix():
    inputs = keras.Input((6, 6, 2))
    a = layers.Conv2D(3, 3, name="b1_conv")(inputs)
    b = layers.Conv2D(4, 1, name="b1_proj")(a)
    model = keras.Model(inputs, layers.Conv2D(5, 1, name="b2_conv")(b))
    x = np.random.default_rng(0).random((2, 6, 6, 2), dtype="float32")
    first, second = A.tap(model, ["b1_conv", "b1_proj"], x)
    np.testing.assert_allclose(first, keras.ops.convert_to_numpy(model.get_layer("b1_conv")(x)),
                               rtol=1e-6)
    assert second.shape == (2, 4, 4, 4)
    (only,) = A.tap(model, ["b2_conv"], x)
    np.testing.assert_allclose(only, keras.ops.convert_to_numpy(model(x)), rtol=1e-6)
    assert A.block_params(model, "b1_") == (3 * 3 * 2 * 3 + 3) + (3 * 4 + 4)
    assert A.block_params(model, "b2_") == 4 * 5 + 5
