"""Data: tensorflow-datasets online, the announced offline stand-in, and no hang in between."""

import socket
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from cnnkit import data

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


def test_no_network_falls_back_within_seconds(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(data, "network_reachable", lambda: False)
    start = time.perf_counter()
    d = data.load("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10
    out = capsys.readouterr().out
    assert f"{OFFLINE_LINE} (no network: storage.googleapis.com unreachable, and mnist is " \
           "not prepared on this machine)" in out
    assert d.offline


def test_failed_download_falls_back_with_its_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(data, "network_reachable", lambda: True)

    def fake_load(name, split, as_supervised, with_info, data_dir, download):
        if not download:
            raise AssertionError("not prepared")
        raise ConnectionError("connection reset")

    monkeypatch.setattr(tfds, "load", fake_load)
    d = data.load("mnist", data_dir=str(tmp_path))
    assert "(the download failed: ConnectionError: connection reset)" in capsys.readouterr().out
    assert d.offline


def test_online_path_reads_tensorflow_datasets(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    with tfds.testing.mock_data(num_examples=40):
        d = data.load("mnist", image_size=32, train_size=30)
        x, y = d.numpy("train")
        xt, _ = d.numpy("test")
    out = capsys.readouterr().out
    assert out == ("cnnkit.data: mnist from tensorflow-datasets (prepared on this machine): "
                   "30 train / 40 test examples.\n")
    assert not d.offline and d.source.startswith("tensorflow-datasets mnist")
    assert x.shape == (30, 32, 32, 1) and xt.shape == (40, 32, 32, 1)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert y.dtype == np.int32 and d.num_classes == 10


def test_batches_cover_the_split_with_a_partial_last_batch(monkeypatch):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", train_size=100, verbose=False)
    sizes = [len(x) for x, _ in d.batches("train", batch_size=32)]
    assert sizes == [32, 32, 32, 4]
    assert [len(x) for x, _ in d.batches("train", 32, drop_remainder=True)] == [32, 32, 32]
    pipeline = d.batches("train", 32)
    first = [next(iter(pipeline))[1].numpy() for _ in range(2)]
    assert not np.array_equal(first[0], first[1])  # reshuffled every epoch
    test_labels = np.concatenate([y.numpy() for _, y in d.batches("test", 64)])
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
    import keras

    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    d = data.load("mnist", train_size=64, verbose=False)
    flip = keras.layers.RandomFlip("horizontal_and_vertical", seed=0)
    plain = next(iter(d.batches("train", 64, shuffle=False)))[0].numpy()
    flipped = next(iter(d.batches("train", 64, shuffle=False, augment=flip)))[0].numpy()
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
    x, y = np.zeros((100, 4, 4, 1), "float32"), np.arange(100)
    assert [len(b) for b, _ in data.array_batches(x, y, 32)] == [32, 32, 32, 4]
    assert [len(b) for b, _ in data.array_batches(x, y, 32, drop_remainder=True)] == [32, 32, 32]
    labels = np.concatenate([l.numpy() for _, l in data.array_batches(x, y, 32, shuffle=True)])
    assert sorted(labels) == list(range(100)) and not np.array_equal(labels, np.arange(100))


def test_array_batches_apply_augmentation_like_dataset_batches():
    import keras

    x, y = np.random.default_rng(0).random((8, 6, 6, 1), dtype=np.float32), np.arange(8)
    flip = keras.layers.RandomFlip("horizontal", seed=0)
    (xb, yb), = list(data.array_batches(x, y, 8, augment=flip))
    np.testing.assert_array_equal(yb.numpy(), y)
    np.testing.assert_allclose(np.sort(xb.numpy().ravel()), np.sort(x.ravel()), rtol=1e-6)


# --- datasets with a train split only (lesson 04's tf_flowers) ------------------------------

def spy_on_tfds_load(monkeypatch):
    """Record the (name, split) of every tfds.load call and let the call through."""
    asked, real = [], tfds.load

    def spy(name, split, **kwargs):
        asked.append((name, split))
        return real(name, split=split, **kwargs)

    monkeypatch.setattr(tfds, "load", spy)
    return asked


def test_tf_flowers_is_cut_from_its_one_train_split(monkeypatch, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    assert data.splits_of("tf_flowers") == ("train[:85%]", "train[85%:]")
    asked = spy_on_tfds_load(monkeypatch)
    with tfds.testing.mock_data(num_examples=40):
        d = data.load("tf_flowers", image_size=24, train_size=30, test_size=10)
        x, y = d.numpy("train")
        xt, yt = d.numpy("test")
    assert asked == [("tf_flowers", ["train[:85%]", "train[85%:]"])]
    assert capsys.readouterr().out == ("cnnkit.data: tf_flowers from tensorflow-datasets "
                                       "(prepared on this machine): 30 train / 10 test examples.\n")
    assert x.shape == (30, 24, 24, 3) and xt.shape == (10, 24, 24, 3)
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
    assert d.class_names == ["dandelion", "daisy", "tulips", "sunflowers", "roses"]
    assert set(np.unique(np.concatenate([y, yt]))) <= set(range(5)) and not d.offline


def test_mnist_still_reads_its_own_train_and_test_splits(monkeypatch):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    assert data.splits_of("mnist") == ("train", "test") == data.DEFAULT_SPLITS
    asked = spy_on_tfds_load(monkeypatch)
    with tfds.testing.mock_data(num_examples=8):
        data.load("mnist", verbose=False)
    assert asked == [("mnist", ["train", "test"])]


def test_photographs_of_different_sizes_need_an_image_size(monkeypatch):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match=r"tf_flowers's images differ in size .* image_size="):
            data.load("tf_flowers")


def test_tf_flowers_has_no_stand_in_so_offline_it_raises(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("CNNKIT_OFFLINE", "1")
    with pytest.raises(ValueError, match="tf_flowers has no offline stand-in yet"):
        data.load("tf_flowers", image_size=32)
    monkeypatch.delenv("CNNKIT_OFFLINE")
    monkeypatch.setattr(data, "network_reachable", lambda: False)
    with pytest.raises(RuntimeError, match="tf_flowers could not be loaded: no network"):
        data.load("tf_flowers", image_size=32, data_dir=str(tmp_path))
    assert "OFFLINE" not in capsys.readouterr().out  # no stand-in was swapped in
