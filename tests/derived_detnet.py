"""DetNet-59's trainable parameters, derived from the paper's Table 1 (no outside reference).

Li, Peng, Yu, Zhang, Deng and Sun, "DetNet: A Backbone network for Object Detection" (2018),
Table 1 and Fig. 2:
- stages 1-4 are ResNet-50's: a 7x7/2 stem with 64 filters, a 3x3/2 max pool, then 3, 4, 6
  bottlenecks [1x1, w; 3x3, w; 1x1, 4w] with w = 64, 128, 256 (He et al. 2015, Table 1);
- stages 5 and 6 each have 3 dilated bottlenecks [1x1, 256; 3x3, 256, dilate 2; 1x1, 1024]:
  "stage 5 and stage 6 keep the same channels as stage 4 (256 input channels for bottleneck
  block)"; the first is bottleneck B (Fig. 2B), whose shortcut is a 1x1 convolution projection,
  the others bottleneck A (identity shortcut). Dilation changes no parameter count;
- global average pooling and a 1000-way fully connected layer.

Assumptions, where the paper is silent: every convolution is followed by BatchNorm with trainable
gamma and beta and has no bias; every projection shortcut (ResNet's where a stage starts,
DetNet's bottleneck B) is a 1x1 convolution + BN; the fully connected layer has a bias.
"""

from derived_resnet import bn, conv, dense

STEM_FILTERS = 64
EXPANSION = 4
# (bottleneck width, blocks) of stages 2..6, Table 1; stages 5 and 6 keep stage 4's width.
STAGES = ((64, 3), (128, 4), (256, 6), (256, 3), (256, 3))
CLASSES = 1000


def bottleneck(c_in, width, project):
    c_out = EXPANSION * width
    total = (conv(1, c_in, width) + bn(width) + conv(3, width, width) + bn(width)
             + conv(1, width, c_out) + bn(c_out))
    return total + (conv(1, c_in, c_out) + bn(c_out) if project else 0)


def detnet_params(stages=STAGES, classes=CLASSES):
    """Stem, then per stage a projecting first block and identity blocks, then the classifier."""
    total = conv(7, 3, STEM_FILTERS) + bn(STEM_FILTERS)
    c_in = STEM_FILTERS
    for width, blocks in stages:
        for block in range(blocks):
            total += bottleneck(c_in, width, project=block == 0)
            c_in = EXPANSION * width
    return total + dense(c_in, classes)


# 9,536 + 215,808 + 1,219,584 + 7,098,368 (stages 1-4) + 2 x 4,402,176 + 1,025,000 = 18,372,648
DETNET59_PARAMS = detnet_params()
