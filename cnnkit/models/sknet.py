"""SKNet: a ResNet or ResNeXt whose 3x3 convolution chooses its kernel size per channel.

Li, Wang, Hu and Yang, "Selective Kernel Networks" (2019), Table 1. SK[M, G, r] is a selective
kernel convolution with M branches (3x3 and a 3x3 dilated by 2 that sees a 5x5 field), G groups
in each branch and an attention bottleneck of d = max(C/r, L) channels, L = 32:

| stage   | output  | SKNet-50 (`sk_resnext50_32x4d`)                    |
|---------|---------|----------------------------------------------------|
| conv1   | 112x112 | 7x7, 64, stride 2                                  |
| conv2_x | 56x56   | 3x3 max pool, stride 2, then                       |
|         |         | [1x1, 128; SK[M=2, G=32, r=16], 128; 1x1, 256] x 3 |
| conv3_x | 28x28   | [1x1, 256; SK[2, 32, 16], 256; 1x1, 512] x 4       |
| conv4_x | 14x14   | [1x1, 512; SK[2, 32, 16], 512; 1x1, 1024] x 6      |
| conv5_x | 7x7     | [1x1, 1024; SK[2, 32, 16], 1024; 1x1, 2048] x 3    |
|         | 1x1     | global average pool, 1000-way fully connected      |
| params  |         | 27.5M (here 27,479,784), 4.47 GFLOPs               |

One SK convolution (Fig. 1), the block `selective_kernel`:
- Split: each branch convolves the input (`{name}_sk_3x3`, `{name}_sk_5x5`: conv, BN, ReLU).
- Fuse: add the branches (`_sk_fuse`), average each channel (`_sk_squeeze`), compress to d
  channels (`_sk_reduce`: 1x1 conv, BN, ReLU).
- Select: a 1x1 conv gives M logits per channel (`_sk_select_conv`), a softmax across the
  branches (`_sk_select_softmax`) turns them into weights that sum to 1, and the output
  (`_sk_select`) is the weighted sum of the branches.

sk_resnet18 and sk_resnet34 follow timm's skresnet18/34: the ResNet-18/34 basic block whose first
3x3 becomes SK[2, 1, 8] (d rounded to a multiple of 16), each branch seeing half of the input
channels to keep the parameter count near ResNet's (11.96M and 22.28M against 11.69M, 21.80M).

Layer names follow cnnkit's ResNet: block b of stage s is `conv{s}_block{b}`, its output
`_out`; a detector taps `conv2_block{n}_out`..`conv5_block{n}_out` (strides 4, 8, 16, 32).
"""

import keras
from keras import layers

from cnnkit.blocks import BN_EPSILON, bn_act, classifier, conv_bn, make_divisible, resnet_stage
from cnnkit.layers import ChannelSplit, GroupConv2D
from cnnkit.models.resnet import EXPANSION, WIDTHS, shortcut_path, stage_taps, stem
from cnnkit.registry import register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "sknet", "selective_kernel", "radix_softmax", "weighted_sum",
           "sk_resnet18", "sk_resnet34", "sk_resnext50_32x4d"]

PAPER = dict(family="sknet", paper="Selective Kernel Networks", year=2019)

# block "basic" puts SK on the first 3x3, "bottleneck" on the middle one. rd_ratio, rd_divisor:
# the attention width d = make_divisible(C * rd_ratio, rd_divisor), at least rd_divisor.
ARCHITECTURES = {
    "sk_resnet18": dict(block="basic", depths=(2, 2, 2, 2), rd_ratio=1 / 8, rd_divisor=16,
                        split_input=True, params=11_958_056, source="timm skresnet18"),
    "sk_resnet34": dict(block="basic", depths=(3, 4, 6, 3), rd_ratio=1 / 8, rd_divisor=16,
                        split_input=True, params=22_282_376, source="timm skresnet34"),
    "sk_resnext50_32x4d": dict(block="bottleneck", depths=(3, 4, 6, 3), cardinality=32,
                               base_width=4, rd_ratio=1 / 16, rd_divisor=32, split_input=False,
                               params=27_479_784, source="timm skresnext50_32x4d"),
}


# --- Attention over branches (shared with ResNeSt's split attention) --------------------------

