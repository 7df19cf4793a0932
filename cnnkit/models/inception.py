"""Inception-v3, Inception-v4 and Inception-ResNet-v2: factorized convolutions on three grids.

Each starts with a stem that takes a 299x299 image to a 35x35 grid, then repeats Inception
modules on the 35x35, 17x17 and 8x8 grids, with a grid reduction (stride-2 convolutions beside a
stride-2 max pool) between them. Outputs and trainable parameters at 299x299x3, 1000 classes:

| Inception-v3 layers             | paper (2015, Table 1)                  | output    | parameters |
|---------------------------------|----------------------------------------|-----------|-----------:|
| `conv_1a_3x3` ... `pool_5a_3x3` | stem: 5 convolutions, 2 max pools      | 35x35x192 |    172,672 |
| `mixed_5b` ... `mixed_5d`       | 3 x Figure 5                           | 35x35x288 |    818,528 |
| `mixed_6a` ... `mixed_6e`       | grid reduction (Fig. 10), 4 x Figure 6 | 17x17x768 |  7,974,656 |
| `mixed_7a` ... `mixed_7c`       | grid reduction, 2 x Figure 7           | 8x8x2048  | 12,819,712 |
| `avg_pool`, `predictions`       | average pool, softmax                  | 1000      |  2,049,000 |
|                                 |                                        | total     | 23,834,568 |

| Inception-v4 layers                    | paper (2016, Figure 9)               | output     | parameters |
|----------------------------------------|--------------------------------------|------------|-----------:|
| `conv_1a_3x3` ... `mixed_5a`           | stem, Figure 3                       | 35x35x384  |    605,728 |
| `inception_a1` ... `a4`                | 4 x Inception-A (Fig. 4)             | 35x35x384  |  1,270,528 |
| `reduction_a`, `inception_b1` ... `b7` | Reduction-A (Fig. 7), 7 x B (Fig. 5) | 17x17x1024 | 22,859,904 |
| `reduction_b`, `inception_c1` ... `c3` | Reduction-B (Fig. 8), 3 x C (Fig. 6) | 8x8x1536   | 16,406,656 |
| `avg_pool`, `dropout`, `predictions`   | average pool, dropout, softmax       | 1000       |  1,537,000 |
|                                        |                                      | total      | 42,679,816 |

| Inception-ResNet-v2 layers           | paper (2016, Figure 15)            | output     | parameters |
|--------------------------------------|------------------------------------|------------|-----------:|
| `conv_1a_3x3` ... `mixed_5b`         | stem as released (see the builder) | 35x35x320  |    440,992 |
| `inception_resnet_a1` ... `a10`      | Inception-ResNet-A (Fig. 16)       | 35x35x320  |  1,231,680 |
| `reduction_a`, `..._b1` ... `b20`    | Reduction-A (Fig. 7), B (Fig. 17)  | 17x17x1088 | 25,200,640 |
| `reduction_b`, `..._c1` ... `c10`    | Reduction-B (Fig. 18), C (Fig. 19) | 8x8x2080   | 24,235,200 |
| `conv_7b_1x1`                        | 1x1 convolution (not drawn)        | 8x8x1536   |  3,197,952 |
| `avg_pool`, `dropout`, `predictions` | average pool, dropout, softmax     | 1000       |  1,537,000 |
|                                      |                                    | total      | 55,843,464 |

All three are built as released (TF-slim, then Keras, torchvision, timm), which differs from
the papers' drawings in places each builder names.

Layer names. Where the paper names a block by its figure, so does the model: `inception_a1`,
`reduction_a`, `inception_resnet_b20`. Elsewhere (Inception-v3's modules, the stems, the extra
`mixed_5b`) they are TF-slim's, which torchvision, timm and Keras's InceptionResNetV2 keep:
`conv_2b_3x3`, `mixed_6e`, where the digit counts grids from the input (5: 35x35, 6: 17x17,
7: 8x8) and the letter the layer on that grid. A module's branches are named by what they
replace (`1x1`, `5x5`, `3x3dbl` for a double 3x3, `7x7`, `pool`) and their convolutions
numbered: `mixed_5b_3x3dbl_2_conv`. The layer named like a block is its output, so
`model.get_layer("mixed_6e").output` taps the last 17x17 maps.
"""

