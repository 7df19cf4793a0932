"""ResNet, its pre-activation v2 and ResNeXt: stacks of blocks that learn a residual F(x) + x.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (2015), Table 1. A block
is a bracket: basic [3x3, w; 3x3, w] or bottleneck [1x1, w; 3x3, w; 1x1, 4w]; every convolution
is followed by BatchNorm and ReLU. The counts are trainable parameters with 1000 classes.

| stage   | output  | w   | 18-layer   | 34-layer   | 50-layer   | 101-layer  | 152-layer  |
|---------|---------|-----|------------|------------|------------|------------|------------|
| conv1   | 112x112 |     | 7x7, 64, stride 2                                            |
| conv2_x | 56x56   | 64  | 3x3 max pool, stride 2, then                                 |
|         |         |     | basic x 2  | basic x 3  | bottl. x 3 | bottl. x 3 | bottl. x 3 |
| conv3_x | 28x28   | 128 | basic x 2  | basic x 4  | bottl. x 4 | bottl. x 4 | bottl. x 8 |
| conv4_x | 14x14   | 256 | basic x 2  | basic x 6  | bottl. x 6 | bottl. x 23| bottl. x 36|
| conv5_x | 7x7     | 512 | basic x 2  | basic x 3  | bottl. x 3 | bottl. x 3 | bottl. x 3 |
|         | 1x1     |     | global average pool, 1000-way fully connected, softmax       |
| params  |         |     | 11,689,512 | 21,797,672 | 25,557,032 | 44,549,160 | 60,192,808 |

The first block of conv3_x..conv5_x halves the size with stride 2 and projects its shortcut
with a 1x1 convolution (option B); the other shortcuts are identities.

v2 ("Identity Mappings in Deep Residual Networks", 2016) moves BN-ReLU in front of each
convolution (full pre-activation, its Fig. 4e): 25,549,416 / 44,541,544 / 60,185,192 parameters.
ResNeXt ("Aggregated Residual Transformations for Deep Neural Networks", 2017) splits the
bottleneck's 3x3 into 32 groups and widens it: ResNeXt-50 32x4d is [1x1, 128; 3x3, 128, C=32;
1x1, 256] in conv2_x, 25,028,904 parameters; 101 32x8d has 88,791,336. Following torchvision
and the ResNeXt code, its stride sits on the grouped 3x3, not on the first 1x1.

Layer names follow keras.applications: block b of stage s is `conv{s}_block{b}`, its layers
`_1_conv`, `_1_bn`, `_1_relu`, `_2_...`, `_3_...`, the projection `_0_conv`/`_0_bn`, the sum
`_add` and the output `_out`. A detector taps the last `_out` of each stage (resnet50:
`conv2_block3_out`..`conv5_block3_out`, strides 4, 8, 16, 32): the registry's taps
(`cnnkit.model_info("resnet50").taps`, with conv1 ending after `pool1`), which FPN and BiSeNet read.
"""

import keras
from keras import layers

from cnnkit.blocks import BN_EPSILON, bn_act, classifier, conv3x3_bn, conv_bn, resnet_stage
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "resnet", "basic_block", "bottleneck", "preact_bottleneck",
           "stage_taps", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
           "resnet50_v2", "resnet101_v2", "resnet152_v2", "resnext50_32x4d", "resnext101_32x8d"]

WIDTHS = (64, 128, 256, 512)  # Table 1: filters of the 3x3 convolutions in conv2_x..conv5_x
EXPANSION = 4  # a bottleneck's last 1x1 widens back to 4 x width
# keras.applications' BatchNorm epsilon, kept where it has a twin so that its weights port exactly.
KERAS_EPSILON = 1.001e-5

V1 = dict(family="resnet", paper="Deep Residual Learning for Image Recognition", year=2015)
V2 = dict(family="resnet", paper="Identity Mappings in Deep Residual Networks", year=2016)
NEXT = dict(family="resnext", paper="Aggregated Residual Transformations for Deep Neural "
                                    "Networks", year=2017)

