"""Feature Pyramid Network: a top-down pathway with lateral connections over a ResNet.

Lin, Dollár, Girshick, He, Hariharan and Belongie, "Feature Pyramid Networks for Object
Detection" (2017), Sec. 3 and Fig. 3. The bottom-up pathway is a ResNet; C2..C5 are the last
outputs of its stages conv2_x..conv5_x. The top-down pathway starts at C5: each level upsamples
the coarser merged map 2x (nearest neighbour) and adds a 1x1 "lateral" projection of the finer C
to it; "we append a 3x3 convolution on each merged map to generate the final feature map, which
is to reduce the aliasing effect of upsampling". Every P has d = 256 channels and the extra
layers have no non-linearities. The RPN also uses P6, "a stride two subsampling of P5" (Sec. 4.1).

| level | taps (resnet50)  | stride | lateral 1x1 | 3x3  | output (224x224 input) | parameters |
|-------|------------------|-------:|-------------|------|------------------------|-----------:|
| P2    | conv2_block3_out |      4 | 256 -> 256  | 256  | 56x56x256              |    655,872 |
| P3    | conv3_block4_out |      8 | 512 -> 256  | 256  | 28x28x256              |    721,408 |
| P4    | conv4_block6_out |     16 | 1024 -> 256 | 256  | 14x14x256              |    852,480 |
| P5    | conv5_block3_out |     32 | 2048 -> 256 | 256  | 7x7x256                |  1,114,624 |
| P6    | P5               |     64 | 1x1 max pool, stride 2 | | 4x4x256            |          0 |
|       | resnet50, headless |      |             |      |                        | 23,508,032 |
|       |                  |        |             |      | total                  | 26,852,416 |

Every convolution of the pyramid has a bias (no BatchNorm follows it), as in Detectron and
torchvision's FeaturePyramidNetwork. Inputs must have a height and width divisible by 32, so
that each 2x upsampling lands exactly on the next finer level (the paper's detectors pad images
to a multiple of 32, as torchvision's `size_divisible=32` does).

Layer names: the lateral projections `P{n}_lateral`, the upsampled coarser map `P{n}_upsample`,
their sum `P{n}_merge`, the outputs `P2`..`P5` (the 3x3 convolutions) and `P6` (the pooling).
The backbone's layers keep their own names (`conv4_block6_out` ...).
"""

import numbers

import keras
from keras import layers

from cnnkit.models import resnet  # noqa: F401  (registers the backbones and their taps)
from cnnkit.registry import build, list_models, model_info, register, tap_layers
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["fpn", "BACKBONES", "fpn_level"]

STRIDE = 32  # the coarsest tapped level, C5


PYRAMID = ("conv2", "conv3", "conv4", "conv5")  # the backbone's taps read as C2..C5


# Every registered ResNet/ResNeXt whose taps C2..C5 have strides 4, 8, 16, 32 (the paper uses
# ResNet-50 and ResNet-101): v2 is left out, its stages stride one block later and their outputs
# are not normalised.
BACKBONES = tuple(name for family in ("resnet", "resnext") for name in list_models(family)
                  if [model_info(name).tap(c).stride for c in PYRAMID] == [4, 8, 16, 32])


def fpn_level(c, coarser, channels, *, level):
    """Lateral 1x1 of `c`, plus the 2x nearest-upsampled `coarser` merged map if there is one.

    Returns the merged map (the paper's unnamed top-down map at this level), before the 3x3.
    """
    merged = layers.Conv2D(channels, 1, name=f"P{level}_lateral")(c)
    if coarser is not None:
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"P{level}_upsample")(coarser)
        merged = layers.Add(name=f"P{level}_merge")([up, merged])
    return merged


def fpn(weights=None, input_tensor=None, input_shape=None, name=None, backbone="resnet50",
        channels=256, p6=True):
    """A Feature Pyramid Network over a registered ResNet: a list [P2, P3, P4, P5, P6] of maps.

    Paper: "Feature Pyramid Networks for Object Detection", Lin, Dollár, Girshick, He, Hariharan
    and Belongie, 2017. Builds the backbone headless on this model's input and reads C2..C5 at
    its registered taps conv2..conv5; P2..P5 have strides 4, 8, 16, 32 and `channels` channels
    (the paper's d = 256); p6=True appends P6 (stride 64), a 1x1 max pool with stride 2 on P5,
    as the paper's RPN uses (p6=False: [P2..P5], the pyramid Fast R-CNN uses).

    backbone: "resnet50" (the paper's), or any of BACKBONES (resnet101, resnext50_32x4d, ...).
    The heads (RPN, Fast R-CNN) are not part of it. Height and width must be divisible by 32.
    """
    # An FPN has no classes: 1 satisfies check_args, which validates the rest.
    args = check_args("fpn", include_top=False, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=1)
    _check_options(backbone, channels, p6, args.input_shape)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    body = build(backbone, include_top=False, input_tensor=x)
    c2_to_c5 = [layer.output for layer in tap_layers(body, backbone, PYRAMID).values()]
    merged = None
    pyramid = []
    for level, c in zip((5, 4, 3, 2), reversed(c2_to_c5)):  # top-down: coarse to fine
        merged = fpn_level(c, merged, channels, level=level)
        pyramid.insert(0, layers.Conv2D(channels, 3, padding="same", name=f"P{level}")(merged))
    if p6:
        # Subsampling with a 1x1 window: P6 keeps every other pixel of P5.
        pyramid.append(layers.MaxPooling2D(1, strides=2, name="P6")(pyramid[-1]))
    return load_weights(keras.Model(inputs, pyramid, name=name or "fpn"), weights)


def _check_options(backbone, channels, p6, input_shape):
    if backbone not in BACKBONES:
        raise ValueError(f"backbone must be one of {', '.join(repr(b) for b in BACKBONES)} "
                         f"(a ResNet whose stage outputs can be tapped); got {backbone!r}.")
    if (isinstance(channels, bool) or not isinstance(channels, numbers.Integral)
            or channels < 1):
        raise ValueError(f"channels must be a whole number >= 1 (the paper's d = 256); "
                         f"got {channels!r}.")
    if not isinstance(p6, bool):
        raise ValueError(f"p6 must be True (add P6, stride 64) or False; got {p6!r}.")
    check_multiple("fpn", input_shape, STRIDE, "so that each 2x upsampling of the top-down "
                   "pathway lands on the next level's size")


# No taps of its own: the pyramid's levels are its outputs, built top-down (P5 comes before
# P2..P4 in the graph, and they read upsampled maps), so as taps from input to output their
# strides would fall; C2..C5 are the backbone's layers, whose names `backbone` changes. The count
# is resnet50 headless (23,508,032) + four 1x1 laterals and four 3x3 outputs with d = 256
# (3,344,384).
fpn = register("fpn", fpn, family="fpn", paper="Feature Pyramid Networks for Object Detection",
               year=2017, input_shape=(224, 224, 3), min_size=STRIDE, params=26_852_416,
               task="features")
