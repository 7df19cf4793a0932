"""ThunderNet: SNet backbones and the blocks of a two-stage detector light enough for a phone.

Qin, Li, Zhang, Bao, Yu, Peng and Sun, "ThunderNet: Towards Real-time Generic Object Detection
on Mobile Devices" (ICCV 2019), Table 1. SNet is ShuffleNetV2 with every 3x3 depthwise
convolution made 5x5 (a larger receptive field, which detection needs, for little extra cost)
and channels moved: SNet146 and SNet535 drop Conv5 and widen the early stages (localization
needs low-level features); SNet49 keeps Conv5 but compressed to 512 channels. The paper
pretrains them as these ImageNet classifiers. Counts are trainable parameters, 1000 classes.

| layer  | output  | unit, repeat   | SNet49  | SNet146   | SNet535   |
|--------|---------|----------------|---------|-----------|-----------|
| conv1  | 112x112 | 3x3/2          | 24      | 24        | 48        |
| pool1  | 56x56   | 3x3 max/2      |         |           |           |
| stage2 | 28x28   | /2 x 1, /1 x 3 | 60      | 132       | 248       |
| stage3 | 14x14   | /2 x 1, /1 x 7 | 120     | 264       | 496       |
| stage4 | 7x7     | /2 x 1, /1 x 3 | 240     | 528       | 992       |
| conv5  | 7x7     | 1x1            | 512     |           |           |
|        | 1x1     | global average pool, 1000-way fully connected, softmax |
| MFLOPs | 224x224 | (paper)        | 49      | 146       | 535       |
| MMACs  | 224x224 | model_macs     | 51.2    | 161.1     | 535.4     |
| MMACs  | 320x320 | model_macs     | 104.0   | 328.3     | 1,091.5   |
| params |         | (derived)      | 875,548 | 1,572,748 | 4,535,144 |

The paper's FLOPs are multiply-adds at 224x224, the size Table 1's outputs are given for, not
at the detector's 320x320 (about twice as much). The same count gives ShuffleNetV2's 41, 146,
299 as 40.5, 144.9, 295.8 and SNet535's 535 exactly, but SNet146's named 146 as 161.1 (49 as
51.2), also with the authors' released SNet146 (162.5): the names look like targets. Layer names are shufflenet_v2's: unit u of stage s is `stage{s}_unit{u}`. A detector
taps C4 = `stage3_unit8_out` (stride 16) and C5 = `stage4_unit4_out` (stride 32), or
`conv5_relu` in SNet49, whose Conv5 is there for the detector.

The detection part (Sec. 3.3, 3.4) works at stride 16 on thin maps: `context_enhancement` (CEM)
sums 1x1 projections of C4, of C5 upsampled, and of C5's global average to 245 = 5 x 7 x 7
channels; `rpn_features` is the RPN's 5x5 depthwise + 1x1 of 256; `spatial_attention` (SAM)
reweights CEM's map by a sigmoid of the RPN features. `large_separable_conv` is Light-Head
R-CNN's k x 1 / 1 x k pair of branches, the head ThunderNet makes thin. `thundernet_features`
is SNet146 + CEM + RPN + SAM at 320x320: the map the detector's PSRoI align reads; its taps are
SNet's conv1, stage2, stage3 (C4), then `cem_out`, `rpn_pw_relu` and `sam_out` (stride 16).
"""

import numbers

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn, depthwise_conv_bn
from cnnkit.models.shufflenet import UNITS, shufflenet_v2_unit, stage_taps, stem
from cnnkit.registry import Tap, build, model_info, register, tap_layers
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["SNET_ARCHITECTURES", "snet", "thundernet_features", "context_enhancement",
           "rpn_features", "spatial_attention", "large_separable_conv", "C4_LAYER", "C5_LAYER"]

PAPER = "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices"
KERNEL_SIZE = 5  # every depthwise convolution of SNet, and the RPN's
SNET_ARCHITECTURES = {  # Table 1: conv1's filters, stage2..stage4's channels, conv5's (or None)
    "snet49": dict(stem=24, channels=(60, 120, 240), last=512, params=875_548),
    "snet146": dict(stem=24, channels=(132, 264, 528), last=None, params=1_572_748),
    "snet535": dict(stem=48, channels=(248, 496, 992), last=None, params=4_535_144),
}
CEM_CHANNELS = 245  # alpha x p x p = 5 x 7 x 7: 5 channels per cell of a 7x7 PSRoI grid


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{what} must be a whole number >= 1; got {value!r}.")
    return int(value)


