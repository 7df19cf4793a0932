"""SENet: ResNet and ResNeXt blocks whose residual branch is reweighted channel by channel.

Hu, Shen and Sun, "Squeeze-and-Excitation Networks" (CVPR 2018; the TPAMI version adds Albanie
and Wu), Table 1 and, for SENet-154, the appendix. `a-b/g-c x n` is n bottlenecks of 1x1 a,
3x3 b (in g groups if /g), 1x1 c, each ending with an SE block `fc, [C/16, C]`: global average
pool, a fully connected layer to C/r channels with ReLU, one back to C channels with a sigmoid
gate, and the branch multiplied by the gate before the shortcut is added (r = 16, C = c). The
counts are trainable parameters with 1000 classes.

| stage   | output  | SE-ResNet-50      | SE-ResNeXt-50 (32x4d)  | SENet-154               |
|---------|---------|-------------------|------------------------|-------------------------|
| conv1   | 112x112 | 7x7, 64, stride 2 | 7x7, 64, stride 2      | 3x3, 64, stride 2;      |
|         |         |                   |                        | 3x3, 64; 3x3, 128       |
| conv2_x | 56x56   | 3x3 max pool, stride 2, then                                         |
|         |         | 64-64-256 x 3     | 128-128/32-256 x 3     | 128-256/64-256 x 3      |
| conv3_x | 28x28   | 128-128-512 x 4   | 256-256/32-512 x 4     | 256-512/64-512 x 8      |
| conv4_x | 14x14   | 256-256-1024 x 6  | 512-512/32-1024 x 6    | 512-1024/64-1024 x 36   |
| conv5_x | 7x7     | 512-512-2048 x 3  | 1024-1024/32-2048 x 3  | 1024-2048/64-2048 x 3   |
|         | 1x1     | global average pool, (SENet-154: dropout 0.2,) 1000-d fc, softmax    |
| params  |         | 28,088,024        | 27,559,896             | 115,088,984             |

An SE block on C channels adds 2*C*C/r + C/r + C parameters (two 1x1 convolutions with bias):
2,530,992 over ResNet-50's 25,557,032 (the paper's Eq. 5 counts the weights only, 2,514,944,
"a ~10% increase"), while its multiply-adds are negligible: it works on 1x1 maps.

SENet-154 is SE in a 64x4d ResNeXt-152 with four changes the appendix lists: the 7x7 stem
becomes three 3x3 convolutions; the first 1x1 of each bottleneck is halved; the strided 1x1
projection shortcuts become 3x3 stride-2 convolutions "to preserve information"; and dropout 0.2
precedes the classifier.

Layer names are ResNet's (`conv3_block2_1_conv` ... `conv3_block2_out`, see cnnkit.models.resnet)
plus the SE block `{block}_se_squeeze`, `_se_reduce`, `_se_expand`, `_se_excite`. A detector
taps `conv2_block3_out`..`conv5_block3_out` (strides 4, 8, 16, 32; SENet-154: `conv3_block8_out`,
`conv4_block36_out`).
"""

import functools
import numbers

import keras
from keras import layers

from cnnkit.blocks import (BN_EPSILON, classifier, conv3x3_bn, conv_bn, resnet_stage,
                           squeeze_excite)
from cnnkit.models.resnet import EXPANSION, WIDTHS, bottleneck, stage_taps, stem
from cnnkit.registry import register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "senet", "se_block", "deep_stem", "se_resnet50", "se_resnext50_32x4d",
           "senet154"]

REDUCTION = 16  # the paper's r: the SE bottleneck keeps C/16 channels

# groups, base_width: ResNeXt's cardinality and group width (the 3x3 has base_width*groups
# channels per 64 of ResNet's width); first_ratio narrows the first 1x1; shortcut_kernel is the
# kernel of the strided projections; min_size: SENet-154's stem pools a 1x1 map to nothing.
ARCHITECTURES = {
    "se_resnet50": dict(depths=(3, 4, 6, 3), groups=1, base_width=64, stem="7x7",
                        params=28_088_024, source="timm seresnet50"),
    "se_resnext50_32x4d": dict(depths=(3, 4, 6, 3), groups=32, base_width=4, stem="7x7",
                               params=27_559_896, source="timm seresnext50_32x4d"),
    "senet154": dict(depths=(3, 8, 36, 3), groups=64, base_width=4, stem="3x3", first_ratio=2,
                     shortcut_kernel=3, dropout=0.2, min_size=3,
                     params=115_088_984, source="timm legacy_senet154"),
}


