"""MobileNet v1, v2 and v3: convolutions split into a cheap per-channel part and a 1x1 part.

v1 (Howard et al. 2017, Table 1): a 3x3 convolution, then 13 depthwise separable layers, each a
depthwise 3x3 (one filter per channel) and a pointwise 1x1 (`depthwise_separable`), all with
BatchNorm and ReLU6. Trainable parameters with 1000 classes and alpha 1:

| here              | paper (Table 1)                   | output      |   parameters |
|-------------------|-----------------------------------|-------------|-------------:|
| conv1             | Conv / s2, 3x3x3x32               | 112x112x32  |          928 |
| conv_dw/pw_1      | Conv dw / s1, Conv / s1 to 64     | 112x112x64  |        2,528 |
| conv_dw/pw_2      | Conv dw / s2, Conv / s1 to 128    | 56x56x128   |        9,152 |
| conv_dw/pw_3      | Conv dw / s1, Conv / s1 to 128    | 56x56x128   |       18,048 |
| conv_dw/pw_4      | Conv dw / s2, Conv / s1 to 256    | 28x28x256   |       34,688 |
| conv_dw/pw_5      | Conv dw / s1, Conv / s1 to 256    | 28x28x256   |       68,864 |
| conv_dw/pw_6      | Conv dw / s2, Conv / s1 to 512    | 14x14x512   |      134,912 |
| conv_dw/pw_7..11  | 5 x (Conv dw / s1, Conv / s1)     | 14x14x512   |  5 x 268,800 |
| conv_dw/pw_12     | Conv dw / s2, Conv / s1 to 1024   | 7x7x1024    |      531,968 |
| conv_dw/pw_13     | Conv dw / s2 (a typo: s1), 1024   | 7x7x1024    |    1,061,888 |
| predictions       | Avg Pool 7x7, FC, Softmax         | 1000        |    1,025,000 |
|                   |                                   | total       |    4,231,976 |

v2 (Sandler et al. 2018, Table 2): sequences of n inverted residual bottlenecks with expansion
t and c output channels, the first with stride s (`cnnkit.blocks.inverted_residual`, ReLU6):

| input      | operator    | t | c    | n | s | here           | parameters |
|------------|-------------|---|------|---|---|----------------|-----------:|
| 224x224x3  | conv2d 3x3  | - | 32   | 1 | 2 | conv1          |        928 |
| 112x112x32 | bottleneck  | 1 | 16   | 1 | 1 | block_0        |        896 |
| 112x112x16 | bottleneck  | 6 | 24   | 2 | 2 | block_1..2     |     13,968 |
| 56x56x24   | bottleneck  | 6 | 32   | 3 | 2 | block_3..5     |     39,696 |
| 28x28x32   | bottleneck  | 6 | 64   | 4 | 2 | block_6..9     |    183,872 |
| 14x14x64   | bottleneck  | 6 | 96   | 3 | 1 | block_10..12   |    303,168 |
| 14x14x96   | bottleneck  | 6 | 160  | 3 | 2 | block_13..15   |    795,264 |
| 7x7x160    | bottleneck  | 6 | 320  | 1 | 1 | block_16       |    473,920 |
| 7x7x320    | conv2d 1x1  | - | 1280 | 1 | 1 | top            |    412,160 |
| 7x7x1280   | avgpool 7x7 | - | -    | 1 | - | avg_pool       |          0 |
| 1x1x1280   | conv2d 1x1  | - | k    | - | - | predictions    |  1,281,000 |
|            |             |   |      |   |   | total          |  3,504,872 |

v3 (Howard et al. 2019): bottlenecks with an expansion size, optional squeeze-excite (SE), ReLU
(RE) or h-swish (HS), found by architecture search. Large, Table 1:

| input      | operator        | exp size | #out | SE  | NL | s | here         | parameters |
|------------|-----------------|----------|------|-----|----|---|--------------|-----------:|
| 224x224x3  | conv2d, 3x3     | -        | 16   |     | HS | 2 | conv1        |        464 |
| 112x112x16 | bneck, 3x3      | 16       | 16   |     | RE | 1 | block_0      |        464 |
| 112x112x16 | bneck, 3x3      | 64       | 24   |     | RE | 2 | block_1      |      3,440 |
| 56x56x24   | bneck, 3x3      | 72       | 24   |     | RE | 1 | block_2      |      4,440 |
| 56x56x24   | bneck, 5x5      | 72       | 40   | yes | RE | 2 | block_3      |     10,328 |
| 28x28x40   | bneck, 5x5      | 120      | 40   | yes | RE | 1 | block_4      |     20,992 |
| 28x28x40   | bneck, 5x5      | 120      | 40   | yes | RE | 1 | block_5      |     20,992 |
| 28x28x40   | bneck, 3x3      | 240      | 80   |     | HS | 2 | block_6      |     32,080 |
| 14x14x80   | bneck, 3x3      | 200      | 80   |     | HS | 1 | block_7      |     34,760 |
| 14x14x80   | bneck, 3x3      | 184      | 80   |     | HS | 1 | block_8      |     31,992 |
| 14x14x80   | bneck, 3x3      | 184      | 80   |     | HS | 1 | block_9      |     31,992 |
| 14x14x80   | bneck, 3x3      | 480      | 112  | yes | HS | 1 | block_10     |    214,424 |
| 14x14x112  | bneck, 3x3      | 672      | 112  | yes | HS | 1 | block_11     |    386,120 |
| 14x14x112  | bneck, 5x5      | 672      | 160  | yes | HS | 2 | block_12     |    429,224 |
| 7x7x160    | bneck, 5x5      | 960      | 160  | yes | HS | 1 | block_13     |    797,360 |
| 7x7x160    | bneck, 5x5      | 960      | 160  | yes | HS | 1 | block_14     |    797,360 |
| 7x7x160    | conv2d, 1x1     | -        | 960  |     | HS | 1 | top          |    155,520 |
| 7x7x960    | pool, 7x7       | -        | -    |     | -  | 1 | avg_pool     |          0 |
| 1x1x960    | conv2d 1x1, NBN | -        | 1280 |     | HS | 1 | head (Dense) |  1,230,080 |
| 1x1x1280   | conv2d 1x1, NBN | -        | k    |     | -  | 1 | predictions  |  1,281,000 |
|            |                 |          |      |     |    |   | total        |  5,483,032 |

Small, Table 2:

| input      | operator        | exp size | #out | SE  | NL | s | here         | parameters |
|------------|-----------------|----------|------|-----|----|---|--------------|-----------:|
| 224x224x3  | conv2d, 3x3     | -        | 16   |     | HS | 2 | conv1        |        464 |
| 112x112x16 | bneck, 3x3      | 16       | 16   | yes | RE | 2 | block_0      |        744 |
| 56x56x16   | bneck, 3x3      | 72       | 24   |     | RE | 2 | block_1      |      3,864 |
| 28x28x24   | bneck, 3x3      | 88       | 24   |     | RE | 1 | block_2      |      5,416 |
| 28x28x24   | bneck, 5x5      | 96       | 40   | yes | HS | 2 | block_3      |     13,736 |
| 14x14x40   | bneck, 5x5      | 240      | 40   | yes | HS | 1 | block_4      |     57,264 |
| 14x14x40   | bneck, 5x5      | 240      | 40   | yes | HS | 1 | block_5      |     57,264 |
| 14x14x40   | bneck, 5x5      | 120      | 48   | yes | HS | 1 | block_6      |     21,968 |
| 14x14x48   | bneck, 5x5      | 144      | 48   | yes | HS | 1 | block_7      |     29,800 |
| 14x14x48   | bneck, 5x5      | 288      | 96   | yes | HS | 2 | block_8      |     91,848 |
| 7x7x96     | bneck, 5x5      | 576      | 96   | yes | HS | 1 | block_9      |    294,096 |
| 7x7x96     | bneck, 5x5      | 576      | 96   | yes | HS | 1 | block_10     |    294,096 |
| 7x7x96     | conv2d, 1x1     | -        | 576  |     | HS | 1 | top          |     56,448 |
| 7x7x576    | pool, 7x7       | -        | -    |     | -  | 1 | avg_pool     |          0 |
| 1x1x576    | conv2d 1x1, NBN | -        | 1024 |     | HS | 1 | head (Dense) |    590,848 |
| 1x1x1024   | conv2d 1x1, NBN | -        | k    |     | -  | 1 | predictions  |  1,025,000 |
|            |                 |          |      |     |    |   | total        |  2,542,856 |
"""

