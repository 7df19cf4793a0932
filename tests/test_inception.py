"""Inception-v3, Inception-v4 and Inception-ResNet-v2: what the model test pattern cannot see.

The auxiliary classifier option, the 35/17/8 grids a later network taps by name, the residual
scales (agreement with the keras.applications twins: tests/test_weights.py), and the factorization arithmetic of
"Rethinking the Inception Architecture" (Sections 3.1 and 3.2) counted on real Keras layers.
"""

from fractions import Fraction
from functools import lru_cache

import numpy as np
import pytest

import cnnkit
import cnnkit.models.inception as inception
import keras
from cnnkit.analysis import count_params

from helpers import to_numpy
from reference import VARIANT_PARAMS


@lru_cache(maxsize=None)
def headless(name):
    """The headless model at the default 299x299, built once for all the tests that tap it."""
    return cnnkit.build(name, include_top=False)


# ---------------------------------------------------------------- auxiliary classifier

@lru_cache(maxsize=None)
def with_aux():
    """Inception-v3 with its auxiliary classifier at 299x299 (it needs the full 17x17 grid)."""
    keras.utils.set_random_seed(0)
    return cnnkit.build("inception_v3", aux_logits=True)


def test_aux_logits_adds_torchvisions_auxiliary_classifier_with_its_count():
    model = with_aux()
    assert count_params(model) == VARIANT_PARAMS[("inception_v3", "aux_logits=True")][0]
    assert model.output_shape == [(None, 1000), (None, 1000)]
    assert model.output_names == ["predictions", "aux_predictions"]  # main first
    # It sits on the last 17x17 grid, and its 5x5 convolution leaves a 1x1 map at 299.
    assert model.get_layer("aux_pool_5x5").input is model.get_layer("mixed_6e").output
    assert model.get_layer("aux_5x5_conv").output.shape == (None, 1, 1, 768)
    # 1x1 conv 768->128 + BN, 5x5 conv 128->768 + BN, dense 768->1000: the 27,161,264 less
    # the 23,834,568 of the plain model.
    head = (768 * 128 + 2 * 128) + (25 * 128 * 768 + 2 * 768) + (768 * 1000 + 1000)
    assert head == 3_326_696 == 27_161_264 - cnnkit.model_info("inception_v3").params


def test_aux_logits_model_trains_on_both_outputs():
    model = with_aux()
    # Eagerly: tracing the training graph of this network costs a minute on a CPU.
    model.compile(optimizer=keras.optimizers.SGD(0.01), run_eagerly=True,
                  loss=["sparse_categorical_crossentropy"] * 2, loss_weights=[1.0, 0.3])
    aux_kernel, main_kernel = model.get_layer("aux_5x5_conv").kernel, model.get_layer(
        "predictions").kernel
    before = np.array(aux_kernel), np.array(main_kernel)
    x = np.random.default_rng(0).random((2, 299, 299, 3), dtype=np.float32)
    losses = model.train_on_batch(x, [np.array([0, 2])] * 2)
    assert len(losses) == 3 and np.all(np.isfinite(losses))  # total, main, auxiliary
    assert not np.array_equal(np.array(aux_kernel), before[0])
    assert not np.array_equal(np.array(main_kernel), before[1])


def test_aux_minimum_size_is_exact(monkeypatch):
    # At 299 the auxiliary 5x5 convolution gives 1x1 (checked above); at 298 Keras refuses.
    monkeypatch.setattr(inception, "AUX_MIN_SIZE", 1)
    with pytest.raises(ValueError, match="negative"):
        cnnkit.build("inception_v3", aux_logits=True, input_shape=(298, 298, 3))