def context_enhancement(c4, c5, *, channels=CEM_CHANNELS, name):
    """CEM (Sec. 3.3, Fig. 3): local and global context merged at C4's stride 16.

    `{name}_c4_conv` (1x1 of C4), `{name}_c5_conv` (1x1 of C5, then `{name}_c5_upsample`, 2x
    nearest), `{name}_glb_pool` + `{name}_glb_conv` (C5's global average through a 1x1, which is
    the paper's fc layer, broadcast over the map) are summed in `{name}_out`. The convolutions
    have a bias and no BatchNorm, as in the authors' code. C4 must be exactly twice C5's size.
    """
    channels = _positive_int(channels, "channels")
    for axis in (1, 2):
        h4, h5 = c4.shape[axis], c5.shape[axis]
        if h4 is not None and h5 is not None and h4 != 2 * h5:
            raise ValueError(f"context_enhancement needs C4 twice the size of C5; got "
                             f"{tuple(c4.shape[1:3])} and {tuple(c5.shape[1:3])}. Use an input "
                             "whose height and width are multiples of 32.")
    local = layers.Conv2D(channels, 1, name=f"{name}_c4_conv")(c4)
    up = layers.Conv2D(channels, 1, name=f"{name}_c5_conv")(c5)
    up = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_c5_upsample")(up)
    glb = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_glb_pool")(c5)
    glb = layers.Conv2D(channels, 1, name=f"{name}_glb_conv")(glb)
    return layers.Add(name=f"{name}_out")([local, up, glb])


def rpn_features(x, *, filters=256, kernel_size=KERNEL_SIZE, name):
    """The RPN's shared layer (Sec. 3.4): a 5x5 depthwise and a 1x1 conv of 256 replace
    Faster R-CNN's 3x3 conv of 256; both with BatchNorm and ReLU, as in the authors' code.
    The anchors' objectness and box 1x1 convolutions would read `{name}_pw_relu`."""
    x = depthwise_conv_bn(x, kernel_size, name=f"{name}_dw")
    return conv_bn(x, _positive_int(filters, "filters"), 1, name=f"{name}_pw")


def spatial_attention(rpn, cem, *, name):
    """SAM (Sec. 3.4, Fig. 4): F_SAM = F_CEM * sigmoid(BN(1x1 conv(F_RPN))).

    The RPN learns where objects are, so its features reweight CEM's map pixel by pixel before
    RoI warping: `{name}_conv` (to CEM's channels), `{name}_bn`, `{name}_sigmoid`, `{name}_out`.
    """
    if tuple(rpn.shape[1:3]) != tuple(cem.shape[1:3]):
        raise ValueError(f"spatial_attention needs the RPN and CEM maps at the same size; got "
                         f"{tuple(rpn.shape[1:3])} and {tuple(cem.shape[1:3])}. Compute the RPN "
                         "features from the CEM output.")
    gate = conv_bn(rpn, cem.shape[-1], 1, activation="sigmoid", name=name)
    return layers.Multiply(name=f"{name}_out")([cem, gate])


def large_separable_conv(x, *, kernel_size=15, mid_channels=64, out_channels=490, name):
    """Light-Head R-CNN's large separable convolution (Li et al., 2017, Fig. 3).

    Paper: "Light-Head R-CNN: In Defense of Two-Stage Object Detector", Li, Peng, Yu, Zhang,
    Deng and Sun, 2017. Two branches, k x 1 then 1 x k (`{name}_col_pre`, `{name}_col`) and
    1 x k then k x 1 (`{name}_row_pre`, `{name}_row`), summed in `{name}_out`: a k x k receptive
    field for 2 k (C_in + C_out) C_mid weights instead of k^2 C_in C_out. mid_channels 64 (the
    light head) or 256 (the heavy one); out_channels 10 x 7 x 7 = 490, the thin map for PSRoI
    pooling. Convolutions with bias and no activation, as the authors' code (which applies a
    ReLU to the sum).
    """
    if isinstance(kernel_size, bool) or not isinstance(kernel_size, numbers.Integral) or (
            kernel_size < 1 or kernel_size % 2 == 0):
        raise ValueError(f"kernel_size must be an odd whole number >= 1 (the paper's is 15), so "
                         f"that the k x k field is centred; got {kernel_size!r}.")
    k = int(kernel_size)
    mid = _positive_int(mid_channels, "mid_channels")
    out = _positive_int(out_channels, "out_channels")
    col = layers.Conv2D(mid, (k, 1), padding="same", name=f"{name}_col_pre")(x)
    col = layers.Conv2D(out, (1, k), padding="same", name=f"{name}_col")(col)
    row = layers.Conv2D(mid, (1, k), padding="same", name=f"{name}_row_pre")(x)
    row = layers.Conv2D(out, (k, 1), padding="same", name=f"{name}_row")(row)
    return layers.Add(name=f"{name}_out")([col, row])


