"""ResNeSt: a ResNet whose 3x3 convolution splits into radix groups that attend to each other.

Zhang, Wu, Zhang, Zhu, Lin, Zhang, Sun, He, Mueller, Manmatha, Li and Smola, "ResNeSt:
Split-Attention Networks" (2020, CVPR workshops 2022). ResNeSt-50 2s1x64d is ResNet-50-D
("Bag of Tricks", He et al. 2019) with split attention at radix R=2, cardinality 1, width 64:

| stage   | output  | w   | resnest14  | resnest26  | resnest50  |
|---------|---------|-----|------------|------------|------------|
| conv1   | 112x112 |     | 3x3, 32, stride 2; 3x3, 32; 3x3, 64 (deep stem) |
| conv2_x | 56x56   | 64  | 3x3 max pool, stride 2, then                    |
|         |         |     | splat x 1  | splat x 2  | splat x 3  |
| conv3_x | 28x28   | 128 | splat x 1  | splat x 2  | splat x 4  |
| conv4_x | 14x14   | 256 | splat x 1  | splat x 2  | splat x 6  |
| conv5_x | 7x7     | 512 | splat x 1  | splat x 2  | splat x 3  |
|         | 1x1     |     | global average pool, 1000-way fully connected   |
| params  |         |     | 10,611,688 | 17,069,448 | 27,483,240 |

A "splat" block is [1x1, w; split attention 3x3, w, R=2; 1x1, 4w]. ResNeSt-50 is the paper's
(27.5M parameters, 81.1% top-1 at 224x224); 14 and 26 are the shallower GluonCV/timm models
(resnest14d, resnest26d). The paper's network tweaks: the deep stem, "avd" (a stage's first
block halves the size with a 3x3 average pool after the split attention, not with a strided
convolution) and "avg_down" (the projection shortcut averages 2x2 before its 1x1 instead of
striding it).

One split-attention convolution (Fig. 2 right, the block `split_attention`):
- Split: a 3x3 convolution in R groups makes R feature maps of w channels from R shares of the
  input channels (`_2_conv`, `_2_bn`, `_2_relu`: R*w channels, radix-major).
- Sum them (`_2_split`, `_2_sum`), average each channel (`_2_squeeze`), compress (`_2_fc1`:
  1x1 conv, BN, ReLU) and predict R logits per channel (`_2_fc2`).
- An r-Softmax across the R splits (`_2_attn_softmax`) weights them; their weighted sum is the
  output (`_2_attn`). With R=1 the weight is a sigmoid gate, as in squeeze-and-excitation.

Layer names follow cnnkit's ResNet: block b of stage s is `conv{s}_block{b}`, its output
`_out`; a detector taps `conv2_block{n}_out`..`conv5_block{n}_out` (strides 4, 8, 16, 32).
"""

import numbers

import keras
from keras import layers

from cnnkit.blocks import (BN_EPSILON, bn_act, classifier, conv3x3_bn, conv_bn, make_divisible,
                           resnet_stage)
from cnnkit.layers import ChannelSplit
from cnnkit.models.resnet import EXPANSION, WIDTHS, stage_taps
from cnnkit.models.sknet import radix_softmax, weighted_sum
from cnnkit.registry import register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "resnest", "split_attention", "splat_bottleneck", "resnest14",
           "resnest26", "resnest50"]

PAPER = dict(family="resnest", paper="ResNeSt: Split-Attention Networks", year=2020)
STEM_WIDTH = 32  # the deep stem's first two 3x3 convolutions; the third makes 2 x 32 = 64

ARCHITECTURES = {
    "resnest14": dict(depths=(1, 1, 1, 1), params=10_611_688, source="timm resnest14d"),
    "resnest26": dict(depths=(2, 2, 2, 2), params=17_069_448, source="timm resnest26d"),
    "resnest50": dict(depths=(3, 4, 6, 3), params=27_483_240, source="timm resnest50d"),
}
CARDINALITY, BASE_WIDTH = 1, 64  # "2s1x64d": every model here has one group of width 64


def split_attention(x, width, *, name, radix=2, groups=1):
    """Split-attention 3x3 convolution (Fig. 2 right, timm's SplitAttn): `width` channels out.

    The attention width is a quarter of radix * width, at least 32 (the ResNeSt code's rule).
    fc1 keeps its bias before BN, as the ResNeSt code and timm have it (and count it).
    """
    x = conv_bn(x, width * radix, 3, groups=groups * radix, name=name)
    splits = ChannelSplit(radix, name=f"{name}_split")(x) if radix > 1 else [x]
    gap = layers.Add(name=f"{name}_sum")(splits) if radix > 1 else x
    gap = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(gap)
    attn_channels = make_divisible(width * radix / 4, min_value=32)
    gap = layers.Conv2D(attn_channels, 1, groups=groups, name=f"{name}_fc1_conv")(gap)
    gap = bn_act(gap, name=f"{name}_fc1")
    logits = layers.Conv2D(width * radix, 1, groups=groups, name=f"{name}_fc2")(gap)
    weights = radix_softmax(logits, radix, groups=groups, name=f"{name}_attn")
    return weighted_sum(x, weights, radix, name=f"{name}_attn")