from typing import NamedTuple

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["inception_v3", "inception_v4", "inception_resnet_v2"]

# TF-slim trained all three with this BatchNorm epsilon; Keras, torchvision and timm keep it.
EPSILON = 1e-3


class Conv(NamedTuple):
    """A convolution in a table: `filters`, `kernel` (k or (rows, cols)), `strides`, and
    `padding` (None: these networks' rule, 'valid' for stride 2 and 'same' otherwise)."""

    filters: int
    kernel: int | tuple
    strides: int = 1
    padding: str | None = None


class Pool(NamedTuple):
    """A pooling step in a table: "max" (3x3, stride 2) or "avg" (3x3, stride 1, padded)."""

    kind: str


MAX, AVG = Pool("max"), Pool("avg")


class Fork(NamedTuple):
    """A column's last step split in two convolutions side by side, concatenated: the 1x3 and
    3x1 of Inception-v3's Figure 7 (the "expanded filter bank"), named `...a` and `...b`."""

    a: Conv
    b: Conv


def conv(x, name, spec):
    """conv_bn from a Conv row, with these networks' BatchNorm epsilon."""
    padding = spec.padding or ("valid" if spec.strides == 2 else "same")
    return conv_bn(x, spec.filters, spec.kernel, name=name, strides=spec.strides,
                   padding=padding, epsilon=EPSILON)


def step(x, name, spec):
    """One layer from a table: a Pool or a Conv."""
    if spec == MAX:
        return layers.MaxPooling2D(3, strides=2, name=name)(x)
    if spec == AVG:
        # As TF-slim trained them, the zero padding stays out of the average (torchvision's
        # Inception-v3 counts it in, so its weights differ at the borders).
        return layers.AveragePooling2D(3, strides=1, padding="same", name=name)(x)
    return conv(x, name, spec)


def branch(x, prefix, steps):
    """A column of layers; a Fork as its last step splits it into two convs, concatenated.

    Convolutions are named `{prefix}_1`, `{prefix}_2`, ... (`{prefix}` alone if only one), the
    fork's `{prefix}_{k}a`, `{prefix}_{k}b` and their concatenation `{prefix}_{k}`; a pool
    `{prefix}_max` or `{prefix}_avg`.
    """
    n_convs = sum(not isinstance(s, Pool) for s in steps)
    k = 0
    for spec in steps:
        if isinstance(spec, Pool):
            x = step(x, f"{prefix}_{spec.kind}", spec)
            continue
        k += 1
        label = f"{prefix}_{k}" if n_convs > 1 else prefix
        if isinstance(spec, Fork):
            forks = [conv(x, f"{label}{letter}", s) for letter, s in zip("ab", spec)]
            return layers.Concatenate(name=label)(forks)
        x = conv(x, label, spec)
    return x


def inception_module(x, name, branches, output_name=None):
    """Parallel branches (a dict: branch name -> steps), concatenated along the channels."""
    outputs = [branch(x, f"{name}_{b}", steps) for b, steps in branches.items()]
    return layers.Concatenate(name=output_name or name)(outputs)


def stem(x, table):
    """The layers before the first module, one after another: (name, step) rows."""
    for name, spec in table:
        x = step(x, name, spec)
    return x


# Inception-v3's stem as released, also Keras's Inception-ResNet-v2 stem.
V3_STEM = [("conv_1a_3x3", Conv(32, 3, 2)), ("conv_2a_3x3", Conv(32, 3, 1, "valid")),
           ("conv_2b_3x3", Conv(64, 3)), ("pool_3a_3x3", MAX),
           ("conv_3b_1x1", Conv(80, 1, 1, "valid")), ("conv_4a_3x3", Conv(192, 3, 1, "valid")),
           ("pool_5a_3x3", MAX)]


