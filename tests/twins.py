"""Port a keras.applications twin's weights into a cnnkit model, for the same-computation tests.

The twin gets random BatchNorm statistics first (fresh ones are 0 and 1, which would hide a
BatchNorm in the wrong place), then its weight-carrying layers are paired with the cnnkit
model's in graph order: same layer kinds, same weight shapes, or the test says where they part.
"""

import numpy as np

import keras

to_numpy = keras.ops.convert_to_numpy


def weighted_layers(model):
    return [layer for layer in model.layers if layer.weights]


def port_in_order(twin, model, rng):
    """Randomise twin's BatchNorm statistics and copy every weight into `model`, pair by pair."""
    theirs, ours = weighted_layers(twin), weighted_layers(model)
    # Keras's EfficientNet normalises its input inside the model; cnnkit leaves that outside.
    theirs = [layer for layer in theirs if not isinstance(layer, keras.layers.Normalization)]
    assert len(theirs) == len(ours), (
        f"{len(theirs)} weighted layers in {twin.name}, {len(ours)} in {model.name}")
    for src, dst in zip(theirs, ours):
        if isinstance(src, keras.layers.BatchNormalization):
            c = src.moving_mean.shape[0]
            weights = [rng.normal(1, 0.1, c)] if src.scale else []
            weights += [rng.normal(0, 0.1, c)] if src.center else []
            src.set_weights(weights + [rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])
            if dst.scale and not src.scale:  # a learned scale of 1 is no scale
                weights = [np.ones(c)] + weights
            dst.set_weights(weights + src.get_weights()[-2:])
            continue
        shapes = ([tuple(w.shape) for w in src.weights], [tuple(w.shape) for w in dst.weights])
        assert shapes[0] == shapes[1], f"{src.name} {shapes[0]} against {dst.name} {shapes[1]}"
        dst.set_weights(src.get_weights())


def assert_same_outputs(twin, model, x, twin_input=None, atol=1e-4):
    """Outputs agree in inference mode; `twin_input` for twins that preprocess inside."""
    x_twin = x if twin_input is None else twin_input
    np.testing.assert_allclose(to_numpy(model(x, training=False)),
                               to_numpy(twin(x_twin, training=False)), rtol=1e-4, atol=atol)
