"""BiSeNet: a wide, shallow spatial path for detail beside a deep, narrow context path for meaning.

Yu, Wang, Peng, Gao, Yu and Sang, "BiSeNet: Bilateral Segmentation Network for Real-time
Semantic Segmentation" (ECCV 2018), Fig. 2. The paper gives the structure but few widths; the
widths here are those of the authors' code (TorchSeg, `model/bisenet/cityscapes.bisenet.R18`).
Every convolution but the last is followed by BatchNorm (conv-BN-ReLU, no bias). Parameters for
the default ResNet-18 context path and 19 classes (Cityscapes), input 1024x1024x3:

| part           | layers                                                | output       | params     |
|----------------|-------------------------------------------------------|--------------|-----------:|
| spatial path   | 7x7/2 64, 3x3/2 64, 3x3/2 64 (`spatial1..3`),         | 128x128x128  |     91,968 |
|                | 1x1 128 (`spatial_proj`)                              |              |            |
| context path   | resnet18 without its classifier, tapped at            | 64x64x256,   | 11,176,512 |
|                | `conv4_block2_out` (1/16), `conv5_block2_out` (1/32)  | 32x32x512    |            |
| global context | global average pool, 1x1 128 (`context_global`)       | 1x1x128      |     65,792 |
| arm32          | 3x3 128; attention: pool, 1x1 128, BN, sigmoid, x     | 32x32x128    |    606,720 |
| context16      | arm32 + global context, bilinear x2, 3x3 128 (refine) | 64x64x128    |    147,712 |
| arm16          | 3x3 128; attention as arm32                           | 64x64x128    |    311,808 |
| context8       | arm16 + context16, bilinear x2, 3x3 128 (refine)      | 128x128x128  |    147,712 |
| ffm            | concat (256), 1x1 256; attention: pool, 1x1 256 ReLU, | 128x128x256  |    197,120 |
|                | 1x1 256 sigmoid; features + features x attention      |              |            |
| head           | 3x3 64, 1x1 `classes`, bilinear x8, `predictions`     | 1024x1024x19 |    148,819 |
|                |                                                       | total        | 12,894,163 |

With aux_heads=True two auxiliary heads (3x3 256, 1x1 `classes`, bilinear x16 or x8) read the
context path at 1/16 (`context16_relu`) and 1/8 (`context8_relu`), the paper's auxiliary
losses: 300,307 parameters each. Taps for later networks: `spatial_proj_relu` (spatial path,
stride 8), `context16_relu`, `context8_relu` (context path, strides 16 and 8), `ffm_add`.
"""

import keras
from keras import layers

from cnnkit import registry
from cnnkit.blocks import conv_bn
from cnnkit.registry import register
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["bisenet", "spatial_path", "attention_refinement", "feature_fusion", "BACKBONES"]

SPATIAL_PATH = ((64, 7), (64, 3), (64, 3))  # (filters, kernel) of the three stride-2 layers
CONTEXT_WIDTH = 128  # the official code's conv_channel: both paths end with 128 channels
AUX_WIDTH = 256
# The paper's two ResNet context paths; the official code's head is wider for ResNet-101.
BACKBONES = {"resnet18": dict(head_width=64), "resnet101": dict(head_width=256)}
STRIDE = 32  # the context path's deepest stage


def spatial_path(x):
    """Three stride-2 conv-BN-ReLU layers keep 1/8 of the resolution, then 1x1 to 128 channels.

    The paper: "three layers ... a convolution with stride = 2, followed by batch normalization
    and ReLU". Its code makes the first a 7x7 and widens to 128 channels with a 1x1 so that both
    paths enter the fusion module with the same width.
    """
    for i, (filters, kernel) in enumerate(SPATIAL_PATH, start=1):
        x = conv_bn(x, filters, kernel, strides=2, name=f"spatial{i}")
    return conv_bn(x, CONTEXT_WIDTH, 1, name="spatial_proj")


def attention_refinement(x, filters, *, name):
    """Attention refinement module (Fig. 2b): global pool, 1x1 conv, BN, sigmoid, multiply.

    The global average gives one weight per channel, so the map is re-weighted by context from
    the whole image at almost no cost. A 3x3 conv-BN-ReLU first brings the backbone's 256 or
    512 channels to `filters` (the official code; the figure leaves the widths open).
    """
    x = conv_bn(x, filters, 3, name=name)
    a = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    a = conv_bn(a, filters, 1, activation="sigmoid", name=f"{name}_attention")
    return layers.Multiply(name=f"{name}_scale")([x, a])


def feature_fusion(spatial, context, filters, *, name):
    """Feature fusion module (Fig. 2c): the two paths see different things, so they are not
    simply added: concatenate, conv-BN-ReLU, then an attention vector (pool, 1x1 ReLU, 1x1
    sigmoid, both without bias as in the official code) re-weights the channels, and the
    re-weighted features are added to the features."""
    x = layers.Concatenate(name=f"{name}_concat")([spatial, context])
    x = conv_bn(x, filters, 1, name=name)
    a = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    a = layers.Conv2D(filters, 1, activation="relu", use_bias=False, name=f"{name}_reduce")(a)
    a = layers.Conv2D(filters, 1, activation="sigmoid", use_bias=False, name=f"{name}_expand")(a)
    weighted = layers.Multiply(name=f"{name}_scale")([x, a])
    return layers.Add(name=f"{name}_add")([x, weighted])


