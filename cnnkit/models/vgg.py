"""VGG: only 3x3 convolutions, five blocks each closed by 2x2 max pooling, three dense layers.

Configurations A, B, D and E of the paper's Table 1 ("conv3-64" is a 3x3 convolution with 64
maps, padding 1 pixel, ReLU), with the output of each block for a 224x224x3 input:

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
Configuration C (1x1 convolutions in blocks 3-5) and A-LRN are left out, as everywhere else.
Layer names are keras.applications VGG16's (block1_conv1 ... block5_pool, flatten, fc1, fc2,
predictions), so its ImageNet weights load by name.
"""

import functools

import keras
from keras import layers

from cnnkit.blocks import bn_act, global_pool
from cnnkit.registry import register
from cnnkit.weights import TWINS
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["vgg", "vgg11", "vgg13", "vgg16", "vgg19", "VGG_CONFIGS", "VGG_WIDTHS"]

VGG_WIDTHS = (64, 128, 256, 512, 512)  # maps of each block's convolutions

# name -> (column of Table 1, 3x3 convolutions in each block, reference parameters)
VGG_CONFIGS = {
    "vgg11": ("A", (1, 1, 2, 2, 2), 132_863_336),
    "vgg13": ("B", (2, 2, 2, 2, 2), 133_047_848),
    "vgg16": ("D", (2, 2, 3, 3, 3), 138_357_544),
    "vgg19": ("E", (2, 2, 4, 4, 4), 143_667_240),
}


def vgg_block(x, filters, convs, *, block, batch_norm=False):
    """`convs` 3x3 convolutions of `filters` maps ("same": the size is kept), then 2x2 pooling.

    With batch_norm each convolution is followed by BatchNorm then ReLU (torchvision's vgg*_bn);
    the convolution keeps its bias, as torchvision's does, although BatchNorm cancels it.
    """
    for index in range(1, convs + 1):
        name = f"block{block}_conv{index}"
        if batch_norm:
            x = layers.Conv2D(filters, 3, padding="same", name=name)(x)
            x = bn_act(x, name=name)
        else:
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=name)(x)
    return layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)


def vgg(config, /, include_top=True, weights=None, input_tensor=None, input_shape=None,
        pooling=None, classes=1000, classifier_activation="softmax", batch_norm=False,
        name=None):
    """A VGG network of Table 1, `config` being "vgg11", "vgg13", "vgg16" or "vgg19".

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
    _, depths, _ = VGG_CONFIGS[config]
    name = config if name is None else name
    args = check_args(config, include_top=include_top, weights=weights,
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


def _register(config):
    label, depths, params = VGG_CONFIGS[config]
    builder = functools.partial(vgg, config)
    builder.__doc__ = f"VGG configuration {label} of Table 1 ({config}): see `vgg`."
    return register(
        config, family="vgg",
        paper="Very Deep Convolutional Networks for Large-Scale Image Recognition", year=2014,
        input_shape=(224, 224, 3), min_size=32, params=params,
        params_source=f"torchvision {config}", fixed_size_top=True,
        imagenet=config in TWINS)(builder)


vgg11 = _register("vgg11")
vgg13 = _register("vgg13")
vgg16 = _register("vgg16")
vgg19 = _register("vgg19")
