"""DenseNet and VoVNet: what the shared model tests cannot see.

DenseNet (its keras.applications twins: tests/test_weights.py): channels growing by k per
dense layer, parameter counts from the paper's numbers (also for other k and compression), the
stage outputs a detector taps. VoVNet: an OSA module and eSE counted by hand, where V2 puts its
shortcuts and gates, PyTorch's ceil-mode pooling, the stage outputs.
"""

import functools

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.models.vovnet import effective_squeeze_excite, stage

import helpers
from helpers import to_numpy
from reference import REFERENCE_PARAMS

# A model at a small input size (64 unless given) with 5 logits, built once (tests/helpers.py):
# its weights do not depend on the size.
small = functools.partial(helpers.small, classes=5, classifier_activation=None)


def prefix_params(model, prefix):
    return sum(count_params(layer) for layer in model.layers if layer.name.startswith(prefix))


def channels(model, layer):
    return model.get_layer(layer).output.shape[-1]


# --- DenseNet ----------------------------------------------------------------------------------

def densenet_params(depths, k=32, compression=0.5, classes=1000):
    """Trainable parameters from Table 1's numbers: stem 2k, bottleneck 4k, BN = 2 per channel."""
    c = 2 * k
    total = 7 * 7 * 3 * c + 2 * c
    for i, depth in enumerate(depths):
        for _ in range(depth):
            total += 2 * c + c * 4 * k + 2 * 4 * k + 3 * 3 * 4 * k * k
            c += k
        if i < len(depths) - 1:
            total += 2 * c + c * int(compression * c)
            c = int(compression * c)
    return total + 2 * c + c * classes + classes


def test_the_formula_from_the_paper_gives_the_three_references():
    for name, depths in [("densenet121", (6, 12, 24, 16)), ("densenet169", (6, 12, 32, 32)),
                         ("densenet201", (6, 12, 48, 32))]:
        assert densenet_params(depths) == REFERENCE_PARAMS[name][0]


def test_a_dense_layer_counted_by_hand():
    # conv2_block1 reads 64 channels: BN(64), 1x1 64->4k=128, BN(128), 3x3 128->k=32.
    assert prefix_params(small("densenet121"), "conv2_block1_") == (
        2 * 64 + 64 * 128 + 2 * 128 + 9 * 128 * 32) == 45_440


def test_channels_grow_by_k_per_dense_layer_and_halve_in_transitions():
    model = small("densenet121")
    assert [channels(model, f"conv2_block{b}_concat") for b in range(1, 7)] == [
        64 + 32 * b for b in range(1, 7)]
    assert channels(model, "pool2_pool") == 256 // 2
    assert [channels(model, f"conv3_block{b}_concat") for b in (1, 12)] == [160, 128 + 12 * 32]
    assert channels(model, "conv5_block16_concat") == 512 + 16 * 32 == 1024


def test_stage_outputs_a_detector_taps():
    model = small("densenet121")
    taps = {"conv1_relu": (32, 64), "pool2_relu": (16, 256), "pool3_relu": (8, 512),
            "pool4_relu": (4, 1024), "relu": (2, 1024)}  # 64x64 input: strides 2, 4, 8, 16, 32
    assert {name: model.get_layer(name).output.shape[1:] for name in taps} == {
        name: (size, size, c) for name, (size, c) in taps.items()}


def test_growth_rate_and_compression_options():
    model = cnnkit.build("densenet121", input_shape=(32, 32, 3), growth_rate=12,
                         compression=0.75)
    # 24 stem maps; block 3 ends with 162 + 24·12 = 450 and keeps int(0.75 · 450) = 337.
    assert channels(model, "conv1_conv") == 24 and channels(model, "pool4_conv") == 337
    assert count_params(model) == densenet_params((6, 12, 24, 16), 12, 0.75) == 1_836_552


