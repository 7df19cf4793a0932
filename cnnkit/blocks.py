"""Building blocks that several architectures share: each takes a tensor and returns a tensor.

Layer names are built from a `name` prefix, so a block placed with name="conv3_block2_1" gives
`conv3_block2_1_conv`, `conv3_block2_1_bn`, `conv3_block2_1_relu` in `model.summary()`, and a
later network (an FPN, a U-Net) can tap any of them with `model.get_layer(...).output`.
"""

from keras import layers

from cnnkit.layers import GroupConv2D

__all__ = ["global_pool", "classifier", "conv_bn", "bn_act", "depthwise_conv_bn",
           "squeeze_excite", "make_divisible", "BN_EPSILON", "BN_MOMENTUM"]

# PyTorch's defaults (eps 1e-5, running-average momentum 0.1, i.e. Keras momentum 0.9): the
# reference implementations the parameter counts come from use them, and a 0.9 running average
# settles within the few hundred steps a CPU lesson trains, where Keras's 0.99 would not.
BN_EPSILON = 1e-5
BN_MOMENTUM = 0.9


def global_pool(x, pooling, name_prefix=""):
    """The `pooling` option of a headless model: None keeps the maps, 'avg' or 'max' pools them."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name_prefix}avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name_prefix}max_pool")(x)
    return x


def classifier(x, *, include_top, pooling, classes, activation, dropout=0.0,
               name="predictions"):
    """The end of a modern classifier: global average pool, dropout if any, dense `predictions`.

    Headless (include_top=False) it applies the `pooling` option instead. `name` also prefixes
    the pooling and dropout layers, so an auxiliary head "aux_predictions" gets "aux_avg_pool".
    """
    prefix = name.removesuffix("predictions")
    if not include_top:
        return global_pool(x, pooling, prefix)
    x = layers.GlobalAveragePooling2D(name=f"{prefix}avg_pool")(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{prefix}dropout")(x)
    return layers.Dense(classes, activation=activation, name=name)(x)


def bn_act(x, *, name, activation="relu", epsilon=BN_EPSILON, scale=True):
    """BatchNorm, then an activation (None for none): `{name}_bn`, `{name}_{activation}`."""
    x = layers.BatchNormalization(epsilon=epsilon, momentum=BN_MOMENTUM, scale=scale,
                                  name=f"{name}_bn")(x)
    if activation is not None:
        x = layers.Activation(activation, name=f"{name}_{_act_name(activation)}")(x)
    return x


def conv_bn(x, filters, kernel_size, *, name, strides=1, padding="same", groups=1,
            dilation_rate=1, activation="relu", epsilon=BN_EPSILON, scale=True):
    """Convolution without bias, BatchNorm, activation: `{name}_conv`, `{name}_bn`, ...

    The convolution has no bias because BatchNorm subtracts the mean right after it: a bias
    there would be cancelled and only add parameters. With groups > 1 it is a GroupConv2D.
    """
    conv = GroupConv2D if groups > 1 else layers.Conv2D
    x = conv(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                      dilation_rate=dilation_rate, use_bias=False, name=f"{name}_conv")(x)
    return bn_act(x, name=name, activation=activation, epsilon=epsilon, scale=scale)


def depthwise_conv_bn(x, kernel_size, *, name, strides=1, padding="same", activation="relu",
                      epsilon=BN_EPSILON, scale=True):
    """Depthwise convolution (one filter per channel, no bias), BatchNorm, activation.

    The spatial half of a depthwise separable convolution (MobileNet, 2017): k*k*C weights
    instead of k*k*C*C'; a 1x1 `conv_bn` after it mixes the channels.
    """
    x = layers.DepthwiseConv2D(kernel_size, strides=strides, padding=padding, use_bias=False,
                               name=f"{name}_conv")(x)
    return bn_act(x, name=name, activation=activation, epsilon=epsilon, scale=scale)


def squeeze_excite(x, reduced, *, name, activation="relu", gate="sigmoid"):
    """Squeeze-and-excitation: reweight each channel by a gate computed from all channels.

    Hu, Shen and Sun, "Squeeze-and-Excitation Networks" (2018), Fig. 2: squeeze each channel to
    its global average (`{name}_squeeze`), excite through a bottleneck of `reduced` channels
    (`{name}_reduce`, `{name}_expand`: 1x1 convolutions with bias, the paper's two FC layers)
    ending in a gate in [0, 1], and scale the input by it (`{name}_excite`). MobileNetV3 uses
    gate="hard_sigmoid", EfficientNet activation="swish".
    """
    channels = x.shape[-1]
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(reduced, 1, activation=activation, name=f"{name}_reduce")(s)
    s = layers.Conv2D(channels, 1, activation=gate, name=f"{name}_expand")(s)
    return layers.Multiply(name=f"{name}_excite")([x, s])


def make_divisible(value, divisor=8, min_value=None):
    """Round a channel count to a multiple of `divisor`, losing at most 10% (MobileNetV2 code).

    Width multipliers give counts like 0.75 * 36 = 27; hardware prefers multiples of 8.
    """
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _act_name(activation):
    return activation if isinstance(activation, str) else activation.__name__
