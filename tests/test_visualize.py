"""cnnkit.visualize on networks whose weights are set by hand, so every map has a known answer
computed here in NumPy. No test needs TensorFlow: they also run with KERAS_BACKEND=jax or torch."""

import keras
import numpy as np
import pytest

from cnnkit import backend, visualize
from helpers import to_numpy

layers = keras.layers
RNG = np.random.default_rng(15)


def normal(*shape):
    return RNG.normal(size=shape).astype("float32")


def gap_network(shape=(7, 6, 3), maps=5, classes=4):
    """conv 3x3 + ReLU -> global average pooling -> dense: the network CAM is defined on."""
    inputs = keras.Input(shape)
    x = layers.Conv2D(maps, 3, activation="relu", name="last_conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    model = keras.Model(inputs, layers.Dense(classes, name="fc")(x))
    for layer in model.layers:
        layer.set_weights([normal(*w.shape) for w in layer.get_weights()])
    return model


def relu_network(shape=(4, 3, 3), maps=5, classes=2, activation_layer=False):
    """1x1 conv (ReLU) -> flatten -> dense, so d score / d x is a product of known matrices."""
    inputs = keras.Input(shape)
    if activation_layer:
        x = layers.Conv2D(maps, 1, name="conv")(inputs)
        x = layers.Activation("relu", name="relu")(x)
    else:
        x = layers.Conv2D(maps, 1, activation="relu", name="conv")(inputs)
    model = keras.Model(inputs, layers.Dense(classes, name="fc")(layers.Flatten()(x)))
    w1, b1 = normal(1, 1, shape[-1], maps), normal(maps)
    w2, b2 = normal(shape[0] * shape[1] * maps, classes), normal(classes)
    model.get_layer("conv").set_weights([w1, b1])
    model.get_layer("fc").set_weights([w2, b2])
    return model, w1[0, 0], b1, w2


def test_split_at_recomposes_the_model():
    model = gap_network()
    x = normal(3, 7, 6, 3)
    body, head = visualize.split_at(model, "last_conv")
    assert tuple(body.output.shape) == (None, 5, 4, 5)
    np.testing.assert_allclose(to_numpy(head(body(x))), to_numpy(model(x)), rtol=1e-5, atol=1e-5)


def test_filters_as_images_scales_each_filter_on_its_own():
    kernel = normal(3, 2, 4, 6)
    kernel[..., 5] = 0.7  # a constant filter
    images = visualize.filters_as_images(kernel)
    assert images.shape == (6, 3, 2, 4)
    for i in range(5):
        k = kernel[..., i]
        np.testing.assert_allclose(images[i], (k - k.min()) / (k.max() - k.min()), rtol=1e-6)
        assert images[i].min() == 0 and images[i].max() == 1
    assert np.all(images[5] == 0.5)


def test_feature_maps_are_the_layers_outputs():
    model, w1, b1, _ = relu_network(shape=(4, 3, 2))
    image = normal(4, 3, 2)
    maps = visualize.feature_maps(model, image, ["conv", "fc"])
    assert list(maps) == ["conv", "fc"]
    np.testing.assert_allclose(maps["conv"], np.maximum(image @ w1 + b1, 0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(maps["fc"], to_numpy(model(image[None]))[0], rtol=1e-5, atol=1e-5)


def test_occlusion_map_of_a_region_mean():
    # The class-c score is the mean of channel c over rows 3-7 and columns 2-5: hiding the image
    # lowers it by (overlap of the square with that region) · (pixel − fill) / its area.
    height, width, (r0, r1, c0, c1) = 12, 10, (3, 8, 2, 6)
    inputs = keras.Input((height, width, 2))
    x = layers.Cropping2D(((r0, height - r1), (c0, width - c1)))(inputs)
    model = keras.Model(inputs, layers.GlobalAveragePooling2D()(x))
    image = normal(height, width, 2)
    patch, stride, fill = 3, 2, 0.3
    got = visualize.occlusion_map(model, image, 1, patch=patch, stride=stride, fill=fill,
                                  batch_size=5)
    tops, lefts = range(0, height - patch + 1, stride), range(0, width - patch + 1, stride)
    assert got.shape == (len(tops), len(lefts)) == (5, 4)
    want = np.zeros(got.shape)
    for i, top in enumerate(tops):
        for j, left in enumerate(lefts):
            hidden = np.zeros((height, width), bool)
            hidden[top:top + patch, left:left + patch] = True
            region = np.zeros((height, width), bool)
            region[r0:r1, c0:c1] = True
            want[i, j] = np.sum((image[..., 1] - fill)[hidden & region]) / region.sum()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert np.count_nonzero(want) < want.size  # squares away from the region change nothing


def test_saliency_of_a_linear_model_is_its_weights():
    inputs = keras.Input((5, 4, 3))
    model = keras.Model(inputs, layers.Dense(2, name="fc")(layers.Flatten()(inputs)))
    w = normal(60, 2)
    model.get_layer("fc").set_weights([w, normal(2)])
    got = visualize.saliency(model, normal(5, 4, 3), 1)
    assert got.shape == (5, 4)
    np.testing.assert_allclose(got, np.abs(w[:, 1].reshape(5, 4, 3)).max(axis=-1), rtol=1e-6)


@pytest.mark.parametrize("activation_layer", [False, True])
def test_guided_backprop_and_deconvnet_by_hand(activation_layer):
    model, w1, b1, w2 = relu_network(activation_layer=activation_layer)
    image = normal(4, 3, 3)
    z = image @ w1 + b1  # (4, 3, 5): the ReLU's input
    upstream = w2[:, 1].reshape(4, 3, 5)  # d score / d ReLU output
    guided = visualize.guided_backprop(model, image, 1)
    np.testing.assert_allclose(guided, (upstream * (z > 0) * (upstream > 0)) @ w1.T,
                               rtol=1e-5, atol=1e-6)
    deconv = visualize.guided_backprop(model, image, 1, rule="deconvnet")
    np.testing.assert_allclose(deconv, (upstream * (upstream > 0)) @ w1.T, rtol=1e-5, atol=1e-6)
    # The model is back to a plain ReLU: its gradient is ordinary backpropagation again.
    plain = backend.gradient(lambda x: model(x)[:, 1], image[None])[0]
    np.testing.assert_allclose(plain, (upstream * (z > 0)) @ w1.T, rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, guided) and not np.allclose(guided, deconv)


def test_guided_backprop_needs_a_relu():
    inputs = keras.Input((3, 3, 1))
    model = keras.Model(inputs, layers.Dense(2)(layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="has no ReLU"):
        visualize.guided_backprop(model, normal(3, 3, 1), 0)
    with pytest.raises(ValueError, match="rule must be"):
        visualize.guided_backprop(model, normal(3, 3, 1), 0, rule="deconv")


def test_cam_is_the_weighted_sum_of_the_last_maps():
    model = gap_network()
    image = normal(7, 6, 3)
    cam = visualize.class_activation_map(model, image, 2, "last_conv", "fc")
    maps = visualize.feature_maps(model, image, ["last_conv"])["last_conv"]
    w, b = model.get_layer("fc").get_weights()
    assert cam.shape == (5, 4)
    np.testing.assert_allclose(cam, np.einsum("hwk,k->hw", maps, w[:, 2]), rtol=1e-5, atol=1e-6)
    # Zhou et al.'s identity: the class score is the CAM's mean plus the bias.
    np.testing.assert_allclose(cam.mean() + b[2], to_numpy(model(image[None]))[0, 2], rtol=1e-5)
    with pytest.raises(ValueError, match="last_conv reads 3 features but gap has 5 channels"):
        visualize.class_activation_map(model, image, 2, "gap", "last_conv")


def test_grad_cam_after_global_pooling_is_the_rectified_cam():
    model = gap_network()
    image = normal(7, 6, 3)
    for c in range(4):
        cam = visualize.class_activation_map(model, image, c, "last_conv", "fc")
        raw = visualize.grad_cam(model, image, c, "last_conv", normalize=False)
        np.testing.assert_allclose(raw, np.maximum(cam, 0) / cam.size, rtol=1e-5, atol=1e-7)
        heat = visualize.grad_cam(model, image, c, "last_conv")
        if cam.max() > 0:
            np.testing.assert_allclose(heat, np.maximum(cam, 0) / cam.max(), rtol=1e-5,
                                       atol=1e-7)
            assert heat.max() == 1


def test_grad_cam_of_a_dense_head_averages_its_weights():
    # score = sum_ijk W[i, j, k] A[i, j, k] + b, so alpha_k is the mean of W[:, :, k].
    model, w1, b1, w2 = relu_network(shape=(4, 3, 3), maps=5)
    image = normal(4, 3, 3)
    maps = np.maximum(image @ w1 + b1, 0)
    alpha = w2[:, 0].reshape(4, 3, 5).mean(axis=(0, 1))
    got = visualize.grad_cam(model, image, 0, "conv", normalize=False)
    np.testing.assert_allclose(got, np.maximum(maps @ alpha, 0), rtol=1e-5, atol=1e-6)


def test_normalize_map():
    np.testing.assert_allclose(visualize.normalize_map([[0.0, 2.0], [-1.0, 0.5]]),
                               [[0, 1], [-0.5, 0.25]])
    assert np.array_equal(visualize.normalize_map(-np.ones((2, 3))), np.zeros((2, 3)))


def test_upsample_and_overlay():
    heat = np.array([[0.0, 1.0], [1.0, 0.0]], "float32")
    big = visualize.upsample(heat, (6, 4))
    assert big.shape == (6, 4) and big.min() >= 0 and big.max() <= 1
    assert np.allclose(visualize.upsample(np.full((3, 3), 0.25), (9, 5)), 0.25)
    picture = visualize.overlay(np.full((6, 4, 1), 0.5), heat, alpha=0.25)
    assert picture.shape == (6, 4, 3) and picture.min() >= 0 and picture.max() <= 1
    np.testing.assert_allclose(visualize.overlay(np.ones((2, 2)), np.zeros((2, 2)), alpha=0),
                               np.ones((2, 2, 3)))


def test_filter_ascent_on_a_linear_filter_climbs_its_weights():
    # The filter's mean activation is <W_f, x> + b, so every gradient is W_f: each step adds
    # step_size · W_f / rms(W_f) after the decay.
    inputs = keras.Input((3, 3, 2))
    model = keras.Model(inputs, layers.Conv2D(4, 3, name="conv")(inputs))
    w = normal(3, 3, 2, 4)
    model.get_layer("conv").set_weights([w, normal(4)])
    start = normal(3, 3, 2)
    got = visualize.filter_ascent(model, "conv", 2, steps=7, step_size=0.3, decay=0.1,
                                  start=start)
    want, unit = start.astype("float64"), w[..., 2] / np.sqrt(np.mean(w[..., 2] ** 2))
    for _ in range(7):
        want = 0.9 * want + 0.3 * unit
    assert got.shape == (3, 3, 2)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    noise = visualize.filter_ascent(model, "conv", 2, steps=0, seed=4, scale=0.2)
    np.testing.assert_allclose(noise, np.random.default_rng(4).normal(0, 0.2, (3, 3, 2)),
                               rtol=1e-6)