def snet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
         pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """SNet `arch` (a key of SNET_ARCHITECTURES), ThunderNet's backbone, as an ImageNet classifier.

    Paper: "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices", Qin et
    al., 2019, Table 1. Built from cnnkit's ShuffleNetV2 stem and units (torchvision's layout:
    both branches of a stride-2 unit end with half the channels) with 5x5 depthwise kernels.
    The authors' released code follows Megvii's layout instead, whose first Stage2 unit keeps
    the stem's 24 (48) channels in its left branch: 36, 1,764, 5,776 more parameters. Not
    simplified otherwise.
    """
    spec = SNET_ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, spec["stem"])
    for stage, (units, filters) in enumerate(zip(UNITS, spec["channels"]), start=2):
        for u in range(units):
            x = shufflenet_v2_unit(x, filters, strides=2 if u == 0 else 1,
                                   kernel_size=KERNEL_SIZE, name=f"stage{stage}_unit{u + 1}")
    if spec["last"]:
        x = conv_bn(x, spec["last"], 1, name="conv5")
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def thundernet_features(weights=None, input_tensor=None, input_shape=None, name=None,
                        backbone="snet146"):
    """ThunderNet's feature extractor: SNet, CEM, the RPN's shared layer and SAM.

    Paper: "ThunderNet: Towards Real-time Generic Object Detection on Mobile Devices", Qin et
    al., 2019, Fig. 2 (the paper's ThunderNet with SNet146 at 320x320 by default). Output: the
    attention-weighted map `sam_out`, 245 channels at stride 16 (20x20 at 320x320), which the
    R-CNN subnet reads with PSRoI align. Height and width must be multiples of 32, so that C4
    is twice C5. Simplified: the RPN's anchor heads, the proposals, PSRoI align and the R-CNN
    subnet are not built (the RPN features are `rpn_pw_relu`).

    backbone: "snet49", "snet146" or "snet535", built headless and tapped at C4 and C5.
    """
    if backbone not in SNET_ARCHITECTURES:
        raise ValueError(f"backbone must be one of {', '.join(map(repr, SNET_ARCHITECTURES))} "
                         f"(Table 1's SNets); got {backbone!r}.")
    # No classifier: `classes` is not an argument, so check_args sees a dummy 1.
    args = check_args("thundernet_features", weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=1)
    check_multiple("thundernet_features", args.input_shape, 32,
                   "C5 upsampled 2x must match C4; the paper uses 320x320")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    net = build(backbone, include_top=False, input_tensor=x)
    c4, c5 = (layer.output for layer in tap_layers(net, backbone, ("stage3", _c5(backbone)))
              .values())
    cem = context_enhancement(c4, c5, name="cem")
    rpn = rpn_features(cem, name="rpn")
    x = spatial_attention(rpn, cem, name="sam")
    return load_weights(keras.Model(inputs, x, name=name or "thundernet_features"), weights)


def _info(arch):
    """What the registry reads from `arch`'s row of SNET_ARCHITECTURES; the taps are Table 1's
    (ShuffleNetV2's), with Conv5 where the SNet has one."""
    spec = SNET_ARCHITECTURES[arch]
    return dict(family="thundernet", paper=PAPER, year=2019, input_shape=(224, 224, 3),
                min_size=1, params=spec["params"], taps=stage_taps(conv5=spec["last"] is not None))


def _c5(arch):
    """The stage a detector reads as C5: the deepest, at stride 32 (Conv5 in SNet49, which keeps
    it for the detector; Stage4 in the others)."""
    return model_info(arch).taps[-1].stage


snet49 = register("snet49", snet, "snet49", **_info("snet49"))
snet146 = register("snet146", snet, "snet146", **_info("snet146"))
snet535 = register("snet535", snet, "snet535", **_info("snet535"))
# Taps: SNet's up to Stage3 (C4, stride 16; the same layers in every SNet), then CEM, the RPN's
# shared layer and SAM (Fig. 2), all at stride 16; the output is SAM's. Stage4 (C5, stride 32)
# is not tapped, as CEM's 16 after it would make the strides fall: only CEM reads C5, so its
# units end in the `cem` stage.
thundernet_features = register("thundernet_features", thundernet_features, family="thundernet",
                               paper=PAPER, year=2019, input_shape=(320, 320, 3), min_size=32,
                               params=1_500_940, task="features",
                               taps=(*model_info("snet146").taps[:3], Tap("cem", "cem_out", 16),
                                     Tap("rpn", "rpn_pw_relu", 16), Tap("sam", "sam_out", 16)))

# The layers ThunderNet reads as C4 (stride 16) and C5 (stride 32), from the taps.
C4_LAYER = model_info("snet146").tap("stage3").layer
C5_LAYER = {arch: model_info(arch).tap(_c5(arch)).layer for arch in SNET_ARCHITECTURES}
