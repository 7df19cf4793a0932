"""Classification datasets: tensorflow-datasets online, real packaged data offline, never a hang.

`load("mnist")` goes through `cnnkit.data.fallback`: the copy prepared on this machine, a
download after a reachability check of a few seconds, else an offline stand-in made of real
data that ships inside an installed package (`FALLBACKS`), announced with one printed line that
says what was used instead and why. `CNNKIT_OFFLINE=1` skips straight to the stand-in. A dataset
without a stand-in (tf_flowers) raises instead, so a lesson can choose its own offline path.
Datasets with a "train" split only are split by `SPLITS`.

TensorFlow is optional. The offline stand-ins are NumPy arrays, batched by `Batches` (a
`keras.utils.PyDataset`), which `model.fit` takes on every backend; tf.data and
tensorflow-datasets serve the online path only, where TensorFlow is installed. Without it,
`load` goes straight to the stand-in and its printed line names the missing package.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import keras
import numpy as np

from cnnkit.data import fallback
from cnnkit.data.fallback import DatasetBase

__all__ = ["ImageData", "Batches", "load", "array_batches", "tf_data_batches", "FALLBACKS",
           "SPLITS", "splits_of", "on_canvas"]


@dataclass
class ImageData(DatasetBase):
    """A classification dataset: its splits as (images, labels) NumPy arrays (offline), or as
    unbatched tf.data pipelines of (image, label) (tensorflow-datasets).

    Images are float32 in [0, 1], shape (height, width, channels); labels are int32.
    """

    name: str
    source: str  # where the examples came from
    train: object  # (x, y) NumPy arrays, or a tf.data.Dataset
    test: object
    n_train: int
    n_test: int
    class_names: list
    image_shape: tuple

    def batches(self, split="train", batch_size=32, shuffle=None, drop_remainder=False, seed=0,
                augment=None):
        """The split in batches for `model.fit`, shuffled anew every epoch (the training split
        by default): a `Batches` for arrays, a cached and prefetched tf.data pipeline otherwise.

        `augment`, a Keras layer such as RandomTranslation, is applied to every batch in
        training mode, so each epoch sees freshly transformed images.
        """
        ds, n = self._split(split)
        shuffle = split == "train" if shuffle is None else shuffle
        if isinstance(ds, tuple):
            return Batches(*ds, batch_size=batch_size, shuffle=shuffle,
                           drop_remainder=drop_remainder, seed=seed, augment=augment)
        return _pipeline(ds.cache(), n, batch_size, shuffle, drop_remainder, seed, augment)

    def numpy(self, split="train"):
        """The whole split as NumPy arrays (x, y), for any Keras backend."""
        ds, n = self._split(split)
        if isinstance(ds, tuple):
            return ds
        x, y = next(iter(ds.batch(max(n, 1)).as_numpy_iterator()))
        return x, y

    def _split(self, split):
        if split == "train":
            return self.train, self.n_train
        if split == "test":
            return self.test, self.n_test
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")


def _pipeline(ds, n, batch_size, shuffle, drop_remainder, seed, augment):
    """Shuffle (a new order every epoch), batch, augment each batch, prefetch."""
    import tensorflow as tf

    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    if augment is not None:
        ds = ds.map(lambda x, y: (augment(x, training=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


class Batches(keras.utils.PyDataset):
    """(x, y) batches of NumPy arrays for `model.fit`, `evaluate` and `predict` on every Keras
    backend, TensorFlow or not.

    shuffle=True draws a new order every epoch from a generator seeded with `seed`, so two runs
    see the same orders. drop_remainder=True leaves out the last, smaller batch. `augment`, a
    Keras layer, is applied to each batch of images in training mode as the batch is made: on
    the CPU, in the input pipeline, and in parallel over `workers` threads, which Keras also
    uses to prepare batches ahead of the training step.
    """

    def __init__(self, x, y, batch_size=32, shuffle=False, drop_remainder=False, seed=0,
                 augment=None, workers=1):
        super().__init__(workers=workers, use_multiprocessing=False)
        x, y = np.asarray(x), np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"x and y must hold as many examples; got {len(x)} and {len(y)}.")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
        self.x, self.y, self.batch_size = x, y, int(batch_size)
        self.shuffle, self.drop_remainder, self.augment = shuffle, drop_remainder, augment
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._order = self._new_order()

    def _new_order(self):
        return self._rng.permutation(len(self.x)) if self.shuffle else np.arange(len(self.x))

    def __len__(self):
        whole = len(self.x) / self.batch_size
        return math.floor(whole) if self.drop_remainder else math.ceil(whole)

    def __getitem__(self, index):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = self._order[index * self.batch_size:(index + 1) * self.batch_size]
        x = self.x[rows]
        if self.augment is not None:
            with keras.device("cpu:0"):  # the input pipeline's work, off the accelerator
                x = keras.ops.convert_to_numpy(self.augment(x, training=True))
        return x, self.y[rows]

    def on_epoch_end(self):
        self._order = self._new_order()


def array_batches(x, y, batch_size=32, shuffle=False, drop_remainder=False, seed=0,
                  augment=None, workers=1):
    """(x, y) batches from NumPy arrays for `model.fit`, on every backend: a `Batches`."""
    return Batches(x, y, batch_size=batch_size, shuffle=shuffle, drop_remainder=drop_remainder,
                   seed=seed, augment=augment, workers=workers)


def tf_data_batches(x, y, batch_size=32, shuffle=False, drop_remainder=False, seed=0,
                    augment=None):
    """(x, y) batches from NumPy arrays as a tf.data pipeline: TensorFlow only."""
    if importlib.util.find_spec("tensorflow") is None:
        raise RuntimeError("tf.data needs TensorFlow, which is not installed: use "
                           "cnnkit.data.array_batches, which runs on every backend.")
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    return _pipeline(ds, len(x), batch_size, shuffle, drop_remainder, seed, augment)


def on_canvas(images, canvas, rng):
    """Each square image pasted at a random place on a black `canvas` x `canvas` image, as in
    the translated MNIST of "Spatial Transformer Networks" (Jaderberg et al., 2015); returns the
    canvases (float32) and each image's (top, left) corner."""
    images = np.asarray(images)
    side = images.shape[1]
    if images.ndim != 4 or images.shape[2] != side or side > canvas:
        raise ValueError(f"images must be (n, side, side, channels) with side <= canvas "
                         f"({canvas}); got shape {images.shape}.")
    canvases = np.zeros((len(images), canvas, canvas, images.shape[-1]), "float32")
    corners = rng.integers(0, canvas - side + 1, size=(len(images), 2))
    for out, image, (top, left) in zip(canvases, images, corners):
        out[top:top + side, left:left + side] = image
    return canvases, corners


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    from skimage.transform import resize

    n, _, _, c = images.shape
    return resize(images, (n, size, size, c), order=1, anti_aliasing=False,
                  preserve_range=True).astype("float32")


