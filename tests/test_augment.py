"""cnnkit.augment: AlexNet's PCA colour shift and crops computed exactly, Keras pipelines as asked,
and both places an augmentation runs (inside a model, saved and reloaded; inside tf.data)."""

import keras
import numpy as np
import pytest

import requires
from cnnkit import augment
from cnnkit.augment import PCAColorAugmentation, PerImageRandomCrop
from helpers import to_numpy

# A rotation of RGB space (orthonormal columns) and eigenvalues of different sizes.
ROTATION = np.linalg.qr(np.random.default_rng(0).normal(size=(3, 3)))[0]
EIGENVALUES = np.array([0.3, 0.02, 0.005])


def images(shape, seed=0):
    return np.random.default_rng(seed).uniform(size=shape).astype("float32")


def numpy_shift(alpha, eigenvalues=EIGENVALUES, eigenvectors=ROTATION):
    """The paper's sum_i alpha_i * lambda_i * p_i, one term at a time."""
    return sum(alpha[..., i, None] * eigenvalues[i] * eigenvectors[:, i] for i in range(3))


def test_color_shift_is_the_papers_sum_for_given_alphas():
    layer = PCAColorAugmentation(EIGENVALUES, ROTATION)
    alpha = np.array([[0.1, -0.2, 0.05], [-0.03, 0.0, 0.3]], dtype="float32")
    np.testing.assert_allclose(to_numpy(layer.color_shift(alpha)), numpy_shift(alpha), atol=1e-7)


def test_training_call_adds_one_shift_per_image_from_alphas_drawn_with_the_seed():
    x = images((4, 5, 6, 3))
    out = to_numpy(PCAColorAugmentation(EIGENVALUES, ROTATION, stddev=0.1, seed=7)(
        x, training=True))
    # The layer's first draw: a fresh generator with the same seed draws the same alphas.
    alpha = to_numpy(keras.random.normal((4, 3), stddev=0.1, dtype="float32",
                                         seed=keras.random.SeedGenerator(7)))
    np.testing.assert_allclose(out, x + numpy_shift(alpha)[:, None, None, :], atol=1e-6)
    shift = (out - x).reshape(4, -1, 3)
    assert np.ptp(shift, axis=1).max() < 1e-6  # the same shift for every pixel of an image
    assert np.abs(np.diff(shift[:, 0], axis=0)).min() > 1e-4  # another for every image


def test_a_single_image_gets_a_single_shift_and_inference_is_the_identity():
    layer = PCAColorAugmentation(EIGENVALUES, ROTATION, seed=1)
    x = images((5, 5, 3))
    out = to_numpy(layer(x, training=True))
    assert out.shape == (5, 5, 3) and np.ptp((out - x).reshape(-1, 3), axis=0).max() < 1e-6
    assert np.abs(out - x).max() > 1e-4
    batch = images((2, 5, 5, 3))
    np.testing.assert_array_equal(to_numpy(layer(batch, training=False)), batch)


def test_alphas_have_the_papers_distribution_one_per_image():
    # Over 3000 one-pixel images, the alphas recovered from the shifts are N(0, stddev).
    layer = PCAColorAugmentation(EIGENVALUES, ROTATION, stddev=0.1, seed=3)
    x = np.zeros((3000, 1, 1, 3), "float32")
    shift = to_numpy(layer(x, training=True))[:, 0, 0].astype(np.float64)
    alpha = shift @ ROTATION / EIGENVALUES
    assert np.abs(alpha.mean(axis=0)).max() < 0.01
    np.testing.assert_allclose(alpha.std(axis=0), 0.1, rtol=0.05)


def test_rgb_pca_recovers_a_known_covariance_from_arrays_and_from_batches():
    rng = np.random.default_rng(1)
    white = rng.normal(size=(4000, 3))
    white -= white.mean(axis=0)
    white = white @ np.linalg.inv(np.linalg.cholesky(np.cov(white.T, bias=True)).T)
    # Pixels with covariance ROTATION @ diag(EIGENVALUES) @ ROTATION.T exactly, mean 0.5.
    pixels = 0.5 + white @ np.diag(np.sqrt(EIGENVALUES)) @ ROTATION.T
    x = pixels.reshape(40, 10, 10, 3)
    eigenvalues, eigenvectors = augment.rgb_pca(x)
    np.testing.assert_allclose(eigenvalues, EIGENVALUES, rtol=1e-9)
    np.testing.assert_allclose(np.abs(eigenvectors.T @ ROTATION), np.eye(3), atol=1e-9)
    assert (eigenvectors[np.abs(eigenvectors).argmax(axis=0), range(3)] > 0).all()
    from_batches = augment.rgb_pca(iter(np.split(x, 8)), chunk=7)
    np.testing.assert_allclose(from_batches[0], eigenvalues, rtol=1e-9)
    np.testing.assert_allclose(from_batches[1], eigenvectors, atol=1e-9)
    # lambda grows with the square of the pixel scale: [0, 255] pixels give 255**2 times more.
    np.testing.assert_allclose(augment.rgb_pca(255 * x)[0], 255 ** 2 * EIGENVALUES, rtol=1e-9)
    layer = PCAColorAugmentation.from_images(x, stddev=0.2, seed=5)
    np.testing.assert_allclose(layer.eigenvalues, EIGENVALUES, rtol=1e-9)
    assert layer.stddev == 0.2 and layer.seed == 5