import numbers
from typing import NamedTuple

import keras
from keras import layers

from cnnkit.blocks import (classifier, conv_bn, depthwise_conv_bn, global_pool,
                           inverted_residual, make_divisible)
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3", "mobilenet_v3_large",
           "mobilenet_v3_small", "depthwise_separable",
           "V1_LAYERS", "V2_SEQUENCES", "Bneck", "V3_LARGE", "V3_SMALL"]

# keras.applications' BatchNorm epsilon in every MobileNet, kept so its weights port exactly.
KERAS_EPSILON = 1e-3

# v1, Table 1 after conv1: (pointwise filters, stride of the depthwise 3x3) per separable layer.
# The paper prints "Conv dw / s2" for the 13th, whose output stays 7x7: a typo, stride 1 here.
V1_LAYERS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), *[(512, 1)] * 5,
             (1024, 2), (1024, 1))

# v2, Table 2: expansion t, output channels c, repeats n, stride s of the first repeat.
V2_SEQUENCES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1))



class Bneck(NamedTuple):
    """One row of v3's Tables 1 and 2: a bneck, the paper's inverted residual."""

    kernel: int  # "bneck, k x k": the depthwise kernel
    exp_size: int  # "exp size": the width the 1x1 expands to
    out: int  # "#out": the output channels
    se: bool  # "SE": squeeze-and-excite after the depthwise convolution
    nl: str  # "NL": the nonlinearity, RE (ReLU) or HS (h-swish)
    stride: int  # "s": the depthwise convolution's stride


