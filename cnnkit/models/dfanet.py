"""DFANet: one light Xception backbone used three times, each pass refining the one before.

Li, Xiong, Fan and Sun, "DFANet: Deep Feature Aggregation for Real-Time Semantic Segmentation"
(CVPR 2019). Table 1, the backbones (output sizes for a 1024x1024 input; a block is three 3x3
depthwise separable convolutions with a residual, widths C/4, C/4, C):

| stage        | output    | XceptionA (DFANet A)     | XceptionB (DFANet B)     |
|--------------|-----------|--------------------------|--------------------------|
| conv1        | 512x512   | 3x3, 8, stride 2         | 3x3, 8, stride 2         |
| enc2         | 256x256   | [12, 12, 48] x 4         | [8, 8, 32] x 4           |
| enc3         | 128x128   | [24, 24, 96] x 6         | [16, 16, 64] x 6         |
| enc4         | 64x64     | [48, 48, 192] x 4        | [32, 32, 128] x 4        |
| fc attention | 1x1       | fc 1000, conv 1x1 192    | fc 1000, conv 1x1 128    |

Fig. 3, the aggregation. Backbone 1 (`b1_...`) reads conv1. Sub-network aggregation: backbone
k's fc-attention output, upsampled x4, is the input of backbone k+1, which therefore works at
half the resolution of backbone k (b2's enc2 output is 1/8, b3's enc4 1/64). Sub-stage
aggregation: each enc stage of backbone k+1 concatenates its input with the same stage's output
of backbone k, which has exactly that resolution. The decoder sums the three enc2 outputs
(each 1x1 conv to 32, upsampled x1, x2, x4 to 1/4), fuses them (1x1, 32), adds the three fc
attention outputs (1x1 to 32, upsampled x4, x8, x16), and a 1x1 convolution to `classes`
upsampled x4 gives the class map.

| part     | DFANet A: parameters | DFANet B: parameters | output (1024x1024 input) |
|----------|---------------------:|---------------------:|--------------------------|
| conv1    |                  232 |                  232 | 512x512x8                |
| b1       |              545,160 |              333,256 | enc2 256x256, fca 64x64  |
| b2       |              621,360 |              368,032 | enc2 128x128, fca 32x32  |
| b3       |              621,360 |              368,032 | enc2 64x64, fca 16x16    |
| decoder  |               25,139 |               17,459 | 1024x1024x19             |
| total    |            1,813,251 |            1,087,011 |                          |

The paper's speed comparison lists 7.8M (A) and 4.8M (B) parameters, which Table 1 and Fig. 3
do not reach: the public re-implementations of them have about 2M for A too.

A separable convolution is ReLU, 3x3 depthwise, 1x1 pointwise, BatchNorm; the other layers are
conv-BN-ReLU without bias but the last, `decoder_logits`, which has a bias and no BatchNorm.
Taps: a stage's last block `b{k}_enc{i}_block{n}_out` (e.g. `b1_enc2_block4_out`,
`b1_enc3_block6_out`, `b1_enc4_block4_out`) and backbone k's output `b{k}_fca_scale`. The
registry declares conv1 (`conv1_relu`) and backbone 1's: b1_enc2, b1_enc3, b1_enc4, b1_fca
(strides 2, 4, 8, 16, 16).
"""

import keras
from keras import layers

from cnnkit.blocks import conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["dfanet", "ARCHITECTURES", "separable_conv", "xception_block", "encoder_stage",
           "fc_attention", "backbone", "decoder"]

CONV1 = 8
DEPTHS = (4, 6, 4)  # blocks of enc2, enc3, enc4
FC_UNITS = 1000  # the ImageNet classifier, kept as attention
DECODER_WIDTH = 32
STRIDE = 64  # backbone 3's enc4

ARCHITECTURES = {
    "dfanet": dict(backbone="XceptionA", widths=(48, 96, 192), params=1_813_251),
    "dfanet_b": dict(backbone="XceptionB", widths=(32, 64, 128), params=1_087_011),
}


