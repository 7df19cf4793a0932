"""U-Net and U-Net++: a contracting path, an expanding path, and skips that carry the detail.

U-Net (Ronneberger, Fischer and Brox, 2015), Figure 1, for the paper's 572x572x1 input tile:
each level is two unpadded 3x3 convolutions with ReLU; the contracting path halves the size
with 2x2 max pooling and doubles the channels, the expanding path doubles the size with a 2x2
up-convolution that halves the channels, concatenates the cropped map of the same level and
convolves twice again. A 1x1 convolution maps the 64 channels to the classes.

| level | contracting (`downK_*`)   | map     | expanding (`upK_*`)                    | map     |
|-------|---------------------------|---------|----------------------------------------|---------|
| 1     | 2 x conv3-64              | 568x568 | upconv to 64, crop 88, 2 x conv3-64    | 388x388 |
| 2     | pool, 2 x conv3-128       | 280x280 | upconv to 128, crop 40, 2 x conv3-128  | 196x196 |
| 3     | pool, 2 x conv3-256       | 136x136 | upconv to 256, crop 16, 2 x conv3-256  | 100x100 |
| 4     | pool, 2 x conv3-512, drop | 64x64   | upconv to 512, crop 4, 2 x conv3-512   | 52x52   |
| 5     | pool, 2 x conv3-1024, drop| 28x28   | (upconv: the 2x2 up-convolution)       |         |

then `predictions`, a 1x1 convolution to the 2 classes with soft-max: 388x388x2.
23 convolutional layers and 31,030,658 trainable parameters. Each unpadded 3x3 convolution
loses a pixel on each side, so the output (388) is the input (572) less 184 pixels of context:
the paper segments a large image tile by tile, mirroring its border ("overlap-tile").
Taps: the contracting path's levels, `down1_conv2`, `down2_conv2`, `down3_conv2`,
`down4_dropout`, `down5_dropout` (the maps the skips and the next level read; strides 1..16).

U-Net++ (Zhou, Rahman Siddiquee, Tajbakhsh and Liang, 2018) nests U-Nets of depth 1 to 4 that
share one encoder: node X^{i,j} (`xij_*`, i the level, j the column) is a conv block on
[X^{i,0}, ..., X^{i,j-1}, up-conv(X^{i+1,j-1})], so the skips are dense and pass through
convolutions; filters (32, 64, 128, 256, 512) per level, "same" padding; X^{0,4} gives the
output, and with deep supervision X^{0,1} .. X^{0,3} give one each as well. Taps: the encoder
nodes X^{0,0} .. X^{4,0}, `x00_conv2` .. `x40_conv2` (strides 1..16; their `_dropout2`, when
dropout > 0, follows).

Both builders take `filters`, the first level's width (U-Net's 64, U-Net++'s 32); each level
doubles it. A narrower network (filters=16: 1/16 of the parameters and of the multiply-adds)
trains in minutes on a CPU; the defaults are the papers'.
"""

import numbers

import keras
from keras import layers

from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["unet", "unet_plusplus", "conv_block", "up_conv", "UNET_FILTERS",
           "UNET_PLUSPLUS_FILTERS"]

UNET_FILTERS = (64, 128, 256, 512, 1024)  # channels of levels 1-5, Figure 1
UNET_PLUSPLUS_FILTERS = (32, 64, 128, 256, 512)  # "number of kernels" of levels 0-4
PADDINGS = ("valid", "same")
VALID_MIN = 188  # smallest unpadded input: the bottom is 4x4 and the output 4x4


def conv_block(x, filters, *, name, padding="same", dropout=0.0):
    """Two 3x3 convolutions, each followed by ReLU (and dropout if any): a U-Net level.

    Weights start from He's normal, std sqrt(2 / fan_in), as U-Net's Section 3 prescribes. Layers
    `{name}_conv1`, `{name}_conv2` (and `{name}_dropout1`, `{name}_dropout2`).
    """
    for index in (1, 2):
        x = layers.Conv2D(filters, 3, padding=padding, activation="relu",
                          kernel_initializer="he_normal", name=f"{name}_conv{index}")(x)
        if dropout:
            x = layers.Dropout(dropout, name=f"{name}_dropout{index}")(x)
    return x


def up_conv(x, filters, *, name):
    """The 2x2 "up-convolution": a stride-2 transposed convolution, twice the size, `filters`
    channels (half of U-Net's input channels). Layer `{name}_upconv`."""
    return layers.Conv2DTranspose(filters, 2, strides=2, kernel_initializer="he_normal",
                                  name=f"{name}_upconv")(x)


