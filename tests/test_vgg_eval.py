"""VGG's training and test scales (Simonyan and Zisserman, 2015, Sections 3.1-3.2): scale jitter
crops are real crops of images rescaled within [S_min, S_max], dense evaluation's convolutional
head computes the dense head's outputs, score maps and multi-crop views have the paper's sizes;
and configuration C is a row of cnnkit's VGG table."""

import keras
import numpy as np
import pytest
from keras import layers

import requires
from cnnkit import augment
from cnnkit.augment import ScaleJitter
from cnnkit.course.experiments import fully_convolutional
from cnnkit.models.vgg import VGG_CONFIGS, vgg

to_numpy = keras.ops.convert_to_numpy


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def randomise(model, seed=0):
    """Every weight (biases too, which start at zero) drawn at random."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32")
                       for w in model.get_weights()])
    return model


def small_vgg(side=32, padding="same", classes=10, softmax=True):
    """The lesson's shape: conv blocks, Flatten, two dense layers with dropout between."""
    inputs = keras.Input((side, side, 2))
    x = inputs
    for filters in (4, 8, 8):
        x = layers.Conv2D(filters, 3, padding=padding, activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(16, activation="relu", name="fc1")(x)
    x = layers.Dropout(0.5)(x)
    outputs = layers.Dense(classes, activation="softmax" if softmax else None,
                           name="predictions")(x)
    return randomise(keras.Model(inputs, outputs))


def test_scaled_crops_are_slices_of_the_rescaled_images():
    x = images((5, 30, 40, 2))  # not square: the smaller side (30) is rescaled to S
    sides, tops, lefts = [30, 31, 37, 45, 60], [0, 3, 9, 0, 32], [0, 1, 13, 36, 56]
    crops = to_numpy(augment.scaled_crops(x, sides, tops, lefts, (28, 24)))
    assert crops.shape == (5, 28, 24, 2)
    for i, side in enumerate(sides):
        big = to_numpy(augment.rescale(x[i:i + 1], side))[0]
        assert big.shape == (side, round(side * 40 / 30), 2)
        expected = big[tops[i]:tops[i] + 28, lefts[i]:lefts[i] + 24]  # 4th, 5th: far edges
        assert expected.shape == (28, 24, 2)  # the crop lies inside the rescaled image
        np.testing.assert_allclose(crops[i], expected, atol=1e-5)


def test_jittered_crops_are_real_crops_of_images_rescaled_within_the_range():
    x = images((6, 16, 16, 3), seed=1)
    layer = ScaleJitter(12, scale_range=(12, 20), seed=3)
    out = to_numpy(layer(x, training=True))
    assert out.shape == (6, 12, 12, 3)
    found = []
    for image, crop in zip(x, out):
        matches = []
        for side in range(10, 25):  # wider than the range: a match outside it would fail
            big = to_numpy(augment.rescale(image[None], side))[0]
            for top in range(side - 11):
                for left in range(side - 11):
                    if np.abs(big[top:top + 12, left:left + 12] - crop).max() < 1e-5:
                        matches.append(side)
        assert matches, "a jittered crop that is no crop of a rescaled image"
        found.append(matches[0])
    assert all(12 <= side <= 20 for side in found)
    assert len(set(found)) > 1  # each image its own scale


def test_sides_are_whole_pixels_uniform_over_the_range_and_crops_fit():
    layer = ScaleJitter(24, scale_range=(32, 48), seed=0)
    sides, tops, lefts = (to_numpy(a) for a in layer.sample(6000, 32, 40))
    assert np.array_equal(sides, np.round(sides))
    counts = np.bincount(sides.astype(int) - 32, minlength=17)
    assert len(counts) == 17 and counts.min() > 0.7 * 6000 / 17 < counts.max() < 1.3 * 6000 / 17
    rows, cols = sides, np.floor(40 * sides / 32 + 0.5)
    assert tops.min() == 0 and lefts.min() == 0
    assert np.all(tops <= rows - 24) and np.all(lefts <= cols - 24)
    assert np.any(tops == rows - 24) and np.any(lefts == cols - 24)  # the far edges too


def test_inference_is_the_centre_crop_at_the_middle_scale():
    x = images((2, 32, 32, 1))
    layer = ScaleJitter(32, scale_range=(32, 48))
    assert layer.test_side == 40
    big = to_numpy(augment.rescale(x, 40))
    np.testing.assert_allclose(to_numpy(layer(x, training=False)), big[:, 4:36, 4:36],
                               atol=1e-5)
    again = ScaleJitter.from_config(layer.get_config())
    assert (again.scale_range, again.test_side, again.height) == ((32, 48), 40, 32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(crop_size=32, scale_range=(24, 48)), "S_min <= S_max"),
    (dict(crop_size=32, scale_range=(48, 40)), "S_min <= S_max"),
    (dict(crop_size=32, scale_range=(32, 48), test_side=30), "test scale Q"),
])
def test_bad_ranges_say_what_to_do(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ScaleJitter(**kwargs)


@requires.tensorflow
def test_scale_jitter_runs_in_tf_data():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(images((8, 16, 16, 1))).batch(4).map(
        ScaleJitter(12, scale_range=(12, 20), seed=0))
    assert [tuple(batch.shape) for batch in ds] == [(4, 12, 12, 1), (4, 12, 12, 1)]


def test_the_convolutional_head_computes_the_dense_head():
    model = small_vgg()
    fcn = fully_convolutional(model)
    assert not any(isinstance(layer, layers.Dense) for layer in fcn.layers)
    fc1 = fcn.get_layer("fc1")
    assert fc1.kernel.shape == (4, 4, 8, 16) and fcn.get_layer("predictions").kernel_size == (1, 1)
    assert fcn.layers[1] is model.layers[1]  # the convolutions are shared, not copied
    x = images((7, 32, 32, 2))
    maps = to_numpy(fcn(x))
    assert maps.shape == (7, 1, 1, 10)
    np.testing.assert_allclose(maps[:, 0, 0], to_numpy(model(x, training=False)), atol=1e-5)


@pytest.mark.parametrize("side, grid", [(32, 1), (40, 2), (44, 2), (48, 3), (64, 5)])
def test_score_maps_grow_with_the_image(side, grid):
    fcn = fully_convolutional(small_vgg())
    assert to_numpy(fcn(images((2, side, side, 2)))).shape == (2, grid, grid, 10)


def test_without_padding_each_score_is_the_model_on_one_window():
    # Valid convolutions see no zeros at the border, so position (i, j) of the map is exactly
    # the model on the training-size window that starts 8i, 8j pixels in (stride 2 * 2 * 2).
    model = small_vgg(side=30, padding="valid", softmax=False)  # maps 28, 14, 12, 6, 4, 2
    x = images((2, 46, 46, 2))
    maps = to_numpy(fully_convolutional(model)(x))
    assert maps.shape == (2, 3, 3, 10)
    for i in range(3):
        for j in range(3):
            window = x[:, 8 * i:8 * i + 30, 8 * j:8 * j + 30]
            np.testing.assert_allclose(maps[:, i, j], to_numpy(model(window, training=False)),
                                       rtol=1e-4, atol=1e-4)


def test_dense_predict_averages_positions_then_scales_and_flips():
    model = small_vgg()
    fcn = fully_convolutional(model)
    x = images((3, 32, 32, 2))
    np.testing.assert_allclose(augment.dense_predict(fcn, x, [32]),
                               to_numpy(model(x, training=False)), atol=1e-5)
    per_scale = [to_numpy(fcn(augment.rescale(x, q))).mean(axis=(1, 2)) for q in (32, 48)]
    np.testing.assert_allclose(augment.dense_predict(fcn, x, [32, 48]), np.mean(per_scale, 0),
                               atol=1e-6)
    mirrored = to_numpy(fcn(x[:, :, ::-1])).mean(axis=(1, 2))
    np.testing.assert_allclose(augment.dense_predict(fcn, x, [32], flip=True),
                               (per_scale[0] + mirrored) / 2, atol=1e-6)


def test_multi_crop_views_lie_on_a_grid_from_corner_to_corner():
    x = images((2, 40, 48, 1))
    assert augment.crop_positions(40, 32, 3) == [0, 4, 8]
    assert augment.crop_positions(32, 32, 5) == [0]  # coinciding crops count once
    assert augment.crop_positions(48, 32, 5) == [0, 4, 8, 12, 16]
    views = to_numpy(augment.multi_crop(x, 32, grid=3))
    assert views.shape == (9, 2, 32, 32, 1)
    np.testing.assert_array_equal(views[5], x[:, 4:36, 16:48])  # row 2, column 3
    flipped = to_numpy(augment.multi_crop(x, 32, grid=5, flip=True))
    assert flipped.shape == (50, 2, 32, 32, 1)  # the paper's 5 x 5 x 2 views per scale
    np.testing.assert_array_equal(flipped[25], x[:, :32, 31::-1])
    assert to_numpy(augment.multi_crop(x[:, :32, :32], 32, grid=3)).shape == (1, 2, 32, 32, 1)


def test_multi_crop_predict_averages_views_then_scales():
    model = small_vgg()
    x = images((3, 32, 32, 2))
    np.testing.assert_allclose(augment.multi_crop_predict(model, x, [32]),
                               to_numpy(model(x, training=False)), atol=1e-6)
    big = to_numpy(augment.rescale(x, 40))
    views = [big[:, t:t + 32, s:s + 32] for t in (0, 4, 8) for s in (0, 4, 8)]
    at_40 = np.mean([to_numpy(model(v, training=False)) for v in views], axis=0)
    np.testing.assert_allclose(augment.multi_crop_predict(model, x, [40]), at_40, atol=1e-6)
    both = augment.multi_crop_predict(model, x, [32, 40])
    np.testing.assert_allclose(both, (to_numpy(model(x, training=False)) + at_40) / 2, atol=1e-6)


def test_only_chains_with_a_flatten_convert():
    inputs = keras.Input((8, 8, 2))
    x = layers.Conv2D(2, 3, padding="same")(inputs)
    residual = keras.Model(inputs, layers.Dense(3)(layers.Flatten()(layers.Add()([x, inputs]))))
    with pytest.raises(ValueError, match="chain of layers"):
        fully_convolutional(residual)
    pooled = keras.Model(inputs, layers.Dense(3)(layers.GlobalAveragePooling2D()(x)))
    with pytest.raises(ValueError, match="only Flatten"):
        fully_convolutional(pooled)


def test_configuration_c_is_d_with_three_1x1_convolutions():
    model = vgg("vgg16_c", include_top=False, input_shape=(32, 32, 3))
    kernels = {layer.name: layer.kernel_size[0] for layer in model.layers
               if isinstance(layer, layers.Conv2D)}
    assert len(kernels) == 13
    assert {name for name, k in kernels.items() if k == 1} == {
        "block3_conv3", "block4_conv3", "block5_conv3"}
    head = (7 * 7 * 512 * 4096 + 4096) + (4096 * 4096 + 4096) + (4096 * 1000 + 1000)
    one_by_ones = (256 * 256 + 256) + 2 * (512 * 512 + 512)
    assert model.count_params() + head == VGG_CONFIGS["vgg16_c"][2] == 133_638_952
    assert VGG_CONFIGS["vgg16_c"][2] == VGG_CONFIGS["vgg13"][2] + one_by_ones  # B + three 1x1
    with pytest.raises(ValueError, match="No ImageNet weights exist for configuration C"):
        vgg("vgg16_c", weights="imagenet")
