"""DenseNet: every layer of a dense block reads the concatenated maps of all layers before it.

Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional Networks" (2017),
Table 1, growth rate k = 32. Each "conv" is BN-ReLU-Conv (pre-activation); a dense layer is the
bracket [1x1 conv 4k, 3x3 conv k] (DenseNet-B), a transition halves the channels (compression
0.5, DenseNet-C) and the size. The counts are trainable parameters with 1000 classes.

| layers           | output  | DenseNet-121  | DenseNet-169  | DenseNet-201  |
|------------------|---------|---------------|---------------|---------------|
| convolution      | 112x112 | 7x7 conv, 2k = 64, stride 2                   |
| pooling          | 56x56   | 3x3 max pool, stride 2                        |
| dense block (1)  | 56x56   | [1x1, 3x3] x 6: 64 + 6k = 256 channels        |
| transition (1)   | 28x28   | 1x1 conv to 128, 2x2 average pool, stride 2   |
| dense block (2)  | 28x28   | [1x1, 3x3] x 12: 128 + 12k = 512              |
| transition (2)   | 14x14   | 1x1 conv to 256, 2x2 average pool, stride 2   |
| dense block (3)  | 14x14   | x 24: 1024    | x 32: 1280    | x 48: 1792    |
| transition (3)   | 7x7     | 1x1 conv to half, 2x2 average pool, stride 2  |
| dense block (4)  | 7x7     | x 16: 1024    | x 32: 1664    | x 32: 1920    |
| classification   | 1x1     | BN-ReLU, global average pool, 1000-way fully connected, softmax |
| params           |         | 7,978,856     | 14,149,480    | 20,013,928    |

A block that starts with k0 channels ends with k0 + l·k after l dense layers: the maps are
never added, only concatenated, so the network stays narrow (k = 32) yet every layer sees
every earlier feature map.

Layer names follow keras.applications, whose DenseNet121/169/201 these models compute exactly:
dense layer b of block s is `conv{s}_block{b}` with `_0_bn`, `_0_relu`, `_1_conv` (the 1x1),
`_1_bn`, `_1_relu`, `_2_conv` (the 3x3) and `_concat`; transition s is `pool{s}_bn`, `_relu`,
`_conv`, `_pool`. The registry's taps (`cnnkit.model_info("densenet121").taps`) end each stage
where the next one starts: conv1 after `pool1`, conv2..conv4 after their transition's pooling,
conv5 at the final `relu`. A detector or U-Net reads the normalised maps before each pooling
instead: `conv1_relu` (stride 2), `pool2_relu` (4), `pool3_relu` (8), `pool4_relu` (16), `relu`.
"""

import numbers

import keras
from keras import layers

from cnnkit.blocks import BN_MOMENTUM, bn_act, classifier, conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "densenet", "dense_layer", "dense_block", "transition",
           "densenet121", "densenet169", "densenet201"]

PAPER = dict(family="densenet", paper="Densely Connected Convolutional Networks", year=2017)
# keras.applications' BatchNorm epsilon, kept so that its weights port exactly.
KERAS_EPSILON = 1.001e-5
BOTTLENECK = 4  # DenseNet-B: the 1x1 convolution makes 4k maps for the 3x3 to read

ARCHITECTURES = {  # dense layers per block, Table 1
    "densenet121": dict(PAPER, depths=(6, 12, 24, 16), params=7_978_856),
    "densenet169": dict(PAPER, depths=(6, 12, 32, 32), params=14_149_480),
    "densenet201": dict(PAPER, depths=(6, 12, 48, 32), params=20_013_928),
}


def dense_layer(x, growth_rate, *, name):
    """BN-ReLU-1x1 conv (4k) - BN-ReLU-3x3 conv (k), concatenated to the input: k more channels."""
    y = bn_act(x, name=f"{name}_0", epsilon=KERAS_EPSILON)
    y = layers.Conv2D(BOTTLENECK * growth_rate, 1, use_bias=False, name=f"{name}_1_conv")(y)
    y = bn_act(y, name=f"{name}_1", epsilon=KERAS_EPSILON)
    y = layers.Conv2D(growth_rate, 3, padding="same", use_bias=False, name=f"{name}_2_conv")(y)
    return layers.Concatenate(name=f"{name}_concat")([x, y])