def separable_conv(x, filters, *, name, strides=1, relu_first=True):
    """ReLU, 3x3 depthwise conv `{name}_dw`, 1x1 pointwise conv + BN `{name}_pw_...`.

    Xception's "ReLU, sepconv, BN": no BatchNorm between the two convolutions, where its beta
    would be a constant that the pointwise convolution's BatchNorm subtracts again.
    """
    if relu_first:
        x = layers.Activation("relu", name=f"{name}_relu")(x)
    x = layers.DepthwiseConv2D(3, strides=strides, padding="same", use_bias=False,
                               name=f"{name}_dw")(x)
    return conv_bn(x, filters, 1, activation=None, name=f"{name}_pw")


def xception_block(x, filters, *, name, strides=1, relu_first=True):
    """Three separable convolutions (filters/4, filters/4, filters) added to a shortcut.

    The third one carries the stride; where size or width change, the shortcut is a strided
    1x1 conv + BN, else the identity. The sum `{name}_out` has no ReLU: the next block starts
    with one, as in Xception.
    """
    y = separable_conv(x, filters // 4, name=f"{name}_sepconv1", relu_first=relu_first)
    y = separable_conv(y, filters // 4, name=f"{name}_sepconv2")
    y = separable_conv(y, filters, strides=strides, name=f"{name}_sepconv3")
    if strides != 1 or x.shape[-1] != filters:
        x = conv_bn(x, filters, 1, strides=strides, activation=None, name=f"{name}_shortcut")
    return layers.Add(name=f"{name}_out")([x, y])


def encoder_stage(x, filters, depth, *, name, relu_first=True):
    """`depth` blocks; the first halves the maps."""
    for i in range(1, depth + 1):
        x = xception_block(x, filters, strides=2 if i == 1 else 1, name=f"{name}_block{i}",
                           relu_first=relu_first or i > 1)
    return x


def fc_attention(x, *, name):
    """Global pool, the fully connected 1000-way layer, 1x1 conv-BN-ReLU back to the width;
    the resulting vector multiplies each channel (`{name}_scale`)."""
    a = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    # No bias: the BatchNorm after the 1x1 conv subtracts any constant added here.
    a = layers.Dense(FC_UNITS, use_bias=False, name=f"{name}_fc")(a)
    a = conv_bn(a, x.shape[-1], 1, name=name)
    return layers.Multiply(name=f"{name}_scale")([x, a])


def backbone(x, widths, *, name, previous=None):
    """enc2, enc3, enc4 and fc attention; returns ([stage outputs], attention output).

    `previous` holds the stage outputs of the backbone before, concatenated to each stage's
    input (sub-stage aggregation). Backbone 1 reads conv1's ReLU, so it starts without one.
    """
    stages = []
    for i, (filters, depth) in enumerate(zip(widths, DEPTHS)):
        stage = f"{name}_enc{i + 2}"
        if previous is not None:
            x = layers.Concatenate(name=f"{stage}_concat")([x, previous[i]])
        x = encoder_stage(x, filters, depth, name=stage,
                          relu_first=previous is not None or i > 0)
        stages.append(x)
    return stages, fc_attention(x, name=f"{name}_fca")


def _upsample(x, factor, name):
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)


def decoder(enc2, fca, classes, activation):
    """Fuse the three backbones' enc2 outputs (detail) and attention outputs (meaning) at 1/4."""
    low = []
    for k, x in enumerate(enc2, start=1):
        x = conv_bn(x, DECODER_WIDTH, 1, name=f"decoder_b{k}_enc2")
        low.append(x if k == 1 else _upsample(x, 2 ** (k - 1), f"decoder_b{k}_enc2_up"))
    x = layers.Add(name="decoder_enc2_sum")(low)
    x = conv_bn(x, DECODER_WIDTH, 1, name="decoder_fusion")
    high = [_upsample(conv_bn(f, DECODER_WIDTH, 1, name=f"decoder_b{k}_fca"), 2 ** (k + 1),
                      f"decoder_b{k}_fca_up") for k, f in enumerate(fca, start=1)]
    x = layers.Add(name="decoder_sum")([x, *high])
    x = layers.Conv2D(classes, 1, name="decoder_logits")(x)
    x = _upsample(x, 4, "decoder_up")
    return layers.Activation(activation, name="predictions")(x)


def dfanet(arch, weights=None, input_tensor=None, input_shape=None, classes=19,
           classifier_activation="softmax", name=None):
    """DFANet A (`dfanet`, the paper's main model) or B (`dfanet_b`): three aggregated Xception
    backbones and a light decoder.

    Paper: "DFANet: Deep Feature Aggregation for Real-Time Semantic Segmentation", Li, Xiong,
    Fan and Sun, 2019. Output (batch, H, W, classes); height and width must be multiples of 64,
    the stride of the third backbone's deepest stage.

    Where the paper is silent, this follows the public re-implementations (SegmenTron and its
    predecessor awesome-semantic-segmentation-pytorch): the stride sits on the third separable
    convolution of a stage's first block; the fc attention is conv-BN-ReLU after the 1000-way
    layer; the decoder is 32 channels wide. Each backbone has its own weights (their input
    widths differ). Simplified: those re-implementations also put a BatchNorm after each
    depthwise convolution and a bias on the fc layer, parameters that the BatchNorm after the
    next convolution makes redundant; Keras's bilinear upsampling uses half-pixel centres, not
    align_corners=True.
    Train with batches of two images or more: the BatchNorm after the fc layer sees one value per
    image and channel, so a batch of one normalizes it to zero.
    """
    args = check_args(arch, weights=weights, input_tensor=input_tensor, input_shape=input_shape,
                      classes=classes, classifier_activation=classifier_activation)
    check_multiple(arch, args.input_shape, STRIDE, "the stride of the third backbone's enc4, "
                   "so that each upsampled output lines up with the stage it joins")
    widths = ARCHITECTURES[arch]["widths"]
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv_bn(x, CONV1, 3, strides=2, name="conv1")
    stages, fca = backbone(x, widths, name="b1")
    enc2, fcas = [stages[0]], [fca]
    for k in (2, 3):
        x = _upsample(fca, 4, f"b{k - 1}_fca_up")
        stages, fca = backbone(x, widths, name=f"b{k}", previous=stages)
        enc2.append(stages[0])
        fcas.append(fca)
    outputs = decoder(enc2, fcas, args.classes, classifier_activation)
    return load_weights(keras.Model(inputs, outputs, name=name or arch), weights)


# Taps: conv1 and backbone 1's stages (Table 1's enc2..enc4 and fc attention). Backbones 2 and 3
# are not tapped: each starts again from an upsampled map (b2's enc2 is at stride 8, after b1's
# fc attention at 16) and reads the one before, so they and the decoder are what follows.
DFANET = dict(family="dfanet",
              paper="DFANet: Deep Feature Aggregation for Real-Time Semantic Segmentation",
              year=2019, input_shape=(1024, 1024, 3), min_size=STRIDE, classes=19,
              task="segmentation",
              taps=(Tap("conv1", "conv1_relu", 2),
                    *(Tap(f"b1_enc{i}", f"b1_enc{i}_block{depth}_out", 2 ** i)
                      for i, depth in zip((2, 3, 4), DEPTHS)),
                    Tap("b1_fca", "b1_fca_scale", 16)))

_builder = dfanet  # the model named "dfanet" (DFANet A) takes the builder's name
dfanet = register("dfanet", _builder, "dfanet", **DFANET, params=ARCHITECTURES["dfanet"]["params"])
dfanet_b = register("dfanet_b", _builder, "dfanet_b", **DFANET,
                    params=ARCHITECTURES["dfanet_b"]["params"])
