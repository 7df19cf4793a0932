"""cnnkit.data.segmentation (old path cnnkit.segmentation): mean IoU on hand-computed cases
and against keras.metrics.MeanIoU, the generated shapes (exact masks, equal areas, every
class), and the three ways `load` goes: Oxford-IIIT Pet prepared on this machine (a stand-in
tf.data split with the real feature names), no network, a failed download, and
CNNKIT_OFFLINE=1, each announced in one line."""

import numpy as np
import pytest

import keras
import requires
from cnnkit.data import fallback
from cnnkit.data import segmentation as seg

# Two rows of four pixels; worked by hand in test_class_iou_by_hand.
TRUTH = np.array([[0, 0, 1, 1],
                  [0, 2, 2, 1]])
PRED = np.array([[0, 1, 1, 1],
                 [0, 2, 1, 1]])


def test_confusion_by_hand():
    np.testing.assert_array_equal(seg.confusion(TRUTH, PRED, 4), [[2, 1, 0, 0],
                                                                  [0, 3, 0, 0],
                                                                  [0, 1, 1, 0],
                                                                  [0, 0, 0, 0]])


def test_class_iou_by_hand():
    # class 0: 2 right of 3 true and 2 predicted -> 2 / 3; class 1: 3 / 5 (two false alarms);
    # class 2: 1 / 2; class 3 occurs nowhere -> NaN, left out of the mean.
    iou = seg.class_iou(TRUTH, PRED, 4)
    np.testing.assert_allclose(iou[:3], [2 / 3, 3 / 5, 1 / 2])
    assert np.isnan(iou[3])
    assert seg.mean_iou(TRUTH, PRED, 4) == pytest.approx((2 / 3 + 3 / 5 + 1 / 2) / 3)
    assert seg.mean_iou(TRUTH, TRUTH, 4) == 1.0


def test_a_class_only_predicted_counts_as_zero():
    truth, pred = np.zeros((3, 3), int), np.zeros((3, 3), int)
    pred[0, 0] = 1  # a false alarm of class 1, which the truth never has
    np.testing.assert_allclose(seg.class_iou(truth, pred, 2), [8 / 9, 0.0])
    assert seg.mean_iou(truth, pred, 2) == pytest.approx(4 / 9)


def test_scores_are_arg_maxed_and_labels_may_be_floats():
    scores = np.eye(4)[PRED] + 0.1  # one more axis of class scores
    assert seg.mean_iou(TRUTH.astype("float32"), scores, 4) == seg.mean_iou(TRUTH, PRED, 4)


def test_agrees_with_keras_mean_iou_on_random_maps():
    rng = np.random.default_rng(0)
    for classes in (2, 3, 5):
        truth = rng.integers(0, classes, (4, 16, 16))
        pred = np.where(rng.random(truth.shape) < 0.6, truth,
                        rng.integers(0, classes, truth.shape))
        metric = keras.metrics.MeanIoU(num_classes=classes)
        metric.update_state(truth, pred)
        assert seg.mean_iou(truth, pred, classes) == pytest.approx(float(metric.result()),
                                                                   rel=1e-6)


@pytest.mark.parametrize("truth, pred, classes, message", [
    (np.zeros((2, 3)), np.zeros((3, 2)), 2, r"same shape .* one more axis of 2 class scores"),
    (np.array([0, 1, 2]), np.array([0, 1, 1]), 2, "y_true must hold whole-number labels from 0 "
     "to 1; got values from 0 to 2"),
    (np.array([0, 1]), np.array([0, -1]), 2, "y_pred must hold whole-number labels"),
    (np.array([0.5, 1]), np.array([0, 1]), 2, "whole-number labels"),
    (np.array([0, 1]), np.array([0, 1]), 0, "classes must be a positive whole number"),
    (np.zeros(0), np.zeros(0), 2, "at least one pixel"),
])
def test_bad_arguments_say_what_is_wrong(truth, pred, classes, message):
    with pytest.raises(ValueError, match=message):
        seg.mean_iou(truth, pred, classes)


# ---- generated shapes ----------------------------------------------------------------------

def test_shapes_arrays_and_determinism():
    x, y = seg.shapes(40, 32, seed=3)
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((40, 32, 32, 3), np.float32, (40, 32, 32),
                                                    np.int32)
    assert x.min() >= 0 and x.max() <= 1 and set(np.unique(y)) <= {0, 1, 2, 3}
    again, other = seg.shapes(40, 32, seed=3), seg.shapes(40, 32, seed=4)
    np.testing.assert_array_equal(again[0], x)
    np.testing.assert_array_equal(again[1], y)
    assert not np.array_equal(other[1], y)