def _upsample(x, factor, name):
    return layers.UpSampling2D(factor, interpolation="bilinear", name=name)(x)


def segmentation_head(x, classes, *, width, factor, activation, name):
    """3x3 conv-BN-ReLU, 1x1 convolution to class scores, bilinear upsampling, activation."""
    x = conv_bn(x, width, 3, name=name)
    x = layers.Conv2D(classes, 1, name=f"{name}_logits")(x)
    x = _upsample(x, factor, f"{name}_up")
    prediction = name.removesuffix("head")
    return layers.Activation(activation, name=f"{prediction}predictions")(x)


def context_path(x, backbone):
    """The backbone's 1/16 and 1/32 stages, refined with attention and global context.

    Returns the refined features at 1/16 and at 1/8 (the second is the context path's output).
    """
    net = registry.build(backbone, include_top=False, input_tensor=x)
    c4, c5 = (layer.output for layer in registry.tap_layers(net, backbone, ("conv4", "conv5"))
              .values())
    # The "global average pooling at the tail": a 1x1 map, added to every position of arm32.
    g = layers.GlobalAveragePooling2D(keepdims=True, name="context_global_pool")(c5)
    g = conv_bn(g, CONTEXT_WIDTH, 1, name="context_global")
    x = layers.Add(name="context32_add")([attention_refinement(c5, CONTEXT_WIDTH, name="arm32"), g])
    x = _upsample(x, 2, "context32_up")
    context16 = conv_bn(x, CONTEXT_WIDTH, 3, name="context16")
    x = layers.Add(name="context16_add")(
        [attention_refinement(c4, CONTEXT_WIDTH, name="arm16"), context16])
    x = _upsample(x, 2, "context16_up")
    return context16, conv_bn(x, CONTEXT_WIDTH, 3, name="context8")


def bisenet(weights=None, input_tensor=None, input_shape=None, classes=19,
            classifier_activation="softmax", name=None, backbone="resnet18", aux_heads=False):
    """BiSeNet with a ResNet context path: (batch, H, W, classes) per-pixel class scores.

    Paper: "BiSeNet: Bilateral Segmentation Network for Real-time Semantic Segmentation", Yu,
    Wang, Peng, Gao, Yu and Sang, 2018. Widths and the 7x7 first layer of the spatial path come
    from the authors' TorchSeg code, where the paper gives none.

    backbone: "resnet18" (default) or "resnet101", the paper's ResNet context paths, built
    headless from the registry and read at its taps conv4 and conv5 (strides 16, 32); its
    Xception39 is not in the kit.
    aux_heads: True adds the two auxiliary heads the paper trains with, and the model returns
    [predictions, aux16_predictions, aux8_predictions]; train with one loss per output.
    Height and width must be multiples of 32 (the 1/32 stage doubled twice meets the 1/8 path).

    Simplified: bilinear upsampling is Keras's (half-pixel centres) where the official code
    uses align_corners=True; the same weights give slightly different maps. Train with batches
    of two images or more: the BatchNorms after the global pools see one value per image and
    channel, so a batch of one normalizes them to zero.
    """
    args = check_args("bisenet", weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=classes,
                      classifier_activation=classifier_activation)
    _check_options(args.input_shape, backbone, aux_heads)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    spatial = spatial_path(x)
    context16, context8 = context_path(x, backbone)
    fused = feature_fusion(spatial, context8, 2 * CONTEXT_WIDTH, name="ffm")
    head = dict(classes=args.classes, activation=classifier_activation)
    outputs = segmentation_head(fused, width=BACKBONES[backbone]["head_width"], factor=8,
                                name="head", **head)
    if aux_heads:
        outputs = [outputs,
                   segmentation_head(context16, width=AUX_WIDTH, factor=16, name="aux16_head",
                                     **head),
                   segmentation_head(context8, width=AUX_WIDTH, factor=8, name="aux8_head",
                                     **head)]
    return load_weights(keras.Model(inputs, outputs, name=name or "bisenet"), weights)


def _check_options(input_shape, backbone, aux_heads):
    if not isinstance(backbone, str) or backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(map(repr, BACKBONES))} (the "
                         f"paper's ResNet context paths); got {backbone!r}.")
    if not isinstance(aux_heads, bool):
        raise ValueError(f"aux_heads must be True (also return the two auxiliary predictions "
                         f"for training) or False; got {aux_heads!r}.")
    check_multiple("bisenet", input_shape, STRIDE, f"the context path's 1/{STRIDE} maps, "
                   "upsampled, must line up with the spatial path")


# No taps: a spatial and a context path side by side; the maps later networks read are named in
# the module docstring.
bisenet = register("bisenet", bisenet, family="bisenet",
                   paper="BiSeNet: Bilateral Segmentation Network for Real-time Semantic "
                         "Segmentation", year=2018, input_shape=(1024, 1024, 3), min_size=STRIDE,
                   classes=19, params=12_894_163, task="segmentation")