@pytest.mark.parametrize("name, kwargs, message", [
    ("inception_v3", dict(aux_logits="yes"), "aux_logits must be True or False"),
    ("inception_v3", dict(aux_logits=1), "aux_logits must be True or False"),
    ("inception_v3", dict(aux_logits=True, include_top=False), "needs include_top=True"),
    ("inception_v3", dict(aux_logits=True, input_shape=(298, 298, 3)), "at least 299x299"),
    ("inception_v3", dict(aux_logits=True, input_shape=(None, 150, 3)), "at least 299x299"),
    ("inception_v4", dict(aux_logits=True), "does not take 'aux_logits'"),
    ("inception_resnet_v2", dict(aux_logits=True), "does not take 'aux_logits'"),
])
def test_invalid_options_raise_a_value_error_that_says_what_to_do(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build(name, **kwargs)


# ---------------------------------------------------------------- grids and named layers

GRIDS = {
    "inception_v3": [("pool_5a_3x3", 35, 192), ("mixed_5d", 35, 288), ("mixed_6a", 17, 768),
                     ("mixed_6e", 17, 768), ("mixed_7a", 8, 1280), ("mixed_7c", 8, 2048)],
    "inception_v4": [("mixed_5a", 35, 384), ("inception_a4", 35, 384), ("reduction_a", 17, 1024),
                     ("inception_b7", 17, 1024), ("reduction_b", 8, 1536),
                     ("inception_c3", 8, 1536)],
    "inception_resnet_v2": [("mixed_5b", 35, 320), ("inception_resnet_a10", 35, 320),
                            ("reduction_a", 17, 1088), ("inception_resnet_b20", 17, 1088),
                            ("reduction_b", 8, 2080), ("inception_resnet_c10", 8, 2080),
                            ("conv_7b_1x1_relu", 8, 1536)],
}


@pytest.mark.parametrize("name", list(GRIDS))
def test_named_blocks_sit_on_the_35_17_8_grids_at_299(name):
    model = headless(name)
    for layer, size, channels in GRIDS[name]:
        assert model.get_layer(layer).output.shape == (None, size, size, channels), layer
    assert model.output.shape == (None, 8, 8, GRIDS[name][-1][2])


def test_inception_resnet_blocks_scale_their_residual_before_adding_it():
    model = headless("inception_resnet_v2")
    for block, count, scale, channels in [("a", 10, 0.17, 320), ("b", 20, 0.1, 1088),
                                          ("c", 10, 0.2, 2080)]:
        for i in range(1, count + 1):
            name = f"inception_resnet_{block}{i}"
            up = model.get_layer(f"{name}_up_conv")
            assert up.use_bias and up.filters == channels and up.kernel_size == (1, 1)
            expected = 1.0 if name == "inception_resnet_c10" else scale
            assert model.get_layer(f"{name}_scale").scale == expected
    # Only the last block leaves its sum without a ReLU: its output layer is the Add itself.
    assert isinstance(model.get_layer("inception_resnet_c10"), keras.layers.Add)
    assert isinstance(model.get_layer("inception_resnet_c9"), keras.layers.Activation)


# ---------------------------------------------------------------- factorization (v3, Section 3)

def params(*kernels, channels=64):
    """Trainable parameters of real Conv2D layers stacked on `channels` channels, no bias."""
    model = keras.Sequential([keras.Input((None, None, channels))] + [
        keras.layers.Conv2D(channels, k, use_bias=False) for k in kernels])
    return count_params(model)


def test_two_3x3_convolutions_replace_a_5x5_with_28_percent_fewer_parameters():
    assert params(5) == 25 * 64 * 64 and params(3, 3) == 18 * 64 * 64
    assert 1 - Fraction(params(3, 3), params(5)) == Fraction(28, 100)  # "a relative gain of 28%"


def test_two_3x3_convolutions_see_as_far_as_one_5x5():
    for kernels in [(5,), (3, 3), ((1, 5), (5, 1))]:
        model = keras.Sequential([keras.Input((5, 5, 1))] + [
            keras.layers.Conv2D(1, k) for k in kernels])
        assert model.output_shape == (None, 1, 1, 1)


@pytest.mark.parametrize("n", [3, 5, 7])
def test_1xn_then_nx1_saves_1_minus_2_over_n(n):
    assert 1 - Fraction(params((1, n), (n, 1)), params(n)) == 1 - Fraction(2, n)


def test_asymmetric_factorization_beats_2x2_convolutions():
    # Section 3.2: 3x1 then 1x3 is 33% cheaper than a 3x3; two 2x2 would save only 11%.
    assert 1 - Fraction(params((3, 1), (1, 3)), params(3)) == Fraction(1, 3)
    assert 1 - Fraction(params(2, 2), params(3)) == Fraction(1, 9)


def test_inception_v3_17x17_modules_factorize_7x7_into_1x7_and_7x1():
    model = headless("inception_v3")
    one_by_seven = model.get_layer("mixed_6e_7x7_2_conv")
    seven_by_one = model.get_layer("mixed_6e_7x7_3_conv")
    assert (one_by_seven.kernel_size, seven_by_one.kernel_size) == ((1, 7), (7, 1))
    pair = one_by_seven.count_params() + seven_by_one.count_params()
    assert pair == 2 * 7 * 192 * 192 == 516_096
    assert Fraction(pair, params(7, channels=192)) == Fraction(2, 7)