def test_every_class_occurs_and_the_background_dominates():
    _, y = seg.shapes(200, 32, seed=0)
    fractions = np.bincount(y.ravel(), minlength=4) / y.size
    assert 0.7 < fractions[0] < 0.9
    assert all(0.04 < f < 0.1 for f in fractions[1:]), fractions


@pytest.mark.parametrize("label", [1, 2, 3])
def test_the_three_shapes_have_equal_areas(label):
    """Circle radius r, square side r sqrt(pi), triangle of the same area: pi r^2 pixels."""
    y, x = np.mgrid[0:128, 0:128] + 0.5
    area = seg._shape(label, x, y, 64.0, 64.0, 30.0, 0.3).sum()
    assert area == pytest.approx(np.pi * 30 ** 2, rel=0.01)


def test_the_circle_mask_is_the_pixels_whose_centre_is_inside():
    y, x = np.mgrid[0:9, 0:9] + 0.5
    mask = seg._shape(1, x, y, 4.5, 4.5, 2.0, 0.0)  # centred on pixel (4, 4)
    expected = np.zeros((9, 9), bool)
    for i in range(9):
        for j in range(9):
            expected[i, j] = (i - 4) ** 2 + (j - 4) ** 2 <= 4
    np.testing.assert_array_equal(mask, expected)
    assert mask.sum() == 13


def test_masks_are_exact_each_shape_is_one_colour_plus_noise():
    """With one shape per image, the pixels under its label vary only by the added noise
    (std 0.04), and differ from the background."""
    x, y = seg.shapes(30, 64, seed=5, max_shapes=1)
    for image, mask in zip(x, y):
        inside = image[mask > 0]
        assert len(np.unique(mask)) == 2 and len(inside) > 50
        assert inside.std(axis=0).max() < 0.05
        assert np.abs(inside.mean(axis=0) - image[mask == 0].mean(axis=0)).max() > 0.15


@pytest.mark.parametrize("options", [dict(n=0), dict(image_size=2.5), dict(max_shapes=True)])
def test_shapes_refuses_bad_sizes(options):
    with pytest.raises(ValueError, match="must be a positive whole number"):
        seg.shapes(**{"n": 2, **options})


# ---- load: online, offline, announced ------------------------------------------------------

