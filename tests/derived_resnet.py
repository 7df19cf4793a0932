"""Trainable-parameter counts derived from the papers' own tables, where no reference exists.

He, Zhang, Ren and Sun, "Deep Residual Learning for Image Recognition" (2015), Table 1 gives the
stages: a 7x7/2 stem with 64 filters, then conv2_x..conv5_x with 3x3 widths 64, 128, 256, 512;
a bottleneck block is 1x1 (width), 3x3 (width), 1x1 (4 x width); a basic block is two 3x3.
He et al., "Identity Mappings in Deep Residual Networks" (2016) moves BatchNorm-ReLU in front of
each convolution ("pre-activation"), which changes where the BatchNorms sit and so the count.

No convolution has a bias but one: each feeds a BatchNorm (which subtracts the mean, so a bias
cancels) or, in the pre-activation net, adds into the residual stream that the next BatchNorm
normalises. The exception is the pre-activation stem (keras.applications' layout): its output
passes a zero-padded max pool before any BatchNorm, so its 64 biases do not cancel.
A BatchNorm has two trainable vectors (gamma, beta) per channel. tests/test_resnet.py checks
that these functions give the outside references exactly: torchvision's resnet18/34 and timm's
resnetv2_50/101 (whose stem has no bias: 64 fewer).
"""

STEM_FILTERS = 64
WIDTHS = (64, 128, 256, 512)  # Table 1: filters of the 3x3 convolutions in conv2_x..conv5_x
EXPANSION = 4  # a bottleneck's last 1x1 has 4 x width filters (256, 512, 1024, 2048)
CLASSES = 1000


def conv(k, c_in, c_out):
    """A k x k convolution without bias."""
    return k * k * c_in * c_out


def bn(channels):
    """BatchNorm's trainable gamma and beta."""
    return 2 * channels


def dense(c_in, c_out):
    return c_in * c_out + c_out


def preact_bottleneck_resnet_params(depths, classes=CLASSES):
    """ResNet v2 (pre-activation) with bottleneck blocks; `depths` = blocks per stage."""
    # No BN here, so the stem keeps its bias: the first block's pre-activation follows the pool.
    total = conv(7, 3, STEM_FILTERS) + STEM_FILTERS
    c_in = STEM_FILTERS
    for depth, width in zip(depths, WIDTHS):
        c_out = EXPANSION * width
        for block in range(depth):
            total += bn(c_in)  # pre-activation BN-ReLU of the block's input
            if block == 0:
                total += conv(1, c_in, c_out)  # projection shortcut (channels change)
            total += conv(1, c_in, width) + bn(width)
            total += conv(3, width, width) + bn(width)
            total += conv(1, width, c_out)  # no BN: the sum is normalised by the next block
            c_in = c_out
    total += bn(c_in)  # the final BN-ReLU before pooling ("post_bn")
    return total + dense(c_in, classes)


def basic_resnet_params(depths, shortcut=True, classes=CLASSES):
    """ResNet v1 with basic blocks (18, 34 layers), or its plain twin with shortcut=False.

    Where a stage doubles the channels and halves the size, the residual net projects its
    shortcut with a 1x1 convolution + BN (option B, torchvision's choice). The paper's plain nets
    (Fig. 3 middle, Table 2, Fig. 4 left) have no shortcuts at all, so they lack exactly those
    three projections; identity shortcuts and option A's zero-padding have no parameters.
    """
    total = conv(7, 3, STEM_FILTERS) + bn(STEM_FILTERS)
    c_in = STEM_FILTERS
    for depth, width in zip(depths, WIDTHS):
        for block in range(depth):
            if shortcut and c_in != width:
                total += conv(1, c_in, width) + bn(width)
            total += conv(3, c_in, width) + bn(width)
            total += conv(3, width, width) + bn(width)
            c_in = width
    return total + dense(c_in, classes)


RESNET152_V2_PARAMS = preact_bottleneck_resnet_params((3, 8, 36, 3))  # 60,185,192
PLAIN18_PARAMS = basic_resnet_params((2, 2, 2, 2), shortcut=False)  # 11,515,688
PLAIN34_PARAMS = basic_resnet_params((3, 4, 6, 3), shortcut=False)  # 21,623,848
