"""GhostNet: half of a layer's feature maps made by cheap depthwise convolutions of the other half.

Han, Wang, Tian, Guo, Xu and Xu, "GhostNet: More Features from Cheap Operations" (2020), Table 1.
Trained networks have many near-duplicate feature maps (Fig. 1), so a Ghost module computes only
m = n/s of its n maps with an ordinary 1x1 convolution ("intrinsic" maps) and makes the other
n - m "ghosts" from them with a 3x3 depthwise convolution: about s times fewer parameters and
multiply-adds (Eq. 4, 5; s = 2 here). A Ghost bottleneck (Fig. 3) is Ghost module (expand, ReLU),
a depthwise convolution + BN if it has stride 2, squeeze-and-excitation where marked, Ghost
module (project, no ReLU), plus a shortcut: the identity, or a depthwise + 1x1 convolution pair
where the size or channels change. Parameters are trainable ones with 1000 classes.

| stage  | output  | operator        | kernel | #exp | #out | SE | stride |
|--------|---------|-----------------|--------|------|------|----|--------|
| stem   | 112x112 | conv2d          | 3x3    |      | 16   |    | 2      |
| stage1 | 112x112 | G-bneck         | 3x3    | 16   | 16   |    | 1      |
| stage2 | 56x56   | G-bneck         | 3x3    | 48   | 24   |    | 2      |
|        |         | G-bneck         | 3x3    | 72   | 24   |    | 1      |
| stage3 | 28x28   | G-bneck         | 5x5    | 72   | 40   | 1  | 2      |
|        |         | G-bneck         | 5x5    | 120  | 40   | 1  | 1      |
| stage4 | 14x14   | G-bneck         | 3x3    | 240  | 80   |    | 2      |
|        |         | G-bneck         | 3x3    | 200  | 80   |    | 1      |
|        |         | G-bneck x 2     | 3x3    | 184  | 80   |    | 1      |
|        |         | G-bneck         | 3x3    | 480  | 112  | 1  | 1      |
|        |         | G-bneck         | 3x3    | 672  | 112  | 1  | 1      |
| stage5 | 7x7     | G-bneck         | 5x5    | 672  | 160  | 1  | 2      |
|        |         | G-bneck         | 5x5    | 960  | 160  |    | 1      |
|        |         | G-bneck         | 5x5    | 960  | 160  | 1  | 1      |
|        |         | G-bneck         | 5x5    | 960  | 160  |    | 1      |
|        |         | G-bneck         | 5x5    | 960  | 160  | 1  | 1      |
|        |         | conv2d          | 1x1    |      | 960  |    | 1      |
| head   | 1x1     | avg pool, conv2d 1x1 1280 with bias, ReLU, dropout 0.2, FC 1000      |
|        |         | 5,182,508 parameters (timm ghostnet_100), 141 MFLOPs (paper)         |

The SE layers reduce to make_divisible(#exp / 4, 4) channels and gate with a hard sigmoid.
Layer names: bottleneck b of stage s is `stage{s}_block{b}` (its output `stage{s}_block{b}_out`);
the stages group the bottlenecks by output size. A detector taps `stage2_block2_out`,
`stage3_block2_out`, `stage4_block6_out` and `last_relu` (strides 4, 8, 16, 32).
"""

import math

import keras
from keras import layers

from cnnkit.blocks import (bn_act, conv_bn, depthwise_conv_bn, global_pool, make_divisible,
                           squeeze_excite, symmetric_padding)
from cnnkit.layers import ChannelSplit
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["BLOCKS", "ghostnet", "ghost_module", "ghost_bottleneck"]

STEM_FILTERS = 16
# Table 1, one row per Ghost bottleneck: (stage, kernel, #exp, #out, SE, stride).
BLOCKS = (
    (1, 3, 16, 16, False, 1),
    (2, 3, 48, 24, False, 2), (2, 3, 72, 24, False, 1),
    (3, 5, 72, 40, True, 2), (3, 5, 120, 40, True, 1),
    (4, 3, 240, 80, False, 2), (4, 3, 200, 80, False, 1), (4, 3, 184, 80, False, 1),
    (4, 3, 184, 80, False, 1), (4, 3, 480, 112, True, 1), (4, 3, 672, 112, True, 1),
    (5, 5, 672, 160, True, 2), (5, 5, 960, 160, False, 1), (5, 5, 960, 160, True, 1),
    (5, 5, 960, 160, False, 1), (5, 5, 960, 160, True, 1),
)
LAST_FILTERS = 960
HEAD_FILTERS = 1280
DROPOUT = 0.2
SE_RATIO = 0.25


