"""ThunderNet's SNet backbones and detection blocks: trainable parameters derived from the paper.

Qin, Li, Zhang, Bao, Yu, Peng and Sun, "ThunderNet: Towards Real-time Generic Object Detection
on Mobile Devices" (ICCV 2019), Table 1 and Sections 3.1, 3.3, 3.4 (no outside reference):
- Conv1: 3x3, stride 2, 24 channels (48 in SNet535); a 3x3 max pool, stride 2 (no parameters).
- Stage2, Stage3, Stage4: one stride-2 unit, then 3, 7, 3 stride-1 units; output channels
  60/120/240 (SNet49), 132/264/528 (SNet146), 248/496/992 (SNet535).
- "SNet uses ShuffleNetV2 basic blocks but replaces all 3x3 depthwise convolutions with 5x5
  depthwise convolutions" (Table 1's caption).
- Conv5: 1x1 to 512 channels in SNet49 only; SNet146 and SNet535 have none (Sec. 3.1).
- Global average pool, then a 1000-way fully connected layer (the ImageNet classifier).
- CEM (Sec. 3.3): a 1x1 convolution from C4 (Stage3's output), from C5 (the last feature map)
  and from the global average of C5, each to alpha x p x p = 5 x 7 x 7 = 245 channels.
- RPN (Sec. 3.4): a 5x5 depthwise convolution and a 1x1 convolution of 256 channels.
- SAM (Sec. 3.4): a 1x1 convolution from the RPN's 256 channels to CEM's 245, then a sigmoid.

Assumptions, where the paper is silent:
- a ShuffleNetV2 unit is laid out as in ShuffleNet V2's Fig. 3 c, d with equal branches: each
  branch of a unit ends with half of its output channels; the stride-2 unit's left branch is a
  depthwise conv and a 1x1, its right branch (and a stride-1 unit's only branch) 1x1, depthwise,
  1x1 (the authors' released code gives the stride-2 left branch of Stage2 as many channels as
  its input instead, 24 or 48: `SNET_AUTHORS_LAYOUT_DIFFERENCE` below);
- every backbone and RPN/SAM convolution is followed by BatchNorm with a trainable scale and
  offset (2 per channel) and has no bias; the fully connected layer has a bias;
- CEM's three 1x1 convolutions have a bias and no BatchNorm (the authors' released code).
"""

from derived_shufflenet import bn, dense, depthwise  # the same arithmetic as ShuffleNet v1

KERNEL = 5  # SNet's depthwise kernel
STEM_KERNEL = 3
UNITS = (4, 8, 4)  # Stage2, Stage3, Stage4: 1 + 3, 1 + 7, 1 + 3 units
# Table 1: Conv1's channels, Stage2..Stage4's output channels, Conv5's (None: no Conv5)
SNET_TABLE_1 = {
    "snet49": (24, (60, 120, 240), 512),
    "snet146": (24, (132, 264, 528), None),
    "snet535": (48, (248, 496, 992), None),
}
CLASSES = 1000
CEM_CHANNELS = 5 * 7 * 7  # alpha x p x p = 245
RPN_CHANNELS = 256


def conv(k, c_in, c_out, bias=False):
    return k * k * c_in * c_out + (c_out if bias else 0)


def unit(c_in, c_out, stride, k=KERNEL):
    """One ShuffleNetV2 unit with k x k depthwise convolutions (Fig. 3 c, d of ShuffleNet V2)."""
    half = c_out // 2
    branch_in = c_in if stride == 2 else half
    right = (conv(1, branch_in, half) + bn(half) + depthwise(k, half) + bn(half)
             + conv(1, half, half) + bn(half))
    left = depthwise(k, c_in) + bn(c_in) + conv(1, c_in, half) + bn(half) if stride == 2 else 0
    return left + right


def snet_backbone_params(arch):
    """Conv1 to the last feature map (Stage4, or Conv5 in SNet49): no classifier."""
    stem, channels, last = SNET_TABLE_1[arch]
    total = conv(STEM_KERNEL, 3, stem) + bn(stem)
    c_in = stem
    for units, c_out in zip(UNITS, channels):
        for u in range(units):
            total += unit(c_in, c_out, stride=2 if u == 0 else 1)
            c_in = c_out
    if last is not None:
        total += conv(1, c_in, last) + bn(last)
    return total


def snet_params(arch, classes=CLASSES):
    stem, channels, last = SNET_TABLE_1[arch]
    return snet_backbone_params(arch) + dense(last or channels[-1], classes)


def thundernet_head_params(c4, c5, cem=CEM_CHANNELS, rpn=RPN_CHANNELS, k=KERNEL):
    """CEM + the RPN's shared 5x5 depthwise and 1x1 + SAM, for C4 and C5 of c4 and c5 channels."""
    cem_params = conv(1, c4, cem, bias=True) + 2 * conv(1, c5, cem, bias=True)
    rpn_params = depthwise(k, cem) + bn(cem) + conv(1, cem, rpn) + bn(rpn)
    sam_params = conv(1, rpn, cem) + bn(cem)
    return cem_params + rpn_params + sam_params


def thundernet_features_params(arch):
    stem, channels, last = SNET_TABLE_1[arch]
    return snet_backbone_params(arch) + thundernet_head_params(channels[1], last or channels[2])


SNET_PARAMS = {arch: snet_params(arch) for arch in SNET_TABLE_1}
THUNDERNET_FEATURES_PARAMS = {arch: thundernet_features_params(arch) for arch in SNET_TABLE_1}

# How many more parameters the authors' released code has (its Stage2 stride-2 unit keeps the
# stem's 24 or 48 channels in the left branch and gives the right branch the rest, as Megvii's
# ShuffleNetV2 code does): not used as a reference, only quoted in the model's docstring.
def _authors_stage2_unit1(stem, c_out, k=KERNEL):
    mid = c_out // 2
    left = depthwise(k, stem) + bn(stem) + conv(1, stem, stem) + bn(stem)
    right = (conv(1, stem, mid) + bn(mid) + depthwise(k, mid) + bn(mid)
             + conv(1, mid, c_out - stem) + bn(c_out - stem))
    return left + right


SNET_AUTHORS_LAYOUT_DIFFERENCE = {
    arch: _authors_stage2_unit1(stem, channels[0]) - unit(stem, channels[0], stride=2)
    for arch, (stem, channels, _) in SNET_TABLE_1.items()}