def test_imagenet_eigenvectors_are_orthonormal_columns_by_default():
    vectors = np.array(augment.IMAGENET_EIGENVECTORS)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-3)
    layer = PCAColorAugmentation()
    assert layer.eigenvalues == augment.IMAGENET_EIGENVALUES and layer.stddev == 0.1


def crop_position(image, patch):
    """Every (top, left) at which `patch` is exactly a window of `image`."""
    h, w = patch.shape[:2]
    return [(t, l) for t in range(image.shape[0] - h + 1) for l in range(image.shape[1] - w + 1)
            if np.array_equal(image[t:t + h, l:l + w], patch)]


def test_per_image_crop_picks_a_position_per_image_and_the_centre_at_inference():
    x = images((12, 10, 9, 3))
    layer = PerImageRandomCrop(6, 4, seed=2)
    out = to_numpy(layer(x, training=True))
    assert out.shape == (12, 6, 4, 3)
    positions = [crop_position(image, patch) for image, patch in zip(x, out)]
    assert all(len(p) == 1 for p in positions)
    assert len(set(p[0] for p in positions)) > 4  # not one position for the batch
    np.testing.assert_array_equal(to_numpy(layer(x, training=False)), x[:, 2:8, 2:6])
    assert len(crop_position(x[0], to_numpy(layer(x[0], training=True)))) == 1
    assert layer.compute_output_shape((None, 10, 9, 3)) == (None, 6, 4, 3)
    with pytest.raises(ValueError, match="resize them first"):
        layer(images((1, 5, 9, 3)))


def test_ten_crop_is_the_four_corners_and_centre_then_their_mirror_images():
    x = images((2, 5, 6, 3))
    views = to_numpy(augment.ten_crop(x, (3, 2)))
    assert views.shape == (10, 2, 3, 2, 3)
    expected = [x[:, :3, :2], x[:, :3, 4:], x[:, 2:, :2], x[:, 2:, 4:], x[:, 1:4, 2:4]]
    expected += [view[:, :, ::-1] for view in expected]
    np.testing.assert_array_equal(views, np.stack(expected))
    inputs = keras.Input((3, 2, 3))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(
        keras.layers.Flatten()(inputs)))
    mean = np.mean([to_numpy(model(view)) for view in expected], axis=0)
    np.testing.assert_allclose(augment.ten_crop_predict(model, x), mean, atol=1e-6)


def test_pipeline_layers_follow_the_arguments():
    default = augment.pipeline(seed=10)
    assert isinstance(default, keras.layers.Pipeline)
    assert [layer.name for layer in default.layers] == ["random_flip", "random_rotation",
                                                        "random_zoom"]
    assert [layer.seed for layer in default.layers] == [10, 11, 12]
    assert default.layers[0].mode == "horizontal"
    assert default.layers[1].factor == (-0.1, 0.1) and default.layers[2].height_factor == 0.1
    every = augment.pipeline(crop=(4, 6), flip="vertical", rotation=(-0.05, 0.1), zoom=0.2,
                             contrast=0.3, brightness=0.2, value_range=(0, 255), seed=0)
    assert [type(layer) for layer in every.layers] == [
        PerImageRandomCrop, keras.layers.RandomFlip, keras.layers.RandomRotation,
        keras.layers.RandomZoom, keras.layers.RandomContrast, keras.layers.RandomBrightness]
    crop, flip, rotation, zoom, contrast, brightness = every.layers
    assert (crop.height, crop.width) == (4, 6) and flip.mode == "vertical"
    assert rotation.factor == (-0.05, 0.1) and zoom.height_factor == 0.2
    # Both ways from 1: Keras's own RandomContrast(0.3) draws factors in [1, 1.3] only.
    assert contrast.factor == (0.3, 0.3) and tuple(contrast.value_range) == (0, 255)
    assert brightness.factor == (-0.2, 0.2) and tuple(brightness.value_range) == (0, 255)
    only = augment.pipeline(flip=None, rotation=None, zoom=None, brightness=0.1)
    assert [layer.name for layer in only.layers] == ["random_brightness"]


