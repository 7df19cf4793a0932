"""ShuffleNet v1's trainable parameters, derived from the paper's Table 1 (no outside reference).

Zhang, Zhou, Lin and Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices" (2017), Table 1 and Section 3.2/3.3, ShuffleNet 1x:
- Conv1: 3x3, stride 2, 24 output channels; then a 3x3 max pool, stride 2 (no parameters).
- Stage2, Stage3, Stage4: one stride-2 unit, then 3, 7, 3 stride-1 units; output channels
  per group count g in STAGE_CHANNELS.
- A unit (Fig. 2): 1x1 group conv to the bottleneck (1/4 of the unit's output channels,
  Sec. 3.2 "we set the number of bottleneck channels to 1/4 of the output channels"), channel
  shuffle, 3x3 depthwise conv, 1x1 group conv. The stride-1 unit adds its input, so its last
  conv has the unit's output channels; the stride-2 unit concatenates a 3x3 average-pooled
  shortcut, so its last conv has output minus input channels.
- "we do not apply group convolution on the first pointwise layer [of Stage2] because the
  number of input channels is relatively small" (Table 1's note).
- Global pool, then a 1000-way fully connected layer.

Assumptions, where the paper is silent:
- every convolution is followed by BatchNorm with a trainable scale and offset (gamma, beta:
  2 per channel), so no convolution has a bias (Sec. 3.1 puts BN after each conv, Fig. 2);
- the 1000-way fully connected layer has a bias;
- the bottleneck of the stride-2 unit is 1/4 of the whole unit's output (as the authors'
  released code computes it), not 1/4 of its convolution branch.
"""

STEM_FILTERS = 24
UNITS = (4, 8, 4)  # Table 1's "Repeat": 1 + 3, 1 + 7, 1 + 3 units in Stage2, Stage3, Stage4
# Table 1, output channels of Stage2, Stage3, Stage4 for each number of groups g.
STAGE_CHANNELS = {
    1: (144, 288, 576),
    2: (200, 400, 800),
    3: (240, 480, 960),
    4: (272, 544, 1088),
    8: (384, 768, 1536),
}
CLASSES = 1000


def conv(k, c_in, c_out, groups=1):
    """A k x k convolution without bias split into `groups` groups."""
    return k * k * (c_in // groups) * c_out


def depthwise(k, channels):
    return k * k * channels


def bn(channels):
    """BatchNorm's trainable gamma and beta."""
    return 2 * channels


def dense(c_in, c_out):
    return c_in * c_out + c_out


def unit(c_in, c_out, groups, stride, group_first_conv=True):
    """One ShuffleNet unit (Fig. 2 b, c)."""
    bottleneck = c_out // 4
    branch = c_out - c_in if stride == 2 else c_out
    first_groups = groups if group_first_conv else 1
    return (conv(1, c_in, bottleneck, first_groups) + bn(bottleneck)
            + depthwise(3, bottleneck) + bn(bottleneck)
            + conv(1, bottleneck, branch, groups) + bn(branch))


def shufflenet_v1_params(groups, classes=CLASSES):
    total = conv(3, 3, STEM_FILTERS) + bn(STEM_FILTERS)
    c_in = STEM_FILTERS
    for stage, (units, c_out) in enumerate(zip(UNITS, STAGE_CHANNELS[groups])):
        for u in range(units):
            total += unit(c_in, c_out, groups, stride=2 if u == 0 else 1,
                          group_first_conv=not (stage == 0 and u == 0))
            c_in = c_out
    return total + dense(c_in, classes)


# g -> trainable parameters of ShuffleNet 1x: 1,531,936, 1,733,848, 1,865,728 (g = 3, the
# registered default), 1,968,344, 2,434,768. The authors' code reports 1.9M and 2.4M for g = 3, 8.
SHUFFLENET_V1_PARAMS = {g: shufflenet_v1_params(g) for g in STAGE_CHANNELS}