# v3, Tables 1 and 2, one Bneck per row. The stem is a 3x3/2 conv to 16 channels, h-swish.
RE, HS = "relu", "hard_swish"
#                 k  exp  out  SE     NL  s
V3_LARGE = (
    Bneck(3,  16,  16, False, RE, 1),
    Bneck(3,  64,  24, False, RE, 2),
    Bneck(3,  72,  24, False, RE, 1),
    Bneck(5,  72,  40, True,  RE, 2),
    Bneck(5, 120,  40, True,  RE, 1),
    Bneck(5, 120,  40, True,  RE, 1),
    Bneck(3, 240,  80, False, HS, 2),
    Bneck(3, 200,  80, False, HS, 1),
    Bneck(3, 184,  80, False, HS, 1),
    Bneck(3, 184,  80, False, HS, 1),
    Bneck(3, 480, 112, True,  HS, 1),
    Bneck(3, 672, 112, True,  HS, 1),
    Bneck(5, 672, 160, True,  HS, 2),
    Bneck(5, 960, 160, True,  HS, 1),
    Bneck(5, 960, 160, True,  HS, 1),
)
V3_SMALL = (
    Bneck(3,  16,  16, True,  RE, 2),
    Bneck(3,  72,  24, False, RE, 2),
    Bneck(3,  88,  24, False, RE, 1),
    Bneck(5,  96,  40, True,  HS, 2),
    Bneck(5, 240,  40, True,  HS, 1),
    Bneck(5, 240,  40, True,  HS, 1),
    Bneck(5, 120,  48, True,  HS, 1),
    Bneck(5, 144,  48, True,  HS, 1),
    Bneck(5, 288,  96, True,  HS, 2),
    Bneck(5, 576,  96, True,  HS, 1),
    Bneck(5, 576,  96, True,  HS, 1),
)
V3 = {"mobilenet_v3_large": dict(rows=V3_LARGE, head=1280, params=5_483_032),
      "mobilenet_v3_small": dict(rows=V3_SMALL, head=1024, params=2_542_856)}

V1_PAPER = dict(family="mobilenet", year=2017, input_shape=(224, 224, 3), paper=(
    "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications"))
V2_PAPER = dict(family="mobilenet", year=2018, input_shape=(224, 224, 3),
                paper="MobileNetV2: Inverted Residuals and Linear Bottlenecks")
V3_PAPER = dict(family="mobilenet", year=2019, input_shape=(224, 224, 3),
                paper="Searching for MobileNetV3")


def _check_alpha(name, alpha, smallest_width=None):
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha > 0:
        raise ValueError(f"alpha is the width multiplier and must be a number > 0, such as "
                         f"0.5, 0.75 or 1.0; got {alpha!r}.")
    # v2 and v3 round every width up to at least 8 channels; v1 truncates with int().
    if smallest_width and int(smallest_width * alpha) < 1:
        raise ValueError(f"alpha={alpha} leaves {name}'s first convolution without filters "
                         f"({smallest_width} x {alpha} < 1); use alpha >= {1 / smallest_width}.")


def depthwise_separable(x, filters, *, strides, block):
    """One separable layer of v1 (Fig. 3 right): depthwise 3x3, then pointwise 1x1 to `filters`.

    Each is followed by BatchNorm and ReLU6: `conv_dw_{block}_...`, `conv_pw_{block}_...`.
    A strided depthwise pads one pixel at the bottom and right only, as keras.applications does.
    """
    padding = "same"
    if strides > 1:
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"conv_pad_{block}")(x)
        padding = "valid"
    x = depthwise_conv_bn(x, 3, strides=strides, padding=padding, name=f"conv_dw_{block}",
                          activation="relu6", epsilon=KERAS_EPSILON)
    return conv_bn(x, filters, 1, name=f"conv_pw_{block}", activation="relu6",
                   epsilon=KERAS_EPSILON)


