"""Xception: Inception taken to the extreme, every convolution a depthwise separable one.

Chollet 2017, Figure 5, layer for layer as keras.applications.Xception (299x299x3 input).
"sepconv" is a 3x3 depthwise convolution then a 1x1 pointwise one, no bias, then BatchNorm;
"ReLU, sepconv" puts the ReLU before it. Each block but the first and last adds a shortcut: a
strided 1x1 convolution with BatchNorm where the block halves the maps, the identity elsewhere.

| flow   | block          | layers                                                   | output     | parameters |
|--------|----------------|----------------------------------------------------------|------------|-----------:|
| entry  | block1         | conv 3x3/2 32, valid; conv 3x3 64, valid (BN, ReLU each) | 147x147x64 |     19,488 |
| entry  | block2         | sepconv 128, ReLU, sepconv 128, max 3x3/2; 1x1/2 128     | 74x74x128  |     35,264 |
| entry  | block3         | ReLU, sepconv 256, ReLU, sepconv 256, max 3x3/2; 1x1/2   | 37x37x256  |    136,064 |
| entry  | block4         | ReLU, sepconv 728, ReLU, sepconv 728, max 3x3/2; 1x1/2   | 19x19x728  |    915,944 |
| middle | block5-block12 | 8 x [3 x (ReLU, sepconv 728)], identity shortcuts        | 19x19x728  | 12,911,808 |
| exit   | block13        | ReLU, sepconv 728, ReLU, sepconv 1024, max 3x3/2; 1x1/2  | 10x10x1024 |  2,039,584 |
| exit   | block14        | sepconv 1536, ReLU, sepconv 2048, ReLU                   | 10x10x2048 |  4,748,800 |
| head   | predictions    | global average pooling, dense `classes`, softmax         | 1000       |  2,049,000 |
|        |                |                                                          | total      | 22,855,952 |
"""

import keras
from keras import layers

from cnnkit.blocks import bn_act, classifier
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["xception", "separable_conv", "entry_block", "middle_block"]

ENTRY_FLOW = {"block2": 128, "block3": 256, "block4": 728}
MIDDLE_FLOW = {"blocks": 8, "filters": 728}
EXIT_FLOW = {"block13": (728, 1024), "block14": (1536, 2048)}
# keras.applications' BatchNormalization default: the same epsilon lets its ImageNet weights
# give identical outputs here.
EPSILON = 1e-3


def _bn(x, name):
    return bn_act(x, name=name, activation=None, epsilon=EPSILON)


def separable_conv(x, filters, *, name, relu_first=True):
    """[ReLU,] 3x3 depthwise separable convolution, BatchNorm: `{name}_act`, `{name}`, `{name}_bn`.

    A separable convolution filters each channel on its own (3x3 depthwise), then mixes channels
    (1x1 pointwise): 9·C + C·F weights instead of 9·C·F.
    """
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_act")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=name)(x)
    return _bn(x, name)


def entry_block(x, filters, *, name, relu_first=True):
    """Two separable convolutions and a 3x3/2 max pool, added to a strided 1x1 projection of the
    input (entry flow and block13): the maps halve, the channels grow to the second width."""
    first, second = filters if isinstance(filters, tuple) else (filters, filters)
    shortcut = layers.Conv2D(second, 1, strides=2, padding="same", use_bias=False,
                             name=f"{name}_shortcut")(x)
    shortcut = _bn(shortcut, f"{name}_shortcut")
    x = separable_conv(x, first, name=f"{name}_sepconv1", relu_first=relu_first)
    x = separable_conv(x, second, name=f"{name}_sepconv2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def middle_block(x, filters, *, name):
    """Three ReLU-separable-convolution layers with an identity shortcut (the middle flow)."""
    shortcut = x
    for i in (1, 2, 3):
        x = separable_conv(x, filters, name=f"{name}_sepconv{i}")
    return layers.Add(name=f"{name}_add")([x, shortcut])


def xception(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="xception"):
    """Xception: entry flow, a middle flow of 8 identical blocks, exit flow.

    Paper: "Xception: Deep Learning with Depthwise Separable Convolutions", Chollet, 2017
    (CVPR). The computation is keras.applications.Xception's, layer names included, so its
    ImageNet weights port one to one; only its unnamed shortcut layers are named here
    (`block2_shortcut`, `block2_shortcut_bn`, `block2_add`). As there, the head is global
    average pooling and the classifier, without the paper's optional dense layers.
    keras.applications asks for at least 71x71; the network itself works from 7x7, where the
    two valid 3x3 convolutions of block1 still leave one pixel.
    """
    args = check_args("xception", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    for i, (filters, strides) in enumerate(((32, 2), (64, 1)), start=1):
        x = layers.Conv2D(filters, 3, strides=strides, use_bias=False, name=f"block1_conv{i}")(x)
        x = _bn(x, f"block1_conv{i}")
        x = layers.Activation("relu", name=f"block1_conv{i}_act")(x)
    for block, filters in ENTRY_FLOW.items():
        # block1 ended with a ReLU already, so block2 starts straight with its convolution.
        x = entry_block(x, filters, name=block, relu_first=block != "block2")
    for i in range(MIDDLE_FLOW["blocks"]):
        x = middle_block(x, MIDDLE_FLOW["filters"], name=f"block{5 + i}")
    x = entry_block(x, EXIT_FLOW["block13"], name="block13")
    for i, filters in enumerate(EXIT_FLOW["block14"], start=1):
        # The last two convolutions put the ReLU after BatchNorm: no shortcut follows them.
        x = separable_conv(x, filters, name=f"block14_sepconv{i}", relu_first=False)
        x = layers.Activation("relu", name=f"block14_sepconv{i}_act")(x)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights, arch="xception",
                        include_top=include_top)


# Taps: the fourteen blocks of Figure 5 (entry flow 1-4, middle flow 5-12, exit flow 13-14),
# each ending with its residual sum but the first and last, which have none.
xception = register(
    "xception", xception, family="xception",
    paper="Xception: Deep Learning with Depthwise Separable Convolutions", year=2017,
    input_shape=(299, 299, 3), min_size=7, params=22_855_952, twin="Xception",
    taps=(Tap("block1", "block1_conv2_act", 2),
          *(Tap(f"block{b}", f"block{b}_add", min(2 ** b, 16)) for b in range(2, 13)),
          Tap("block13", "block13_add", 32), Tap("block14", "block14_sepconv2_act", 32)))
