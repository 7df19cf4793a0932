"""Dual Path Networks: each block adds to a residual path and appends to a dense path.

Chen, Li, Xiao, Jin, Yan and Feng, "Dual Path Networks" (2017), Table 1 (DPN-92, -98, -131;
DPN-68 and DPN-107 are the authors' released MXNet models). A block is a grouped bottleneck
[1x1, r; 3x3, r, G groups; 1x1, c(+k)]: its last 1x1 writes c + k channels, the first c are
added to the residual path (width c throughout a stage, as in ResNeXt) and the last k are
concatenated to the dense path (it grows by k per block, as in DenseNet). The next block reads
both paths concatenated. The bottleneck width r is k_r in conv2 and doubles with each stage;
DPN-68 keeps that rule with 4 times narrower residual paths c. Trainable parameters with 1000
classes, exact figures from timm:

| stage | output  | DPN-68              | DPN-92              | DPN-98              |
|-------|---------|---------------------|---------------------|---------------------|
| conv1 | 112x112 | 3x3, 10, stride 2   | 7x7, 64, stride 2   | 7x7, 96, stride 2   |
| conv2 | 56x56   | 3x3 max pool, stride 2, then blocks r, c(+k) x n                |
|       |         | 128, 64(+16) x 3    | 96, 256(+16) x 3    | 160, 256(+16) x 3   |
| conv3 | 28x28   | 256, 128(+32) x 4   | 192, 512(+32) x 4   | 320, 512(+32) x 6   |
| conv4 | 14x14   | 512, 256(+32) x 12  | 384, 1024(+24) x 20 | 640, 1024(+32) x 20 |
| conv5 | 7x7     | 1024, 512(+64) x 3  | 768, 2048(+128) x 3 | 1280, 2048(+128) x 3|
| G     |         | 32                  | 32                  | 40                  |
| params|         | 12,611,602          | 37,668,392          | 61,570,728          |

| stage | output  | DPN-107             | DPN-131             |
|-------|---------|---------------------|---------------------|
| conv1 | 112x112 | 7x7, 128, stride 2  | 7x7, 128, stride 2  |
| conv2 | 56x56   | 200, 256(+20) x 4   | 160, 256(+16) x 4   |
| conv3 | 28x28   | 400, 512(+64) x 8   | 320, 512(+32) x 8   |
| conv4 | 14x14   | 800, 1024(+64) x 20 | 640, 1024(+32) x 28 |
| conv5 | 7x7     | 1600, 2048(+128) x 3| 1280, 2048(+128) x 3|
| G     |         | 50                  | 40                  |
| params|         | 86,917,800          | 79,254,504          |

The network ends in global average pooling, a 1000-way fully connected layer and softmax.
The first block of a stage projects its input with a 1x1 convolution to c + 2k channels (stride
2 from conv3 on), which starts the residual path and a dense path of 2k channels: after n
blocks a stage outputs c + (n + 2) * k channels (DPN-92's conv2: 256 + 5 * 16 = 336).

Layer names: block b of stage s is `conv{s}_block{b}`; its `_1_`, `_2_`, `_3_` BN-ReLU-conv
units, the projection `_proj_`, the residual sum `_add`, the dense concatenation `_dense` and
the block's output `_out` (residual then dense channels). A detector taps each stage's last
`_out` (strides 4, 8, 16, 32).
"""

import keras
from keras import layers

from cnnkit.blocks import bn_act, classifier, conv_bn, resnet_stage
from cnnkit.layers import ChannelSplit, GroupConv2D
from cnnkit.models.resnet import stage_taps
from cnnkit.registry import register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["ARCHITECTURES", "dpn", "dual_path_block", "bn_act_conv", "dpn68", "dpn92", "dpn98",
           "dpn107", "dpn131"]

# The authors' MXNet models and timm use BatchNorm's epsilon 1e-3 (MXNet's default).
EPSILON = 1e-3
WIDTHS = (256, 512, 1024, 2048)  # c, the residual width of conv2..conv5

# stem: (kernel, filters); k_r: the bottleneck width r of conv2 (doubled per stage); G: groups;
# depths: blocks per stage; incs: k, the dense growth per block; small: DPN-68's 4x narrower c.
ARCHITECTURES = {
    "dpn68": dict(stem=(3, 10), k_r=128, groups=32, depths=(3, 4, 12, 3),
                  incs=(16, 32, 32, 64), small=True, params=12_611_602),
    "dpn92": dict(stem=(7, 64), k_r=96, groups=32, depths=(3, 4, 20, 3),
                  incs=(16, 32, 24, 128), params=37_668_392),
    "dpn98": dict(stem=(7, 96), k_r=160, groups=40, depths=(3, 6, 20, 3),
                  incs=(16, 32, 32, 128), params=61_570_728),
    "dpn107": dict(stem=(7, 128), k_r=200, groups=50, depths=(4, 8, 20, 3),
                   incs=(20, 64, 64, 128), params=86_917_800),
    "dpn131": dict(stem=(7, 128), k_r=160, groups=40, depths=(4, 8, 28, 3),
                   incs=(16, 32, 32, 128), params=79_254_504),
}