def _digits(image_size):
    """scikit-learn's 1,797 handwritten digits (8x8, 0-16), white on black like MNIST."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images[..., None].astype("float32") / 16.0
    # Stratified and seeded, so every run and every machine sees the same 1,437 / 360 split.
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype("int32"), test_size=360, stratify=digits.target,
        random_state=0)
    size = image_size or 28
    description = (f"scikit-learn's 1,797 handwritten digits (8x8 scans by 43 writers), "
                   f"resized to {size}x{size}")
    return (_resize(x_train, size), y_train, _resize(x_test, size), y_test,
            [str(d) for d in range(10)], description)


# The ten photographs behind the CIFAR-10 stand-in, in class order (scikit-image ships them all).
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "retina", "immunohistochemistry",
          "hubble_deep_field", "brick", "grass", "gravel")


def _photo_patches(image_size, n_train=5000, n_test=1000):
    """CIFAR-10's stand-in: 32x32 colour patches of ten scikit-image photographs, one class per
    photograph, at four scales. Training patches come from the left two thirds of each photograph,
    test patches from the right third, so a test patch is never part of a training one."""
    import skimage.data
    from skimage.transform import resize

    size = image_size or 32
    rng = np.random.default_rng(0)  # every machine cuts the same patches
    per_train, per_test = n_train // len(PHOTOS), n_test // len(PHOTOS)
    x_train, x_test = [], []
    for photo in PHOTOS:
        image = getattr(skimage.data, photo)().astype("float32") / 255.0
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=-1)
        scaled = []
        for short in (128, 160, 224, 320):  # the photograph's short side, in pixels
            factor = short / min(image.shape[:2])
            shape = (round(image.shape[0] * factor), round(image.shape[1] * factor), 3)
            scaled.append(resize(image, shape, order=1, anti_aliasing=True))
        for count, out, part in ((per_train, x_train, "train"), (per_test, x_test, "test")):
            for _ in range(count):
                img = scaled[rng.integers(len(scaled))]
                h, w = img.shape[:2]
                cut = w * 2 // 3
                lo, hi = (0, cut - 32) if part == "train" else (cut, w - 32)
                top, left = rng.integers(0, h - 32 + 1), rng.integers(lo, hi + 1)
                out.append(img[top:top + 32, left:left + 32])
    y_train = np.repeat(np.arange(len(PHOTOS), dtype="int32"), per_train)
    y_test = np.repeat(np.arange(len(PHOTOS), dtype="int32"), per_test)
    x_train, x_test = np.stack(x_train), np.stack(x_test)
    # Interleave the classes, so that the first k examples hold every class.
    train_order, test_order = rng.permutation(len(x_train)), rng.permutation(len(x_test))
    x_train, y_train = x_train[train_order], y_train[train_order]
    x_test, y_test = x_test[test_order], y_test[test_order]
    if size != 32:
        x_train, x_test = _resize(x_train, size), _resize(x_test, size)
    description = (f"32x32 patches of ten scikit-image photographs (class = which photograph: "
                   f"{', '.join(PHOTOS)}), train from their left two thirds, test from the right "
                   f"third" + (f", resized to {size}x{size}" if size != 32 else ""))
    return (x_train.astype("float32"), y_train, x_test.astype("float32"), y_test, list(PHOTOS),
            description)


# What stands in for a dataset when tensorflow-datasets cannot provide it. tf_flowers has no
# stand-in: no package ships flower photographs, and a lesson that needs them says so.
FALLBACKS = {"mnist": _digits, "cifar10": _photo_patches}

# The (train, test) splits to read, in tensorflow-datasets' split syntax. Most datasets have both;
# tf_flowers (3,670 photographs of 5 kinds of flower) has only "train", so a fixed slice of it is
# held out as the test split (the first 85% train, the last 15% test, the same on every machine).
SPLITS = {"tf_flowers": ("train[:85%]", "train[85%:]")}
DEFAULT_SPLITS = ("train", "test")


def splits_of(name) -> tuple:
    """The tensorflow-datasets split names that `load(name)` reads as (train, test)."""
    return SPLITS.get(name, DEFAULT_SPLITS)


def _tfds_pipelines(name, data_dir, download):
    import tensorflow_datasets as tfds

    (train, test), info = tfds.load(name, split=list(splits_of(name)), as_supervised=True,
                                    with_info=True, data_dir=data_dir, download=download)
    return train, test, info


def _count(ds, info, split):
    """Examples in a split: the pipeline's cardinality, else the dataset's metadata."""
    n = int(ds.cardinality())
    return n if n >= 0 else int(info.splits[split].num_examples)


def _prepare(image, label, image_size, channels):
    import tensorflow as tf

    image = tf.image.convert_image_dtype(image, tf.float32)
    if channels is not None and image.shape[-1] != channels:
        image = (tf.image.rgb_to_grayscale(image) if channels == 1
                 else tf.image.grayscale_to_rgb(image))
    if image_size is not None:
        image = tf.image.resize(image, (image_size, image_size))
    return image, tf.cast(label, tf.int32)


def load(name="mnist", *, image_size=None, channels=None, train_size=None, test_size=None,
         data_dir=None, verbose=True) -> ImageData:
    """Load a classification dataset, falling back to packaged real data when offline.

    image_size resizes to a square (None keeps the native size); channels converts to 1 or 3;
    train_size and test_size keep at most that many examples (a profile's budgets). The
    (train, test) splits are `splits_of(name)`: tf_flowers' one "train" split is cut 85% / 15%.
    Without tensorflow-datasets' copy, a dataset that has no offline stand-in raises: ValueError
    under CNNKIT_OFFLINE=1, RuntimeError (with the reason) when it cannot be downloaded.
    verbose=False hides the line about an online load; the line announcing an offline
    stand-in is always printed. Without TensorFlow and tensorflow-datasets the stand-in is
    used, and a dataset without one raises a RuntimeError that names what is missing.
    """
    if name not in FALLBACKS and fallback.offline_forced():
        raise ValueError(f"{name} has no offline stand-in yet; unset {fallback.OFFLINE_VAR} to "
                         f"download it. Offline stand-ins exist for: {', '.join(FALLBACKS)}.")
    tfds_data, how, reason = fallback.fetch_online(
        name, lambda download: _tfds_pipelines(name, data_dir, download),
        stand_in=name in FALLBACKS)
    if reason is None:
        train, test, info = tfds_data
        image = info.features["image"] if "image" in info.features else None
        shape = tuple(getattr(image, "shape", ()) or ())
        if image_size is None and None in shape[:2]:
            raise ValueError(f"{name}'s images differ in size ({shape}): pass image_size= to "
                             "resize them to one square size.")
        n_train, n_test = (_count(ds, info, split) for ds, split in zip((train, test),
                                                                         splits_of(name)))
        n_train, n_test = min(n_train, train_size or n_train), min(n_test, test_size or n_test)
        import tensorflow as tf

        prep = lambda img, lab: _prepare(img, lab, image_size, channels)  # noqa: E731
        train = train.take(n_train).map(prep, num_parallel_calls=tf.data.AUTOTUNE)
        test = test.take(n_test).map(prep, num_parallel_calls=tf.data.AUTOTUNE)
        source = fallback.tfds_source(name, how)
        class_names = list(info.features["label"].names)
        image_shape = tuple(train.element_spec[0].shape)
        if verbose:
            fallback.announce_online("cnnkit.data", name, how, n_train, n_test)
    else:
        x_train, y_train, x_test, y_test, class_names, description = FALLBACKS[name](image_size)
        if channels == 3:
            x_train, x_test = (np.repeat(a, 3, axis=-1) for a in (x_train, x_test))
        x_train, y_train = x_train[:train_size], y_train[:train_size]
        x_test, y_test = x_test[:test_size], y_test[:test_size]
        n_train, n_test = len(x_train), len(x_test)
        train, test = (x_train, y_train), (x_test, y_test)
        source = fallback.stand_in_source(description)
        image_shape = x_train.shape[1:]
        fallback.announce_offline("cnnkit.data", name, reason, description, n_train, n_test)
    return ImageData(name=name, source=source, train=train, test=test, n_train=n_train,
                     n_test=n_test, class_names=class_names, image_shape=tuple(image_shape))
