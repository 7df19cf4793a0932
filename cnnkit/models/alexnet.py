"""AlexNet and ZFNet: five convolutions with ReLU, response normalization, three dense layers.

AlexNet, one tower on 227x227x3 (`groups=2` gives the paper's two-GPU split in brackets):

| layer       | paper               | here                                | output    | parameters  |
|-------------|---------------------|-------------------------------------|-----------|------------:|
| conv1       | 96 kernels 11x11x3  | 96 conv 11x11 stride 4, valid, ReLU | 55x55x96  |      34,944 |
| norm1       | response norm.      | LRN n=5, k=2, alpha=1e-4, beta=0.75 | 55x55x96  |           0 |
| pool1       | overlapping pooling | 3x3 max pooling, stride 2           | 27x27x96  |           0 |
| conv2       | 256 kernels 5x5x48  | 256 conv 5x5, same [2 x 128]        | 27x27x256 |     614,656 |
|             |                     |                                     |           |   [307,456] |
| norm2/pool2 |                     | LRN, 3x3 max pooling stride 2       | 13x13x256 |           0 |
| conv3       | 384 kernels 3x3x256 | 384 conv 3x3, same, on all 256 maps | 13x13x384 |     885,120 |
| conv4       | 384 kernels 3x3x192 | 384 conv 3x3, same [2 x 192]        | 13x13x384 |   1,327,488 |
|             |                     |                                     |           |   [663,936] |
| conv5       | 256 kernels 3x3x192 | 256 conv 3x3, same [2 x 128]        | 13x13x256 |     884,992 |
|             |                     |                                     |           |   [442,624] |
| pool5       |                     | 3x3 max pooling, stride 2           | 6x6x256   |           0 |
| fc6, drop6  | 4096 neurons        | dense 4096, ReLU, dropout 0.5       | 4096      |  37,752,832 |
| fc7, drop7  | 4096 neurons        | dense 4096, ReLU, dropout 0.5       | 4096      |  16,781,312 |
| predictions | 1000-way softmax    | dense `classes`, softmax            | 1000      |   4,097,000 |
|             |                     |                                     | total     |  62,378,344 |
|             |                     |                                     |           |[60,965,224] |

ZFNet changes the first two layers (Zeiler & Fergus, Figure 3) and keeps the rest, one tower:

| layer       | here                                              | output      | parameters |
|-------------|---------------------------------------------------|-------------|-----------:|
| conv1       | 1 pixel of zeros, 96 conv 7x7 stride 2, ReLU      | 110x110x96  |     14,208 |
| pool1/norm1 | 3x3 max pooling stride 2 (rounding up), LRN       | 55x55x96    |          0 |
| conv2       | 256 conv 5x5 stride 2, valid, ReLU                | 26x26x256   |    614,656 |
| pool2/norm2 | 3x3 max pooling stride 2 (rounding up), LRN       | 13x13x256   |          0 |
| conv3..fc7  | as AlexNet's one tower                            | ... 6x6x256 |            |
|             |                                                   | total       | 62,357,608 |

Layer names follow Caffe's bvlc_alexnet (conv1, norm1, pool1, ..., fc6, fc7), the names under
which "fc7 features" became famous.
"""

from typing import NamedTuple

import keras
from keras import layers

from cnnkit.blocks import global_pool
from cnnkit.layers import GroupConv2D, LocalResponseNormalization
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["alexnet", "zfnet", "ALEXNET", "ZFNET"]


class Conv(NamedTuple):
    """One convolutional layer of the table, and what follows it."""

    filters: int
    kernel: int
    strides: int = 1
    padding: int | str = "same"  # an int pads that many zeros on every side, as Caffe does
    grouped: bool = False  # split in two halves that never see each other when groups=2
    after: tuple = ()  # "norm" and "pool", in the order the paper applies them
    pool_padding: str = "valid"


# Krizhevsky et al. 2012, Section 3.5 and Figure 2. "Response-normalization layers follow the
# first and second convolutional layers. Max-pooling layers ... follow both response-normalization
# layers as well as the fifth convolutional layer." Conv3 is the one layer connected across GPUs.
ALEXNET = (
    Conv(96, 11, strides=4, padding="valid", after=("norm", "pool")),
    Conv(256, 5, grouped=True, after=("norm", "pool")),
    Conv(384, 3),
    Conv(384, 3, grouped=True),
    Conv(256, 3, grouped=True, after=("pool",)),
)

# Zeiler & Fergus 2013, Figure 3: 110 -> 55 -> 26 -> 13 -> 13 -> 13 -> 13 -> 6. Their pooling
# rounds up (cuda-convnet and Caffe let the last window hang over the edge), which is what Keras's
# "same" pooling does on the even maps 110 and 26; on 13 rounding up and down agree (6), and
# "same" would give 7, so pool5 is "valid". Each layer is "rectified, pooled ... and then
# contrast normalized across feature maps": pooling comes before the normalization here.
ZFNET = (
    Conv(96, 7, strides=2, padding=1, after=("pool", "norm"), pool_padding="same"),
    Conv(256, 5, strides=2, padding="valid", after=("pool", "norm"), pool_padding="same"),
    Conv(384, 3),
    Conv(384, 3),
    Conv(256, 3, after=("pool",)),
)