def se_block(x, *, name, reduction=REDUCTION):
    """The SE block of Fig. 3 on a residual branch: `{name}_se_...`, C/r hidden channels.

    timm rounds C/r to a multiple of 8; every width here (256 to 2048 over 16) already is one.
    """
    return squeeze_excite(x, max(1, x.shape[-1] // reduction), name=f"{name}_se")


def deep_stem(x, *, epsilon):
    """SENet-154's stem: three 3x3 convolutions (64 stride 2, 64, 128), then a 3x3/2 max pool.

    The pool has no padding but rounds its output size up (Caffe's and timm's ceil_mode), which
    is a valid pool after one zero row and column at the bottom and right: the ReLU before it
    makes every value >= 0, so a zero never wins over a real pixel.
    """
    x = conv3x3_bn(x, 64, strides=2, name="conv1_1", epsilon=epsilon)
    x = conv_bn(x, 64, 3, name="conv1_2", epsilon=epsilon)
    x = conv_bn(x, 128, 3, name="conv1_3", epsilon=epsilon)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)), name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def senet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name=None,
          reduction=REDUCTION):
    """SE-ResNet, SE-ResNeXt or SENet-154 `arch` (a key of ARCHITECTURES) as a Keras model.

    Paper: Hu, Shen and Sun, "Squeeze-and-Excitation Networks", 2018. The blocks are cnnkit.models.resnet's `bottleneck` with `se_block` on the
    residual branch. se_resnet50 and se_resnext50_32x4d follow timm's ResNet with SE attention:
    the stride sits on the 3x3 ("ResNet v1.5"; the paper's released Caffe SE-ResNets stride the
    first 1x1, for the same parameters). senet154 follows timm's legacy_senet154, a port of the
    authors' Caffe model. Simplified: no convolution before a BatchNorm has a bias.

    reduction: the SE ratio r (16 in the paper, whose ablation tries 2 to 32); each SE block
    keeps C // r channels, so a smaller r gives the gate more capacity and more parameters.
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    _check_reduction(reduction)
    attention = functools.partial(se_block, reduction=int(reduction))
    inputs, x = model_inputs(input_tensor, args.input_shape)
    if spec["stem"] == "3x3":
        x = deep_stem(x, epsilon=BN_EPSILON)
    else:
        x = stem(x, preact=False, epsilon=BN_EPSILON)
    groups, first_ratio = spec["groups"], spec.get("first_ratio", 1)
    for stage, (depth, planes) in enumerate(zip(spec["depths"], WIDTHS), start=2):
        width = planes * spec["base_width"] // 64 * groups  # torchvision's and timm's rule
        # Only a strided projection gets SENet-154's 3x3; conv2_x's widening stays 1x1.
        kernel = spec.get("shortcut_kernel", 1) if stage > 2 else 1
        x = resnet_stage(x, bottleneck, depth, strides=1 if stage == 2 else 2,
                         first=dict(shortcut_kernel=kernel), name=f"conv{stage}", width=width,
                         filters=EXPANSION * planes, groups=groups, stride_on_3x3=True,
                         first_width=width // first_ratio, attention=attention,
                         epsilon=BN_EPSILON)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=spec.get("dropout", 0.0))
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def _check_reduction(reduction):
    smallest = EXPANSION * WIDTHS[0]  # the narrowest SE block, conv2_x's 256 channels
    if (isinstance(reduction, bool) or not isinstance(reduction, numbers.Integral)
            or not 1 <= reduction <= smallest):
        raise ValueError(
            f"reduction is the SE ratio r, a whole number from 1 to {smallest} (each SE block "
            f"keeps C // r of its C channels; the paper uses {REDUCTION}); got {reduction!r}.")


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES; the taps are ResNet's."""
    spec = ARCHITECTURES[arch]
    return dict(family="senet", paper="Squeeze-and-Excitation Networks", year=2018,
                input_shape=(224, 224, 3), min_size=spec.get("min_size", 1),
                params=spec["params"], taps=stage_taps(spec["depths"]))


se_resnet50 = register("se_resnet50", senet, "se_resnet50", **_info("se_resnet50"))
se_resnext50_32x4d = register("se_resnext50_32x4d", senet, "se_resnext50_32x4d",
                              **_info("se_resnext50_32x4d"))
senet154 = register("senet154", senet, "senet154", **_info("senet154"))
