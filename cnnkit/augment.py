"""Data augmentation: Keras preprocessing pipelines and AlexNet's crops, flips and PCA colour.

    aug = augment.pipeline(flip="horizontal", rotation=0.1, zoom=0.1)   # a keras.layers.Pipeline
    model = augment.with_augmentation(model, aug)     # inside the model: on the accelerator
    train = augment.augment_dataset(train, aug)       # or in tf.data: on the CPU, in parallel

Where to augment is a trade-off. Inside the model the transforms run on the accelerator, in the
same step as the training computation: fast per image, nothing to set up, and the augmentation
is saved with the model (at inference: the identity, or the centre crop); but the accelerator
waits for it, every step. In a tf.data pipeline they run on the CPU cores, in parallel
(`num_parallel_calls`), while the accelerator trains on the previous batch (`prefetch`): free
when the CPU keeps up, a bottleneck when it does not (few cores, heavy transforms). Both see
fresh random transforms every epoch. Keras's image layers work in tf.data on every backend, and
so do this module's two layers, built the same way.

AlexNet ("ImageNet Classification with Deep Convolutional Neural Networks", Krizhevsky, Sutskever
and Hinton, 2012, Section 4.1) used two forms: random 224 x 224 patches of the 256 x 256 images
and their horizontal reflections (tested on ten views: `ten_crop`), and PCA colour augmentation,
which adds `sum_i alpha_i * lambda_i * p_i` to every pixel of an image, with (lambda_i, p_i) the
eigenvalues and eigenvectors of the 3 x 3 covariance of RGB pixel values and alpha_i ~ N(0, 0.1)
drawn once per image. The crops are `PerImageRandomCrop`, not keras.layers.RandomCrop (see why
there).

U-Net ("U-Net: Convolutional Networks for Biomedical Image Segmentation", Ronneberger, Fischer
and Brox, 2015, Section 3.1) trains on very few images thanks to elastic deformations:
`elastic_deformation` draws displacements on a coarse grid, interpolates them bicubically to
every pixel, and warps an image and its mask by the same field (NumPy and SciPy, any backend).

VGG ("Very Deep Convolutional Networks for Large-Scale Image Recognition", Simonyan and
Zisserman, 2015, Sections 3.1 and 3.2) trains with scale jittering, `ScaleJitter`: each image
rescaled so that its smaller side is a random S in [256, 512], then a random 224 x 224 crop;
and tests at several scales Q (`rescale`), either on a grid of crops (`multi_crop_predict`) or
densely, the whole image through the network whose dense layers became convolutions
(`dense_predict`, with `cnnkit.course.experiments.fully_convolutional`).
"""

import numpy as np

import keras

# The base of Keras's own preprocessing layers, which makes them safe inside tf.data on every
# backend (private Keras API: cnnkit._keras_internals).
from cnnkit._keras_internals import DataLayer as _DataLayer

__all__ = ["pipeline", "alexnet_augmentation", "PerImageRandomCrop", "PCAColorAugmentation",
           "rgb_pca", "IMAGENET_EIGENVALUES", "IMAGENET_EIGENVECTORS", "ten_crop",
           "ten_crop_predict", "augment_dataset", "with_augmentation", "augmented_samples",
           "displacement_field", "elastic_deformation", "rescale", "scaled_crops", "ScaleJitter",
           "crop_positions", "multi_crop", "multi_crop_predict", "dense_predict"]

# The ImageNet figures in Facebook's ResNet training code (fb.resnet.torch) and the PyTorch
# pipelines copied from it, for pixels in [0, 1]; the columns are the eigenvectors (rows R, G, B).
IMAGENET_EIGENVALUES = (0.2175, 0.0188, 0.0045)
IMAGENET_EIGENVECTORS = ((-0.5675, 0.7192, 0.4009),
                         (-0.5808, -0.0045, -0.8140),
                         (-0.5836, -0.6948, 0.4203))

FLIP_MODES = ("horizontal", "vertical", "horizontal_and_vertical")
AUTOTUNE = -1  # tf.data.AUTOTUNE, without importing TensorFlow here


