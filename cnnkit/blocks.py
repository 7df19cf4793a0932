"""Building blocks that several architectures share: each takes a tensor and returns a tensor.

Layer names are built from a `name` prefix, so a block placed with name="conv3_block2_1" gives
`conv3_block2_1_conv`, `conv3_block2_1_bn`, `conv3_block2_1_relu` in `model.summary()`, and a
later network (an FPN, a U-Net) can tap any of them with `model.get_layer(...).output`.
"""

from keras import layers

from cnnkit.layers import GroupConv2D

__all__ = ["global_pool", "classifier", "conv_bn", "bn_act", "symmetric_padding", "conv3x3_bn",
           "depthwise_conv_bn", "squeeze_excite", "make_divisible", "inverted_residual",
           "resnet_stage", "BN_EPSILON", "BN_MOMENTUM"]

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


def symmetric_padding(x, kernel_size, strides, *, name):
    """Pad k//2 pixels on every side before a strided layer; returns (x, padding to use).

    Keras's padding="same" with stride 2 pads an even-sized map only at the bottom and right,
    PyTorch's padding=k//2 on all four sides: the same output size, shifted by one pixel.
    With stride 1 both are the same, so nothing is added. The layer is `{name}_pad`.
    """
    if strides == 1:
        return x, "same"
    return layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x), "valid"


def conv3x3_bn(x, filters, *, name, strides=1, groups=1, activation="relu", epsilon=BN_EPSILON):
    """3x3 `conv_bn` padded one pixel on every side, also when strided (`{name}_pad`), as the
    PyTorch models that torchvision and timm release are (see `symmetric_padding`)."""
    x, padding = symmetric_padding(x, 3, strides, name=name)
    return conv_bn(x, filters, 3, name=name, strides=strides, padding=padding, groups=groups,
                   activation=activation, epsilon=epsilon)


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


def inverted_residual(x, filters, *, name, expansion=6, kernel_size=3, strides=1,
                      activation="relu6", se_reduced=None, se_activation="relu",
                      se_gate="sigmoid", drop_rate=0.0, epsilon=BN_EPSILON):
    """MobileNetV2's inverted residual; with squeeze-excite, the MBConv of V3 and EfficientNet.

    Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks" (2018), Table 1:
    - `{name}_expand`: a 1x1 widens the narrow input `expansion` times (rounded to a multiple
      of 8, as MobileNetV3's ratios like 72/16 need); left out when expansion is 1;
    - `{name}_depthwise`: a kxk depthwise convolution filters each wide channel on its own;
    - `{name}_se`: squeeze-and-excitation to `se_reduced` channels, if given (V3, EfficientNet);
    - `{name}_project`: a 1x1 back to `filters`, with BatchNorm but no activation: a ReLU in
      the narrow space would destroy information (Sec. 3.2, the "linear bottleneck");
    - `{name}_add`: the input is added when the stride is 1 and the widths match. With
      drop_rate > 0 (EfficientNet's stochastic depth) training drops a sample's whole residual
      branch with that probability (`{name}_drop`, a Dropout shared over height, width and
      channels), so the block passes its input through unchanged.
    A strided depthwise pads "same": at every fixed input size, exactly the pixels that
    keras.applications' ZeroPadding2D(correct_pad(...)) adds.
    """
    in_channels = x.shape[-1]
    y = x
    if expansion != 1:
        y = conv_bn(y, make_divisible(in_channels * expansion), 1, name=f"{name}_expand",
                    activation=activation, epsilon=epsilon)
    y = depthwise_conv_bn(y, kernel_size, strides=strides, name=f"{name}_depthwise",
                          activation=activation, epsilon=epsilon)
    if se_reduced:
        y = squeeze_excite(y, se_reduced, name=f"{name}_se", activation=se_activation,
                           gate=se_gate)
    y = conv_bn(y, filters, 1, name=f"{name}_project", activation=None, epsilon=epsilon)
    if strides != 1 or in_channels != filters:
        return y
    if drop_rate:
        y = layers.Dropout(drop_rate, noise_shape=(None, 1, 1, 1), name=f"{name}_drop")(y)
    return layers.Add(name=f"{name}_add")([x, y])


def resnet_stage(x, block, blocks, *, name, strides=None, stride_last=False, first=None,
                 **block_kwargs):
    """One stage of a residual network (ResNet's conv2_x ... conv5_x): `blocks` blocks in a row.

    He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (2015), Table 1.
    Block b is `block(x, name=f"{name}_block{b}", strides=..., **block_kwargs)`. The first block
    is where the stage changes size and width: it gets the stage's `strides` (the others 1)
    and `first`, keyword arguments for it alone (a projection shortcut: v2's and DetNet's
    project=True). keras.applications' ResNetV2 strides the last block instead
    (stride_last=True); strides=None passes none, for blocks that never stride (DetNet's).
    """
    for b in range(1, blocks + 1):
        kwargs = {**block_kwargs, **(first or {})} if b == 1 else dict(block_kwargs)
        if strides is not None:
            kwargs["strides"] = strides if b == (blocks if stride_last else 1) else 1
        x = block(x, name=f"{name}_block{b}", **kwargs)
    return x