def avg_down_shortcut(x, filters, *, strides, name):
    """ResNet-D's projection: 2x2 average pool (`_0_pool`), then 1x1 conv + BN (`_0_conv`).

    Averaging keeps every input pixel where a strided 1x1 would drop three in four. Padding
    "same" averages a lone last row or column by itself, as PyTorch's ceil_mode does.
    """
    if strides == 1 and x.shape[-1] == filters:
        return x
    if strides > 1:
        x = layers.AveragePooling2D(strides, padding="same", name=f"{name}_0_pool")(x)
    return conv_bn(x, filters, 1, activation=None, name=f"{name}_0")


def splat_bottleneck(x, width, filters, *, strides, name, radix, groups=1):
    """1x1 reduce, split attention, then "avd" (3x3/2 average pool) where the block strides,
    1x1 expand, plus the avg_down shortcut; the sum goes through ReLU (`_out`)."""
    y = conv_bn(x, width, 1, name=f"{name}_1")
    y = split_attention(y, width, radix=radix, groups=groups, name=f"{name}_2")
    if strides > 1:  # PyTorch's AvgPool2d(3, 2, padding=1) counts its zero padding: pad first
        y = layers.ZeroPadding2D(1, name=f"{name}_avd_pad")(y)
        y = layers.AveragePooling2D(3, strides=strides, name=f"{name}_avd_pool")(y)
    y = conv_bn(y, filters, 1, activation=None, name=f"{name}_3")
    s = avg_down_shortcut(x, filters, strides=strides, name=name)
    y = layers.Add(name=f"{name}_add")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def deep_stem(x):
    """Three 3x3 convolutions (32, 32, 64; the first strided) and the 3x3/2 max pool."""
    x = conv3x3_bn(x, STEM_WIDTH, strides=2, name="conv1_1", epsilon=BN_EPSILON)
    x = conv3x3_bn(x, STEM_WIDTH, name="conv1_2", epsilon=BN_EPSILON)
    x = conv3x3_bn(x, 2 * STEM_WIDTH, name="conv1_3", epsilon=BN_EPSILON)
    # After the ReLU every value is >= 0, so zero padding is PyTorch's -inf padding.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def resnest(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
            pooling=None, classes=1000, classifier_activation="softmax", name=None, radix=2):
    """ResNeSt `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Paper: Zhang et al., "ResNeSt: Split-Attention Networks", 2020. Computes what timm's
    resnest14d, resnest26d and resnest50d (and the authors' code) compute: radix 2,
    cardinality 1, base width 64, avd after the split attention, avg_down shortcuts.
    Nothing is simplified.

    radix: R, the number of splits attending to each other (the paper's ablation compares 1, 2
    and 4: "1s1x64d", "2s1x64d", "4s1x64d"). R=1 is a squeeze-and-excitation gate on the
    3x3. The width 64 must divide by R.
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    _check_radix(radix)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = deep_stem(x)
    for stage, (depth, planes) in enumerate(zip(spec["depths"], WIDTHS), start=2):
        x = resnet_stage(x, splat_bottleneck, depth, strides=1 if stage == 2 else 2,
                         name=f"conv{stage}", width=planes * BASE_WIDTH // 64 * CARDINALITY,
                         filters=EXPANSION * planes, radix=int(radix), groups=CARDINALITY)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def _check_radix(radix):
    if (isinstance(radix, bool) or not isinstance(radix, numbers.Integral) or radix < 1
            or BASE_WIDTH * CARDINALITY % radix):
        raise ValueError(f"radix must be a whole number >= 1 that divides the width "
                         f"{BASE_WIDTH * CARDINALITY}, such as 1, 2 (the default) or 4; "
                         f"got {radix!r}.")


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES; the taps are ResNet's."""
    spec = ARCHITECTURES[arch]
    return dict(PAPER, input_shape=(224, 224, 3), min_size=1, params=spec["params"],
                taps=stage_taps(spec["depths"]))


resnest14 = register("resnest14", resnest, "resnest14", **_info("resnest14"))
resnest26 = register("resnest26", resnest, "resnest26", **_info("resnest26"))
resnest50 = register("resnest50", resnest, "resnest50", **_info("resnest50"))