def fake_pets(n, height=48, width=40, seed=0):
    """A split with oxford_iiit_pet's feature names and types: uint8 image, uint8 trimap 1-3."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    return tf.data.Dataset.from_tensor_slices({
        "image": rng.integers(0, 256, (n, height, width, 3), dtype=np.uint8),
        "segmentation_mask": rng.integers(1, 4, (n, height, width, 1), dtype=np.uint8),
        "label": rng.integers(0, 37, n)})


@requires.tensorflow
def test_load_uses_the_pets_prepared_on_this_machine(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    calls = []

    def splits(data_dir, download):
        calls.append(download)
        return [fake_pets(5), fake_pets(4, seed=1)]

    monkeypatch.setattr(seg, "_pets_splits", splits)
    data = seg.load(32, train_size=3)
    assert calls == [False]  # prepared: no download, no network probe
    assert capsys.readouterr().out == (
        "cnnkit.segmentation: oxford_iiit_pet from tensorflow-datasets (prepared on this "
        "machine): 3 train / 4 test images, 32x32, classes pet, background, border.\n")
    assert not data.offline and data.class_names == seg.PET_CLASSES and data.num_classes == 3
    assert data.x_train.shape == (3, 32, 32, 3) and data.x_test.shape == (4, 32, 32, 3)
    assert data.x_train.dtype == np.float32 and 0 <= data.x_train.min() <= data.x_train.max() <= 1
    assert data.y_train.shape == (3, 32, 32) and data.y_train.dtype == np.int32
    # Nearest-neighbour masks: only the trimap's three labels, less one; never a blend.
    assert set(np.unique(np.concatenate([data.y_train, data.y_test]))) == {0, 1, 2}
    first = next(iter(fake_pets(5)))  # the first example, resized by the documented rule
    x0, y0 = seg._resize_pair(first["image"].numpy(), first["segmentation_mask"].numpy(), 32)
    np.testing.assert_array_equal(data.x_train[0], x0)
    np.testing.assert_array_equal(data.y_train[0], y0)


def test_pets_masks_are_resized_nearest_and_images_bilinear():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, 2:] = 255
    mask = np.array([[1, 1, 3, 3]] * 4, np.uint8)[..., None]
    x, y = seg._resize_pair(image, mask, 8)
    np.testing.assert_array_equal(y[0], [0, 0, 0, 0, 2, 2, 2, 2])
    np.testing.assert_allclose(x[0, :, 0], [0, 0, 0, 0.25, 0.75, 1, 1, 1])


def test_load_without_network_falls_back_and_says_why(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    # The fallback's logic, with or without TensorFlow: tensorflow-datasets is replaced below.
    monkeypatch.setattr(fallback, "tensorflow_available", lambda: True)

    def not_prepared(data_dir, download):
        raise AssertionError("a download must not be tried") if download else FileNotFoundError()

    monkeypatch.setattr(seg, "_pets_splits", not_prepared)
    monkeypatch.setattr(fallback, "network_reachable", lambda: False)
    data = seg.load(32, train_size=6, test_size=4)
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and out.startswith("cnnkit.segmentation: OFFLINE, oxford_iiit_pet "
                                                   "unavailable (no network: ")
    assert "generated shapes with exact masks" in out and "6 train / 4 test images" in out
    assert data.offline and data.name == "shapes" and data.class_names == seg.SHAPE_CLASSES
    assert data.x_train.shape == (6, 32, 32, 3) and data.y_test.shape == (4, 32, 32)


def test_a_failed_download_falls_back_with_its_reason(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    # The fallback's logic, with or without TensorFlow: tensorflow-datasets is replaced below.
    monkeypatch.setattr(fallback, "tensorflow_available", lambda: True)

    def fails(data_dir, download):
        raise (ConnectionError("reset by peer") if download else FileNotFoundError())

    monkeypatch.setattr(seg, "_pets_splits", fails)
    monkeypatch.setattr(fallback, "network_reachable", lambda: True)
    data = seg.load(16, train_size=2, test_size=2, verbose=False)
    assert "the download failed: ConnectionError: reset by peer" in capsys.readouterr().out
    assert data.offline


def test_offline_switch_skips_tensorflow_datasets(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    monkeypatch.setattr(seg, "_pets_splits", lambda *a, **k: pytest.fail("tfds was called"))
    data = seg.load(16, train_size=3, test_size=2, seed=7)
    out = capsys.readouterr().out
    assert out.startswith("cnnkit.segmentation: OFFLINE, oxford_iiit_pet unavailable "
                          "(CNNKIT_OFFLINE=1); using generated shapes")
    np.testing.assert_array_equal(data.y_train, seg.shapes(3, 16, seed=7)[1])
    np.testing.assert_array_equal(data.y_test, seg.shapes(2, 16, seed=8)[1])
    asked = []
    monkeypatch.setattr(seg, "shapes", lambda n, size, seed: asked.append(n) or (None, None))
    seg.load(16)
    assert asked == [seg.SHAPES_TRAIN, seg.SHAPES_TEST] == [2_000, 500]


def test_without_tensorflow_the_shapes_say_what_is_missing(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(fallback, "tensorflow_available", lambda: False)
    monkeypatch.setattr(seg, "_pets_splits", lambda *a, **k: pytest.fail("tfds was called"))
    monkeypatch.setattr(fallback, "network_reachable", lambda: pytest.fail("no probe is needed"))
    data = seg.load(16, train_size=3, test_size=2, seed=7)
    out = capsys.readouterr().out
    assert out.startswith("cnnkit.segmentation: OFFLINE, oxford_iiit_pet unavailable "
                          "(tensorflow-datasets needs TensorFlow, which is not installed: pip "
                          "install 'cnnkit[tensorflow]' for the online datasets); using "
                          "generated shapes")
    np.testing.assert_array_equal(data.y_train, seg.shapes(3, 16, seed=7)[1])


def test_the_old_path_cnnkit_segmentation_is_this_module():
    import cnnkit.segmentation
    from cnnkit import segmentation

    # One module under two names, so its private names and monkeypatching reach the code.
    assert cnnkit.segmentation is segmentation is seg is cnnkit.data.segmentation
    assert seg.__name__ == "cnnkit.data.segmentation" and segmentation._shape is seg._shape


def test_pixel_crossentropy_is_keras_sparse_crossentropy_over_every_pixel():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(2, 5, 3, 4)).astype("float32")
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 4, (2, 5, 3))
    flat = keras.ops.convert_to_numpy(seg.pixel_crossentropy(labels, probabilities))
    assert flat.shape == (30,)
    by_hand = -np.log(np.take_along_axis(probabilities, labels[..., None], -1))[..., 0]
    np.testing.assert_allclose(flat, by_hand.reshape(-1), rtol=1e-5)
    assert keras.saving.get_registered_object("cnnkit>pixel_crossentropy") is seg.pixel_crossentropy