def _check_size(name, shape, padding):
    """Unpadded U-Net needs 16k + 12 pixels (every map even before each of the 4 poolings, at
    least 188); a padded one needs a multiple of 16."""
    if padding == "valid":
        check_multiple(f"{name} with padding='valid' (the paper's)", shape, 16,
                       "every map even before each 2x2 pooling; the output is 184 pixels "
                       "smaller", offset=12, smallest=VALID_MIN,
                       hint="Or use padding='same' with any size divisible by 16.")
    else:
        check_multiple(name, shape, 16, "four 2x2 poolings, with padding='same'")


def _widths(first):
    """The five levels' widths: `first`, doubled at each level down."""
    return tuple(first * 2 ** level for level in range(5))


def _check_options(name, padding, dropout=0.0, deep_supervision=False, filters=1):
    if isinstance(filters, bool) or not isinstance(filters, numbers.Integral) or filters < 1:
        raise ValueError(f"filters must be a positive whole number, the first level's width "
                         f"(the paper's {64 if name == 'unet' else 32}; each level doubles it); "
                         f"got {filters!r}.")
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'valid' (unpadded convolutions and cropped skips, the "
                         f"U-Net paper's) or 'same' (output as large as the input); got "
                         f"{padding!r}.")
    if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or not 0 <= dropout < 1:
        raise ValueError(f"dropout must be a rate from 0 (none) up to, not including, 1; got "
                         f"{dropout!r}.")
    if not isinstance(deep_supervision, bool):
        raise ValueError(f"deep_supervision must be True (one output per column X^(0,1..4)) or "
                         f"False (one output from X^(0,4)); got {deep_supervision!r}.")


def unet(weights=None, input_tensor=None, input_shape=None, classes=2,
         classifier_activation="softmax", name="unet", padding="valid", filters=64):
    """U-Net as Figure 1 of the paper: output (batch, H - 184, W - 184, classes) by default.

    Paper: "U-Net: Convolutional Networks for Biomedical Image Segmentation", Ronneberger,
    Fischer and Brox, 2015 (MICCAI). Section 2 gives the network, Section 3 the He
    initialisation and the pixel-wise soft-max over the final map.

    padding="valid" (the paper's): unpadded convolutions; each skip is center-cropped (88, 40,
    16 and 4 pixels per side) to the up-convolved map before the concatenation. Height and width
    must be 16k + 12 and at least 188 (572 -> 388; 188 -> 4). padding="same": padded
    convolutions and no crop, for any size divisible by 16 (at least 16), the output as large
    as the input; same 31,030,658 parameters. The registry's min_size, 16, is that of "same".
    filters: the first level's width, 64 in the paper (64, 128, 256, 512, 1024 down the
    levels); filters=16 gives a U-Net of 1,940,834 parameters (2 classes, 1 channel) and
    1/16 of the multiply-adds.

    Choices: dropout 0.5 after levels 4 and 5, the paper's "drop-out layers at the end of the
    contracting path" (it gives neither places nor rate; this is the common reading); no
    activation after the up-convolution; the concatenation puts the skip first. The paper's
    weight map loss, elastic deformations and overlap-tile inference are training-side.
    """
    args = check_args("unet", weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=classes,
                      classifier_activation=classifier_activation)
    _check_options("unet", padding, filters=filters)
    _check_size("unet", args.input_shape, padding)
    widths = _widths(filters)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    skips = []
    for level, width in enumerate(widths, start=1):
        if level > 1:
            x = layers.MaxPooling2D(2, name=f"down{level - 1}_pool")(x)
        x = conv_block(x, width, name=f"down{level}", padding=padding)
        if level >= 4:
            x = layers.Dropout(0.5, name=f"down{level}_dropout")(x)
        skips.append(x)
    # Unpadded, level 4's skip is 8 pixels larger than the up-convolved map; each level up
    # doubles the difference and adds the 8 pixels the two levels' convolutions took away.
    crop = 4
    for level in range(4, 0, -1):
        width, skip = widths[level - 1], skips[level - 1]
        x = up_conv(x, width, name=f"up{level}")
        if padding == "valid":
            skip = layers.Cropping2D(crop, name=f"up{level}_crop")(skip)
        x = layers.Concatenate(name=f"up{level}_concat")([skip, x])
        x = conv_block(x, width, name=f"up{level}", padding=padding)
        crop = 2 * crop + 8
    x = layers.Conv2D(args.classes, 1, activation=classifier_activation, name="predictions")(x)
    return load_weights(keras.Model(inputs, x, name=name), weights)