def figure5(pool):
    """Inception-v3's 35x35 module: the 5x5 convolution replaced by two 3x3 (the double 3x3)."""
    return {"1x1": [Conv(64, 1)], "5x5": [Conv(48, 1), Conv(64, 5)],
            "3x3dbl": [Conv(64, 1), Conv(96, 3), Conv(96, 3)], "pool": [AVG, Conv(pool, 1)]}


def figure6(c7):
    """Inception-v3's 17x17 module: each 7x7 convolution factorized into 1x7 then 7x1."""
    return {"1x1": [Conv(192, 1)], "7x7": [Conv(c7, 1), Conv(c7, (1, 7)), Conv(192, (7, 1))],
            "7x7dbl": [Conv(c7, 1), Conv(c7, (7, 1)), Conv(c7, (1, 7)), Conv(c7, (7, 1)),
                       Conv(192, (1, 7))],
            "pool": [AVG, Conv(192, 1)]}


# Inception-v3's 8x8 module: the 1x3 and 3x1 run side by side, widening the filter bank.
FIGURE7 = {"1x1": [Conv(320, 1)],
           "3x3": [Conv(384, 1), Fork(Conv(384, (1, 3)), Conv(384, (3, 1)))],
           "3x3dbl": [Conv(448, 1), Conv(384, 3), Fork(Conv(384, (1, 3)), Conv(384, (3, 1)))],
           "pool": [AVG, Conv(192, 1)]}

V3_MODULES = [
    ("mixed_5b", figure5(32)), ("mixed_5c", figure5(64)), ("mixed_5d", figure5(64)),
    ("mixed_6a", {"3x3": [Conv(384, 3, 2)], "3x3dbl": [Conv(64, 1), Conv(96, 3), Conv(96, 3, 2)],
                  "pool": [MAX]}),
    ("mixed_6b", figure6(128)), ("mixed_6c", figure6(160)), ("mixed_6d", figure6(160)),
    ("mixed_6e", figure6(192)),
    ("mixed_7a", {"3x3": [Conv(192, 1), Conv(320, 3, 2)],
                  "7x7x3": [Conv(192, 1), Conv(192, (1, 7)), Conv(192, (7, 1)), Conv(192, 3, 2)],
                  "pool": [MAX]}),
    ("mixed_7b", FIGURE7), ("mixed_7c", FIGURE7)]

# The auxiliary head's 5x5 pool (stride 3) and 5x5 convolution need the full 17x17 grid.
AUX_MIN_SIZE = 299


def auxiliary_classifier(x, classes, activation):
    """torchvision's head on the last 17x17 grid: it pushes gradient into the lower layers."""
    x = layers.AveragePooling2D(5, strides=3, name="aux_pool_5x5")(x)
    x = conv(x, "aux_1x1", Conv(128, 1))
    x = conv(x, "aux_5x5", Conv(768, 5, padding="valid"))
    return classifier(x, include_top=True, pooling=None, classes=classes,
                      activation=activation, name="aux_predictions")


