"""EfficientNet B0 to B7: one searched network (B0) scaled in width, depth and resolution at once.

Tan and Le (2019), Table 1: B0, found by architecture search, is a stem, seven stages of MBConv
blocks (`cnnkit.blocks.inverted_residual` with expansion 1 or 6, squeeze-excite and swish) and
a 1x1 convolution before the classifier. Trainable parameters with 1000 classes:

| stage | operator (Table 1)  | input   | channels | layers | here                  | parameters |
|-------|---------------------|---------|----------|--------|-----------------------|-----------:|
| 1     | Conv3x3, stride 2   | 224x224 | 32       | 1      | stem                  |        928 |
| 2     | MBConv1, k3x3       | 112x112 | 16       | 1      | block1a               |      1,448 |
| 3     | MBConv6, k3x3       | 112x112 | 24       | 2      | block2a..b            |     16,714 |
| 4     | MBConv6, k5x5       | 56x56   | 40       | 2      | block3a..b            |     46,640 |
| 5     | MBConv6, k3x3       | 28x28   | 80       | 3      | block4a..c            |    242,930 |
| 6     | MBConv6, k5x5       | 14x14   | 112      | 3      | block5a..c            |    543,148 |
| 7     | MBConv6, k5x5       | 14x14   | 192      | 4      | block6a..d            |  2,026,348 |
| 8     | MBConv6, k3x3       | 7x7     | 320      | 1      | block7a               |    717,232 |
| 9     | Conv1x1             | 7x7     | 1280     | 1      | top                   |    412,160 |
|       | Pooling & FC        | 7x7     | 1000     | 1      | avg_pool, predictions |  1,281,000 |
|       |                     |         |          |        | total                 |  5,288,548 |

The first block of a stage has its stride (2 where the next stage's input halves, else 1).
Compound scaling (Sec. 3.3) multiplies every stage's channels by a width coefficient
(`round_filters`: to a multiple of 8) and its layers by a depth coefficient (`round_repeats`:
rounded up), and trains at a larger resolution with more dropout before the classifier:

| variant | width | depth | resolution | dropout | blocks | parameters |
|---------|-------|-------|------------|---------|--------|-----------:|
| b0      | 1.0   | 1.0   | 224        | 0.2     | 16     |  5,288,548 |
| b1      | 1.0   | 1.1   | 240        | 0.2     | 23     |  7,794,184 |
| b2      | 1.1   | 1.2   | 260        | 0.3     | 23     |  9,109,994 |
| b3      | 1.2   | 1.4   | 300        | 0.3     | 26     | 12,233,232 |
| b4      | 1.4   | 1.8   | 380        | 0.4     | 32     | 19,341,616 |
| b5      | 1.6   | 2.2   | 456        | 0.4     | 39     | 30,389,784 |
| b6      | 1.8   | 2.6   | 528        | 0.5     | 45     | 43,040,704 |
| b7      | 2.0   | 3.1   | 600        | 0.5     | 55     | 66,347,960 |

`scaled_stages(width, depth)` gives any row's stages, so the lesson prints this table from code.
"""

import math
import numbers
from typing import NamedTuple

import keras

from cnnkit.blocks import classifier, conv_bn, inverted_residual, make_divisible
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["efficientnet", "Stage", "B0_STAGES", "VARIANTS", "round_filters", "round_repeats",
           "scaled_stages", *(f"efficientnet_b{i}" for i in range(8))]

# keras.applications' BatchNorm epsilon, kept so that its weights port exactly.
KERAS_EPSILON = 1e-3
STEM, TOP = 32, 1280  # channels of B0's first 3x3 and last 1x1 convolution
SE_RATIO = 0.25  # squeeze-excite to a quarter of the block's input channels


class Stage(NamedTuple):
    """One row of Table 1: `repeats` MBConv blocks, the first with `stride`."""

    expand: int
    kernel: int
    stride: int
    filters_in: int
    filters_out: int
    repeats: int


# Table 1, stages 2 to 8 (the stride of each stage is where its resolution halves).
B0_STAGES = (Stage(1, 3, 1, 32, 16, 1), Stage(6, 3, 2, 16, 24, 2), Stage(6, 5, 2, 24, 40, 2),
             Stage(6, 3, 2, 40, 80, 3), Stage(6, 5, 1, 80, 112, 3), Stage(6, 5, 2, 112, 192, 4),
             Stage(6, 3, 1, 192, 320, 1))

# (width, depth, resolution, dropout) per variant, as keras.applications and the official code
# list them. The paper's rule (Sec. 3.3) is width 1.1**phi, depth 1.2**phi, resolution
# 1.15**phi; the released models round those by hand.
VARIANTS = {
    "efficientnet_b0": (1.0, 1.0, 224, 0.2), "efficientnet_b1": (1.0, 1.1, 240, 0.2),
    "efficientnet_b2": (1.1, 1.2, 260, 0.3), "efficientnet_b3": (1.2, 1.4, 300, 0.3),
    "efficientnet_b4": (1.4, 1.8, 380, 0.4), "efficientnet_b5": (1.6, 2.2, 456, 0.4),
    "efficientnet_b6": (1.8, 2.6, 528, 0.5), "efficientnet_b7": (2.0, 3.1, 600, 0.5),
}
PARAMS = {"efficientnet_b0": 5_288_548, "efficientnet_b1": 7_794_184,
          "efficientnet_b2": 9_109_994, "efficientnet_b3": 12_233_232,
          "efficientnet_b4": 19_341_616, "efficientnet_b5": 30_389_784,
          "efficientnet_b6": 43_040_704, "efficientnet_b7": 66_347_960}