def _pair(name, value):
    """An int or an (height, width) pair of positive ints, as a tuple."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{name} must be a positive int or a (height, width) pair of them; "
                         f"got {value!r}.")
    return int(pair[0]), int(pair[1])


def _known_size(layer, images):
    """The height and width of `images`, which a cropping layer needs to know when it is built."""
    height, width = images.shape[-3], images.shape[-2]
    if height is None or width is None:
        raise ValueError(f"{layer.name} needs images of a known size; got {images.shape}.")
    return height, width


def _factor(name, value, limit, meaning):
    """A Keras factor: a positive number f (changes in [-f, f]) or a (low, high) pair."""
    if value is None:
        return None
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        if not 0 < value <= limit:
            raise ValueError(f"{name}={value!r}: give a number in (0, {limit}], the largest "
                             f"change either way ({meaning}), or None to turn it off.")
        return float(value)
    if (isinstance(value, (tuple, list)) and len(value) == 2
            and all(isinstance(v, (int, float)) for v in value)
            and -limit <= value[0] <= value[1] <= limit):
        return tuple(float(v) for v in value)
    raise ValueError(f"{name}={value!r}: give a number in (0, {limit}] or a (low, high) pair "
                     f"with -{limit} <= low <= high <= {limit} ({meaning}).")


def pipeline(*, crop=None, flip="horizontal", rotation=0.1, zoom=0.1, contrast=None,
             brightness=None, value_range=(0.0, 1.0), fill_mode="reflect", input_shape=None,
             seed=None, name="augmentation"):
    """A `keras.layers.Pipeline` of Keras's random image layers, None turning one off.

    The defaults (horizontal flips, rotations up to 0.1 of a turn (36 degrees) either way, zoom
    up to 10 % in or out) are those of TensorFlow's image classification tutorial.
    - crop: (height, width) or int: a random patch of that size per image, the centre patch at
      inference (`PerImageRandomCrop`).
    - flip: "horizontal", "vertical" or "horizontal_and_vertical".
    - rotation: fraction of a full turn; zoom: fraction of the size (RandomZoom); brightness:
      in (0, 1], a shift of up to that fraction of `value_range`. Each also takes a (low, high)
      pair. contrast: c in (0, 1], contrast scaled by a factor in [1 - c, 1 + c] (passed to
      Keras as (c, c): its RandomContrast(c) only ever raises the contrast, to [1, 1 + c]).
    - value_range: the pixel range of the images, for contrast and brightness (which clip to
      it): (0, 1) as cnnkit.data's images, (0, 255) for raw ones.
    - input_shape: (height, width, channels) of the images, to check the crop against them.
    - seed: each layer gets seed + its position, so the layers do not draw the same numbers.
    The order is geometric first (crop, flip, rotation, zoom), then photometric. A Pipeline
    rather than a keras.Sequential: it stays tf.data-safe on the JAX and PyTorch backends too.
    """
    factors = {"rotation": _factor("rotation", rotation, 0.5, "a fraction of a full turn"),
               "zoom": _factor("zoom", zoom, 1.0, "a fraction of the image size"),
               "contrast": _factor("contrast", contrast, 1.0, "contrast times 1 +- contrast"),
               "brightness": _factor("brightness", brightness, 1.0,
                                     "a fraction of value_range")}
    if contrast is not None and not isinstance(factors["contrast"], float):
        raise ValueError(f"contrast={contrast!r}: give one number c in (0, 1], for contrast "
                         "factors in [1 - c, 1 + c].")
    if flip is not None and flip not in FLIP_MODES:
        raise ValueError(f"flip={flip!r}: give one of {FLIP_MODES}, or None for no flips.")
    if (not isinstance(value_range, (tuple, list)) or len(value_range) != 2
            or not value_range[0] < value_range[1]):
        raise ValueError(f"value_range={value_range!r}: give (low, high) with low < high, e.g. "
                         "(0, 1) for images scaled to [0, 1] or (0, 255) for raw pixels.")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise ValueError(f"seed={seed!r}: give an int, or None for a different run each time.")
    crop = None if crop is None else _pair("crop", crop)
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3:
            raise ValueError(f"input_shape={input_shape!r}: give (height, width, channels).")
        if crop is not None and (crop[0] > input_shape[0] or crop[1] > input_shape[1]):
            raise ValueError(f"crop={crop} is larger than the images {input_shape[:2]}: crop "
                             "at most the image size, or resize first (keras.layers.Resizing).")

    def layer_seed():
        return None if seed is None else int(seed) + len(layers)

    layers = []
    if crop is not None:
        layers.append(PerImageRandomCrop(*crop, seed=layer_seed(), name="random_crop"))
    if flip is not None:
        layers.append(keras.layers.RandomFlip(flip, seed=layer_seed(), name="random_flip"))
    if factors["rotation"] is not None:
        layers.append(keras.layers.RandomRotation(factors["rotation"], fill_mode=fill_mode,
                                                  seed=layer_seed(), name="random_rotation"))
    if factors["zoom"] is not None:
        layers.append(keras.layers.RandomZoom(factors["zoom"], fill_mode=fill_mode,
                                              seed=layer_seed(), name="random_zoom"))
    if factors["contrast"] is not None:
        layers.append(keras.layers.RandomContrast((contrast, contrast), value_range=value_range,
                                                  seed=layer_seed(), name="random_contrast"))
    if factors["brightness"] is not None:
        layers.append(keras.layers.RandomBrightness(
            factors["brightness"], value_range=value_range, seed=layer_seed(),
            name="random_brightness"))
    if not layers:
        raise ValueError("every augmentation is off: turn one on, or train without an "
                         "augmentation (the baseline needs no pipeline).")
    return keras.layers.Pipeline(layers, name=name)


@keras.saving.register_keras_serializable(package="cnnkit")
class PerImageRandomCrop(_DataLayer):
    """A random (height, width) crop at its own position in each image; the centre at inference.

    AlexNet's random patches (Section 4.1); the centre crop is its single-view test. Unlike
    keras.layers.RandomCrop, which picks one position per call (a whole batch shares it), whose
    inference path returns the images uncropped in Keras 3.10 to 3.15 (keras-team/keras#21868:
    a model with it inside fails in `predict` and `evaluate`), and which cannot be traced into a
    model on the JAX backend. Channels last; the image size must be known (static).
    """

    def __init__(self, height, width, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = _pair("crop", (height, width))
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def _offsets(self, count, room):
        """`count` random offsets in [0, room]."""
        ops = self.backend
        draw = ops.random.uniform((count,), maxval=room + 1.0,
                                  seed=self._get_seed_generator(ops._backend))
        return ops.numpy.minimum(ops.cast(draw, "int32"), room)

    def call(self, images, training=True):
        ops = self.backend
        images = ops.cast(images, self.compute_dtype)
        height, width = _known_size(self, images)
        if self.height > height or self.width > width:
            raise ValueError(f"{self.name} crops {(self.height, self.width)} patches out of "
                             f"{(height, width)} images: resize them first, or crop less.")
        if not training:
            top, left = (height - self.height) // 2, (width - self.width) // 2
            return images[..., top:top + self.height, left:left + self.width, :]
        single = len(images.shape) == 3
        if single:
            images = ops.numpy.expand_dims(images, 0)
        count = ops.shape(images)[0]
        # Each image's rows (then columns) picked with take_along_axis: one gather per axis.
        rows = (ops.numpy.expand_dims(self._offsets(count, height - self.height), 1)
                + ops.numpy.arange(self.height, dtype="int32"))
        images = ops.numpy.take_along_axis(images, rows[:, :, None, None], axis=1)
        cols = (ops.numpy.expand_dims(self._offsets(count, width - self.width), 1)
                + ops.numpy.arange(self.width, dtype="int32"))
        images = ops.numpy.take_along_axis(images, cols[:, None, :, None], axis=2)
        return images[0] if single else images

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "height": self.height, "width": self.width,
                "seed": self.seed}


def rgb_pca(images, chunk=1 << 20):
    """(eigenvalues, eigenvectors) of the covariance of RGB pixel values, largest first.

    `images`: an array whose last axis is RGB, or an iterable of such arrays (batches from a
    dataset, e.g. `ds.map(lambda x, y: x).as_numpy_iterator()`); every pixel is one sample, and
    the covariance divides by their number. The eigenvectors are the columns. Their signs are
    arbitrary (alpha is symmetric about 0); each is made to have its largest component
    positive, so the result does not depend on the linear algebra library.
    The paper computes this over the ImageNet training set. The scale matters: lambda grows
    with the square of the pixel scale and the pixels only linearly, so compute it on the
    images the layer will see, in [0, 1] (as IMAGENET_EIGENVALUES): on [0, 255] pixels
    alpha * lambda would be 255 times larger relative to the image.
    """
    count, total, products = 0, np.zeros(3), np.zeros((3, 3))
    for batch in ([images] if isinstance(images, np.ndarray) else images):
        pixels = np.asarray(batch).reshape(-1, np.shape(batch)[-1])
        if pixels.shape[-1] != 3:
            raise ValueError(f"images must have 3 (RGB) channels last; got {np.shape(batch)}.")
        for start in range(0, len(pixels), chunk):
            part = pixels[start:start + chunk].astype(np.float64)
            count += len(part)
            total += part.sum(axis=0)
            products += part.T @ part
    if count < 2:
        raise ValueError("rgb_pca needs at least two pixels.")
    mean = total / count
    eigenvalues, eigenvectors = np.linalg.eigh(products / count - np.outer(mean, mean))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, eigenvectors = np.clip(eigenvalues[order], 0, None), eigenvectors[:, order]
    signs = np.sign(eigenvectors[np.abs(eigenvectors).argmax(axis=0), range(3)])
    return eigenvalues, eigenvectors * signs


@keras.saving.register_keras_serializable(package="cnnkit")
class PCAColorAugmentation(_DataLayer):
    """AlexNet's colour augmentation: add sum_i alpha_i * lambda_i * p_i to every pixel.

    From "ImageNet Classification with Deep Convolutional Neural Networks" (Krizhevsky,
    Sutskever and Hinton, 2012), Section 4.1: (lambda_i, p_i) are the eigenvalues and the
    eigenvectors (columns of `eigenvectors`) of the RGB covariance (`rgb_pca`, or the ImageNet
    figures by default), and alpha_i ~ N(0, stddev) is drawn once per image and shared by all
    its pixels: the intensity and colour of the illumination change, the object does not.
    Identity when `training` is False. No clipping, as in the paper. Channels last, RGB.
    Built like Keras's own preprocessing layers (`self.backend` ops and a seed generator), so it
    runs on every backend and also inside a tf.data pipeline with any backend.
    """

    def __init__(self, eigenvalues=IMAGENET_EIGENVALUES, eigenvectors=IMAGENET_EIGENVECTORS,
                 stddev=0.1, seed=None, **kwargs):
        super().__init__(**kwargs)
        values = np.asarray(eigenvalues, dtype=np.float64)
        vectors = np.asarray(eigenvectors, dtype=np.float64)
        if values.shape != (3,) or vectors.shape != (3, 3):
            raise ValueError("eigenvalues must have shape (3,) and eigenvectors (3, 3) (one "
                             f"per column); got {values.shape} and {vectors.shape}. rgb_pca("
                             "images) computes them.")
        if not (np.all(np.isfinite(values)) and np.all(np.isfinite(vectors))
                and np.all(values >= 0)):
            raise ValueError(f"eigenvalues must be finite and >= 0 (a covariance's); got "
                             f"{values.tolist()}.")
        if isinstance(stddev, bool) or not isinstance(stddev, (int, float)) or stddev < 0:
            raise ValueError(f"stddev={stddev!r}: give the standard deviation of alpha, a "
                             "number >= 0 (the paper's is 0.1).")
        # Tuples: plain config values, which Keras does not wrap as it wraps lists.
        self.eigenvalues = tuple(values.tolist())
        self.eigenvectors = tuple(tuple(row) for row in vectors.tolist())
        self.stddev, self.seed = float(stddev), seed
        self.generator = keras.random.SeedGenerator(seed)

    @classmethod
    def from_images(cls, images, stddev=0.1, seed=None, **kwargs):
        """The layer with the eigen decomposition of these images' RGB covariance (`rgb_pca`)."""
        eigenvalues, eigenvectors = rgb_pca(images)
        return cls(eigenvalues, eigenvectors, stddev=stddev, seed=seed, **kwargs)

    def color_shift(self, alpha):
        """The RGB shift sum_i alpha_i * lambda_i * p_i for alphas of shape (..., 3)."""
        ops = self.backend
        values = ops.convert_to_tensor(self.eigenvalues, dtype="float32")
        vectors = ops.convert_to_tensor(self.eigenvectors, dtype="float32")
        alpha = ops.cast(alpha, "float32")
        return ops.numpy.matmul(alpha * values, ops.numpy.transpose(vectors))

    def call(self, images, training=True):
        ops = self.backend  # keras.ops of the backend that runs this call: TensorFlow in tf.data
        images = ops.cast(images, self.compute_dtype)
        if not training:
            return images
        batch_shape = tuple(ops.shape(images)[:-3])  # () for one image, (batch,) for a batch
        alpha = ops.random.normal(batch_shape + (3,), stddev=self.stddev, dtype="float32",
                                  seed=self._get_seed_generator(ops._backend))
        shift = self.color_shift(alpha)
        for _ in range(2):  # one shift per image, broadcast over its rows and columns
            shift = ops.numpy.expand_dims(shift, -2)
        return images + ops.cast(shift, images.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "eigenvalues": self.eigenvalues,
                "eigenvectors": self.eigenvectors, "stddev": self.stddev, "seed": self.seed}


