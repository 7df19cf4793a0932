"""Data online: tensorflow-datasets, its fallbacks, and no hang in between (TensorFlow only)."""

import time

import numpy as np
import pytest

tfds = pytest.importorskip("tensorflow_datasets", reason="the online path needs tensorflow-datasets")
# tfds.testing is a submodule that tensorflow-datasets before 4.9.10 does not import by itself.
pytest.importorskip("tensorflow_datasets.testing")

from cnnkit import data  # noqa: E402
from cnnkit.data import fallback  # noqa: E402

OFFLINE_LINE = "cnnkit.data: OFFLINE, mnist unavailable"


def test_no_network_falls_back_within_seconds(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(fallback, "network_reachable", lambda: False)
    start = time.perf_counter()
    d = data.load("mnist", data_dir=str(tmp_path))
    assert time.perf_counter() - start < 10
    out = capsys.readouterr().out
    assert f"{OFFLINE_LINE} (no network: storage.googleapis.com unreachable, and mnist is " \
           "not prepared on this machine)" in out
    assert d.offline


def test_failed_download_falls_back_with_its_reason(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("CNNKIT_OFFLINE", raising=False)
    monkeypatch.setattr(fallback, "network_reachable", lambda: True)

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
    monkeypatch.setattr(fallback, "network_reachable", lambda: False)
    with pytest.raises(RuntimeError, match="tf_flowers could not be loaded: no network"):
        data.load("tf_flowers", image_size=32, data_dir=str(tmp_path))
    assert "OFFLINE" not in capsys.readouterr().out  # no stand-in was swapped in
