"""cnnkit's custom layers: the same computation as the Keras layer they stand for."""

import keras
import numpy as np
import pytest

from cnnkit.layers import GroupConv2D

to_numpy = keras.ops.convert_to_numpy


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