def inception_v3(include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="inception_v3", aux_logits=False):
    """Inception-v3 as a Keras functional model, layer for layer keras.applications.InceptionV3.

    Paper: "Rethinking the Inception Architecture for Computer Vision", Szegedy, Vanhoucke,
    Ioffe, Shlens and Wojna, 2015 (CVPR 2016). Table 1 and Figures 5, 6, 7 and 10.

    Built as released (TF-slim, Keras, torchvision), whose stem ends with a 1x1 convolution to
    80 channels, a 3x3 to 192 and a max pool where Table 1 lists three 3x3 convolutions. The
    convolutions have no bias and every BatchNorm a scale (Keras's has none: gamma=1 ports
    exactly), which gives torchvision's count. Like Keras's, the top has no dropout; label
    smoothing (Section 7) is an option of the loss.

    `aux_logits=True` adds torchvision's auxiliary classifier on the last 17x17 grid
    (`mixed_6e`) as a second output, `[main, aux]`: compile with a loss for each (GoogLeNet
    weighted its auxiliary losses by 0.3). It needs include_top=True and inputs of at least
    299x299.
    """
    if not isinstance(aux_logits, bool):
        raise ValueError(f"aux_logits must be True or False; got {aux_logits!r}.")
    args = check_args("inception_v3", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    if aux_logits and not include_top:
        raise ValueError("aux_logits=True adds a second classifier, so it needs "
                         "include_top=True; use aux_logits=False for a headless model.")
    if aux_logits and any(d is not None and d < AUX_MIN_SIZE for d in args.input_shape[:2]):
        raise ValueError(
            f"aux_logits=True needs inputs of at least {AUX_MIN_SIZE}x{AUX_MIN_SIZE}: the "
            "auxiliary classifier's 5x5 pool and 5x5 convolution need the full 17x17 grid; got "
            f"{args.input_shape[0]}x{args.input_shape[1]}. Use a larger input_shape or "
            "aux_logits=False.")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, V3_STEM)
    aux = None
    for block, branches in V3_MODULES:
        x = inception_module(x, block, branches)
        if block == "mixed_6e" and aux_logits:
            aux = auxiliary_classifier(x, args.classes, classifier_activation)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    outputs = [x, aux] if aux_logits else x
    return load_weights(keras.Model(inputs, outputs, name=name), weights, arch="inception_v3",
                        include_top=include_top)


# Inception-v4 (and the paper's pure-Inception blocks), widths and kernel order from the
# TF-slim release that timm ports: it sometimes puts the 7x1 before the 1x7 where a figure
# shows the opposite, which changes no count.
V4_STEM = [("conv_1a_3x3", Conv(32, 3, 2)), ("conv_2a_3x3", Conv(32, 3, 1, "valid")),
           ("conv_2b_3x3", Conv(64, 3))]
V4_STEM_MODULES = [
    ("mixed_3a", {"pool": [MAX], "3x3": [Conv(96, 3, 2)]}),
    ("mixed_4a", {"3x3": [Conv(64, 1), Conv(96, 3, 1, "valid")],
                  "7x7": [Conv(64, 1), Conv(64, (1, 7)), Conv(64, (7, 1)),
                          Conv(96, 3, 1, "valid")]}),
    ("mixed_5a", {"3x3": [Conv(192, 3, 2)], "pool": [MAX]})]
INCEPTION_A = {"1x1": [Conv(96, 1)], "3x3": [Conv(64, 1), Conv(96, 3)],
               "3x3dbl": [Conv(64, 1), Conv(96, 3), Conv(96, 3)], "pool": [AVG, Conv(96, 1)]}
REDUCTION_A = {"3x3": [Conv(384, 3, 2)], "3x3dbl": [Conv(192, 1), Conv(224, 3), Conv(256, 3, 2)],
               "pool": [MAX]}  # Figure 7 with k, l, m, n = 192, 224, 256, 384
INCEPTION_B = {"1x1": [Conv(384, 1)], "7x7": [Conv(192, 1), Conv(224, (1, 7)), Conv(256, (7, 1))],
               "7x7dbl": [Conv(192, 1), Conv(192, (7, 1)), Conv(224, (1, 7)), Conv(224, (7, 1)),
                          Conv(256, (1, 7))], "pool": [AVG, Conv(128, 1)]}
REDUCTION_B = {"3x3": [Conv(192, 1), Conv(192, 3, 2)],
               "7x7x3": [Conv(256, 1), Conv(256, (1, 7)), Conv(320, (7, 1)), Conv(320, 3, 2)],
               "pool": [MAX]}
