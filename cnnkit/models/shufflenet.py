"""ShuffleNet v1 and v2: cheap 1x1 convolutions, made to mix channels by shuffling them.

v1: Zhang, Zhou, Lin and Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network
for Mobile Devices" (2017), Table 1. 1x1 convolutions cost most of a light network, so a unit
splits them into g groups and shuffles the channels between them (Fig. 1), so that the next
group convolution sees every group. Counts are trainable parameters with 1000 classes.

| layer  | output  | unit, repeat   | g = 1     | g = 2     | g = 3     | g = 4     | g = 8     |
|--------|---------|----------------|-----------|-----------|-----------|-----------|-----------|
| conv1  | 112x112 | 3x3/2          | 24        | 24        | 24        | 24        | 24        |
| pool1  | 56x56   | 3x3 max/2      |           |           |           |           |           |
| stage2 | 28x28   | /2 x 1, /1 x 3 | 144       | 200       | 240       | 272       | 384       |
| stage3 | 14x14   | /2 x 1, /1 x 7 | 288       | 400       | 480       | 544       | 768       |
| stage4 | 7x7     | /2 x 1, /1 x 3 | 576       | 800       | 960       | 1088      | 1536      |
|        | 1x1     | global average pool, 1000-way fully connected, softmax              |
| MFLOPs |         | (paper)        | 143       | 140       | 137       | 133       | 137       |
| params |         | (derived)      | 1,531,936 | 1,733,848 | 1,865,728 | 1,968,344 | 2,434,768 |

The paper's MFLOPs (multiply-adds) count the convolutions only: `cnnkit.analysis.model_macs`
gives 143.1, 140.8, 137.5, 134.3, 138.4 million, of which the FC layer is 0.6 to 1.5 million.

A unit (Fig. 2b) is 1x1 group conv to a bottleneck of 1/4 of the output channels, BN-ReLU,
channel shuffle, 3x3 depthwise conv + BN (no ReLU), 1x1 group conv + BN, added to the input,
ReLU. The stride-2 unit (Fig. 2c) concatenates a 3x3 average-pooled input instead of adding it,
so its convolutions produce only the missing channels. Stage2's first 1x1 is not grouped.

v2: Ma, Zhang, Zheng and Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
Architecture Design" (2018), Table 5. Group convolutions and many small branches cost memory
access, so a unit splits the channels in two halves (Fig. 3c), leaves one alone, passes the
other through 1x1, 3x3 depthwise, 1x1 with equal widths, concatenates and shuffles in 2 groups.
The stride-2 unit (Fig. 3d) feeds the whole input to both branches, doubling the channels.

| layer  | output  | unit, repeat   | x0_5      | x1_0      | x1_5      | x2_0      |
|--------|---------|----------------|-----------|-----------|-----------|-----------|
| conv1  | 112x112 | 3x3/2          | 24        | 24        | 24        | 24        |
| pool1  | 56x56   | 3x3 max/2      |           |           |           |           |
| stage2 | 28x28   | /2 x 1, /1 x 3 | 48        | 116       | 176       | 244       |
| stage3 | 14x14   | /2 x 1, /1 x 7 | 96        | 232       | 352       | 488       |
| stage4 | 7x7     | /2 x 1, /1 x 3 | 192       | 464       | 704       | 976       |
| conv5  | 7x7     | 1x1            | 1024      | 1024      | 1024      | 2048      |
|        | 1x1     | global average pool, 1000-way fully connected, softmax  |
| params |         | (torchvision)  | 1,366,792 | 2,278,604 | 3,503,624 | 7,393,996 |

Layer names: unit u of stage s is `stage{s}_unit{u}`; its output is `stage{s}_unit{u}_out`.
A detector taps the last unit of each stage (strides 8, 16, 32), e.g. `stage2_unit4_out`,
`stage3_unit8_out`, `stage4_unit4_out`, and `conv5_relu` in v2. Strided layers pad one pixel
on every side, as PyTorch's padding=1 in the authors' and torchvision's code does, so that
torchvision's trained v2 weights can be ported to give the same outputs.
"""

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn, depthwise_conv_bn, symmetric_padding
from cnnkit.layers import ChannelShuffle, ChannelSplit
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["V1_CHANNELS", "V2_ARCHITECTURES", "shufflenet_v1", "shufflenet_v2",
           "shufflenet_unit", "shufflenet_v2_unit", "stage_taps", "shufflenet_v2_x0_5",
           "shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"]

