"""Stacked hourglass: pool down to 4x4 and back up, eight times over, predicting heatmaps each time.

Newell, Yang and Deng, "Stacked Hourglass Networks for Human Pose Estimation" (2016), Sec. 3 and
Fig. 3-4, with the layer sizes of the authors' code (pose-hg-train, `src/models/hg.lua`).
Every block is the residual module of Fig. 4 (left): BN-ReLU-1x1 (128), BN-ReLU-3x3 (128),
BN-ReLU-1x1 (256), added to its input (a 1x1 convolution on the skip where widths differ).
Counts are trainable parameters for a 256x256 image, 16 joints (MPII) and 8 stacks.

| part       | layers                                                 | output      | parameters |
|------------|--------------------------------------------------------|-------------|-----------:|
| stem       | 7x7/2 conv 64 + BN-ReLU; residual 64->128              | 128x128x128 |     67,264 |
|            | 2x2/2 max pool; residuals 128->128, 128->256           | 64x64x256   |    283,904 |
| hourglass  | order 4: at each of 4 scales a residual on the upper   | 64x64x256   |  2,782,208 |
|            | branch; max pool, residual, recurse (a residual at the |             |            |
|            | 4x4 bottom), residual, 2x nearest upsampling, add      |             |            |
| after it   | residual; 1x1 conv 256 + BN-ReLU                       | 64x64x256   |    280,064 |
| heatmaps   | 1x1 conv, one map per joint                            | 64x64x16    |      4,112 |
| next input | input + 1x1 remap of the features + 1x1 remap of the   | 64x64x256   |     69,632 |
|            | heatmaps (not after the last stack)                    |             |            |
|            | 8 stacks                                               | total       | 25,369,664 |

The network outputs the 8 stacks' heatmaps: intermediate supervision applies the same loss
(mean squared error against Gaussian heatmaps) to each, and the last is the prediction.
The residual's shape is the "pre-activation" order of ResNet v2 (`cnnkit.models.resnet`), with
a bottleneck of half the output width instead of a quarter.

Layer names: the stem is `conv1`, `stem_res1`, `stem_pool`, `stem_res2`, `stem_res3`; in stack
s, `stack{s}_hg{n}_up` / `_pool` / `_low1` / `_low2` (bottom only) / `_low3` / `_upsample` /
`_add` for the level of order n (4 outermost, 64x64; 1 innermost, 8x8 pooled to 4x4), then
`stack{s}_res`, `stack{s}_lin`, `stack{s}_heatmaps` (an output), `stack{s}_remap_features`,
`stack{s}_remap_heatmaps` and `stack{s+1}_input`. A residual module's layers are
`{name}_preact_bn/_relu`, `_1_conv/_bn/_relu`, `_2_...`, `_3_conv`, the skip `_0_conv`, `_out`.
"""

import numbers

import keras
from keras import layers

from cnnkit.blocks import bn_act, conv_bn
from cnnkit.registry import register
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["stacked_hourglass", "residual_module", "hourglass_module"]

FEATURES = 256  # the paper's feature width at every resolution ("nFeats")


def residual_module(x, filters, *, name):
    """Fig. 4 (left): BN-ReLU-1x1, BN-ReLU-3x3 at half width, BN-ReLU-1x1, plus the input.

    The skip is the input itself, or a 1x1 convolution of it where the widths differ (the
    stem's 64->128 and 128->256). No convolution has a bias: see `stacked_hourglass`.
    """
    width = filters // 2
    y = bn_act(x, name=f"{name}_preact")
    y = conv_bn(y, width, 1, name=f"{name}_1")
    y = conv_bn(y, width, 3, name=f"{name}_2")
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_3_conv")(y)
    skip = x
    if x.shape[-1] != filters:
        skip = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_0_conv")(x)
    return layers.Add(name=f"{name}_out")([skip, y])


def hourglass_module(x, order, *, name):
    """An hourglass of `order` (Fig. 3): halve the size `order` times, double it back.

    At each level the upper branch keeps the resolution through a residual module; the lower
    branch max-pools, applies a residual, recurses (a plain residual at the bottom), applies
    another residual and upsamples 2x by nearest neighbour; the two branches are added.
    """
    filters = x.shape[-1]
    level = f"{name}_hg{order}"
    upper = residual_module(x, filters, name=f"{level}_up")
    lower = layers.MaxPooling2D(2, name=f"{level}_pool")(x)
    lower = residual_module(lower, filters, name=f"{level}_low1")
    if order > 1:
        lower = hourglass_module(lower, order - 1, name=name)
    else:
        lower = residual_module(lower, filters, name=f"{level}_low2")
    lower = residual_module(lower, filters, name=f"{level}_low3")
    lower = layers.UpSampling2D(2, interpolation="nearest", name=f"{level}_upsample")(lower)
    return layers.Add(name=f"{level}_add")([upper, lower])


