"""Segmentation data and its metric: Oxford-IIIT Pet online, generated shapes offline, mean IoU.

`load(image_size, train_size, test_size)` returns images with one class label per pixel,
through `cnnkit.data.fallback` as `cnnkit.data.load` does:
1. Oxford-IIIT Pet (Parkhi, Vedaldi, Zisserman and Jawahar, "Cats and Dogs", CVPR 2012) from
   tensorflow-datasets (`oxford_iiit_pet`: 3,680 train / 3,669 test photographs of 37 breeds,
   each with a hand-drawn trimap, the feature `segmentation_mask`), prepared on this machine or
   downloaded after a reachability check of a few seconds;
2. offline (no network, or CNNKIT_OFFLINE=1), `shapes`: generated images of circles, squares
   and triangles on a textured, noisy background, whose masks are exact because each image is
   painted from its mask. One printed line announces the swap, never a silent one.
Everything is NumPy: arrays that `model.fit` takes on any Keras backend. tensorflow-datasets is
imported only on the Oxford-IIIT Pet path. The old path, `cnnkit.segmentation`, is this module.

`mean_iou(y_true, y_pred, classes)`: the intersection over union of each class's pixels,
|truth ∩ prediction| / |truth ∪ prediction|, averaged over the classes that occur in the truth
or the prediction (FCN's "mean IU", Long et al. 2015; the convention of keras.metrics.MeanIoU).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from cnnkit.data import fallback
from cnnkit.data.fallback import DatasetBase

__all__ = ["SegmentationData", "load", "load_pets", "shapes", "confusion", "class_iou",
           "mean_iou", "pixel_crossentropy", "PET_CLASSES", "SHAPE_CLASSES"]


@keras.saving.register_keras_serializable(package="cnnkit")
def pixel_crossentropy(y_true, y_pred):
    """Cross-entropy of every pixel's class probabilities against its label: Keras's sparse
    categorical cross-entropy on (pixels, classes), the same mean as on (batch, h, w, classes).

    Flattened because PyTorch's backward pass of the per-pixel form fails in Keras 3.15
    ("grad_input must be contiguous"); the flat form runs on every backend.
    """
    classes = keras.ops.shape(y_pred)[-1]
    return keras.losses.sparse_categorical_crossentropy(keras.ops.reshape(y_true, (-1,)),
                                                        keras.ops.reshape(y_pred, (-1, classes)))

# The trimap's values 1, 2, 3 become the labels 0, 1, 2.
PET_CLASSES = ("pet", "background", "border")
SHAPE_CLASSES = ("background", "circle", "square", "triangle")
PETS = "oxford_iiit_pet"
# Offline sizes when a split's size is not given: enough to learn the shapes in minutes.
SHAPES_TRAIN, SHAPES_TEST = 2_000, 500


@dataclass
class SegmentationData(DatasetBase):
    """Images (n, H, W, 3) float32 in [0, 1] and masks (n, H, W) int32 of class labels."""

    name: str
    source: str  # where the examples came from
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple


# ---- offline: generated shapes with exact masks -------------------------------------------

def _polygon(x, y, vertices):
    """Pixels whose centre lies inside the convex polygon (vertices counter-clockwise)."""
    inside = np.ones(x.shape, bool)
    for (x0, y0), (x1, y1) in zip(vertices, np.roll(vertices, -1, axis=0)):
        inside &= (x1 - x0) * (y - y0) - (y1 - y0) * (x - x0) >= 0
    return inside


def _regular(cx, cy, radius, corners, angle):
    turns = angle + 2 * np.pi * np.arange(corners) / corners
    return np.stack([cx + radius * np.cos(turns), cy + radius * np.sin(turns)], axis=1)


def _shape(label, x, y, cx, cy, r, angle):
    """The mask of one shape of area pi r^2 (equal areas, so size does not give the class)."""
    if label == 1:
        return (x - cx) ** 2 + (y - cy) ** 2 <= r ** 2
    if label == 2:  # a square of side r sqrt(pi): circumradius r sqrt(pi / 2)
        return _polygon(x, y, _regular(cx, cy, r * np.sqrt(np.pi / 2), 4, angle))
    # an equilateral triangle of area pi r^2: circumradius r sqrt(4 pi / (3 sqrt 3))
    return _polygon(x, y, _regular(cx, cy, r * np.sqrt(4 * np.pi / (3 * np.sqrt(3))), 3, angle))


def _colour_against(rng, background, contrast=0.35):
    while True:
        colour = rng.uniform(0, 1, 3)
        if np.abs(colour - background).max() >= contrast:
            return colour


def _textured_background(rng, x, y):
    """A random base colour with two sinusoidal gratings over the pixel centres (x, y): the
    image (S, S, 3) and its base colour, which shapes must stand out against."""
    background = rng.uniform(0.15, 0.85, 3)
    texture = np.zeros(x.shape)
    for _ in range(2):
        frequency = rng.uniform(1, 6, 2) / x.shape[0]
        texture += rng.uniform(0.04, 0.12) * np.sin(
            2 * np.pi * (frequency[0] * x + frequency[1] * y) + rng.uniform(0, 2 * np.pi))
    return background + texture[..., None] * rng.uniform(0.5, 1.0, 3), background


def shapes(n, image_size=64, seed=0, max_shapes=2, radius=(0.14, 0.28)):
    """`n` images of circles, squares and triangles, and their exact masks.

    Labels: 0 background, 1 circle, 2 square, 3 triangle (`SHAPE_CLASSES`). Each image has a
    random base colour with two sinusoidal gratings (texture) and 1 to `max_shapes` shapes of
    random colour, size, rotation and place; a later shape covers an earlier one. Every shape
    has the area of a circle whose radius is drawn from `radius`, in fractions of the image
    side, so size does not give the class away; colours are random too, so only the outline
    tells a circle from a square. The mask marks the pixels whose centre lies inside a shape,
    and the image is painted from that mask before Gaussian noise (std 0.04) is added: every
    label is exactly right. Returns (images float32 (n, S, S, 3) in [0, 1], masks int32
    (n, S, S)).
    """
    for value, what in ((n, "n"), (image_size, "image_size"), (max_shapes, "max_shapes")):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what} must be a positive whole number; got {value!r}.")
    if len(radius) != 2 or not 0 < radius[0] <= radius[1] <= 0.5:
        raise ValueError(f"radius must be (smallest, largest) fractions of the image side, "
                         f"0 < smallest <= largest <= 0.5; got {radius!r}.")
    rng = np.random.default_rng(seed)
    s = int(image_size)
    y, x = np.mgrid[0:s, 0:s] + 0.5  # pixel centres
    images = np.empty((n, s, s, 3), "float32")
    masks = np.zeros((n, s, s), "int32")
    for i in range(n):
        image, background = _textured_background(rng, x, y)
        for _ in range(rng.integers(1, max_shapes + 1)):
            label = int(rng.integers(1, 4))
            r = rng.uniform(*radius) * s
            cx, cy = rng.uniform(r, s - r, 2)
            inside = _shape(label, x, y, cx, cy, r, rng.uniform(0, 2 * np.pi))
            image[inside] = _colour_against(rng, background)
            masks[i][inside] = label
        image += rng.normal(0, 0.04, image.shape)
        images[i] = np.clip(image, 0, 1)
    return images, masks


# ---- online: Oxford-IIIT Pet from tensorflow-datasets -----------------------------------------

def _pets_splits(data_dir, download):
    import tensorflow_datasets as tfds

    return tfds.load(PETS, split=["train", "test"], data_dir=data_dir, download=download)


def _resize_pair(image, mask, size):
    """Image bilinear, mask nearest: interpolating labels would invent classes at the edges."""
    from skimage.transform import resize

    image = resize(image.astype("float32") / 255, (size, size), order=1, anti_aliasing=False,
                   preserve_range=True).astype("float32")
    mask = resize(mask[..., 0], (size, size), order=0, anti_aliasing=False,
                  preserve_range=True).astype("int32")
    return image, mask - 1  # trimap 1 pet, 2 background, 3 border -> 0, 1, 2


def _to_arrays(split, size, limit):
    import tensorflow_datasets as tfds

    pairs = [_resize_pair(example["image"], example["segmentation_mask"], size)
             for example in tfds.as_numpy(split.take(-1 if limit is None else limit))]
    return (np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs]))


def _pets_arrays(splits, size, train_size, test_size):
    train, test = splits
    return (*_to_arrays(train, size, train_size), *_to_arrays(test, size, test_size))


def load_pets(image_size=128, train_size=None, test_size=None, data_dir=None):
    """Oxford-IIIT Pet's images and trimaps, resized to `image_size` squares, as NumPy arrays.

    Labels 0 pet, 1 background, 2 border (the trimap's 1, 2, 3 less one; `PET_CLASSES`). Uses
    the copy prepared on this machine, else downloads (773 MiB) after checking that
    tensorflow-datasets' storage answers. Returns ((x_train, y_train, x_test, y_test), how);
    raises `cnnkit.data.fallback.Unavailable` with the reason when neither works.
    """
    splits, how = fallback.from_tfds(PETS, lambda download: _pets_splits(data_dir, download))
    return _pets_arrays(splits, image_size, train_size, test_size), how


def load(image_size=64, train_size=None, test_size=None, *, data_dir=None, seed=0,
         verbose=True) -> SegmentationData:
    """Oxford-IIIT Pet online, else generated shapes (announced in one printed line).

    image_size: side of the square images (a U-Net with padding="same" needs a multiple of
    16). train_size, test_size: at most that many examples (None: all of the pets, or
    2,000 / 500 shapes). seed: the shapes' random generator (the test split uses seed + 1).
    verbose=False hides the line about an online load; the offline line is always printed.
    """
    splits, how, reason = fallback.fetch_online(
        PETS, lambda download: _pets_splits(data_dir, download))
    if reason is None:
        x_train, y_train, x_test, y_test = _pets_arrays(splits, image_size, train_size, test_size)
        if verbose:
            fallback.announce_online(
                "cnnkit.segmentation", PETS, how, len(x_train), len(x_test), unit="images",
                details=f", {image_size}x{image_size}, classes {', '.join(PET_CLASSES)}")
        return SegmentationData(PETS, fallback.tfds_source(PETS, how), x_train, y_train,
                                x_test, y_test, PET_CLASSES)
    n_train, n_test = train_size or SHAPES_TRAIN, test_size or SHAPES_TEST
    x_train, y_train = shapes(n_train, image_size, seed=seed)
    x_test, y_test = shapes(n_test, image_size, seed=seed + 1)
    description = (f"generated shapes with exact masks ({', '.join(SHAPE_CLASSES)}), "
                   f"{image_size}x{image_size}")
    fallback.announce_offline("cnnkit.segmentation", PETS, reason, description, n_train, n_test,
                              unit="images")
    return SegmentationData("shapes", fallback.stand_in_source(description), x_train, y_train,
                            x_test, y_test, SHAPE_CLASSES)


# ---- the metric ---------------------------------------------------------------------------------

def _labels(y_true, y_pred, classes):
    if isinstance(classes, bool) or not isinstance(classes, (int, np.integer)) or classes < 1:
        raise ValueError(f"classes must be a positive whole number; got {classes!r}.")
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_pred.ndim == y_true.ndim + 1 and y_pred.shape[-1] == classes:
        y_pred = y_pred.argmax(axis=-1)  # class scores or probabilities: the likeliest class
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same "
                         f"shape (labels), or y_pred one more axis of {classes} class scores.")
    for array, what in ((y_true, "y_true"), (y_pred, "y_pred")):
        if array.size and (not np.all(np.mod(array, 1) == 0) or array.min() < 0
                           or array.max() >= classes):
            raise ValueError(f"{what} must hold whole-number labels from 0 to {classes - 1}; "
                             f"got values from {array.min()} to {array.max()}.")
    return y_true.astype("int64").ravel(), y_pred.astype("int64").ravel()


def confusion(y_true, y_pred, classes):
    """(classes, classes) pixel counts: row = true class, column = predicted class."""
    t, p = _labels(y_true, y_pred, classes)
    return np.bincount(classes * t + p, minlength=classes * classes).reshape(classes, classes)


def class_iou(y_true, y_pred, classes):
    """IoU of each class, TP / (TP + FP + FN); NaN for a class in neither truth nor prediction."""
    matrix = confusion(y_true, y_pred, classes)
    tp = np.diag(matrix).astype("float64")
    union = matrix.sum(axis=0) + matrix.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(y_true, y_pred, classes):
    """Mean of `class_iou` over the classes present in the truth or the prediction.

    y_pred: labels of y_true's shape, or scores with one more axis of `classes` (arg-maxed).
    """
    iou = class_iou(y_true, y_pred, classes)
    if np.all(np.isnan(iou)):
        raise ValueError("mean_iou needs at least one pixel; got empty arrays.")
    return float(np.nanmean(iou))