STEM_FILTERS = 24
UNITS = (4, 8, 4)  # per stage: one stride-2 unit, then 3, 7, 3 stride-1 units (both papers)
V1_CHANNELS = {  # v1 Table 1: groups -> output channels of stage2, stage3, stage4 at 1x
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
# "ShuffleNet s x" (Tables 2 and 5) -> conv1's filters, as in the authors' released code; the paper
# does not say. 0.25x is not released: 12 gives Table 2's 13 MFLOPs for g = 3.
V1_STEMS = {0.25: 12, 0.5: 12, 1.0: 24, 1.5: 24, 2.0: 48}
V2_ARCHITECTURES = {  # v2 Table 5: stage2..stage4 and conv5 channels
    "shufflenet_v2_x0_5": dict(channels=(48, 96, 192), last=1024, params=1_366_792),
    "shufflenet_v2_x1_0": dict(channels=(116, 232, 464), last=1024, params=2_278_604),
    "shufflenet_v2_x1_5": dict(channels=(176, 352, 704), last=1024, params=3_503_624),
    "shufflenet_v2_x2_0": dict(channels=(244, 488, 976), last=2048, params=7_393_996),
}


def stem(x, filters):
    """conv1 (3x3/2, BN, ReLU) and pool1 (3x3 max pool/2), both halving the size."""
    x, padding = symmetric_padding(x, 3, 2, name="conv1")
    x = conv_bn(x, filters, 3, strides=2, padding=padding, name="conv1")
    # After the ReLU every value is >= 0, so zero padding equals PyTorch's -inf padding.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def shufflenet_unit(x, filters, *, groups, strides, name, group_first=True):
    """ShuffleNet v1's unit, Fig. 2b (stride 1: add) or Fig. 2c (stride 2: concatenate).

    group_first=False keeps the first 1x1 whole (Stage2's first unit: only 24 input channels).
    """
    bottleneck = filters // 4
    branch = filters - x.shape[-1] if strides == 2 else filters
    y = conv_bn(x, bottleneck, 1, groups=groups if group_first else 1, name=f"{name}_gconv1")
    if groups > 1:
        y = ChannelShuffle(groups, name=f"{name}_shuffle")(y)
    y, padding = symmetric_padding(y, 3, strides, name=f"{name}_dwconv")
    # No ReLU after the depthwise conv: Sec. 3.2 found it hurt.
    y = depthwise_conv_bn(y, 3, strides=strides, padding=padding, activation=None,
                          name=f"{name}_dwconv")
    y = conv_bn(y, branch, 1, groups=groups, activation=None, name=f"{name}_gconv2")
    if strides == 1:
        y = layers.Add(name=f"{name}_add")([x, y])
    else:
        # Zero padding counted in the average, as PyTorch's AvgPool2d(3, 2, padding=1) does.
        s = layers.ZeroPadding2D(1, name=f"{name}_shortcut_pad")(x)
        s = layers.AveragePooling2D(3, strides=2, name=f"{name}_shortcut_pool")(s)
        y = layers.Concatenate(name=f"{name}_concat")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def shufflenet_v2_unit(x, filters, *, strides, name, kernel_size=3):
    """ShuffleNet v2's unit: Fig. 3c (stride 1, channel split) or Fig. 3d (stride 2).

    Each branch ends with half of `filters`; the concatenation is shuffled in 2 groups so that
    the next unit's split takes half of its channels from each branch. `kernel_size` is the
    depthwise convolutions' (ThunderNet's SNet uses 5).
    """
    half = filters // 2
    if strides == 1:
        left, right = ChannelSplit(2, name=f"{name}_split")(x)
    else:
        left, padding = symmetric_padding(x, kernel_size, strides, name=f"{name}_branch1_dw")
        left = depthwise_conv_bn(left, kernel_size, strides=strides, padding=padding,
                                 activation=None, name=f"{name}_branch1_dw")
        left = conv_bn(left, half, 1, name=f"{name}_branch1_pw")
        right = x
    right = conv_bn(right, half, 1, name=f"{name}_branch2_pw1")
    right, padding = symmetric_padding(right, kernel_size, strides, name=f"{name}_branch2_dw")
    right = depthwise_conv_bn(right, kernel_size, strides=strides, padding=padding,
                              activation=None, name=f"{name}_branch2_dw")
    right = conv_bn(right, half, 1, name=f"{name}_branch2_pw2")
    y = layers.Concatenate(name=f"{name}_concat")([left, right])
    return ChannelShuffle(2, name=f"{name}_out")(y)


def shufflenet_v1(include_top=True, weights=None, input_tensor=None, input_shape=None,
                  pooling=None, classes=1000, classifier_activation="softmax",
                  name="shufflenet_v1", groups=3, scale=1.0):
    """ShuffleNet v1 ("ShuffleNet s x" with g groups) as a Keras functional model.

    Paper: "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile
    Devices", Zhang, Zhou, Lin and Sun, 2017. The default is the headline ShuffleNet 1x, g = 3.

    groups: 1, 2, 3, 4 or 8, a column of Table 1 (g = 1 has no group convolution and no
    shuffle). scale: 0.25, 0.5, 1.0, 1.5 or 2.0 multiplies every stage's channels, rounded to
    a multiple of 4 g so that the bottleneck still splits into g groups. conv1 has the authors'
    12, 12, 24, 24, 48 filters, rounded up to a multiple of g (their 0.5x, g = 8 has 16).
    Where the paper and the authors' released code differ, this follows the paper: the shuffle
    sits right after the first 1x1's ReLU (Fig. 2; the code shuffles after the depthwise conv,
    in the inverse order, which changes which channels meet in a group but no count), and the
    classifier has a bias (the code's has none).
    """
    args = check_args("shufflenet_v1", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    stem_filters, channels = _v1_channels(groups, scale)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, stem_filters)
    for stage, (units, filters) in enumerate(zip(UNITS, channels), start=2):
        for u in range(units):
            x = shufflenet_unit(x, filters, groups=groups, strides=2 if u == 0 else 1,
                                group_first=(stage, u) != (2, 0),
                                name=f"stage{stage}_unit{u + 1}")
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights)