def test_crop_sizes():
    out = augment.pipeline(crop=(4, 6), input_shape=(8, 8, 3), seed=0)(images((2, 8, 8, 3)))
    assert tuple(out.shape) == (2, 4, 6, 3)
    alexnet = augment.alexnet_augmentation(seed=0)
    assert [layer.name for layer in alexnet.layers] == ["random_crop", "random_flip",
                                                        "pca_color"]
    assert tuple(alexnet(np.zeros((1, 256, 256, 3), "float32")).shape) == (1, 224, 224, 3)
    assert tuple(augment.alexnet_augmentation(crop_size=227)(
        np.zeros((256, 256, 3), "float32")).shape) == (227, 227, 3)


@pytest.mark.parametrize("make, message", [
    (lambda: augment.pipeline(rotation=-0.1), r"rotation=-0.1: give a number in \(0, 0.5\]"),
    (lambda: augment.pipeline(zoom=0), "or None to turn it off"),
    (lambda: augment.pipeline(contrast=1.5), r"contrast=1.5: give a number in \(0, 1.0\]"),
    (lambda: augment.pipeline(brightness=(0.3, 0.1)), "low <= high"),
    (lambda: augment.pipeline(contrast=(0.1, 0.2)), r"give one number c in \(0, 1\]"),
    (lambda: augment.pipeline(flip="diagonal"), "give one of"),
    (lambda: augment.pipeline(crop=0), "positive int"),
    (lambda: augment.pipeline(crop=300, input_shape=(256, 256, 3)),
     r"crop=\(300, 300\) is larger than the images \(256, 256\)"),
    (lambda: augment.pipeline(value_range=(1, 0)), "low < high"),
    (lambda: augment.pipeline(seed=1.5), "give an int"),
    (lambda: augment.pipeline(flip=None, rotation=None, zoom=None), "every augmentation is off"),
    (lambda: augment.alexnet_augmentation(image_size=200), "larger than image_size"),
    (lambda: augment.alexnet_augmentation(eigenvalues=EIGENVALUES), "give both"),
    (lambda: PCAColorAugmentation(EIGENVALUES[:2], ROTATION), r"shape \(3,\)"),
    (lambda: PCAColorAugmentation(-EIGENVALUES, ROTATION), ">= 0"),
    (lambda: PCAColorAugmentation(stddev=-0.1), "standard deviation"),
    (lambda: augment.ten_crop(images((1, 4, 4, 3)), 5), "larger than the images"),
])
def test_bad_arguments_say_what_to_do(make, message):
    with pytest.raises(ValueError, match=message):
        make()


@pytest.fixture(scope="module")
def augmented_model():
    inner = keras.Sequential([keras.Input((6, 6, 3)), keras.layers.Conv2D(4, 3),
                              keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(3, activation="softmax")], name="tiny")
    aug = augment.alexnet_augmentation(image_size=8, crop_size=6, eigenvalues=EIGENVALUES,
                                       eigenvectors=ROTATION, seed=0)
    return inner, augment.with_augmentation(inner, aug, input_shape=(8, 8, 3))


def test_inside_a_model_the_augmentation_is_skipped_at_inference(augmented_model):
    inner, model = augmented_model
    assert model.input_shape == (None, 8, 8, 3) and model.name == "tiny_augmented"
    x = images((5, 8, 8, 3))
    # predict: the centre crop, no flip, no colour shift.
    np.testing.assert_allclose(model.predict(x, verbose=0),
                               inner.predict(x[:, 1:7, 1:7], verbose=0), atol=1e-6)
    assert np.abs(to_numpy(model(x, training=True)) - model.predict(x, verbose=0)).max() > 1e-5
    with pytest.raises(ValueError, match="pass input_shape="):
        augment.with_augmentation(inner, augment.pipeline(crop=4))


def test_keras_round_trip_in_safe_mode_gives_the_same_outputs(augmented_model, tmp_path):
    _, model = augmented_model
    path = tmp_path / "augmented.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    pipeline = loaded.get_layer("alexnet_augmentation")
    crop, _, color = pipeline.layers
    assert type(crop) is PerImageRandomCrop and type(color) is PCAColorAugmentation
    np.testing.assert_allclose(color.eigenvalues, EIGENVALUES)
    np.testing.assert_allclose(color.eigenvectors, ROTATION)
    x = images((3, 8, 8, 3), seed=4)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@requires.tensorflow
