"""cnnkit's custom layers: the same computation as the Keras layer they stand for."""

import keras
import numpy as np
import pytest

from cnnkit.layers import GroupConv2D

from helpers import to_numpy


@pytest.mark.parametrize("channels, kwargs", [
    (64, dict(filters=64, kernel_size=3, groups=32, padding="same")),
    (64, dict(filters=64, kernel_size=3, groups=32, strides=2, padding="valid")),
    (4, dict(filters=12, kernel_size=(1, 3), groups=2, dilation_rate=2, use_bias=True)),
    (8, dict(filters=8, kernel_size=1, groups=1)),
])
def test_group_conv_equals_keras_grouped_conv_forward_and_backward(channels, kwargs, tmp_path):
    x = np.random.default_rng(0).normal(size=(2, 9, 9, channels)).astype("float32")
    ours, theirs = GroupConv2D(**kwargs), keras.layers.Conv2D(**kwargs)
    ours.build(x.shape)
    theirs.build(x.shape)
    ours.set_weights(theirs.get_weights())
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(theirs(x)), atol=1e-5)
    # The backward pass too: a training step moves both to the same weights.
    models = []
    for layer in (ours, theirs):
        inputs = keras.Input(x.shape[1:])
        model = keras.Model(inputs, layer(inputs))
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", run_eagerly=True)
        model.train_on_batch(x, np.ones(model.output.shape[1:], "float32")[None].repeat(2, 0))
        models.append(model)
    for a, b in zip(*(m.get_weights() for m in models)):
        np.testing.assert_allclose(a, b, atol=1e-5)
    model = models[0]
    model.save(tmp_path / "g.keras")
    loaded = keras.saving.load_model(tmp_path / "g.keras", safe_mode=True)
    assert type(loaded.layers[1]) is GroupConv2D
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(model(x)))


# --- Channel shuffle and channel split ---------------------------------------------------------

@pytest.mark.parametrize("channels, groups", [(12, 3), (12, 1), (16, 4), (8, 8)])
def test_channel_shuffle_is_reshape_transpose_flatten(channels, groups):
    from cnnkit.layers import ChannelShuffle
    x = np.random.default_rng(0).normal(size=(2, 3, 5, channels)).astype("float32")
    expected = x.reshape(2, 3, 5, groups, channels // groups).swapaxes(3, 4).reshape(x.shape)
    np.testing.assert_array_equal(to_numpy(ChannelShuffle(groups)(x)), expected)


def test_channel_shuffle_sends_channel_g_i_to_i_g():
    from cnnkit.layers import ChannelShuffle
    x = np.arange(6, dtype="float32").reshape(1, 1, 1, 6)  # groups (0 1 2) and (3 4 5)
    assert to_numpy(ChannelShuffle(2)(x)).ravel().tolist() == [0, 3, 1, 4, 2, 5]


def test_channel_layers_refuse_channels_that_do_not_divide():
    from cnnkit.layers import ChannelShuffle, ChannelSplit
    with pytest.raises(ValueError, match="do not split into 3 equal groups"):
        ChannelShuffle(3)(keras.Input((4, 4, 8)))
    with pytest.raises(ValueError, match="add up to 7, but the input has 8"):
        ChannelSplit([3, 4])(keras.Input((4, 4, 8)))
    with pytest.raises(ValueError, match="groups must be a whole number >= 1"):
        ChannelShuffle(0)


def test_channel_split_and_shuffle_save_and_load_in_safe_mode(tmp_path):
    from cnnkit.layers import ChannelShuffle, ChannelSplit
    inputs = keras.Input((None, None, 12))
    a, b = ChannelSplit([4, 8])(inputs)
    c, d, e = ChannelSplit(3)(ChannelShuffle(4)(inputs))
    model = keras.Model(inputs, [a, b, c, d, e])
    assert [tuple(t.shape) for t in model.outputs] == [
        (None, None, None, 4), (None, None, None, 8)] + [(None, None, None, 4)] * 3
    path = tmp_path / "channels.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).normal(size=(1, 2, 3, 12)).astype("float32")
    for ours, theirs in zip(loaded(x), model(x)):
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))
    np.testing.assert_array_equal(to_numpy(loaded(x)[1]), x[..., 4:])


# --- Shared blocks -----------------------------------------------------------------------------

def test_squeeze_excite_scales_each_channel_by_a_gate_from_the_channel_means():
    from cnnkit.blocks import squeeze_excite
    inputs = keras.Input((4, 4, 8))
    model = keras.Model(inputs, squeeze_excite(inputs, 2, name="se"))
    assert model.count_params() == (8 * 2 + 2) + (2 * 8 + 8)  # two 1x1 convs with bias
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape) for w in model.get_weights()])
    w1, b1, w2, b2 = [w for w in model.get_weights()]
    x = rng.normal(size=(2, 4, 4, 8)).astype("float32")
    squeezed = x.mean(axis=(1, 2))
    gate = 1 / (1 + np.exp(-(np.maximum(squeezed @ w1[0, 0] + b1, 0) @ w2[0, 0] + b2)))
    np.testing.assert_allclose(to_numpy(model(x)), x * gate[:, None, None, :], rtol=1e-5,
                               atol=1e-6)
    assert [layer.name for layer in model.layers[1:]] == [
        "se_squeeze", "se_reduce", "se_expand", "se_excite"]


def test_depthwise_conv_bn_has_one_filter_per_channel_and_no_bias():
    from cnnkit.blocks import depthwise_conv_bn
    inputs = keras.Input((8, 8, 16))
    model = keras.Model(inputs, depthwise_conv_bn(inputs, 3, strides=2, name="dw"))
    assert model.output.shape == (None, 4, 4, 16)
    assert model.get_layer("dw_conv").count_params() == 3 * 3 * 16
    assert [layer.name for layer in model.layers[1:]] == ["dw_conv", "dw_bn", "dw_relu"]


@pytest.mark.parametrize("value, divisor, expected", [
    (32 * 0.35, 8, 16),   # MobileNetV2 alpha 0.35's first layer: 11.2 rounds to 8, which
                          # loses more than 10% (8 < 10.08), so one divisor more
    (24 * 0.5, 8, 16),    # 12 rounds half up to 16
    (27, 8, 32),          # 27 + 4 = 31 -> 24, and 24 < 0.9 * 27 = 24.3, so one divisor more
    (1280 * 1.4, 8, 1792),
    (96 * 0.25, 4, 24),   # GhostNet's SE width with divisor 4
    (3, 8, 8),
])
def test_make_divisible_rounds_to_a_multiple_losing_at_most_ten_percent(value, divisor,
                                                                        expected):
    from cnnkit.blocks import make_divisible
    assert make_divisible(value, divisor) == expected