def conv_layer(x, spec, *, index, groups=1):
    """One row of the table: convolution with ReLU, then its normalization and pooling."""
    padding = spec.padding
    if isinstance(padding, int):
        x = layers.ZeroPadding2D(padding, name=f"conv{index}_pad")(x)
        padding = "valid"
    groups = groups if spec.grouped else 1
    conv = GroupConv2D if groups > 1 else layers.Conv2D
    x = conv(spec.filters, spec.kernel, strides=spec.strides, padding=padding, groups=groups,
             activation="relu", name=f"conv{index}")(x)
    for step in spec.after:
        if step == "norm":
            x = LocalResponseNormalization(size=5, k=2.0, alpha=1e-4, beta=0.75,
                                           name=f"norm{index}")(x)
        else:  # overlapping pooling: 3x3 windows 2 pixels apart (Section 3.4)
            x = layers.MaxPooling2D(3, strides=2, padding=spec.pool_padding,
                                    name=f"pool{index}")(x)
    return x


def classifier(x, classes, classifier_activation):
    """Flatten the 6x6x256 maps, two dense layers of 4096 with dropout 0.5, then the classes."""
    x = layers.Flatten(name="flatten")(x)
    for index in (6, 7):
        x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
        x = layers.Dropout(0.5, name=f"drop{index}")(x)
    return layers.Dense(classes, activation=classifier_activation, name="predictions")(x)


def _build(table, args, *, include_top, weights, input_tensor, pooling,
           classifier_activation, name, groups=1):
    inputs, x = model_inputs(input_tensor, args.input_shape)
    for index, spec in enumerate(table, start=1):
        x = conv_layer(x, spec, index=index, groups=groups)
    if include_top:
        x = classifier(x, args.classes, classifier_activation)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name), weights)


def alexnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
            classes=1000, classifier_activation="softmax", groups=1, name="alexnet"):
    """AlexNet as a Keras functional model: the table in this module's docstring.

    Paper: "ImageNet Classification with Deep Convolutional Neural Networks", Krizhevsky,
    Sutskever and Hinton, 2012 (NeurIPS). Section 3 and Figure 2 give the layers.

    `groups=1` (default) is the one-tower network every framework ships: each layer sees all
    the maps of the layer below. `groups=2` is the paper's split over two GPUs: conv2, conv4 and
    conv5 are grouped convolutions, each half of the kernels seeing only its own GPU's half of
    the maps (60,965,224 parameters instead of 62,378,344). Conv1 needs no split (both halves
    see the whole image: 96 kernels either way) and conv3 and the dense layers are connected
    across GPUs in the paper too.

    The input is 227x227: the paper says 224, but 11x11 kernels 4 pixels apart need 227 pixels
    to give its 55x55 maps. Simplified: with groups=2, the response normalization still runs
    over all maps, so the two maps either side of the split see each other; on two GPUs each
    normalized its own half. Training details (biases initialised to 1, weight decay, PCA
    colour augmentation) belong to the training loop, not to the model.
    """
    args = check_args("alexnet", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    if isinstance(groups, bool) or groups not in (1, 2):
        raise ValueError(f"groups must be 1 (one tower, the usual AlexNet) or 2 (the paper's "
                         f"split over two GPUs); got {groups!r}.")
    return _build(ALEXNET, args, include_top=include_top, weights=weights,
                  input_tensor=input_tensor, pooling=pooling,
                  classifier_activation=classifier_activation, name=name, groups=groups)


def zfnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
          classes=1000, classifier_activation="softmax", name="zfnet"):
    """ZFNet (Zeiler & Fergus' model of Figure 3) as a Keras functional model.

    Paper: "Visualizing and Understanding Convolutional Networks", Zeiler and Fergus, 2013
    (ECCV 2014). Their deconvnet showed that AlexNet's 11x11 stride-4 first layer aliases and
    leaves dead filters, so conv1 becomes 7x7 stride 2 and conv2 strides by 2; layers 3 to 5 are
    dense (one tower) instead of AlexNet's split.

    The map sizes are those of Figure 3 (110, 55, 26, 13, 6): conv1 pads one pixel of zeros on
    every side (224 + 2 - 7 = 219, /2 + 1 = 110), conv2 pads none ((55 - 5)/2 + 1 = 26), pool1
    and pool2 round up as the paper's code did, pool5 needs no rounding (see ZFNET). The
    parameter count does not depend on padding; the 6x6x256 maps fc6 flattens do. Simplified:
    the paper renormalizes any conv filter whose RMS exceeds 0.1 after each update, a training
    rule and not a layer.
    """
    args = check_args("zfnet", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    return _build(ZFNET, args, include_top=include_top, weights=weights,
                  input_tensor=input_tensor, pooling=pooling,
                  classifier_activation=classifier_activation, name=name)


# Taps: each convolution with the normalization and pooling after it (the table's rows).
alexnet = register("alexnet", alexnet, family="alexnet",
                   paper="ImageNet Classification with Deep Convolutional Neural Networks",
                   year=2012, input_shape=(227, 227, 3), min_size=67, params=62_378_344,
                   fixed_size_top=True,
                   taps=(Tap("conv1", "pool1", 8), Tap("conv2", "pool2", 16),
                         Tap("conv3", "conv3", 16), Tap("conv4", "conv4", 16),
                         Tap("conv5", "pool5", 32)))
zfnet = register("zfnet", zfnet, family="alexnet",
                 paper="Visualizing and Understanding Convolutional Networks", year=2013,
                 input_shape=(224, 224, 3), min_size=53, params=62_357_608, fixed_size_top=True,
                 taps=(Tap("conv1", "norm1", 4), Tap("conv2", "norm2", 16),
                       Tap("conv3", "conv3", 16), Tap("conv4", "conv4", 16),
                       Tap("conv5", "pool5", 32)))