def alexnet_augmentation(*, image_size=256, crop_size=224, eigenvalues=None, eigenvectors=None,
                         stddev=0.1, seed=None, name="alexnet_augmentation"):
    """AlexNet's training augmentation: random crop, horizontal flip, PCA colour (Section 4.1).

    256 x 256 images to 224 x 224 crops by default, as the paper says (cnnkit's AlexNet takes
    227 x 227, the size its layer arithmetic needs: pass crop_size=227 for it). Without
    eigenvalues and eigenvectors, the ImageNet figures for [0, 1] pixels are used; give both,
    e.g. from `rgb_pca(train_images)`. Images in [0, 1], channels last.
    """
    image_size, crop_size = _pair("image_size", image_size), _pair("crop_size", crop_size)
    if crop_size[0] > image_size[0] or crop_size[1] > image_size[1]:
        raise ValueError(f"crop_size={crop_size} is larger than image_size={image_size}: AlexNet "
                         "crops 224 x 224 patches out of 256 x 256 images.")
    if (eigenvalues is None) != (eigenvectors is None):
        raise ValueError("give both eigenvalues and eigenvectors (rgb_pca(images) returns "
                         "both), or neither for the ImageNet ones.")
    if eigenvalues is None:
        eigenvalues, eigenvectors = IMAGENET_EIGENVALUES, IMAGENET_EIGENVECTORS
    seeds = [None] * 3 if seed is None else [int(seed) + i for i in range(3)]
    return keras.layers.Pipeline([
        PerImageRandomCrop(*crop_size, seed=seeds[0], name="random_crop"),
        keras.layers.RandomFlip("horizontal", seed=seeds[1], name="random_flip"),
        PCAColorAugmentation(eigenvalues, eigenvectors, stddev=stddev, seed=seeds[2],
                             name="pca_color"),
    ], name=name)