def mobilenet_v1(include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="mobilenet_v1", alpha=1.0):
    """MobileNet (v1): a 3x3 convolution, then 13 depthwise separable layers (Table 1).

    Paper: "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    Howard, Zhu, Chen, Kalenichenko, Wang, Weyand, Andreetto and Adam, 2017.

    alpha, the width multiplier (Sec. 3.3), thins every layer to int(alpha * filters): about
    alpha**2 of the multiply-adds and parameters. The resolution multiplier is `input_shape`.

    Computes what keras.applications' MobileNet computes, which uses ReLU6 where the paper says
    ReLU. Its classifier is a 1x1 convolution on the pooled features and a Reshape; here it is
    the same computation as a Dense `predictions` layer, after the same dropout of 0.001.
    """
    args = check_args("mobilenet_v1", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    _check_alpha("mobilenet_v1", alpha, 32)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv_bn(x, int(32 * alpha), 3, strides=2, name="conv1", activation="relu6",
                epsilon=KERAS_EPSILON)
    for block, (filters, strides) in enumerate(V1_LAYERS, start=1):
        x = depthwise_separable(x, int(filters * alpha), strides=strides, block=block)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=1e-3)
    return load_weights(keras.Model(inputs, x, name=name), weights, arch="mobilenet_v1",
                        include_top=include_top, alpha=alpha)


def mobilenet_v2(include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="mobilenet_v2", alpha=1.0):
    """MobileNetV2: a 3x3 convolution, 17 inverted residuals, a 1x1 to 1280 (Table 2).

    Paper: "MobileNetV2: Inverted Residuals and Linear Bottlenecks", Sandler, Howard, Zhu,
    Zhmoginov and Chen, 2018. Each bottleneck is `cnnkit.blocks.inverted_residual` with ReLU6.

    alpha multiplies every width, rounded to a multiple of 8; the last 1x1 keeps 1280 channels
    unless alpha > 1 (Sec. 6.1). Computes what keras.applications' MobileNetV2 computes.
    Block b is `block_{b}` (b = 0..16); a U-Net or DeepLab taps `block_1_expand_relu6`,
    `block_3_expand_relu6`, `block_6_expand_relu6`, `block_13_expand_relu6` (strides 2 to 16)
    and `block_16_project_bn` (stride 32).
    """
    args = check_args("mobilenet_v2", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    _check_alpha("mobilenet_v2", alpha)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv_bn(x, make_divisible(32 * alpha), 3, strides=2, name="conv1", activation="relu6",
                epsilon=KERAS_EPSILON)
    block = 0
    for t, c, n, s in V2_SEQUENCES:
        for i in range(n):
            # int() before rounding, as Keras does, so every alpha gives Keras's widths.
            x = inverted_residual(x, make_divisible(int(c * alpha)), expansion=t,
                                  strides=s if i == 0 else 1, activation="relu6",
                                  name=f"block_{block}", epsilon=KERAS_EPSILON)
            block += 1
    last = make_divisible(1280 * alpha) if alpha > 1 else 1280
    x = conv_bn(x, last, 1, name="top", activation="relu6", epsilon=KERAS_EPSILON)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights, arch="mobilenet_v2",
                        include_top=include_top, alpha=alpha)