# block: "basic" (two 3x3), "bottleneck" (1x1-3x3-1x1) or "preact" (v2's BN-ReLU-conv order);
# stride_on_3x3: where a stage's first block halves the size (v1 and Keras: the first 1x1).
ARCHITECTURES = {
    "resnet18": dict(V1, block="basic", depths=(2, 2, 2, 2), epsilon=BN_EPSILON,
                     params=11_689_512, source="torchvision"),
    "resnet34": dict(V1, block="basic", depths=(3, 4, 6, 3), epsilon=BN_EPSILON,
                     params=21_797_672, source="torchvision"),
    "resnet50": dict(V1, block="bottleneck", depths=(3, 4, 6, 3), params=25_557_032,
                     source="torchvision"),
    "resnet101": dict(V1, block="bottleneck", depths=(3, 4, 23, 3), params=44_549_160,
                      source="torchvision"),
    "resnet152": dict(V1, block="bottleneck", depths=(3, 8, 36, 3), params=60_192_808,
                      source="torchvision"),
    "resnet50_v2": dict(V2, block="preact", depths=(3, 4, 6, 3), params=25_549_416,
                        source="timm resnetv2_50 + the stem's 64 biases (= keras ResNet50V2 "
                               "less the biases BatchNorm absorbs)"),
    "resnet101_v2": dict(V2, block="preact", depths=(3, 4, 23, 3), params=44_541_544,
                         source="timm resnetv2_101 + the stem's 64 biases (= keras "
                                "ResNet101V2 less the biases BatchNorm absorbs)"),
    "resnet152_v2": dict(V2, block="preact", depths=(3, 8, 36, 3), params=60_185_192,
                         source="derived from He et al. 2016 and 2015, Table 1 "
                                "(= keras ResNet152V2 less the biases BatchNorm absorbs)"),
    "resnext50_32x4d": dict(NEXT, block="bottleneck", depths=(3, 4, 6, 3), cardinality=32,
                            base_width=4, stride_on_3x3=True, epsilon=BN_EPSILON,
                            params=25_028_904, source="torchvision"),
    "resnext101_32x8d": dict(NEXT, block="bottleneck", depths=(3, 4, 23, 3), cardinality=32,
                             base_width=8, stride_on_3x3=True, epsilon=BN_EPSILON,
                             params=88_791_336, source="torchvision"),
}