def test_in_tf_data_per_image_and_per_batch():
    import tensorflow as tf
    x, y = images((6, 8, 8, 3)), np.arange(6)
    color = PCAColorAugmentation(EIGENVALUES, ROTATION, seed=0)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).map(
        lambda image, label: (color(image, training=True), label))
    out = np.stack([image.numpy() for image, _ in ds])
    assert out.dtype == np.float32 and out.shape == x.shape
    shift = (out - x).reshape(6, -1, 3)
    assert np.ptp(shift, axis=1).max() < 1e-6 and np.abs(shift).min() > 1e-6
    alexnet = augment.alexnet_augmentation(image_size=8, crop_size=6, seed=1)
    for before_batching in (True, False):
        ds = tf.data.Dataset.from_tensor_slices((x, y))
        ds = augment.augment_dataset(ds, alexnet).batch(3) if before_batching else \
            augment.augment_dataset(ds.batch(3), alexnet)
        batches = list(ds)
        assert [tuple(b[0].shape) for b in batches] == [(3, 6, 6, 3)] * 2
        assert batches[0][0].dtype == tf.float32
        np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    only_images = augment.augment_dataset(tf.data.Dataset.from_tensor_slices(x).batch(6),
                                          augment.pipeline(brightness=0.2, seed=0))
    assert next(iter(only_images)).shape == (6, 8, 8, 3)


def test_augmented_samples_for_a_grid():
    samples = augment.augmented_samples(augment.pipeline(crop=6, seed=0), images((8, 8, 3)), n=5)
    assert samples.shape == (5, 6, 6, 3)
    assert len({samples[i].tobytes() for i in range(5)}) == 5


# --- U-Net's elastic deformation ---------------------------------------------------------------

def test_the_field_passes_through_the_coarse_grids_random_draws():
    from cnnkit.augment import displacement_field

    field = displacement_field((21, 41), grid=3, sigma=5.0, rng=np.random.default_rng(3))
    coarse = np.random.default_rng(3).normal(0.0, 5.0, size=(2, 3, 3))
    assert field.shape == (2, 21, 41)
    np.testing.assert_allclose(field[:, ::10, ::20], coarse, atol=1e-9)
    # the draws' spread is sigma: 10 pixels in U-Net
    many = np.random.default_rng(4)
    nodes = np.stack([displacement_field((5, 5), sigma=10.0, rng=many)[:, ::2, ::2]
                      for _ in range(500)])
    assert 9.5 < nodes.std() < 10.5


def test_no_displacement_is_the_identity_and_a_constant_one_a_shift():
    from cnnkit.augment import elastic_deformation

    rng = np.random.default_rng(5)
    image, mask = rng.random((12, 14)), rng.integers(0, 3, (12, 14))
    same, same_mask = elastic_deformation(image, mask, sigma=0.0, rng=rng)
    np.testing.assert_allclose(same, image, atol=1e-9)
    assert np.array_equal(same_mask, mask)
    field = np.stack([np.full((12, 14), 2.0), np.full((12, 14), -3.0)])
    shifted, shifted_mask = elastic_deformation(image, mask, field=field)
    np.testing.assert_allclose(shifted[:10, 3:], image[2:, :11], atol=1e-9)
    assert np.array_equal(shifted_mask[:10, 3:], mask[2:, :11])


def test_image_and_mask_move_together_and_labels_never_blend():
    from cnnkit.augment import elastic_deformation

    mask = np.zeros((40, 48), "uint8")
    mask[8:30, 10:25], mask[20:36, 30:44] = 1, 2
    image, warped_mask = elastic_deformation(mask.astype("float32"), mask, sigma=4.0, order=0,
                                             rng=np.random.default_rng(6))
    assert np.array_equal(image, warped_mask) and warped_mask.dtype == np.uint8
    assert set(np.unique(warped_mask)) == {0, 1, 2} and not np.array_equal(warped_mask, mask)
    rgb = np.random.default_rng(7).integers(0, 256, (40, 48, 3)).astype("uint8")
    field = np.random.default_rng(8).normal(0, 3, (2, 40, 48))
    warped = elastic_deformation(rgb, field=field)
    assert warped.dtype == np.uint8 and warped.shape == rgb.shape
    for k in range(3):
        assert np.array_equal(warped[..., k], elastic_deformation(rgb[..., k], field=field))


@pytest.mark.parametrize("kwargs, message", [({"grid": 1}, "an int >= 2"),
                                             ({"sigma": -1.0}, ">= 0"),
                                             ({"mask": np.zeros((5, 5))}, "same height and width")])
def test_elastic_deformation_says_what_is_wrong(kwargs, message):
    from cnnkit.augment import elastic_deformation

    with pytest.raises(ValueError, match=message):
        elastic_deformation(np.zeros((6, 6)), **kwargs)