def mobilenet_v3(size, include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax", name=None,
                 alpha=1.0):
    """MobileNetV3-Large or -Small (`size`, a key of V3): inverted residuals found by search.

    Paper: "Searching for MobileNetV3", Howard, Sandler, Chu, Chen, Chen, Tan, Wang, Zhu, Pang,
    Vasudevan, Le and Adam, 2019, Tables 1 and 2. New against v2: squeeze-and-excitation to a
    quarter of the expansion (hard-sigmoid gate), h-swish in the later layers, 5x5 kernels,
    and a last 1x1 moved after the pooling, where it costs 1x1 pixel instead of 7x7 (Fig. 5).

    Computes what keras.applications' MobileNetV3Large/Small compute (with
    include_preprocessing=False: cnnkit takes inputs already scaled to [-1, 1]). Their two 1x1
    convolutions on the pooled features are Dense layers here (`head`, then dropout 0.2 and
    `predictions`), the same computation. Not built: the "minimalistic" variants. The paper
    also puts squeeze-excite on Small's last 1x1 (Table 2); like Keras and torchvision, no.
    alpha multiplies the widths of the blocks, rounded to multiples of 8 (not the 16-channel stem).
    """
    spec = V3[size]
    args = check_args(size, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    _check_alpha(size, alpha)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv_bn(x, 16, 3, strides=2, name="conv1", activation=HS, epsilon=KERAS_EPSILON)
    paper_in = 16
    for block, row in enumerate(spec["rows"]):
        # The paper's ratio expansion/input applied to the actual (alpha-scaled) input width.
        ratio = row.exp_size / paper_in
        width = make_divisible(x.shape[-1] * ratio)
        x = inverted_residual(x, make_divisible(row.out * alpha), expansion=ratio,
                              kernel_size=row.kernel, strides=row.stride, activation=row.nl,
                              se_reduced=make_divisible(width / 4) if row.se else None,
                              se_gate="hard_sigmoid", name=f"block_{block}",
                              epsilon=KERAS_EPSILON)
        paper_in = row.out
    x = conv_bn(x, make_divisible(x.shape[-1] * 6), 1, name="top", activation=HS,
                epsilon=KERAS_EPSILON)
    if include_top:
        head = make_divisible(spec["head"] * alpha) if alpha > 1 else spec["head"]
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        x = layers.Dense(head, activation=HS, name="head")(x)  # "NBN": no BatchNorm here
        x = layers.Dropout(0.2, name="dropout")(x)
        x = layers.Dense(args.classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name or size), weights, arch=size,
                        include_top=include_top, alpha=alpha)


def _row_taps(stem, blocks, top=None, *, first=0):
    """Taps: `stem`, then each run of blocks with the same output width, a row of the paper's
    table ("block_1..2" is MobileNetV2's two 24-channel blocks), then the 1x1 `top` if any.
    blocks: (output layer, width, stride) of each block, numbered from `first`."""
    runs, stride = [], stem.stride  # [first block, last block, width, layer, stride]
    for i, (layer, width, strides) in enumerate(blocks, start=first):
        stride *= strides
        if runs and runs[-1][2] == width:
            runs[-1][1], runs[-1][3], runs[-1][4] = i, layer, stride
        else:
            runs.append([i, i, width, layer, stride])
    taps = [Tap(f"block_{a}" if a == b else f"block_{a}..{b}", layer, s)
            for a, b, _, layer, s in runs]
    return (stem, *taps, *([Tap("top", top, stride)] if top else []))


def _bneck_outputs(widths, strides, stem_width):
    """(output layer, width, stride) of inverted residuals: `_add` where the block is residual
    (stride 1, width kept), else its projection's BatchNorm."""
    ins = (stem_width, *widths[:-1])
    return [(f"block_{i}_add" if s == 1 and w == w_in else f"block_{i}_project_bn", w, s)
            for i, (w, s, w_in) in enumerate(zip(widths, strides, ins))]


_V2_BLOCKS = [(c, s if r == 0 else 1) for _, c, n, s in V2_SEQUENCES for r in range(n)]

mobilenet_v1 = register(
    "mobilenet_v1", mobilenet_v1, **V1_PAPER, min_size=31, params=4_231_976, twin="MobileNet",
    taps=_row_taps(Tap("conv1", "conv1_relu6", 2),
                   [(f"conv_pw_{i}_relu6", c, s) for i, (c, s) in enumerate(V1_LAYERS, 1)],
                   first=1))
mobilenet_v2 = register(
    "mobilenet_v2", mobilenet_v2, **V2_PAPER, min_size=1, params=3_504_872, twin="MobileNetV2",
    taps=_row_taps(Tap("conv1", "conv1_relu6", 2),
                   _bneck_outputs(*zip(*_V2_BLOCKS), stem_width=32), "top_relu6"))
mobilenet_v3_large = register(
    "mobilenet_v3_large", mobilenet_v3, "mobilenet_v3_large", **V3_PAPER, min_size=1,
    params=V3["mobilenet_v3_large"]["params"], twin="MobileNetV3Large",
    taps=_row_taps(Tap("conv1", "conv1_hard_swish", 2),
                   _bneck_outputs([r.out for r in V3_LARGE], [r.stride for r in V3_LARGE], 16),
                   "top_hard_swish"))
mobilenet_v3_small = register(
    "mobilenet_v3_small", mobilenet_v3, "mobilenet_v3_small", **V3_PAPER, min_size=1,
    params=V3["mobilenet_v3_small"]["params"], twin="MobileNetV3Small",
    taps=_row_taps(Tap("conv1", "conv1_hard_swish", 2),
                   _bneck_outputs([r.out for r in V3_SMALL], [r.stride for r in V3_SMALL], 16),
                   "top_hard_swish"))