INCEPTION_C = {"1x1": [Conv(256, 1)],
               "3x3": [Conv(384, 1), Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))],
               "3x3dbl": [Conv(384, 1), Conv(448, (3, 1)), Conv(512, (1, 3)),
                          Fork(Conv(256, (1, 3)), Conv(256, (3, 1)))],
               "pool": [AVG, Conv(256, 1)]}
V4_BLOCKS = ([(f"inception_a{i}", INCEPTION_A) for i in range(1, 5)]
             + [("reduction_a", REDUCTION_A)]
             + [(f"inception_b{i}", INCEPTION_B) for i in range(1, 8)]
             + [("reduction_b", REDUCTION_B)]
             + [(f"inception_c{i}", INCEPTION_C) for i in range(1, 4)])


def inception_v4(include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="inception_v4"):
    """Inception-v4 as a Keras functional model: Figure 9 with the blocks of Figures 3-8.

    Paper: "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    Szegedy, Ioffe, Vanhoucke and Alemi, 2016 (AAAI 2017). Stem (Figure 3), 4 x Inception-A,
    Reduction-A, 7 x Inception-B, Reduction-B, 3 x Inception-C, average pool, dropout (keep
    0.8), softmax. Widths as in the TF-slim release that timm ports (the module's tables).
    """
    args = check_args("inception_v4", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, V4_STEM)
    for block, branches in V4_STEM_MODULES + V4_BLOCKS:
        x = inception_module(x, block, branches)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=0.2)
    return load_weights(keras.Model(inputs, x, name=name), weights)


def inception_resnet_block(x, name, branches, scale, activation="relu"):
    """An Inception block as the residual of a shortcut: x + scale * up(concat(branches)).

    The 1x1 "up" convolution brings the channels back to the input's; it has a bias and no
    BatchNorm. Scaling the residual down (0.1 to 0.3, Section 3.3) kept the wide network from
    dying early in training.
    """
    mixed = inception_module(x, name, branches, output_name=f"{name}_mixed")
    up = layers.Conv2D(x.shape[-1], 1, name=f"{name}_up_conv")(mixed)
    up = layers.Rescaling(scale, name=f"{name}_scale")(up)
    if activation is None:
        return layers.Add(name=name)([x, up])
    x = layers.Add(name=f"{name}_add")([x, up])
    return layers.Activation(activation, name=name)(x)


# Inception-ResNet-v2 as Keras (after TF-slim) builds it: Inception-v3's stem and an extra
# 35x35 module replace Figure 3's stem.
IR_MIXED_5B = {**figure5(64), "1x1": [Conv(96, 1)]}
IR_A = {"1x1": [Conv(32, 1)], "3x3": [Conv(32, 1), Conv(32, 3)],
        "3x3dbl": [Conv(32, 1), Conv(48, 3), Conv(64, 3)]}
IR_REDUCTION_A = {"3x3": [Conv(384, 3, 2)], "3x3dbl": [Conv(256, 1), Conv(256, 3), Conv(384, 3, 2)],
                  "pool": [MAX]}  # Figure 7 with k, l, m, n = 256, 256, 384, 384
IR_B = {"1x1": [Conv(192, 1)], "7x7": [Conv(128, 1), Conv(160, (1, 7)), Conv(192, (7, 1))]}
IR_REDUCTION_B = {"3x3a": [Conv(256, 1), Conv(384, 3, 2)], "3x3b": [Conv(256, 1), Conv(288, 3, 2)],
                  "3x3dbl": [Conv(256, 1), Conv(288, 3), Conv(320, 3, 2)], "pool": [MAX]}
IR_C = {"1x1": [Conv(192, 1)], "3x3": [Conv(192, 1), Conv(224, (1, 3)), Conv(256, (3, 1))]}


