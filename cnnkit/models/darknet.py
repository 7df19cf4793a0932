"""Darknet-53, YOLOv3's backbone: 3x3 stride-2 downsampling and 1x1-3x3 residual blocks.

Redmon and Farhadi, "YOLOv3: An Incremental Improvement" (2018), Table 1 (input 256x256).
Every convolution is followed by BatchNorm and LeakyReLU(0.1); a residual block adds its
input to its 3x3's output with no activation after the sum (darknet's "linear" shortcut).

| stage  | layers                                       | output            | here            |
|--------|----------------------------------------------|-------------------|-----------------|
| stem   | conv 32, 3x3                                 | 256x256x32        | stem            |
| stage1 | conv 64, 3x3/2; 1 x [conv 32, 1x1; 64, 3x3]  | 128x128x64        | stage1_out (/2) |
| stage2 | conv 128, 3x3/2; 2 x [64, 1x1; 128, 3x3]     | 64x64x128         | stage2_out (/4) |
| stage3 | conv 256, 3x3/2; 8 x [128, 1x1; 256, 3x3]    | 32x32x256         | stage3_out (/8) |
| stage4 | conv 512, 3x3/2; 8 x [256, 1x1; 512, 3x3]    | 16x16x512         | stage4_out (/16)|
| stage5 | conv 1024, 3x3/2; 4 x [512, 1x1; 1024, 3x3]  | 8x8x1024          | stage5_out (/32)|
| head   | global average pool, 1000-way connected, softmax | 1000          | predictions     |

1 + 5 + 2 x (1 + 2 + 8 + 8 + 4) = 52 convolutions and one connected layer: 53 weight layers,
41,609,928 trainable parameters. YOLOv3 detects at three scales from stage3_out, stage4_out and
stage5_out (strides 8, 16, 32).

Layer names: `stem_conv/_bn/_leaky`, `stage{n}_down_pad/_conv/_bn/_leaky`, block i
`stage{n}_block{i}_1x1_...`, `_3x3_...`, `_add`, and each stage's output `stage{n}_out`.
"""

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["DARKNET53_STAGES", "darknet53", "darknet_conv", "darknet_residual"]

# (filters after the downsampling convolution, residual blocks) of stage1..stage5, Table 1
DARKNET53_STAGES = ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))
LEAKY_SLOPE = 0.1  # darknet's "leaky" activation


def darknet_conv(x, filters, kernel_size, *, name, strides=1):
    """Convolution (no bias), BatchNorm, LeakyReLU(0.1): darknet's [convolutional] layer.

    Strided ones pad 1 pixel on every side as darknet and PyTorch do; Keras's "same" would pad
    only bottom/right on even sizes, shifting every window by a pixel.
    """
    padding = "same"
    if strides > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = conv_bn(x, filters, kernel_size, strides=strides, padding=padding, activation=None,
                name=name)
    return layers.LeakyReLU(negative_slope=LEAKY_SLOPE, name=f"{name}_leaky")(x)


def darknet_residual(x, *, name):
    """Halve the channels with a 1x1, restore them with a 3x3, add the input (no activation)."""
    filters = x.shape[-1]
    y = darknet_conv(x, filters // 2, 1, name=f"{name}_1x1")
    y = darknet_conv(y, filters, 3, name=f"{name}_3x3")
    return layers.Add(name=f"{name}_add")([x, y])


def darknet53(include_top=True, weights=None, input_tensor=None, input_shape=None,
              pooling=None, classes=1000, classifier_activation="softmax", name="darknet53"):
    """Darknet-53 as a Keras functional model (the ImageNet classifier of Table 1).

    Paper: "YOLOv3: An Incremental Improvement", Redmon and Farhadi, 2018, Table 1. Layout and
    count as timm's `darknet53` (which follows the darknet cfg): stem 3x3 conv of 32, five
    stages of a 3x3 stride-2 convolution and residual blocks, global average pool and a dense
    classifier. LeakyReLU slope 0.1 as in darknet (timm's config uses PyTorch's default 0.01;
    activations carry no parameters). The detection head of YOLOv3 is not part of it: a
    detector taps `stage3_out`, `stage4_out` and `stage5_out`.
    """
    args = check_args("darknet53", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = darknet_conv(x, 32, 3, name="stem")
    for stage, (filters, blocks) in enumerate(DARKNET53_STAGES, start=1):
        x = darknet_conv(x, filters, 3, strides=2, name=f"stage{stage}_down")
        for i in range(1, blocks + 1):
            x = darknet_residual(x, name=f"stage{stage}_block{i}")
        # A named tap for detectors (YOLOv3, FPN): the stage's output at stride 2**stage.
        x = layers.Identity(name=f"stage{stage}_out")(x)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: Table 1's stem and five stages (YOLOv3 reads stage3..stage5).
darknet53 = register(
    "darknet53", darknet53, family="darknet", paper="YOLOv3: An Incremental Improvement",
    year=2018, input_shape=(256, 256, 3), min_size=1, params=41_609_928,
    taps=(Tap("stem", "stem_leaky", 1),
          *(Tap(f"stage{s}", f"stage{s}_out", 2 ** s) for s in range(1, 6))))