def stem(x):
    """7x7/2 convolution, residual to 128, 2x2 max pool, residuals to 256: 1/4 of the size."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)  # Torch's padding 3 on every side
    x = conv_bn(x, 64, 7, strides=2, padding="valid", name="conv1")
    x = residual_module(x, 128, name="stem_res1")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)
    x = residual_module(x, 128, name="stem_res2")
    return residual_module(x, FEATURES, name="stem_res3")


def stacked_hourglass(weights=None, input_tensor=None, input_shape=None, classes=16,
                      classifier_activation=None, name=None, stacks=8, order=4):
    """The stacked hourglass network: a list of `stacks` heatmap tensors, one per stack.

    Paper: "Stacked Hourglass Networks for Human Pose Estimation", Newell, Yang and Deng, 2016.
    `classes` heatmaps per stack (16 MPII joints), at 1/4 of the input size (64x64x16 for a
    256x256 image); `classifier_activation` is applied to them (None: the paper regresses them
    linearly with a mean squared error). stacks=8 and order=4 are the paper's. The input's
    height and width must be divisible by 2**(order + 2) (64 for order 4, where a 64x64 image
    reaches a 1x1 map at the bottom) and, whatever the order, at least 64.

    As the authors' code: a residual module and a 1x1 convolution + BN-ReLU follow each
    hourglass before the heatmaps, and the next stack's input is the sum of this stack's input,
    a 1x1 remap of those features and a 1x1 remap of the heatmaps.
    Simplified: only the heatmap convolutions have biases. The Torch model also gives a bias to
    every other convolution; each of those adds a constant per channel to maps that reach every
    output only through a BatchNorm (directly, or along the residual stream, through max pools,
    upsampling and sums, into `stack{s}_lin`'s 1x1 convolution and its BatchNorm), which
    subtracts it again.
    """
    args = check_args("hourglass", weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=classes,
                      classifier_activation=classifier_activation)
    _check_options(stacks, order, args.input_shape)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x)
    heatmaps = []
    for s in range(1, stacks + 1):
        y = hourglass_module(x, order, name=f"stack{s}")
        y = residual_module(y, FEATURES, name=f"stack{s}_res")
        y = conv_bn(y, FEATURES, 1, name=f"stack{s}_lin")
        heat = layers.Conv2D(args.classes, 1, activation=classifier_activation,
                             name=f"stack{s}_heatmaps")(y)
        heatmaps.append(heat)
        if s < stacks:  # intermediate supervision feeds the predictions back (Fig. 4 right)
            features = layers.Conv2D(FEATURES, 1, use_bias=False,
                                     name=f"stack{s}_remap_features")(y)
            remapped = layers.Conv2D(FEATURES, 1, use_bias=False,
                                     name=f"stack{s}_remap_heatmaps")(heat)
            x = layers.Add(name=f"stack{s + 1}_input")([x, features, remapped])
    return load_weights(keras.Model(inputs, heatmaps, name=name or "hourglass"), weights)


def _whole(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_options(stacks, order, input_shape):
    if not _whole(stacks) or stacks < 1:
        raise ValueError(f"stacks must be a whole number >= 1 (the paper stacks 8); "
                         f"got {stacks!r}.")
    if not _whole(order) or order < 1:
        raise ValueError(f"order must be a whole number >= 1, the times an hourglass halves "
                         f"the size (the paper's 4); got {order!r}.")
    multiple = 2 ** (order + 2)  # the stem quarters the size, each order halves it again
    check_multiple(f"hourglass with order={order}", input_shape, multiple,
                   "the stem divides the size by 4 and the hourglass by 2**order, and every "
                   "upsampled map must match the one it is added to; or lower `order`")


# No taps: the network is its stacks' heatmaps, `stack{s}_heatmaps` (stride 4), but `stacks`
# sets how many there are and taps are one fixed tuple, which would name layers a model of
# fewer stacks lacks. Its count leaves out the convolution biases BatchNorm cancels (the Torch
# model has 64,448 more: 25,434,112).
hourglass = register("hourglass", stacked_hourglass, family="hourglass",
                     paper="Stacked Hourglass Networks for Human Pose Estimation", year=2016,
                     input_shape=(256, 256, 3), min_size=64, classes=16, params=25_369_664,
                     task="features")