def dense_block(x, depth, growth_rate, *, name):
    """`depth` dense layers `{name}_block1`..: k0 channels in, k0 + depth·k out, same size."""
    for b in range(depth):
        x = dense_layer(x, growth_rate, name=f"{name}_block{b + 1}")
    return x


def transition(x, compression, *, name):
    """BN-ReLU-1x1 conv keeping a `compression` share of the channels, 2x2 average pool."""
    x = bn_act(x, name=name, epsilon=KERAS_EPSILON)
    x = layers.Conv2D(int(x.shape[-1] * compression), 1, use_bias=False,
                      name=f"{name}_conv")(x)
    return layers.AveragePooling2D(2, strides=2, name=f"{name}_pool")(x)


def stem(x, filters):
    """7x7/2 convolution and 3x3/2 max pool, padded as keras.applications pads them."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_bn(x, filters, 7, strides=2, padding="valid", name="conv1", epsilon=KERAS_EPSILON)
    # After the ReLU every value is >= 0, so zero padding does not change the max pool.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1")(x)


def densenet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
             pooling=None, classes=1000, classifier_activation="softmax", name=None,
             growth_rate=32, compression=0.5):
    """DenseNet-BC `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Paper: Huang, Liu, van der Maaten and Weinberger, "Densely Connected Convolutional
    Networks", 2017 (arXiv 2016). Computes exactly what keras.applications' DenseNet121/169/201
    computes; the only difference is the BatchNorm running-average momentum (training only).

    growth_rate: k, the maps each dense layer adds (the paper's ImageNet models: 32; its
    DenseNet-161 used 48). The stem makes 2k maps and every 1x1 bottleneck 4k, as in the paper.
    compression: θ, the share of channels a transition keeps (0.5 is DenseNet-C; 1 keeps all).
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    _check_options(growth_rate, compression)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, 2 * int(growth_rate))
    last = len(spec["depths"]) + 1
    for stage, depth in enumerate(spec["depths"], start=2):
        x = dense_block(x, depth, int(growth_rate), name=f"conv{stage}")
        if stage < last:
            x = transition(x, compression, name=f"pool{stage}")
    # The last block's output is normalised once more: every BN-ReLU comes before a convolution
    # inside the network, so the classifier would otherwise read raw concatenated maps.
    x = layers.BatchNormalization(epsilon=KERAS_EPSILON, momentum=BN_MOMENTUM, name="bn")(x)
    x = layers.Activation("relu", name="relu")(x)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights, arch=arch,
                        include_top=include_top)


def _check_options(growth_rate, compression):
    if (isinstance(growth_rate, bool) or not isinstance(growth_rate, numbers.Integral)
            or growth_rate < 1):
        raise ValueError(f"growth_rate must be a whole number >= 1 (the paper uses 12 to 48, "
                         f"ImageNet models 32); got {growth_rate!r}.")
    if (isinstance(compression, bool) or not isinstance(compression, numbers.Real)
            or not 0 < compression <= 1):
        raise ValueError(f"compression must be a number in (0, 1]: the share of channels a "
                         f"transition keeps (0.5 in DenseNet-BC, 1 for none); got {compression!r}.")


# Taps: conv1 with pool1, each dense block with the transition after it (keras.applications'
# pool2..pool4, which halve the maps), and the last block with the final BN-ReLU.
# min_size 29: the stem leaves ceil(29/4) = 8 pixels, which three 2x2 pools bring to 1.
DENSENET = dict(PAPER, input_shape=(224, 224, 3), min_size=29,
                taps=(Tap("conv1", "pool1", 4), Tap("conv2", "pool2_pool", 8),
                      Tap("conv3", "pool3_pool", 16), Tap("conv4", "pool4_pool", 32),
                      Tap("conv5", "relu", 32)))

densenet121 = register("densenet121", densenet, "densenet121", **DENSENET,
                       params=ARCHITECTURES["densenet121"]["params"], twin="DenseNet121")
densenet169 = register("densenet169", densenet, "densenet169", **DENSENET,
                       params=ARCHITECTURES["densenet169"]["params"], twin="DenseNet169")
densenet201 = register("densenet201", densenet, "densenet201", **DENSENET,
                       params=ARCHITECTURES["densenet201"]["params"], twin="DenseNet201")