def ghost_module(x, filters, *, name, ratio=2, dw_size=3, activation="relu"):
    """`filters` maps from ceil(filters / ratio) intrinsic ones and their cheap ghosts (Fig. 2b).

    The primary 1x1 convolution + BN makes the intrinsic maps (`{name}_primary_*`); a
    depthwise dw_size x dw_size convolution + BN makes ratio - 1 ghosts of each
    (`{name}_cheap_*`); both are concatenated and, if that gives too many, trimmed to `filters`.
    """
    intrinsic = math.ceil(filters / ratio)
    primary = conv_bn(x, intrinsic, 1, activation=activation, name=f"{name}_primary")
    cheap = layers.DepthwiseConv2D(dw_size, padding="same", depth_multiplier=ratio - 1,
                                   use_bias=False, name=f"{name}_cheap_conv")(primary)
    cheap = bn_act(cheap, activation=activation, name=f"{name}_cheap")
    y = layers.Concatenate(name=f"{name}_concat")([primary, cheap])
    extra = intrinsic * ratio - filters
    if extra:
        y = ChannelSplit([filters, extra], name=f"{name}_trim")(y)[0]
    return y


def ghost_bottleneck(x, expand, filters, *, kernel_size, strides, se, name):
    """Ghost bottleneck (Fig. 3): expand with a Ghost module, project with another, add.

    As timm's GhostBottleneck: the stride sits on a depthwise convolution + BN between the two
    modules, only the first module has a ReLU, and nothing follows the sum.
    """
    y = ghost_module(x, expand, name=f"{name}_ghost1")
    if strides > 1:
        y, padding = symmetric_padding(y, kernel_size, strides, name=f"{name}_dw")
        y = depthwise_conv_bn(y, kernel_size, strides=strides, padding=padding, activation=None,
                              name=f"{name}_dw")
    if se:
        y = squeeze_excite(y, make_divisible(expand * SE_RATIO, 4), gate="hard_sigmoid",
                           name=f"{name}_se")
    y = ghost_module(y, filters, activation=None, name=f"{name}_ghost2")
    shortcut = x
    if strides > 1 or x.shape[-1] != filters:
        shortcut, padding = symmetric_padding(x, kernel_size, strides, name=f"{name}_shortcut_dw")
        shortcut = depthwise_conv_bn(shortcut, kernel_size, strides=strides, padding=padding,
                                     activation=None, name=f"{name}_shortcut_dw")
        shortcut = conv_bn(shortcut, filters, 1, activation=None, name=f"{name}_shortcut_pw")
    return layers.Add(name=f"{name}_out")([y, shortcut])


def ghostnet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="ghostnet"):
    """GhostNet 1.0x as a Keras functional model.

    Paper: "GhostNet: More Features from Cheap Operations", Han, Wang, Tian, Guo, Xu and Xu,
    2020, Table 1 (width multiplier 1.0, ratio s = 2, cheap operation 3x3 depthwise). Laid out
    as timm's ghostnet_100, itself the authors' code: the head applies its 1x1 convolution to
    1280 channels (with bias and ReLU) after the global average pool, then dropout 0.2 and the
    classifier. Headless (include_top=False) the model ends at the 960-channel conv2d 1x1.
    Not simplified.
    """
    args = check_args("ghostnet", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x, padding = symmetric_padding(x, 3, 2, name="stem")
    x = conv_bn(x, STEM_FILTERS, 3, strides=2, padding=padding, name="stem")
    block = {}
    for stage, kernel_size, expand, filters, se, strides in BLOCKS:
        block[stage] = block.get(stage, 0) + 1
        x = ghost_bottleneck(x, expand, filters, kernel_size=kernel_size, strides=strides, se=se,
                             name=f"stage{stage}_block{block[stage]}")
    x = conv_bn(x, LAST_FILTERS, 1, name="last")
    if include_top:
        # The 1280-channel layer sees the pooled vector: 1x1 costs 960 x 1280 MACs, not 49 x that.
        x = layers.GlobalAveragePooling2D(keepdims=True, name="avg_pool")(x)
        x = layers.Conv2D(HEAD_FILTERS, 1, name="head_conv")(x)
        x = layers.Activation("relu", name="head_relu")(x)
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dropout(DROPOUT, name="dropout")(x)
        x = layers.Dense(args.classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: Table 1's stages, each ending with its last bottleneck (stage5 with the 1x1 after it).
ghostnet = register("ghostnet", ghostnet, family="ghostnet",
                    paper="GhostNet: More Features from Cheap Operations", year=2020,
                    input_shape=(224, 224, 3), min_size=1, params=5_182_508,
                    taps=(Tap("stem", "stem_relu", 2), Tap("stage1", "stage1_block1_out", 2),
                          Tap("stage2", "stage2_block2_out", 4),
                          Tap("stage3", "stage3_block2_out", 8),
                          Tap("stage4", "stage4_block6_out", 16), Tap("stage5", "last_relu", 32)))