def radix_softmax(logits, radix, *, name, groups=1):
    """Softmax over `radix` branches for every channel: (…, radix*C) logits -> weights.

    The weights come out branch-major (branch 0's C channels, then branch 1's ...), so for every
    channel the `radix` weights sum to 1. With `groups`, the logits come from a grouped 1x1
    convolution and are ordered (group, branch, channel) first. radix=1 is a sigmoid gate.
    """
    if radix == 1:
        return layers.Activation("sigmoid", name=f"{name}_sigmoid")(logits)
    channels = logits.shape[-1]
    if groups == 1:
        x = layers.Reshape((radix, channels // radix), name=f"{name}_logits")(logits)
    else:
        x = layers.Reshape((groups, radix, channels // (groups * radix)),
                           name=f"{name}_logits")(logits)
        x = layers.Permute((2, 1, 3), name=f"{name}_permute")(x)  # branches before groups
    x = layers.Softmax(axis=1, name=f"{name}_softmax")(x)  # axis 1 = branches (0 is the batch)
    return layers.Reshape((1, 1, channels), name=f"{name}_weights")(x)


def weighted_sum(stacked, weights, radix, *, name):
    """Sum of `radix` branches stacked branch-major in `stacked`, each scaled by its weights."""
    x = layers.Multiply(name=f"{name}_scale")([stacked, weights])
    if radix == 1:
        return x
    return layers.Add(name=name)(ChannelSplit(radix, name=f"{name}_split")(x))


# --- Blocks -----------------------------------------------------------------------------------

def dilated_conv3x3_bn(x, filters, *, name, strides=1, dilation=1, groups=1):
    """3x3 conv dilated by d (a (2d+1)x(2d+1) field), BN, ReLU, padded by d on all sides (timm).

    Keras refuses a strided dilated convolution, so a stride-s one is rebuilt exactly: with
    d a multiple of s it reads only every s-th padded pixel, so keep those (`{name}_subsample`)
    and dilate by d/s; otherwise convolve every pixel and keep every s-th output before BN.
    """
    if strides == 1:
        return conv_bn(x, filters, 3, dilation_rate=dilation, groups=groups, name=name)
    x = layers.ZeroPadding2D(dilation, name=f"{name}_pad")(x)
    if dilation == 1:
        return conv_bn(x, filters, 3, strides=strides, padding="valid", groups=groups, name=name)
    if dilation % strides == 0:
        x = layers.MaxPooling2D(1, strides=strides, name=f"{name}_subsample")(x)
        return conv_bn(x, filters, 3, padding="valid", dilation_rate=dilation // strides,
                       groups=groups, name=name)
    conv = GroupConv2D if groups > 1 else layers.Conv2D
    x = conv(filters, 3, dilation_rate=dilation, groups=groups, use_bias=False,
             name=f"{name}_conv")(x)
    x = layers.MaxPooling2D(1, strides=strides, name=f"{name}_subsample")(x)
    return bn_act(x, name=name)


def selective_kernel(x, filters, *, name, kernel_sizes=(3, 5), strides=1, groups=1,
                     attn_channels=32, split_input=False):
    """SK convolution (Fig. 1): branches of several kernel sizes, mixed by a per-channel softmax.

    Every kernel size k is a 3x3 dilated by (k-1)/2, as the paper does for its 5x5 branch. With
    split_input each branch convolves its own share of the input channels (timm's skresnet18/34).
    """
    name = f"{name}_sk"
    inputs = (ChannelSplit(len(kernel_sizes), name=f"{name}_split")(x) if split_input
              else [x] * len(kernel_sizes))
    branches = [dilated_conv3x3_bn(branch_in, filters, strides=strides, dilation=(k - 1) // 2,
                                   groups=groups, name=f"{name}_{k}x{k}")
                for branch_in, k in zip(inputs, kernel_sizes)]
    u = layers.Add(name=f"{name}_fuse")(branches)
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(u)
    z = conv_bn(s, attn_channels, 1, name=f"{name}_reduce")
    logits = layers.Conv2D(len(kernel_sizes) * filters, 1, use_bias=False,
                           name=f"{name}_select_conv")(z)
    weights = radix_softmax(logits, len(kernel_sizes), name=f"{name}_select")
    stacked = layers.Concatenate(name=f"{name}_stack")(branches)
    return weighted_sum(stacked, weights, len(kernel_sizes), name=f"{name}_select")


def sk_basic_block(x, filters, *, strides, name, sk):
    """ResNet's basic block with its first 3x3 made selective (timm's SelectiveKernelBasic)."""
    y = selective_kernel(x, filters, strides=strides, name=name, **sk)
    y = conv_bn(y, filters, 3, activation=None, name=f"{name}_2")
    s = shortcut_path(x, filters, strides=strides, kind=True, name=name, epsilon=BN_EPSILON)
    y = layers.Add(name=f"{name}_add")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def sk_bottleneck(x, width, filters, *, strides, name, sk):
    """1x1 reduce, SK convolution (strided, grouped), 1x1 expand: Table 1's SKNet-50 block."""
    y = conv_bn(x, width, 1, name=f"{name}_1")
    y = selective_kernel(y, width, strides=strides, name=name, **sk)
    y = conv_bn(y, filters, 1, activation=None, name=f"{name}_3")
    s = shortcut_path(x, filters, strides=strides, kind=True, name=name, epsilon=BN_EPSILON)
    y = layers.Add(name=f"{name}_add")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def sknet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
          pooling=None, classes=1000, classifier_activation="softmax", name=None,
          kernel_sizes=(3, 5)):
    """SKNet `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Paper: Li, Wang, Hu and Yang, "Selective Kernel Networks", CVPR 2019. Computes what timm's
    skresnet18, skresnet34 and skresnext50_32x4d compute (sk_resnext50_32x4d is the paper's
    SKNet-50); the stem, shortcuts and strides are torchvision's ResNet's.

    kernel_sizes: the branches' receptive fields, each an odd k >= 3 built as a 3x3 dilated by
    (k-1)/2. The paper's default is (3, 5); its ablation also combines 3, 5 and 7.
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    kernel_sizes = _check_kernel_sizes(arch, spec, kernel_sizes)
    groups, base_width = spec.get("cardinality", 1), spec.get("base_width", 64)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, preact=False, epsilon=BN_EPSILON)
    for stage, (depth, planes) in enumerate(zip(spec["depths"], WIDTHS), start=2):
        strides = 1 if stage == 2 else 2
        width = planes if spec["block"] == "basic" else planes * base_width // 64 * groups
        sk = dict(kernel_sizes=kernel_sizes, groups=groups, split_input=spec["split_input"],
                  attn_channels=make_divisible(width * spec["rd_ratio"], spec["rd_divisor"]))
        if spec["block"] == "basic":
            x = resnet_stage(x, sk_basic_block, depth, strides=strides, name=f"conv{stage}",
                             filters=planes, sk=sk)
        else:
            x = resnet_stage(x, sk_bottleneck, depth, strides=strides, name=f"conv{stage}",
                             width=width, filters=EXPANSION * planes, sk=sk)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def _check_kernel_sizes(arch, spec, kernel_sizes):
    if (not isinstance(kernel_sizes, (tuple, list)) or len(kernel_sizes) < 2
            or any(isinstance(k, bool) or not isinstance(k, int) or k < 3 or k % 2 == 0
                   for k in kernel_sizes)
            or len(set(kernel_sizes)) != len(kernel_sizes)):
        raise ValueError(f"kernel_sizes must list two or more different odd sizes >= 3, one per "
                         f"branch, such as (3, 5) or (3, 5, 7); got {kernel_sizes!r}.")
    if spec["split_input"] and WIDTHS[0] % len(kernel_sizes):
        raise ValueError(
            f"{arch} splits each block's input channels equally among its branches, and "
            f"{len(kernel_sizes)} branches do not divide {WIDTHS[0]} channels; use 2 or 4 "
            f"kernel sizes, or sk_resnext50_32x4d, whose branches all see every channel.")
    return tuple(kernel_sizes)


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES; the taps are ResNet's."""
    spec = ARCHITECTURES[arch]
    return dict(PAPER, input_shape=(224, 224, 3), min_size=1, params=spec["params"],
                taps=stage_taps(spec["depths"]))


sk_resnet18 = register("sk_resnet18", sknet, "sk_resnet18", **_info("sk_resnet18"))
sk_resnet34 = register("sk_resnet34", sknet, "sk_resnet34", **_info("sk_resnet34"))
sk_resnext50_32x4d = register("sk_resnext50_32x4d", sknet, "sk_resnext50_32x4d",
                              **_info("sk_resnext50_32x4d"))