@pytest.mark.parametrize("options, message", [
    (dict(growth_rate=0), "growth_rate must be a whole number >= 1"),
    (dict(growth_rate=12.5), "growth_rate must be a whole number >= 1"),
    (dict(growth_rate=True), "growth_rate must be a whole number >= 1"),
    (dict(compression=0), r"compression must be a number in \(0, 1\]"),
    (dict(compression=1.5), r"compression must be a number in \(0, 1\]"),
    (dict(compression="half"), r"compression must be a number in \(0, 1\]"),
])
def test_invalid_densenet_options_say_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("densenet121", include_top=False, input_shape=(32, 32, 3), **options)


# --- VoVNet ------------------------------------------------------------------------------------

def test_an_osa_module_counted_by_hand():
    # stage2: five 3x3 convs 128 -> 128 (BN: 2 per channel), concat 128 + 5·128 = 768, 1x1 -> 256.
    assert prefix_params(small("vovnet39"), "stage2_osa1_") == (
        5 * (9 * 128 * 128 + 2 * 128) + 768 * 256 + 2 * 256) == 935_680


def test_v2_adds_exactly_one_ese_per_stage_and_parameter_free_shortcuts():
    ese = [256 * 256 + 256, 512 * 512 + 512, 768 * 768 + 768, 1024 * 1024 + 1024]  # C·C + C
    assert (REFERENCE_PARAMS["vovnet39_v2"][0] - REFERENCE_PARAMS["vovnet39"][0] == sum(ese)
            == 1_968_640)
    model = small("vovnet39_v2")
    assert [count_params(layer) for layer in model.layers if layer.name.endswith("_ese_fc")] == ese
    gates = [layer.name for layer in model.layers if layer.name.endswith("_ese_excite")]
    assert gates == ["stage2_osa1_ese_excite", "stage3_osa1_ese_excite",
                     "stage4_osa2_ese_excite", "stage5_osa2_ese_excite"]
    # A shortcut on every module but the first of a stage, which changes the channels.
    adds = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert adds == ["stage4_osa2_add", "stage5_osa2_add"]
    assert not any(isinstance(layer, (keras.layers.Add, keras.layers.Multiply))
                   for layer in small("vovnet39").layers)


def test_ese_scales_each_channel_by_a_hard_sigmoid_of_its_global_average():
    x = keras.Input((4, 4, 3))
    gate = keras.Model(x, effective_squeeze_excite(x, name="ese"))
    w, b = np.random.default_rng(0).normal(0, 1, (3, 3)), np.array([0.5, -4.0, 4.0])
    gate.get_layer("ese_fc").set_weights([w.reshape(1, 1, 3, 3), b])
    image = np.random.default_rng(1).random((2, 4, 4, 3), dtype=np.float32)
    expected = image * np.clip((image.mean(axis=(1, 2)) @ w + b) / 6 + 0.5, 0, 1)[:, None, None]
    np.testing.assert_allclose(to_numpy(gate(image)), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [5, 6, 7])
def test_stage_pools_as_pytorchs_ceil_mode_max_pool(size):
    x = keras.Input((size, size, 2))
    pool = keras.Model(x, stage(x, 0, 8, 8, name="s", pool=True, v2=False))  # no modules
    image = np.random.default_rng(size).random((1, size, size, 2), dtype=np.float32)
    out = -(-(size - 3) // 2) + 1  # PyTorch: ceil((H - 3) / 2) + 1 windows, the last partial
    expected = np.array([[image[0, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(0, 1))
                          for j in range(out)] for i in range(out)])
    np.testing.assert_array_equal(to_numpy(pool(image))[0], expected)


@pytest.mark.parametrize("name", ["vovnet39", "vovnet39_v2"])
def test_vovnet_stage_outputs_a_detector_taps(name):
    model = small(name)
    taps = {"stage1_conv2_relu": (32, 64), "stage2_out": (16, 256), "stage3_out": (8, 512),
            "stage4_out": (4, 768), "stage5_out": (2, 1024)}  # strides 2, 4, 8, 16, 32
    assert {tap: model.get_layer(tap).output.shape[1:] for tap in taps} == {
        tap: (size, size, c) for tap, (size, c) in taps.items()}