def shortcut_path(x, filters, *, strides, kind, name, epsilon, kernel_size=1):
    """The identity, or, where the block changes size or channels, option B or A of Sec. 3.3.

    Option B (kind=True): a 1x1 convolution with the block's stride + BN, `{name}_0_conv`;
    SENet-154 strides a 3x3 there instead (kernel_size=3), which sees every input pixel.
    Option A (kind="zero_pad"): keep every other pixel and append zero channels; no parameters.
    """
    if strides == 1 and x.shape[-1] == filters:
        return x
    if kind == "zero_pad":
        x = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)  # subsampling
        zeros = layers.Rescaling(0.0, name=f"{name}_0_zeros")(x)  # as many zero channels
        return layers.Concatenate(name=f"{name}_0_pad")([x] + [zeros] * (
            filters // x.shape[-1] - 1))
    if kernel_size == 3:
        return conv3x3_bn(x, filters, strides=strides, activation=None, name=f"{name}_0",
                          epsilon=epsilon)
    return conv_bn(x, filters, 1, strides=strides, activation=None, name=f"{name}_0",
                   epsilon=epsilon)


def basic_block(x, filters, *, strides, shortcut, name, epsilon):
    """Two 3x3 convolutions (Fig. 2); the shortcut is added before the second ReLU.

    shortcut=False leaves the sum out: the paper's plain network (Fig. 3 middle).
    """
    y = conv3x3_bn(x, filters, strides=strides, name=f"{name}_1", epsilon=epsilon)
    y = conv3x3_bn(y, filters, activation=None, name=f"{name}_2", epsilon=epsilon)
    if shortcut is not False:
        s = shortcut_path(x, filters, strides=strides, kind=shortcut, name=name, epsilon=epsilon)
        y = layers.Add(name=f"{name}_add")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def bottleneck(x, width, filters, *, strides, name, epsilon, groups=1, stride_on_3x3=False,
               first_width=None, shortcut_kernel=1, attention=None):
    """1x1 reduce to `width`, 3x3 (in `groups` for ResNeXt), 1x1 expand to `filters` (Fig. 5).

    ResNet v1 and keras.applications stride the first 1x1; ResNeXt (and torchvision) stride
    the 3x3, which then sees every input pixel instead of every other one. For SENet
    (cnnkit.models.senet): `first_width` narrows the first 1x1 (SENet-154 halves it),
    `shortcut_kernel` is the projection's kernel, and `attention(y, name=name)` reweights the
    residual branch before the sum (the SE block).
    """
    first, middle = (1, strides) if stride_on_3x3 else (strides, 1)
    y = conv_bn(x, first_width or width, 1, strides=first, name=f"{name}_1", epsilon=epsilon)
    y = conv3x3_bn(y, width, strides=middle, groups=groups, name=f"{name}_2", epsilon=epsilon)
    y = conv_bn(y, filters, 1, activation=None, name=f"{name}_3", epsilon=epsilon)
    if attention is not None:
        y = attention(y, name=name)
    s = shortcut_path(x, filters, strides=strides, kind=True, name=name, epsilon=epsilon,
                      kernel_size=shortcut_kernel)
    y = layers.Add(name=f"{name}_add")([s, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def preact_bottleneck(x, width, *, strides, name, epsilon, project=False):
    """v2's block: BN-ReLU first, then 1x1, 3x3, 1x1, and a sum nothing follows (Fig. 4e, 2016).

    As keras.applications ResNet50V2: a stage's first block projects the pre-activated input
    (`_0_conv`) and its last block strides the 3x3, subsampling the identity with a 1x1 pool.
    """
    preact = bn_act(x, name=f"{name}_preact", epsilon=epsilon)
    filters = EXPANSION * width
    if project:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False,
                                 name=f"{name}_0_conv")(preact)
    elif strides > 1:
        shortcut = layers.MaxPooling2D(1, strides=strides, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    y = conv_bn(preact, width, 1, name=f"{name}_1", epsilon=epsilon)
    y = layers.ZeroPadding2D(1, name=f"{name}_2_pad")(y)
    y = conv_bn(y, width, 3, strides=strides, padding="valid", name=f"{name}_2",
                epsilon=epsilon)
    y = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_3_conv")(y)
    return layers.Add(name=f"{name}_out")([shortcut, y])


def stem(x, *, preact, epsilon):
    """conv1 (7x7/2, 64) and the 3x3/2 max pool, padded as keras.applications pads them."""
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    if preact:  # v2 normalises after the pool, so this bias is not cancelled: it stays
        x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    else:
        x = conv_bn(x, 64, 7, strides=2, padding="valid", name="conv1", epsilon=epsilon)
    # After v1's ReLU every value is >= 0, so padding with zeros is torchvision's -inf padding.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def resnet(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
           pooling=None, classes=1000, classifier_activation="softmax", name=None,
           shortcut=True, downsample=None):
    """ResNet v1, v2 or ResNeXt `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Papers: He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition", 2015;
    He, Zhang, Ren and Sun, "Identity Mappings in Deep Residual Networks", 2016 (`_v2`);
    Xie, Girshick, Dollar, Tu and He, "Aggregated Residual Transformations for Deep Neural
    Networks", 2017 (`resnext`). resnet50/101/152 and the v2 models compute exactly what
    keras.applications' ResNet50/101/152 and ResNet50V2/101V2/152V2 compute; resnet18/34 and
    ResNeXt follow torchvision (stride on the 3x3, padded on all sides).

    Simplified: no convolution has a bias but v2's stem. Before a BatchNorm a bias is cancelled
    by the mean. Keras's v2 also has biases on the convolutions that write the residual stream
    (`_3_conv`, `_0_conv`), which the BatchNorms reading the stream absorb (cnnkit.weights folds
    them in when it ports ImageNet weights). v2's stem keeps its bias: a zero-padded max pool
    lies between it and the first BatchNorm, and max(x + b, 0) is not max(x, 0) + b.

    shortcut (resnet18 and resnet34 only), for the paper's degradation experiment (Fig. 4):
    - True: identity shortcuts, 1x1 projections where a stage changes size (option B).
    - "zero_pad": identity shortcuts, zero channels where a stage changes size (option A, the
      ResNets of Fig. 4 and Table 2): as many parameters as the plain network.
    - False: no shortcuts, the paper's plain network ("plain-18", "plain-34").

    downsample (bottleneck models): which convolution of a stage's first block has stride 2.
    - "1x1": the first 1x1, as the paper's Caffe models and keras.applications (resnet default).
    - "3x3": the 3x3, as torchvision and timm ("ResNet v1.5", ResNeXt's default): the 3x3 sees
      every pixel rather than every other one, for about 6% more multiply-adds (resnet50: 4.09
      against 3.86 billion), the layout behind most published FLOP counts and accuracies.
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    _check_shortcut(arch, spec, shortcut)
    stride_on_3x3 = _check_downsample(arch, spec, downsample)
    if weights == "imagenet" and stride_on_3x3:
        raise ValueError(f"{arch}'s ImageNet weights were trained with downsample='1x1' "
                         "(keras.applications' layout). Build it with downsample='1x1', or "
                         "train the '3x3' layout with weights=None.")
    block, preact = spec["block"], spec["block"] == "preact"
    epsilon = spec.get("epsilon", KERAS_EPSILON)
    groups, base_width = spec.get("cardinality", 1), spec.get("base_width", 64)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = stem(x, preact=preact, epsilon=epsilon)
    for stage, (depth, planes) in enumerate(zip(spec["depths"], WIDTHS), start=2):
        if preact:  # Keras projects in a stage's first block, strides its last (conv5: none)
            x = resnet_stage(x, preact_bottleneck, depth, strides=2 if stage < 5 else 1,
                             stride_last=True, first=dict(project=True), name=f"conv{stage}",
                             width=planes, epsilon=epsilon)
        elif block == "basic":
            x = resnet_stage(x, basic_block, depth, strides=1 if stage == 2 else 2,
                             name=f"conv{stage}", filters=planes, shortcut=shortcut,
                             epsilon=epsilon)
        else:  # torchvision's width rule: ResNet has planes, ResNeXt groups x group width
            x = resnet_stage(x, bottleneck, depth, strides=1 if stage == 2 else 2,
                             name=f"conv{stage}", width=planes * base_width // 64 * groups,
                             filters=EXPANSION * planes, groups=groups,
                             stride_on_3x3=stride_on_3x3, epsilon=epsilon)
    if preact:
        x = bn_act(x, name="post", epsilon=epsilon)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights, arch=arch,
                        include_top=include_top)


def _check_shortcut(arch, spec, shortcut):
    if not (isinstance(shortcut, bool) or (isinstance(shortcut, str) and shortcut == "zero_pad")):
        raise ValueError(f"shortcut must be True (projection where shapes change), 'zero_pad' "
                         f"(the paper's option A) or False (a plain net); got {shortcut!r}.")
    if shortcut is not True and spec["block"] != "basic":
        raise ValueError(
            f"shortcut={shortcut!r} is only for the paper's degradation experiment with "
            f"'resnet18' and 'resnet34' (Fig. 4, Table 2); {arch} always has shortcuts. "
            "Build resnet18 or resnet34 instead.")


def _check_downsample(arch, spec, downsample):
    default = "3x3" if spec.get("stride_on_3x3", False) else "1x1"
    if downsample is None:
        downsample = default
    if downsample not in ("1x1", "3x3"):
        raise ValueError(f"downsample must be '1x1' (the paper and keras.applications) or '3x3' "
                         f"(torchvision's 'ResNet v1.5'); got {downsample!r}.")
    if downsample != default and spec["block"] != "bottleneck":
        raise ValueError(f"downsample={downsample!r} applies to bottleneck blocks (resnet50, "
                         f"resnet101, resnet152, ResNeXt); {arch} keeps its {default} layout.")
    return downsample == "3x3"


def stage_taps(depths, strides=(4, 8, 16, 32), *, last=None):
    """Taps of the ResNet layout, in the keras.applications names the kit's ResNet-like families
    share: conv1 with its pool1 (stride 4), then conv2..conv5, each ending with its last block
    `conv{n}_block{depth}_out`; `last` is conv5's output where a final BN-ReLU follows it."""
    taps = [Tap("conv1", "pool1_pool", 4)]
    taps += [Tap(f"conv{n}", f"conv{n}_block{depth}_out", stride)
             for n, depth, stride in zip(range(2, 6), depths, strides)]
    if last:
        taps[-1] = taps[-1]._replace(layer=last)
    return tuple(taps)


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES."""
    spec = ARCHITECTURES[arch]
    if spec["block"] == "preact":  # Keras's v2 strides the last block of conv2..conv4
        taps = stage_taps(spec["depths"], (8, 16, 32, 32), last="post_relu")
    else:
        taps = stage_taps(spec["depths"])
    return dict(family=spec["family"], paper=spec["paper"], year=spec["year"],
                input_shape=(224, 224, 3), min_size=1, params=spec["params"], taps=taps)


resnet18 = register("resnet18", resnet, "resnet18", **_info("resnet18"))
resnet34 = register("resnet34", resnet, "resnet34", **_info("resnet34"))
resnet50 = register("resnet50", resnet, "resnet50", **_info("resnet50"), twin="ResNet50")
resnet101 = register("resnet101", resnet, "resnet101", **_info("resnet101"), twin="ResNet101")
resnet152 = register("resnet152", resnet, "resnet152", **_info("resnet152"), twin="ResNet152")
resnet50_v2 = register("resnet50_v2", resnet, "resnet50_v2", **_info("resnet50_v2"),
                       twin="ResNet50V2")
resnet101_v2 = register("resnet101_v2", resnet, "resnet101_v2", **_info("resnet101_v2"),
                        twin="ResNet101V2")
resnet152_v2 = register("resnet152_v2", resnet, "resnet152_v2", **_info("resnet152_v2"),
                        twin="ResNet152V2")
resnext50_32x4d = register("resnext50_32x4d", resnet, "resnext50_32x4d",
                           **_info("resnext50_32x4d"))
resnext101_32x8d = register("resnext101_32x8d", resnet, "resnext101_32x8d",
                            **_info("resnext101_32x8d"))