def unet_plusplus(weights=None, input_tensor=None, input_shape=None, classes=2,
                  classifier_activation="softmax", name="unet_plusplus",
                  deep_supervision=False, dropout=0.5, filters=32):
    """U-Net++ (depth 4): output (batch, H, W, classes), a list of four with deep supervision.

    Paper: "UNet++: A Nested U-Net Architecture for Medical Image Segmentation", Zhou, Rahman
    Siddiquee, Tajbakhsh and Liang, 2018 (DLMIA). Section 2 and Figure 1: X^{i,0} = H(pool(
    X^{i-1,0})) and X^{i,j} = H([X^{i,0}, ..., X^{i,j-1}, U(X^{i+1,j-1})]), where H is a
    convolution block and U an up-sampling.

    As the authors' Keras code (Nest_Net, MrGiovanni/UNetPlusPlus): H is two 3x3 "same"
    convolutions with ReLU, each followed by dropout (`dropout`, 0.5 there), no BatchNorm
    (their later ResNet/VGG-encoder version adds it); U is a 2x2 stride-2 transposed
    convolution to the node's own filters; He initialisation. Their 9,041,601 parameters are
    this network with one sigmoid output map (classes=1, classifier_activation="sigmoid");
    the default here is two soft-max maps (the same task, 9,041,634 parameters).

    deep_supervision=True: the outputs are a list of four maps from 1x1 heads on X^{0,1},
    X^{0,2}, X^{0,3} and X^{0,4} (`x01_predictions`, `x02_predictions`, `x03_predictions`,
    `predictions`), to train with one loss each as the paper does. At inference the paper
    either averages them ("accurate mode") or keeps one ("fast mode", a pruned network).
    Height and width must be divisible by 16 (at least 16). L2 weight decay is left to training.
    filters: the width of level 0, 32 as the authors' code; each level doubles it.
    """
    args = check_args("unet_plusplus", weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=classes,
                      classifier_activation=classifier_activation)
    _check_options("unet_plusplus", "same", dropout, deep_supervision, filters)
    _check_size("unet_plusplus", args.input_shape, "same")
    widths = _widths(filters)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    nodes = {}  # (i, j) -> X^{i,j}
    for i, width in enumerate(widths):
        if i > 0:
            x = layers.MaxPooling2D(2, name=f"x{i - 1}0_pool")(nodes[i - 1, 0])
        nodes[i, 0] = conv_block(x, width, name=f"x{i}0", dropout=dropout)
        # The new encoder level completes the nested U-Net of depth i: its diagonal upwards.
        for j in range(1, i + 1):
            level = i - j
            up = up_conv(nodes[level + 1, j - 1], widths[level], name=f"x{level}{j}")
            x = layers.Concatenate(name=f"x{level}{j}_concat")(
                [nodes[level, k] for k in range(j)] + [up])
            nodes[level, j] = conv_block(x, widths[level], name=f"x{level}{j}", dropout=dropout)
    heads = range(1, 5) if deep_supervision else [4]
    outputs = [layers.Conv2D(args.classes, 1, activation=classifier_activation,
                             kernel_initializer="he_normal",
                             name="predictions" if j == 4 else f"x0{j}_predictions")(nodes[0, j])
               for j in heads]
    model = keras.Model(inputs, outputs if deep_supervision else outputs[0], name=name)
    return load_weights(model, weights)


# Taps: the contracting path's levels (the encoder's), strides 1..16. The expanding path is not
# tapped: its strides fall (8 back to 1), so it is what follows the last tap (the head).
UNET_TAPS = tuple(Tap(f"down{level}", f"down{level}_{'dropout' if level >= 4 else 'conv2'}",
                      2 ** (level - 1)) for level in range(1, 6))
# U-Net++'s encoder nodes X^{i,0}: `_conv2`, present at every `dropout` (`_dropout2` is not at 0).
UNET_PLUSPLUS_TAPS = tuple(Tap(f"x{i}0", f"x{i}0_conv2", 2 ** i) for i in range(5))

unet = register("unet", unet, family="unet",
                paper="U-Net: Convolutional Networks for Biomedical Image Segmentation", year=2015,
                input_shape=(572, 572, 1), min_size=16, classes=2, params=31_030_658,
                task="segmentation", taps=UNET_TAPS)
unet_plusplus = register(
    "unet_plusplus", unet_plusplus, family="unet",
    paper="UNet++: A Nested U-Net Architecture for Medical Image Segmentation", year=2018,
    input_shape=(96, 96, 1), min_size=16, classes=2, params=9_041_634, task="segmentation",
    taps=UNET_PLUSPLUS_TAPS)