def _v1_channels(groups, scale):
    if isinstance(groups, bool) or groups not in V1_CHANNELS:
        raise ValueError(f"groups must be one of {', '.join(map(str, V1_CHANNELS))} (the "
                         f"columns of Table 1; 3 is the paper's headline model); got {groups!r}.")
    if isinstance(scale, bool) or scale not in V1_STEMS:
        raise ValueError(f"scale must be one of {', '.join(map(str, V1_STEMS))} (\"ShuffleNet "
                         f"s x\" in the paper's Tables 2 and 5); got {scale!r}.")
    step = 4 * groups  # the bottleneck (a quarter) must split into `groups` groups
    channels = tuple(max(step, int(c * scale / step + 0.5) * step) for c in V1_CHANNELS[groups])
    stem_filters = -(-V1_STEMS[scale] // groups) * groups  # the next unit concatenates it
    return stem_filters, channels


def shufflenet_v2(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
                  pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """ShuffleNet v2 `arch` (a key of V2_ARCHITECTURES) as a Keras functional model.

    Paper: "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", Ma,
    Zhang, Zheng and Sun, 2018, Table 5. Laid out as torchvision's shufflenet_v2_x*: the
    stride-2 unit's left branch is 3x3 depthwise + BN, then 1x1 + BN-ReLU; every depthwise
    convolution is followed by BN without ReLU. Not simplified.
    """
    spec = V2_ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, STEM_FILTERS)
    for stage, (units, filters) in enumerate(zip(UNITS, spec["channels"]), start=2):
        for u in range(units):
            x = shufflenet_v2_unit(x, filters, strides=2 if u == 0 else 1,
                                   name=f"stage{stage}_unit{u + 1}")
    x = conv_bn(x, spec["last"], 1, name="conv5")
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def stage_taps(conv5=False):
    """Taps of Table 1 in both papers (and of ThunderNet's SNets): Conv1 with its max pool, then
    Stage2..Stage4, each ending with its last unit, then Conv5 where the network has one."""
    taps = (Tap("conv1", "pool1_pool", 4),
            *(Tap(f"stage{s}", f"stage{s}_unit{units}_out", 2 ** (s + 1))
              for s, units in zip((2, 3, 4), UNITS)))
    return taps + ((Tap("conv5", "conv5_relu", 32),) if conv5 else ())


V2_PAPER = dict(family="shufflenet", year=2018, input_shape=(224, 224, 3), min_size=1,
                paper="ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
                taps=stage_taps(conv5=True))

shufflenet_v1 = register(
    "shufflenet_v1", shufflenet_v1, family="shufflenet",
    paper="ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices",
    year=2017, input_shape=(224, 224, 3), min_size=1, params=1_865_728, taps=stage_taps())
shufflenet_v2_x0_5 = register("shufflenet_v2_x0_5", shufflenet_v2, "shufflenet_v2_x0_5",
                              **V2_PAPER, params=V2_ARCHITECTURES["shufflenet_v2_x0_5"]["params"])
shufflenet_v2_x1_0 = register("shufflenet_v2_x1_0", shufflenet_v2, "shufflenet_v2_x1_0",
                              **V2_PAPER, params=V2_ARCHITECTURES["shufflenet_v2_x1_0"]["params"])
shufflenet_v2_x1_5 = register("shufflenet_v2_x1_5", shufflenet_v2, "shufflenet_v2_x1_5",
                              **V2_PAPER, params=V2_ARCHITECTURES["shufflenet_v2_x1_5"]["params"])
shufflenet_v2_x2_0 = register("shufflenet_v2_x2_0", shufflenet_v2, "shufflenet_v2_x2_0",
                              **V2_PAPER, params=V2_ARCHITECTURES["shufflenet_v2_x2_0"]["params"])
