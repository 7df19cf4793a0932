"""VoVNet: one-shot aggregation (OSA), a dense block that concatenates only once, at its end.

Lee, Hwang, Lee, Bae and Park, "An Energy and GPU-Computation Efficient Backbone Network for
Real-Time Object Detection" (2019), Table 2. Every conv is Conv-BN-ReLU. An OSA module chains
five 3x3 convolutions, concatenates the module's input with all five outputs, and aggregates
them with one 1x1 convolution. The counts are trainable parameters with 1000 classes.

| stage   | output  | VoVNet-39                          | VoVNet-57                          |
|---------|---------|------------------------------------|------------------------------------|
| stage1  | 112x112 | 3x3 conv, 64, stride 2; 3x3 conv, 64                                    |
| (stem)  | 56x56   | 3x3 conv, 128, stride 2                                                 |
| stage2  | 56x56   | [3x3 conv, 128 x 5; concat and 1x1 conv, 256] x 1                       |
| stage3  | 28x28   | 3x3 max pool, stride 2; [3x3 conv, 160 x 5; concat and 1x1 conv, 512] x 1 |
| stage4  | 14x14   | 3x3 max pool, stride 2; [3x3, 192 x 5; 1x1, 768] x 2 | x 4             |
| stage5  | 7x7     | 3x3 max pool, stride 2; [3x3, 224 x 5; 1x1, 1024] x 2 | x 3            |
|         | 1x1     | global average pool, 1000-way fully connected, softmax                  |
| params  |         | 22,600,296                         | 36,640,296                         |

Why not DenseNet's dense block: there every layer re-reads all earlier maps, so the input
channels (and the memory traffic) grow with depth, and the many narrow layers use a GPU poorly.
An OSA module reads each map once, in the final concatenation, with constant-width layers.

VoVNetV2 (Lee and Park, "CenterMask: Real-Time Anchor-Free Instance Segmentation", 2020) adds
to each module an identity shortcut (except to the first of a stage, which changes channels)
and an effective squeeze-excitation (eSE) gate on the last module of each stage:
vovnet39_v2 has 24,568,936 parameters.

Layer names: module m of stage s is `stage{s}_osa{m}`, with `_conv1`..`_conv5`, `_concat`,
the 1x1 `_agg` (aggregation), `_ese_squeeze`/`_ese_fc`/`_ese_excite` and `_add`. A detector
taps `stage2_out` (stride 4, 256 channels), `stage3_out` (8, 512), `stage4_out` (16, 768) and
`stage5_out` (32, 1024).
"""

import keras
from keras import layers

from cnnkit.blocks import classifier, conv3x3_bn, conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "vovnet", "osa_module", "effective_squeeze_excite", "vovnet39",
           "vovnet57", "vovnet39_v2"]

V1 = dict(family="vovnet", paper="An Energy and GPU-Computation Efficient Backbone Network "
                                 "for Real-Time Object Detection", year=2019)
V2 = dict(family="vovnet", paper="CenterMask: Real-Time Anchor-Free Instance Segmentation",
          year=2020)
STEM = (64, 64, 128)
WIDTHS = (128, 160, 192, 224)  # the 3x3 convolutions of stage2..stage5
OUTPUTS = (256, 512, 768, 1024)  # the aggregating 1x1 convolution of stage2..stage5
LAYERS_PER_MODULE = 5

ARCHITECTURES = {  # OSA modules per stage, as timm's vovnet39a, vovnet57a, ese_vovnet39b
    "vovnet39": dict(V1, depths=(1, 1, 2, 2), v2=False, params=22_600_296,
                     source="timm vovnet39a"),
    "vovnet57": dict(V1, depths=(1, 1, 4, 3), v2=False, params=36_640_296,
                     source="timm vovnet57a"),
    "vovnet39_v2": dict(V2, depths=(1, 1, 2, 2), v2=True, params=24_568_936,
                        source="timm ese_vovnet39b"),
}


