"""Trainable-parameter counts derived from the papers' own tables, where no reference exists.

BN-Inception ("Inception v2"): Ioffe & Szegedy 2015, "Batch Normalization: Accelerating Deep
Network Training by Reducing Internal Covariate Shift", Figure 5, summed layer by layer below.
Counted: every convolution's kernel (no bias: BatchNorm follows it), BatchNorm's gamma and beta
(2 per channel, the paper's Algorithm 1 learns both), and the 1000-way dense layer with bias.
The figure's "output size" column has slips that its own filter columns contradict (3c is
printed 28x28x576 though it has stride 2, 4c and 4d concatenate 160+160+160+128 = 608 and
96+192+192+128 = 608 maps, 4e passes those 608 through to 192+256+608 = 1056): the input of
each module is taken from the filter columns, as every public BN-Inception does.
"""

# Figure 5, one row per module: (#1x1, #3x3 reduce, #3x3, double #3x3 reduce, double #3x3,
# pooling, pool proj). Pool proj 0 = "pass through"; #1x1 0 = no 1x1 column (3c and 4e).
FIGURE_5 = {
    "3a": (64, 64, 64, 64, 96, "avg", 32),
    "3b": (64, 64, 96, 64, 96, "avg", 64),
    "3c": (0, 128, 160, 64, 96, "max", 0),  # stride 2
    "4a": (224, 64, 96, 96, 128, "avg", 128),
    "4b": (192, 96, 128, 96, 128, "avg", 128),
    "4c": (160, 128, 160, 128, 160, "avg", 128),
    "4d": (96, 128, 192, 160, 192, "avg", 128),
    "4e": (0, 128, 192, 192, 256, "max", 0),  # stride 2
    "5a": (352, 192, 320, 160, 224, "avg", 128),
    "5b": (352, 192, 320, 192, 224, "max", 128),
}
# The stem: convolution 7x7/2, 64 maps; max pool; convolution 3x3 192 with a 1x1 64 "reduce".
STEM = [(7, 3, 64), (1, 64, 64), (3, 64, 192)]  # (kernel, in, out)
STEM_OUT = 192
CLASSES = 1000


def conv_bn(kernel, cin, cout):
    """A kxk convolution without bias, then BatchNorm with gamma and beta."""
    return kernel * kernel * cin * cout + 2 * cout


def module(cin, row):
    """Parameters of one inception module of Figure 5 and its number of output maps."""
    one, r3, c3, rd, cd, _pool, proj = row
    params = (conv_bn(1, cin, one) if one else 0)
    params += conv_bn(1, cin, r3) + conv_bn(3, r3, c3)
    params += conv_bn(1, cin, rd) + conv_bn(3, rd, cd) + conv_bn(3, cd, cd)
    params += conv_bn(1, cin, proj) if proj else 0
    return params, one + c3 + cd + (proj if proj else cin)


def inception_v2_params(classes=CLASSES):
    total = sum(conv_bn(*layer) for layer in STEM)
    channels = STEM_OUT
    for row in FIGURE_5.values():
        params, channels = module(channels, row)
        total += params
    return total + channels * classes + classes


INCEPTION_V2_PARAMS = inception_v2_params()  # 11,285,224; 5b gives 1024 maps