def inception_resnet_v2(include_top=True, weights=None, input_tensor=None, input_shape=None,
                        pooling=None, classes=1000, classifier_activation="softmax",
                        name="inception_resnet_v2"):
    """Inception-ResNet-v2, layer for layer keras.applications.InceptionResNetV2.

    Paper: "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning",
    Szegedy, Ioffe, Vanhoucke and Alemi, 2016 (AAAI 2017). Figure 15 with the blocks of Figures
    16-19, as the released TF-slim model (and Keras) builds it, which its authors say is what
    they meant (tensorflow/models#1553): Inception-v3's stem and a 35x35 module `mixed_5b`
    instead of Figure 3's stem; twice the blocks Figure 15 draws, 10 x Inception-ResNet-A
    (residual scale 0.17), Reduction-A, 20 x B (0.1), Reduction-B, 10 x C (0.2; the last one
    unscaled and without ReLU); a 1x1 convolution to 1536 channels the paper does not draw;
    average pool, dropout (keep 0.8, Figure 15; Keras has none, the same at inference), softmax.
    Keras adds each scaled residual with a custom layer; here `Rescaling(scale)` and `Add` do
    the same arithmetic. The convolutions before a BatchNorm have no bias and every BatchNorm a
    scale (timm's count; Keras's has none: gamma=1 ports exactly).
    """
    args = check_args("inception_resnet_v2", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, V3_STEM)
    x = inception_module(x, "mixed_5b", IR_MIXED_5B)
    for i in range(1, 11):
        x = inception_resnet_block(x, f"inception_resnet_a{i}", IR_A, scale=0.17)
    x = inception_module(x, "reduction_a", IR_REDUCTION_A)
    for i in range(1, 21):
        x = inception_resnet_block(x, f"inception_resnet_b{i}", IR_B, scale=0.1)
    x = inception_module(x, "reduction_b", IR_REDUCTION_B)
    for i in range(1, 11):
        last = i == 10
        x = inception_resnet_block(x, f"inception_resnet_c{i}", IR_C, scale=1.0 if last else 0.2,
                                   activation=None if last else "relu")
    x = conv(x, "conv_7b_1x1", Conv(1536, 1))
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=0.2)
    return load_weights(keras.Model(inputs, x, name=name), weights, arch="inception_resnet_v2",
                        include_top=include_top)


# Taps: the stem and each grid's modules (35x35, 17x17, 8x8), a grid's reduction with them: the
# rows of the tables above. inception_v3's count is torchvision's, every BatchNorm with a scale;
# keras.applications' InceptionV3 has none: 23,817,352.
V4_PAPER = dict(family="inception", paper="Inception-v4, Inception-ResNet and the Impact of "
                                          "Residual Connections on Learning", year=2016)
inception_v3 = register("inception_v3", inception_v3, family="inception",
                        paper="Rethinking the Inception Architecture for Computer Vision",
                        year=2015, input_shape=(299, 299, 3), min_size=75, params=23_834_568,
                        twin="InceptionV3",
                        taps=(Tap("stem", "pool_5a_3x3", 8), Tap("mixed_5", "mixed_5d", 8),
                              Tap("mixed_6", "mixed_6e", 16), Tap("mixed_7", "mixed_7c", 32)))
inception_v4 = register("inception_v4", inception_v4, **V4_PAPER, input_shape=(299, 299, 3),
                        min_size=75, params=42_679_816,
                        taps=(Tap("stem", "mixed_5a", 8), Tap("inception_a", "inception_a4", 8),
                              Tap("inception_b", "inception_b7", 16),
                              Tap("inception_c", "inception_c3", 32)))
inception_resnet_v2 = register(
    "inception_resnet_v2", inception_resnet_v2, **V4_PAPER, input_shape=(299, 299, 3),
    min_size=75, params=55_843_464, twin="InceptionResNetV2",
    taps=(Tap("stem", "mixed_5b", 8), Tap("inception_resnet_a", "inception_resnet_a10", 8),
          Tap("inception_resnet_b", "inception_resnet_b20", 16),
          Tap("inception_resnet_c", "conv_7b_1x1_relu", 32)))
