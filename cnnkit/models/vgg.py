"""VGG: only 3x3 convolutions, five blocks each closed by 2x2 max pooling, three dense layers.

Configurations A, B, D and E of the paper's Table 1 ("conv3-64" is a 3x3 convolution with 64
maps, padding 1 pixel, ReLU; "conv1-256" a 1x1 one), with the output of each block for a
224x224x3 input:

| block  | A: vgg11     | B: vgg13     | D: vgg16     | E: vgg19     | output after the pool |
|--------|--------------|--------------|--------------|--------------|-----------------------|
| block1 | conv3-64     | 2 x conv3-64 | 2 x conv3-64 | 2 x conv3-64 | 112x112x64            |
| block2 | conv3-128    | 2 x conv3-128| 2 x conv3-128| 2 x conv3-128| 56x56x128             |
| block3 | 2 x conv3-256| 2 x conv3-256| 3 x conv3-256| 4 x conv3-256| 28x28x256 (stride 8)  |
| block4 | 2 x conv3-512| 2 x conv3-512| 3 x conv3-512| 4 x conv3-512| 14x14x512 (stride 16) |
| block5 | 2 x conv3-512| 2 x conv3-512| 3 x conv3-512| 4 x conv3-512| 7x7x512 (stride 32)   |
| fc1    | FC-4096, dropout 0.5 (37,752,832 parameters)                |  4096                 |
| fc2    | FC-4096, dropout 0.5 (16,781,312)                           |  4096                 |
| predictions | FC-1000, soft-max (4,097,000)                          |  1000                 |
| weight layers | 11     | 13           | 16           | 19           |                       |
| parameters | 132,863,336 | 133,047,848 | 138,357,544 | 143,667,240 |                       |

Two stacked 3x3 convolutions see a 5x5 window and three see 7x7, with fewer parameters and
more ReLUs than one large kernel (Section 2.3): 3 x (3*3*C*C) = 27C^2 against 7*7*C*C = 49C^2.
Configuration C is D with the third convolution of blocks 3, 4 and 5 a conv1 (1x1): a row of
VGG_CONFIGS ("vgg16_c", 133,638,952 parameters, Table 2's "134" million) that `vgg` builds, but
not a registered model, as no framework ships it or its weights; A-LRN is left out.
Layer names are keras.applications VGG16's (block1_conv1 ... block5_pool, flatten, fc1, fc2,
predictions), so its ImageNet weights load by name.
"""

import keras
from keras import layers

from cnnkit.blocks import bn_act, global_pool
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["vgg", "vgg11", "vgg13", "vgg16", "vgg19", "VGG_CONFIGS", "VGG_WIDTHS"]

VGG_WIDTHS = (64, 128, 256, 512, 512)  # maps of each block's convolutions

# name -> (column of Table 1, each block's convolutions: how many 3x3, or the kernel size of
# each, reference parameters)
VGG_CONFIGS = {
    "vgg11": ("A", (1, 1, 2, 2, 2), 132_863_336),
    "vgg13": ("B", (2, 2, 2, 2, 2), 133_047_848),
    "vgg16_c": ("C", (2, 2, (3, 3, 1), (3, 3, 1), (3, 3, 1)), 133_638_952),  # B + three 1x1
    "vgg16": ("D", (2, 2, 3, 3, 3), 138_357_544),
    "vgg19": ("E", (2, 2, 4, 4, 4), 143_667_240),
}
# Rows that are not registered models check their arguments as the registered row with the same
# input size and classifier.
_CHECKED_AS = {"vgg16_c": "vgg16"}


def vgg_block(x, filters, convs, *, block, batch_norm=False):
    """`convs` 3x3 convolutions of `filters` maps ("same": the size is kept), then 2x2 pooling.

    `convs` may instead list each convolution's kernel size: (3, 3, 1) is configuration C's
    conv3, conv3, conv1. With batch_norm each convolution is followed by BatchNorm then ReLU
    (torchvision's vgg*_bn); the convolution keeps its bias, as torchvision's does, although
    BatchNorm cancels it.
    """
    kernels = (3,) * convs if isinstance(convs, int) else tuple(convs)
    for index, kernel in enumerate(kernels, start=1):
        name = f"block{block}_conv{index}"
        if batch_norm:
            x = layers.Conv2D(filters, kernel, padding="same", name=name)(x)
            x = bn_act(x, name=name)
        else:
            x = layers.Conv2D(filters, kernel, padding="same", activation="relu", name=name)(x)
    return layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)


def vgg(config, /, include_top=True, weights=None, input_tensor=None, input_shape=None,
        pooling=None, classes=1000, classifier_activation="softmax", batch_norm=False,
        name=None):
    """A VGG network of Table 1, `config` being "vgg11", "vgg13", "vgg16_c" (C), "vgg16" or "vgg19".

    Paper: "Very Deep Convolutional Networks for Large-Scale Image Recognition", Simonyan and
    Zisserman, 2014 (ICLR 2015). Table 1 gives the configurations, Section 2.1 the 3x3 stride-1
    convolutions padded to keep the size and the 2x2 stride-2 max pooling.

    The computation is keras.applications VGG16/VGG19's, layer for layer, plus dropout 0.5
    after fc1 and fc2 as the paper trains with it (Section 3.1; keras.applications leaves it
    out): dropout has no weights and does nothing at inference, so ImageNet weights still port
    unchanged. `batch_norm=True` adds BatchNorm after every convolution (torchvision's
    vgg*_bn, a later addition: the paper had none and trained the deep configurations by
    initialising them from the shallower ones).
    """
    label, depths, _ = VGG_CONFIGS[config]
    name = config if name is None else name
    if config in _CHECKED_AS and weights == "imagenet":
        raise ValueError(f"No ImageNet weights exist for configuration {label} ({config}): the "
                         "authors released D and E only. Use weights=None, or the path of a "
                         "weights file you saved yourself.")
    args = check_args(_CHECKED_AS.get(config, config), include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True (BatchNorm after every convolution, as "
                         f"torchvision's {config}_bn) or False (the paper); got {batch_norm!r}.")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    for block, (filters, convs) in enumerate(zip(VGG_WIDTHS, depths), start=1):
        x = vgg_block(x, filters, convs, block=block, batch_norm=batch_norm)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        for index in (1, 2):
            x = layers.Dense(4096, activation="relu", name=f"fc{index}")(x)
            x = layers.Dropout(0.5, name=f"fc{index}_dropout")(x)
        x = layers.Dense(args.classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name), weights, arch=config,
                        include_top=include_top)


# The five blocks, each closed by its pooling, are the taps of every configuration.
VGG = dict(family="vgg", paper="Very Deep Convolutional Networks for Large-Scale Image Recognition",
           year=2014, input_shape=(224, 224, 3), min_size=32, fixed_size_top=True,
           taps=tuple(Tap(f"block{b}", f"block{b}_pool", 2 ** b) for b in range(1, 6)))

vgg11 = register("vgg11", vgg, "vgg11", **VGG, params=VGG_CONFIGS["vgg11"][2])
vgg13 = register("vgg13", vgg, "vgg13", **VGG, params=VGG_CONFIGS["vgg13"][2])
vgg16 = register("vgg16", vgg, "vgg16", **VGG, params=VGG_CONFIGS["vgg16"][2], twin="VGG16")
vgg19 = register("vgg19", vgg, "vgg19", **VGG, params=VGG_CONFIGS["vgg19"][2], twin="VGG19")