def bn_act_conv(x, filters, kernel_size, *, name, strides=1, groups=1, epsilon=EPSILON):
    """Pre-activation unit: BatchNorm, ReLU, then a convolution without bias (`{name}_conv`).

    A strided 3x3 pads one pixel on every side (`{name}_pad`), as the MXNet and PyTorch models
    do; Keras's padding="same" would pad only the bottom and right of an even-sized map.
    """
    x = bn_act(x, name=name, epsilon=epsilon)
    padding = "same"
    if strides > 1 and kernel_size > 1:
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    conv = GroupConv2D if groups > 1 else layers.Conv2D
    return conv(filters, kernel_size, strides=strides, padding=padding, groups=groups,
                use_bias=False, name=f"{name}_conv")(x)


def dual_path_block(x, width, filters, inc, *, groups, name, project=False, strides=1,
                    epsilon=EPSILON):
    """One dual path block (Fig. 2e): [1x1, width; 3x3, width, groups; 1x1, filters + inc].

    `x` holds the residual path (its first `filters` channels) followed by the dense path; the
    first block of a stage has neither yet, so `project` makes both from `x` with a 1x1
    convolution (`_proj`) of `filters + 2 * inc` channels and the block's stride. The
    bottleneck's output is split: `filters` channels added to the residual path (`_add`), `inc`
    concatenated to the dense path (`_dense`). Returns both paths concatenated (`_out`).
    """
    if project:
        paths = bn_act_conv(x, filters + 2 * inc, 1, strides=strides, name=f"{name}_proj",
                            epsilon=epsilon)
    else:
        paths = x
    residual, dense = ChannelSplit([filters, paths.shape[-1] - filters],
                                   name=f"{name}_split")(paths)
    y = bn_act_conv(x, width, 1, name=f"{name}_1", epsilon=epsilon)
    y = bn_act_conv(y, width, 3, strides=strides, groups=groups, name=f"{name}_2",
                    epsilon=epsilon)
    y = bn_act_conv(y, filters + inc, 1, name=f"{name}_3", epsilon=epsilon)
    new_residual, new_dense = ChannelSplit([filters, inc], name=f"{name}_3_split")(y)
    residual = layers.Add(name=f"{name}_add")([residual, new_residual])
    dense = layers.Concatenate(name=f"{name}_dense")([dense, new_dense])
    return layers.Concatenate(name=f"{name}_out")([residual, dense])


def dpn(arch, include_top=True, weights=None, input_tensor=None, input_shape=None,
        pooling=None, classes=1000, classifier_activation="softmax", name=None):
    """Dual Path Network `arch` (a key of ARCHITECTURES) as a Keras functional model.

    Paper: Chen, Li, Xiao, Jin, Yan and Feng, "Dual Path Networks", 2017. Built as the authors'
    MXNet code (github.com/cypw/DPNs) and timm's `dpn*` are: a post-activation stem (conv, BN,
    ReLU, 3x3 max pool), pre-activation blocks (BN-ReLU-conv), a BN-ReLU on the concatenated
    paths before global average pooling, and a fully connected classifier with bias.

    Simplified: none. timm writes the classifier as a 1x1 convolution (the same weights as a
    Dense layer), so that it can also be slid over larger test images ("test-time pooling");
    cnnkit has a Dense `predictions` layer and no test-time pooling. With timm 1.0.29's
    weights ported in, the logits agree to about 1e-6 (tools/compare_reference.py).
    """
    spec = ARCHITECTURES[arch]
    args = check_args(arch, include_top=include_top, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    kernel, stem_filters = spec["stem"]
    x = layers.ZeroPadding2D(kernel // 2, name="conv1_pad")(x)
    x = conv_bn(x, stem_filters, kernel, strides=2, padding="valid", name="conv1",
                epsilon=EPSILON)
    # After the ReLU every value is >= 0, so zero padding is the reference's -inf padding.
    x = layers.ZeroPadding2D(1, name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    for stage, (depth, inc, filters) in enumerate(zip(spec["depths"], spec["incs"], WIDTHS)):
        width = spec["k_r"] * filters // 256  # r doubles with c: k_r in conv2
        if spec.get("small"):
            filters //= 4
        x = resnet_stage(x, dual_path_block, depth, strides=2 if stage > 0 else 1,
                         first=dict(project=True), name=f"conv{stage + 2}", width=width,
                         filters=filters, inc=inc, groups=spec["groups"])
    x = bn_act(x, name="post", epsilon=EPSILON)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name or arch), weights)


def _info(arch):
    """What the registry reads from `arch`'s row of ARCHITECTURES; the taps are ResNet's, with
    conv5 ending at the final BN-ReLU."""
    spec = ARCHITECTURES[arch]
    return dict(family="dpn", paper="Dual Path Networks", year=2017, input_shape=(224, 224, 3),
                min_size=1, params=spec["params"],
                taps=stage_taps(spec["depths"], last="post_relu"))


dpn68 = register("dpn68", dpn, "dpn68", **_info("dpn68"))
dpn92 = register("dpn92", dpn, "dpn92", **_info("dpn92"))
dpn98 = register("dpn98", dpn, "dpn98", **_info("dpn98"))
dpn107 = register("dpn107", dpn, "dpn107", **_info("dpn107"))
dpn131 = register("dpn131", dpn, "dpn131", **_info("dpn131"))