def ten_crop(images, crop_size=224):
    """AlexNet's ten test views: the four corner and the centre crops, then their mirror images.

    `images` (batch, height, width, channels) -> (10, batch, crop height, crop width, channels),
    in the order top-left, top-right, bottom-left, bottom-right, centre, then the same flipped.
    """
    height, width = images.shape[-3], images.shape[-2]
    h, w = _pair("crop_size", crop_size)
    if h > height or w > width:
        raise ValueError(f"crop_size={(h, w)} is larger than the images {(height, width)}.")
    corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               ((height - h) // 2, (width - w) // 2)]
    images = keras.ops.convert_to_tensor(images)
    crops = [images[..., top:top + h, left:left + w, :] for top, left in corners]
    crops += [keras.ops.flip(crop, axis=-2) for crop in crops]
    return keras.ops.stack(crops, axis=0)


def ten_crop_predict(model, images, crop_size=None, batch_size=32):
    """The model's softmax outputs averaged over the ten crops, as AlexNet tested (Section 4.1).

    crop_size defaults to the model's input size.
    """
    crop_size = crop_size or tuple(model.input_shape[1:3])
    views = keras.ops.convert_to_numpy(ten_crop(images, crop_size))
    return np.mean([model.predict(view, batch_size=batch_size, verbose=0) for view in views],
                   axis=0)


def augment_dataset(ds, augmentation, num_parallel_calls=AUTOTUNE, prefetch=True):
    """`ds` with `augmentation` applied in training mode to its images, in the input pipeline.

    A tf.data pipeline (TensorFlow backend): its elements are images or (images, labels, ...)
    tuples, batched or not (mapping after `batch` makes fewer, larger calls); the map runs on
    `num_parallel_calls` CPU threads (AUTOTUNE picks how many) and `prefetch` prepares the next
    batch while the model trains on this one. A `cnnkit.data.Batches` (every backend): a copy
    that augments each batch as it is made, on two worker threads that Keras runs ahead of the
    training step (num_parallel_calls, when a number, sets how many).
    """
    from cnnkit.data import Batches  # cnnkit.data loads on first use, not with this module

    if isinstance(ds, Batches):
        workers = 2 if num_parallel_calls == AUTOTUNE else int(num_parallel_calls)
        return Batches(ds.x, ds.y, batch_size=ds.batch_size, shuffle=ds.shuffle,
                       drop_remainder=ds.drop_remainder, seed=ds.seed, augment=augmentation,
                       workers=workers)
    if not hasattr(ds, "map"):
        raise TypeError(f"augment_dataset takes a tf.data.Dataset or a cnnkit.data.Batches; got "
                        f"{type(ds).__name__}. Wrap NumPy arrays with cnnkit.data.array_batches.")

    def apply(images, *rest):
        images = augmentation(images, training=True)
        return (images, *rest) if rest else images

    ds = ds.map(apply, num_parallel_calls=num_parallel_calls)
    return ds.prefetch(AUTOTUNE) if prefetch else ds


def with_augmentation(model, augmentation, input_shape=None, name=None):
    """A model that applies `augmentation` to its inputs, then `model`: augmentation on the
    accelerator, saved with the model.

    Keras runs the augmentation in `fit`; in `predict` and `evaluate` it is the identity, or
    the centre crop for a crop. A direct call `model(x)` augments unless given
    `training=False`, as Keras's own layers do. `input_shape` is
    the images' shape before the augmentation, needed when it changes their size (a crop).
    """
    input_shape = tuple(input_shape or model.input_shape[1:])
    inputs = keras.Input(input_shape)
    augmented = augmentation(inputs)
    if tuple(augmented.shape[1:]) != tuple(model.input_shape[1:]):
        raise ValueError(f"the augmentation turns {input_shape} images into "
                         f"{tuple(augmented.shape[1:])}, but {model.name} takes "
                         f"{tuple(model.input_shape[1:])}: pass input_shape=, the shape of the "
                         "images before augmentation (e.g. (256, 256, 3) for 224 crops).")
    return keras.Model(inputs, model(augmented), name=name or f"{model.name}_augmented")


def augmented_samples(augmentation, image, n=8):
    """`n` augmented versions of one image, (n, height, width, channels), for a grid
    (cnnkit.course.plots.plot_images)."""
    batch = np.repeat(np.asarray(image)[None], n, axis=0)
    return keras.ops.convert_to_numpy(augmentation(batch, training=True))


def displacement_field(shape, *, grid=3, sigma=10.0, rng=None):
    """U-Net's smooth random displacements for an image of `shape` (height, width): a (2, height,
    width) array of (dy, dx) in pixels, drawn from N(0, sigma²) on a `grid` x `grid` lattice
    whose corners sit on the image's corners, and interpolated bicubically in between."""
    from scipy import ndimage

    if not isinstance(grid, int) or grid < 2:
        raise ValueError(f"grid is the lattice's points per side, an int >= 2 (U-Net: 3); "
                         f"got {grid!r}.")
    if sigma < 0:
        raise ValueError(f"sigma is a standard deviation in pixels, >= 0; got {sigma!r}.")
    rng = np.random.default_rng() if rng is None else rng
    height, width = shape[:2]
    coarse = rng.normal(0.0, sigma, size=(2, grid, grid))
    rows = np.linspace(0, grid - 1, height)[:, None] * np.ones((1, width))
    cols = np.ones((height, 1)) * np.linspace(0, grid - 1, width)[None, :]
    # order=3 fits a cubic spline through the lattice's values: it passes through every one
    return np.stack([ndimage.map_coordinates(c, [rows, cols], order=3, mode="nearest")
                     for c in coarse])


def elastic_deformation(image, mask=None, *, grid=3, sigma=10.0, rng=None, field=None,
                        order=3):
    """U-Net's elastic deformation: `image` (height, width[, channels]) warped by a smooth random
    `displacement_field` (or the `field` given), bicubically (`order`), mirroring at the border;
    `mask` warped by the same field with the nearest label, so that classes never blend (the
    paper does not say how it resampled its labels). Returns the image, or (image, mask)."""
    from scipy import ndimage

    image = np.asarray(image)
    if mask is not None and np.shape(mask)[:2] != image.shape[:2]:
        raise ValueError(f"mask {np.shape(mask)} and image {image.shape} must have the same "
                         "height and width.")
    if field is None:
        field = displacement_field(image.shape, grid=grid, sigma=sigma, rng=rng)
    rows, cols = np.meshgrid(np.arange(image.shape[0]), np.arange(image.shape[1]), indexing="ij")
    where = [rows + field[0], cols + field[1]]

    def warp(a, order):
        if a.ndim == 2:
            return ndimage.map_coordinates(a, where, order=order, mode="mirror")
        return np.stack([warp(a[..., k], order) for k in range(a.shape[-1])], axis=-1)

    warped = warp(image, order).astype(image.dtype, copy=False) if image.dtype.kind == "f" else (
        np.clip(np.rint(warp(image.astype("float64"), order)), np.iinfo(image.dtype).min,
                np.iinfo(image.dtype).max).astype(image.dtype) if image.dtype.kind in "iu"
        else warp(image, order))
    if mask is None:
        return warped
    return warped, warp(np.asarray(mask), 0)


def _rescaled_size(height, width, side):
    """(rows, columns) of a height x width image rescaled so that its smaller side is `side`,
    each rounded to the nearest pixel (`rescale` and `scaled_crops` share this rule)."""
    shorter = min(height, width)
    return int(np.floor(height * side / shorter + 0.5)), int(np.floor(width * side / shorter + 0.5))


def rescale(images, side):
    """`images` (batch, height, width, channels) resized, keeping their aspect ratio, so that the
    smaller side is `side` pixels: VGG's isotropic rescaling to a training scale S or a test scale
    Q ("Very Deep Convolutional Networks for Large-Scale Image Recognition", Simonyan and
    Zisserman, 2015, Sections 3.1 and 3.2). Bilinear, without antialiasing: meant for enlarging,
    as the lessons use it (the paper does not say how it resampled)."""
    if isinstance(side, bool) or not isinstance(side, (int, np.integer)) or side < 1:
        raise ValueError(f"side is the smaller side after rescaling, a whole number of pixels; "
                         f"got {side!r}.")
    height, width = images.shape[-3], images.shape[-2]
    size = _rescaled_size(height, width, side)
    if size == (height, width):
        return images  # already at that scale: resizing would only cost time
    return keras.ops.image.resize(images, size, interpolation="bilinear",
                                  data_format="channels_last")


def _resample(images, scale, offset, size, axis, ops):
    """Bilinear samples along one axis (1: rows, 2: columns) of pixels offset ... offset + size
    of each image enlarged `scale` times (one scale and one offset per image)."""
    length = images.shape[axis]
    # Pixel o of the enlarged image has its centre at (o + 0.5) / scale - 0.5 in the original
    # (keras.ops.image.resize's half-pixel convention); clamping there repeats the border
    # pixels, as resize does.
    where = (ops.numpy.arange(size, dtype="float32")[None, :] + offset[:, None] + 0.5) / (
        scale[:, None]) - 0.5
    where = ops.numpy.clip(where, 0.0, length - 1.0)
    below = ops.numpy.floor(where)
    fraction = where - below
    below = ops.cast(below, "int32")
    above = ops.numpy.minimum(below + 1, length - 1)
    shape = (-1, size, 1, 1) if axis == 1 else (-1, 1, size, 1)
    low = ops.numpy.take_along_axis(images, ops.numpy.reshape(below, shape), axis=axis)
    high = ops.numpy.take_along_axis(images, ops.numpy.reshape(above, shape), axis=axis)
    return low + ops.numpy.reshape(fraction, shape) * (high - low)


def scaled_crops(images, sides, tops, lefts, crop_size, *, ops=None):
    """Image i rescaled so that its smaller side is sides[i] (as `rescale` does), then its
    crop_size patch whose top-left pixel is (tops[i], lefts[i]) in the rescaled image, which
    the patch must lie in.

    Bilinear interpolation is separable, so each axis is resampled on its own, at the patch's
    pixels only: every image of a batch gets its own scale and position, at the cost of the
    patch, not of the rescaled image. The values are those of `rescale` then slicing.
    `ops`: keras.ops, or a preprocessing layer's `self.backend` (TensorFlow inside tf.data).
    """
    ops = keras.ops if ops is None else ops
    h, w = _pair("crop_size", crop_size)
    height, width = images.shape[-3], images.shape[-2]
    sides = ops.cast(sides, "float32")
    shorter = float(min(height, width))
    scale_y = ops.numpy.floor(height * sides / shorter + 0.5) / height  # rows, as _rescaled_size
    scale_x = ops.numpy.floor(width * sides / shorter + 0.5) / width
    images = ops.cast(images, "float32")
    rows = _resample(images, scale_y, ops.cast(tops, "float32"), h, 1, ops)
    return _resample(rows, scale_x, ops.cast(lefts, "float32"), w, 2, ops)


def _scale_range(value, crop):
    """VGG's [S_min, S_max], whole numbers, the smaller one at least the crop's larger side."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                       for v in value)
            or not max(crop) <= value[0] <= value[1]):
        raise ValueError(f"scale_range={value!r}: give (S_min, S_max), whole numbers with "
                         f"{max(crop)} <= S_min <= S_max: the rescaled image must hold the "
                         f"{crop[0]}x{crop[1]} crop (the paper: (256, 512) for 224 crops).")
    return int(value[0]), int(value[1])


@keras.saving.register_keras_serializable(package="cnnkit")
class ScaleJitter(_DataLayer):
    """VGG's scale jittering: each image rescaled so that its smaller side is a random S in
    [S_min, S_max], then a random crop of it; at inference, the centre crop at one scale.

    From "Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan and
    Zisserman, 2015), Section 3.1: S drawn for each image from [256, 512], 224 x 224 crops, "a
    single model is trained to recognise objects over a wide range of scales". At inference
    the image is rescaled to `test_side` (by default (S_min + S_max) // 2, the paper's single
    test scale for such a net, Section 4.1) and its centre cropped. Simplified: S is a whole
    number of pixels, uniform over the range; the paper's flips and colour shift are left to
    other layers. Each image gets its own S and position (`scaled_crops`); built like Keras's
    preprocessing layers, it runs on every backend and inside tf.data.
    """

    def __init__(self, crop_size=224, scale_range=(256, 512), test_side=None, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.height, self.width = _pair("crop_size", crop_size)
        self.scale_range = _scale_range(tuple(scale_range), (self.height, self.width))
        low, high = self.scale_range
        test_side = (low + high) // 2 if test_side is None else test_side
        if (isinstance(test_side, bool) or not isinstance(test_side, (int, np.integer))
                or test_side < max(self.height, self.width)):
            raise ValueError(f"test_side={test_side!r}: give the test scale Q, a whole number "
                             f"of pixels >= {max(self.height, self.width)}, or None for "
                             f"(S_min + S_max) // 2 = {(low + high) // 2}.")
        self.test_side, self.seed = int(test_side), seed
        self.generator = keras.random.SeedGenerator(seed)

    def sample(self, count, height, width):
        """Random (sides, tops, lefts) for `count` images of height x width: S uniform over
        the whole numbers of scale_range, each crop position uniform over the rescaled image."""
        ops = self.backend
        low, high = self.scale_range
        draws = ops.random.uniform((3, count), seed=self._get_seed_generator(ops._backend))
        sides = ops.numpy.minimum(ops.numpy.floor(low + draws[0] * (high - low + 1)), high)
        shorter = float(min(height, width))
        rows = ops.numpy.floor(height * sides / shorter + 0.5)
        cols = ops.numpy.floor(width * sides / shorter + 0.5)
        # the largest top (left) is rows - crop: count that many + 1 positions
        tops = ops.numpy.minimum(ops.numpy.floor(draws[1] * (rows - self.height + 1)),
                                 rows - self.height)
        lefts = ops.numpy.minimum(ops.numpy.floor(draws[2] * (cols - self.width + 1)),
                                  cols - self.width)
        return sides, tops, lefts

    def call(self, images, training=True):
        ops = self.backend
        images = ops.cast(images, self.compute_dtype)
        height, width = _known_size(self, images)
        single = len(images.shape) == 3
        if single:
            images = ops.numpy.expand_dims(images, 0)
        count = ops.shape(images)[0]
        if training:
            sides, tops, lefts = self.sample(count, height, width)
        else:
            rows, cols = _rescaled_size(height, width, self.test_side)
            zeros = ops.numpy.zeros_like(images[:, 0, 0, 0], dtype="float32")
            sides = zeros + self.test_side
            tops, lefts = zeros + (rows - self.height) // 2, zeros + (cols - self.width) // 2
        crops = ops.cast(scaled_crops(images, sides, tops, lefts, (self.height, self.width),
                                      ops=ops), self.compute_dtype)
        return crops[0] if single else crops

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-3], self.height, self.width, input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "crop_size": (self.height, self.width),
                "scale_range": self.scale_range, "test_side": self.test_side,
                "seed": self.seed}


def crop_positions(size, crop, grid):
    """Offsets of `grid` crops of `crop` pixels spread evenly over `size` pixels, from one edge
    to the other, as whole pixels (fewer where they coincide: one when crop == size)."""
    if crop > size:
        raise ValueError(f"a crop of {crop} pixels does not fit in {size}.")
    return sorted({int(np.floor(p + 0.5)) for p in np.linspace(0, size - crop, grid)})


def multi_crop(images, crop_size, grid=3, flip=False):
    """VGG's multi-crop views: crops on a regular grid x grid lattice over each image, from
    corner to corner, and with flip=True their mirror images too.

    `images` (batch, height, width, channels) -> a NumPy array (views, batch, crop height,
    crop width, channels), row by row, then the mirrored ones. The paper takes a 5 x 5 grid
    with flips, 50 crops per test scale ("Very Deep Convolutional Networks for Large-Scale
    Image Recognition", Simonyan and Zisserman, 2015, Section 3.2); positions that coincide
    are taken once.
    """
    if isinstance(grid, bool) or not isinstance(grid, (int, np.integer)) or grid < 1:
        raise ValueError(f"grid is the number of crops along each side, a whole number >= 1 "
                         f"(the paper: 5); got {grid!r}.")
    h, w = _pair("crop_size", crop_size)
    height, width = images.shape[-3], images.shape[-2]
    if h > height or w > width:
        raise ValueError(f"crop_size={(h, w)} is larger than the images {(height, width)}.")
    # Sliced in NumPy: on JAX every distinct slice of a tensor would be compiled on its own
    images = keras.ops.convert_to_numpy(images)
    crops = [images[..., top:top + h, left:left + w, :]
             for top in crop_positions(height, h, grid) for left in crop_positions(width, w, grid)]
    if flip:
        crops += [crop[..., ::-1, :] for crop in crops]
    return np.stack(crops, axis=0)


def _outputs(model, images, batch_size):
    """The model's outputs on `images`, called in inference mode on batches, as NumPy."""
    images = keras.ops.convert_to_numpy(images)
    if keras.backend.backend() == "jax":
        # JAX's eager mode compiles each operation for each new image size; one compiled
        # predict per size costs less (TensorFlow and PyTorch run eagerly at no such cost)
        return model.predict(images, batch_size=batch_size, verbose=0)
    return np.concatenate([keras.ops.convert_to_numpy(model(images[i:i + batch_size],
                                                            training=False))
                           for i in range(0, len(images), batch_size)])


def multi_crop_predict(model, images, scales, grid=3, flip=False, batch_size=256):
    """`model`'s softmax outputs averaged over multi-crop views at several test scales.

    Each image is rescaled to every smaller side Q in `scales` (`rescale`), cut into
    `multi_crop` views of the model's input size, and the outputs of all views of one scale are
    averaged, then the scales (VGG's multi-crop evaluation, Sections 3.2 and 4.3: 5 x 5 crops
    with flips at Q in {256, 384, 512}, 150 views).
    """
    crop = tuple(model.input_shape[1:3])
    count = len(images)
    per_scale = []
    for side in scales:
        views = multi_crop(rescale(images, side), crop, grid=grid, flip=flip)
        # All views of a scale in one call, in batches no larger than one view: the same
        # batch shape as every other call on these images (one compiled function on JAX)
        scores = _outputs(model, views.reshape(-1, *views.shape[2:]), min(batch_size, count))
        per_scale.append(scores.reshape(len(views), count, -1).mean(axis=0))
    return np.mean(per_scale, axis=0)


def dense_predict(model, images, scales, flip=False, batch_size=256):
    """A fully convolutional `model`'s class scores, its score maps averaged over their
    positions, then over the test scales in `scales` (and mirror images with flip=True).

    VGG's dense evaluation ("Very Deep Convolutional Networks for Large-Scale Image
    Recognition", Simonyan and Zisserman, 2015, Section 3.2): the whole uncropped image,
    rescaled to each smaller side Q, goes through the network whose dense layers became
    convolutions (`cnnkit.course.experiments.fully_convolutional`), and "the class score map is
    spatially averaged". Outputs without positions (batch, classes) are taken as they are.
    """
    total, count = 0.0, 0
    for side in scales:
        image = keras.ops.convert_to_numpy(rescale(images, side))
        for view in [image, image[..., ::-1, :]] if flip else [image]:
            scores = _outputs(model, view, batch_size)
            total = total + (scores.mean(axis=(1, 2)) if scores.ndim == 4 else scores)
            count += 1
    return total / count