def round_filters(filters, width):
    """Channels times the width coefficient, rounded to a multiple of 8 (at most 10% down)."""
    return make_divisible(filters * width)


def round_repeats(repeats, depth):
    """Blocks times the depth coefficient, rounded up: depth never shrinks a stage."""
    return math.ceil(depth * repeats)


def scaled_stages(width, depth):
    """B0's Table 1 scaled by a width and a depth coefficient: the stages of B1..B7.

    `[scaled_stages(w, d) for w, d, _, _ in VARIANTS.values()]` is the whole family.
    """
    return [stage._replace(filters_in=round_filters(stage.filters_in, width),
                           filters_out=round_filters(stage.filters_out, width),
                           repeats=round_repeats(stage.repeats, depth))
            for stage in B0_STAGES]


def efficientnet(variant, include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax", name=None,
                 drop_connect_rate=0.2):
    """EfficientNet `variant` (a key of VARIANTS): B0's stages scaled by its coefficients.

    Paper: "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", Tan and
    Le, 2019. Every block is an MBConv (`cnnkit.blocks.inverted_residual` with swish and
    squeeze-excite); block j of stage i is `block{i}{a, b, ...}` as in keras.applications, the
    stem `stem_...` and the last 1x1 `top_...`.

    Computes what keras.applications' EfficientNetB0..B7 compute, less their input
    preprocessing: cnnkit takes images already scaled as the twin's Rescaling and Normalization
    layers would scale them.

    drop_connect_rate: stochastic depth (Huang et al. 2016). During training a residual block
    is skipped for a sample with a probability that grows linearly from 0 at the first block to
    drop_connect_rate at the last; 0 turns it off.
    """
    width, depth, _, dropout = VARIANTS[variant]
    args = check_args(variant, include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    if (isinstance(drop_connect_rate, bool) or not isinstance(drop_connect_rate, numbers.Real)
            or not 0 <= drop_connect_rate < 1):
        raise ValueError(f"drop_connect_rate is the stochastic depth probability of the last "
                         f"block and must be in [0, 1), e.g. 0.2 (the paper) or 0 (none); "
                         f"got {drop_connect_rate!r}.")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv_bn(x, round_filters(STEM, width), 3, strides=2, name="stem", activation="swish",
                epsilon=KERAS_EPSILON)
    stages = scaled_stages(width, depth)
    total, b = sum(stage.repeats for stage in stages), 0
    for i, stage in enumerate(stages, start=1):
        for j in range(stage.repeats):
            x = inverted_residual(
                x, stage.filters_out, expansion=stage.expand, kernel_size=stage.kernel,
                strides=stage.stride if j == 0 else 1, activation="swish",
                # EfficientNet's squeeze width follows the block's input, not its expansion.
                se_reduced=max(1, int(x.shape[-1] * SE_RATIO)), se_activation="swish",
                drop_rate=drop_connect_rate * b / total, name=f"block{i}{chr(ord('a') + j)}",
                epsilon=KERAS_EPSILON)
            b += 1
    x = conv_bn(x, round_filters(TOP, width), 1, name="top", activation="swish",
                epsilon=KERAS_EPSILON)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=dropout)
    return load_weights(keras.Model(inputs, x, name=name or variant), weights, arch=variant,
                        include_top=include_top)


def _info(variant):
    """What the registry reads from `variant`'s rows: its resolution and count, and its taps,
    the stem, each stage of Table 1 (`block1`..`block7`, ending with its last block) and the top
    1x1 convolution."""
    width, depth, resolution, _ = VARIANTS[variant]
    taps, stride = [Tap("stem", "stem_swish", 2)], 2
    for i, stage in enumerate(scaled_stages(width, depth), start=1):
        stride *= stage.stride
        last = f"block{i}{chr(ord('a') + stage.repeats - 1)}"  # a residual sum ends a repeat
        taps.append(Tap(f"block{i}", f"{last}_add" if stage.repeats > 1 else f"{last}_project_bn",
                        stride))
    taps.append(Tap("top", "top_swish", stride))
    return dict(family="efficientnet", year=2019,
                paper="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
                input_shape=(resolution, resolution, 3), min_size=1, params=PARAMS[variant],
                taps=tuple(taps))


efficientnet_b0 = register("efficientnet_b0", efficientnet, "efficientnet_b0",
                           **_info("efficientnet_b0"), twin="EfficientNetB0")
efficientnet_b1 = register("efficientnet_b1", efficientnet, "efficientnet_b1",
                           **_info("efficientnet_b1"), twin="EfficientNetB1")
efficientnet_b2 = register("efficientnet_b2", efficientnet, "efficientnet_b2",
                           **_info("efficientnet_b2"), twin="EfficientNetB2")
efficientnet_b3 = register("efficientnet_b3", efficientnet, "efficientnet_b3",
                           **_info("efficientnet_b3"), twin="EfficientNetB3")
efficientnet_b4 = register("efficientnet_b4", efficientnet, "efficientnet_b4",
                           **_info("efficientnet_b4"), twin="EfficientNetB4")
efficientnet_b5 = register("efficientnet_b5", efficientnet, "efficientnet_b5",
                           **_info("efficientnet_b5"), twin="EfficientNetB5")
efficientnet_b6 = register("efficientnet_b6", efficientnet, "efficientnet_b6",
                           **_info("efficientnet_b6"), twin="EfficientNetB6")
efficientnet_b7 = register("efficientnet_b7", efficientnet, "efficientnet_b7",
                           **_info("efficientnet_b7"), twin="EfficientNetB7")