def effective_squeeze_excite(x, *, name):
    """eSE (CenterMask, Sec. 3.2): SE with a single C -> C fully connected layer, no reduction.

    Squeeze to the global average (`{name}_squeeze`), one 1x1 convolution with bias and a
    hard-sigmoid gate (`{name}_fc`), scale the input (`{name}_excite`). SE's C -> C/r -> C
    bottleneck loses channel information; eSE keeps all C channels for C·C + C parameters.
    """
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_squeeze")(x)
    s = layers.Conv2D(x.shape[-1], 1, activation="hard_sigmoid", name=f"{name}_fc")(s)
    return layers.Multiply(name=f"{name}_excite")([x, s])


def osa_module(x, width, filters, *, name, layers_per_module=LAYERS_PER_MODULE, ese=False,
               residual=False):
    """One-shot aggregation: 3x3 convs in a chain, [input, all outputs] concatenated, 1x1 conv.

    VoVNetV2 options: `ese` gates the aggregated maps, then `residual` adds the module's input.
    """
    outputs = [x]
    y = x
    for i in range(layers_per_module):
        y = conv3x3_bn(y, width, name=f"{name}_conv{i + 1}")
        outputs.append(y)
    y = layers.Concatenate(name=f"{name}_concat")(outputs)
    y = conv_bn(y, filters, 1, name=f"{name}_agg")
    if ese:
        y = effective_squeeze_excite(y, name=f"{name}_ese")
    if residual:
        y = layers.Add(name=f"{name}_add")([y, x])
    return y


def stage(x, depth, width, filters, *, name, pool, v2):
    """A 3x3/2 max pool (except stage2), then `depth` OSA modules; ends in `{name}_out`."""
    if pool:
        # PyTorch's ceil_mode=True: a last, partial window where a row or column is left over.
        # Zero padding is enough for that, since every input here is >= 0 (after a ReLU).
        x = layers.ZeroPadding2D(((0, 1), (0, 1)), name=f"{name}_pool_pad")(x)
        x = layers.MaxPooling2D(3, strides=2, name=f"{name}_pool")(x)
    for m in range(depth):
        x = osa_module(x, width, filters, name=f"{name}_osa{m + 1}",
                       ese=v2 and m == depth - 1, residual=v2 and m > 0)
    # A fixed name for the stage's output, whatever layer ends its last module.
    return layers.Identity(name=f"{name}_out")(x)


def vovnet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
           pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """VoVNet `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Papers: Lee, Hwang, Lee, Bae and Park, "An Energy and GPU-Computation Efficient Backbone
    Network for Real-Time Object Detection", 2019 (vovnet39, vovnet57); Lee and Park,
    "CenterMask: Real-Time Anchor-Free Instance Segmentation", 2020 (vovnet39_v2, VoVNetV2-39).

    Follows timm's vovnet39a, vovnet57a and ese_vovnet39b layer for layer (its weights would port
    one to one): stem and strided convolutions padded by one pixel, max pools with ceil_mode,
    BatchNorm epsilon 1e-5, classifier without dropout. Nothing is simplified.
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = conv3x3_bn(x, STEM[0], strides=2, name="stage1_conv1")
    x = conv3x3_bn(x, STEM[1], name="stage1_conv2")
    x = conv3x3_bn(x, STEM[2], strides=2, name="stage1_conv3")
    for s, (depth, width, filters) in enumerate(zip(spec["depths"], WIDTHS, OUTPUTS)):
        x = stage(x, depth, width, filters, name=f"stage{s + 2}", pool=s > 0, v2=spec["v2"])
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES; the taps are the five stages
    of Table 1 (stage 1 the three-convolution stem)."""
    spec = ARCHITECTURES[arch]
    # min_size 29: the stem leaves ceil(29/4) = 8 pixels, which three ceil-mode pools bring to 1.
    return dict(family=spec["family"], paper=spec["paper"], year=spec["year"],
                input_shape=(224, 224, 3), min_size=29, params=spec["params"],
                taps=(Tap("stage1", "stage1_conv3_relu", 4), Tap("stage2", "stage2_out", 4),
                      Tap("stage3", "stage3_out", 8), Tap("stage4", "stage4_out", 16),
                      Tap("stage5", "stage5_out", 32)))


vovnet39 = register("vovnet39", vovnet, "vovnet39", **_info("vovnet39"))
vovnet57 = register("vovnet57", vovnet, "vovnet57", **_info("vovnet57"))
vovnet39_v2 = register("vovnet39_v2", vovnet, "vovnet39_v2", **_info("vovnet39_v2"))
