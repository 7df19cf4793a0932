"""Data on every backend: the announced offline stand-in and `Batches`, TensorFlow or not."""

import importlib.util
import socket
import time
from pathlib import Path

import keras
import numpy as np
import pytest

from cnnkit import augment, data
from cnnkit.data import fallback

OFFLINE_LINE = "cnnkit.data: OFFLINE, mnist unavailable"


def test_forced_offline_uses_the_packaged_digits_and_says_so(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", image_size=32)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{OFFLINE_LINE} (CNNKIT_OFFLINE=1); using scikit-learn's 1,797 "
                               "handwritten digits")
    assert lines[0].endswith("1,437 train / 360 test examples.")
    assert d.offline and (d.n_train, d.n_test) == (1437, 360)
    x, y = d.numpy("train")
    assert x.shape == (1437, 32, 32, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() > 0.9
    assert y.dtype == np.int32 and set(np.unique(y)) == set(range(10))
    assert d.class_names == [str(i) for i in range(10)] and d.image_shape == (32, 32, 1)


def test_offline_split_is_stratified_and_the_same_every_time(monkeypatch, capsys):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    a = data.load("mnist", verbose=False)
    b = data.load("mnist", verbose=False)
    # verbose=False never hides the swap: each load announces it.
    assert capsys.readouterr().out.count(OFFLINE_LINE) == 2
    ya, yb = a.numpy("test")[1], b.numpy("test")[1]
    np.testing.assert_array_equal(ya, yb)
    assert sorted(np.bincount(ya)) == [35, 35, 36, 36, 36, 36, 36, 36, 37, 37]
    assert a.image_shape == (28, 28, 1)  # MNIST's own size unless asked otherwise


def test_profile_sizes_and_channels_apply_offline(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", image_size=16, channels=3, train_size=100, test_size=50, verbose=False)
    assert (d.n_train, d.n_test) == (100, 50)
    x, _ = d.numpy("test")
    assert x.shape == (50, 16, 16, 3)
    np.testing.assert_array_equal(x[..., 0], x[..., 2])


def test_batches_cover_the_split_with_a_partial_last_batch(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", train_size=100, verbose=False)
    sizes = [len(x) for x, _ in d.batches("train", batch_size=32)]
    assert sizes == [32, 32, 32, 4]
    assert [len(x) for x, _ in d.batches("train", 32, drop_remainder=True)] == [32, 32, 32]
    pipeline = d.batches("train", 32)
    first = np.concatenate([y for _, y in pipeline])
    pipeline.on_epoch_end()  # what fit calls after every epoch
    second = np.concatenate([y for _, y in pipeline])
    assert not np.array_equal(first, second)  # reshuffled every epoch
    np.testing.assert_array_equal(np.sort(first), np.sort(d.numpy("train")[1]))  # every example
    test_labels = np.concatenate([y for _, y in d.batches("test", 64)])
    np.testing.assert_array_equal(test_labels, d.numpy("test")[1])  # test split not shuffled


def test_a_dataset_without_stand_in_is_refused_offline(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    with pytest.raises(ValueError, match="cifar100 has no offline stand-in yet"):
        data.load("cifar100")


def test_reachability_check_is_bounded():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()  # nothing listens there now: refused at once
    start = time.perf_counter()
    assert data.network_reachable("127.0.0.1", port, timeout=1.0) is False
    assert time.perf_counter() - start < 2.0
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        assert data.network_reachable("127.0.0.1", listener.getsockname()[1], timeout=1.0)
    finally:
        listener.close()


def test_augmentation_is_applied_to_training_batches(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", train_size=64, verbose=False)
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=0)
    plain = next(iter(d.batches("train", 64, shuffle=False)))[0]
    flipped = next(iter(d.batches("train", 64, shuffle=False, augment=flip)))[0]
    assert plain.shape == flipped.shape and not np.allclose(plain, flipped)
    # Flips move pixels, they do not change them: each image keeps its sum of intensities.
    np.testing.assert_allclose(plain.sum(axis=(1, 2, 3)), flipped.sum(axis=(1, 2, 3)), rtol=1e-5)


def test_a_lookup_that_never_answers_is_abandoned_in_seconds(monkeypatch):
    def stalled(*args, **kwargs):
        time.sleep(30)

    monkeypatch.setattr(socket, "create_connection", stalled)
    start = time.perf_counter()
    assert data.network_reachable("example.invalid", 443, timeout=1.0) is False
    assert time.perf_counter() - start < 3.0


def test_array_batches_keep_or_drop_the_partial_batch():
    rng = np.random.default_rng(5)
    x, y = rng.random((100, 4, 4, 1), dtype=np.float32), np.arange(100)
    assert [len(b) for b, _ in data.array_batches(x, y, 32)] == [32, 32, 32, 4]
    assert [len(b) for b, _ in data.array_batches(x, y, 32, drop_remainder=True)] == [32, 32, 32]
    assert len(data.array_batches(x, y, 25, drop_remainder=True)) == 4  # nothing left over
    labels = np.concatenate([l for _, l in data.array_batches(x, y, 32, shuffle=True)])
    assert sorted(labels) == list(range(100)) and not np.array_equal(labels, np.arange(100))
    for images, labels in data.array_batches(x, y, 32, shuffle=True, seed=3):
        np.testing.assert_array_equal(images, x[labels])  # each image keeps its label


def test_array_batches_apply_augmentation_like_dataset_batches():
    x, y = np.random.default_rng(0).random((8, 6, 6, 1), dtype=np.float32), np.arange(8)
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    (xb, yb), = list(data.array_batches(x, y, 8, augment=flip))
    np.testing.assert_array_equal(yb, y)
    np.testing.assert_allclose(np.sort(xb.ravel()), np.sort(x.ravel()), rtol=1e-6)
    assert not np.allclose(xb, x)


def test_batches_shuffle_by_their_seed_and_anew_each_epoch():
    x, y = np.random.default_rng(1).random((40, 2, 2, 1), dtype=np.float32), np.arange(40)

    def orders(seed, epochs=3):
        batches, seen = data.array_batches(x, y, 16, shuffle=True, seed=seed), []
        for _ in range(epochs):
            seen.append(np.concatenate([labels for _, labels in batches]))
            batches.on_epoch_end()
        return seen

    a, b, c = orders(0), orders(0), orders(1)
    for epoch_a, epoch_b in zip(a, b):
        np.testing.assert_array_equal(epoch_a, epoch_b)  # the same seed, the same orders
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])
    assert not np.array_equal(a[0], c[0])
    assert all(sorted(epoch) == list(range(40)) for epoch in a + c)


def test_batches_refuse_what_cannot_be_batched():
    x, y = np.ones((10, 2, 2, 1), "float32"), np.arange(10)
    with pytest.raises(ValueError, match="as many examples; got 10 and 9"):
        data.array_batches(x, y[:9])
    for bad in (0, -3, 2.5, True, "32"):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            data.array_batches(x, y, bad)
    batches = data.array_batches(x, y, 4)
    assert len(batches) == 3
    with pytest.raises(IndexError):
        batches[3]


def test_fit_takes_batches_and_counts_their_iterations():
    rng = np.random.default_rng(2)
    x, y = rng.random((70, 4, 4, 1), dtype=np.float32), rng.integers(0, 3, 70)
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(data.array_batches(x, y, 16, shuffle=True), epochs=2, verbose=0)
    assert int(model.optimizer.iterations) == 2 * 5  # ceil(70 / 16) per epoch
    shifted = augment.augment_dataset(data.array_batches(x, y, 16, drop_remainder=True),
                                      keras.layers.RandomTranslation(0.5, 0.5, seed=0))
    model.fit(shifted, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 10 + 4  # floor(70 / 16), on two worker threads
    assert shifted.workers == 2 and shifted.augment is not None


def test_augment_dataset_keeps_the_batches_order_and_labels():
    x, y = np.random.default_rng(3).random((20, 5, 5, 1), dtype=np.float32), np.arange(20)
    plain = data.array_batches(x, y, 8, shuffle=True, seed=7)
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    flipped = augment.augment_dataset(plain, flip)
    for (xa, ya), (xb, yb) in zip(plain, flipped):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xb.sum(axis=(1, 2, 3)), xa.sum(axis=(1, 2, 3)), rtol=1e-5)
    with pytest.raises(TypeError, match="a tf.data.Dataset or a cnnkit.data.Batches"):
        augment.augment_dataset((x, y), flip)


def test_without_tensorflow_the_stand_in_says_what_is_missing(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(fallback, "tensorflow_available", lambda: False)
    monkeypatch.setattr(fallback, "network_reachable", lambda: pytest.fail("no probe is needed"))
    d = data.load("mnist", image_size=16, train_size=20, test_size=10)
    out = capsys.readouterr().out.strip().splitlines()
    assert out == [f"{OFFLINE_LINE} (tensorflow-datasets needs TensorFlow, which is not "
                   "installed: pip install 'cnnkit[tensorflow]' for the online datasets); using "
                   "scikit-learn's 1,797 handwritten digits (8x8 scans by 43 writers), resized "
                   "to 16x16, 20 train / 10 test examples."]
    assert d.offline and d.numpy("train")[0].shape == (20, 16, 16, 1)
    with pytest.raises(RuntimeError, match=r"tf_flowers could not be loaded: tensorflow-datasets "
                                           r"needs TensorFlow, which is not installed"):
        data.load("tf_flowers", image_size=32)


def test_tf_data_batches_need_tensorflow(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "tensorflow" else real(name, *a))
    with pytest.raises(RuntimeError, match="tf.data needs TensorFlow, which is not installed: "
                                           "use cnnkit.data.array_batches"):
        data.tf_data_batches(np.ones((4, 2)), np.arange(4))


def test_on_canvas_pastes_each_image_whole_at_its_corner_and_nothing_else():
    rng = np.random.default_rng(11)
    images = rng.uniform(0.1, 1.0, (6, 5, 5, 2)).astype("float32")
    canvases, corners = data.on_canvas(images, 13, np.random.default_rng(3))
    assert canvases.shape == (6, 13, 13, 2) and corners.shape == (6, 2)
    assert np.array_equal(corners, np.random.default_rng(3).integers(0, 9, size=(6, 2)))
    for canvas, image, (top, left) in zip(canvases, images, corners):
        assert np.array_equal(canvas[top:top + 5, left:left + 5], image)
        assert np.count_nonzero(canvas) == image.size  # black everywhere else
    with pytest.raises(ValueError, match="side <= canvas"):
        data.on_canvas(images, 4, rng)


def test_the_package_keeps_the_old_module_s_names():
    # cnnkit.data was one module: `cnnkit.data.X` and `from cnnkit.data import X` still work,
    # each name defined once, in the package module that owns it.
    for name in ("ImageData", "Batches", "load", "array_batches", "tf_data_batches", "FALLBACKS",
                 "SPLITS", "DEFAULT_SPLITS", "splits_of", "on_canvas", "PHOTOS"):
        assert getattr(data, name) is getattr(data.classification, name), name
    for name in ("offline_forced", "network_reachable", "tensorflow_available",
                 "online_unavailable", "from_tfds", "announce_offline", "OFFLINE_VAR",
                 "PROBE_HOST", "NO_TENSORFLOW"):
        assert getattr(data, name) is getattr(fallback, name), name
    from cnnkit.data import _Unavailable

    assert _Unavailable is fallback.Unavailable
    # ImageData and SegmentationData have their num_classes and offline in one base class.
    for dataset in (data.ImageData, data.SegmentationData):
        assert issubclass(dataset, fallback.DatasetBase)
        assert not {"num_classes", "offline"} & set(vars(dataset)), dataset


def test_the_fallback_has_one_home():
    # The reachability probe and the printed OFFLINE line live in cnnkit/data/fallback.py only:
    # every other module (lessons' datasets, stand-ins, segmentation) calls it.
    kit = Path(data.__file__).parents[1]
    homes = sorted(str(p.relative_to(kit.parent)) for p in kit.rglob("*.py")
                   if any(mark in p.read_text() for mark in
                          ("create_connection", ": OFFLINE, ", fallback.PROBE_HOST)))
    assert homes == ["cnnkit/data/fallback.py"]
