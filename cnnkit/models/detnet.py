"""DetNet-59: ResNet-50's first four stages, then two more that keep stride 16 by dilating.

Li, Peng, Yu, Zhang, Deng and Sun, "DetNet: Design Backbone for Object Detection" (2018; arXiv:
"DetNet: A Backbone network for Object Detection"), Table 1 and Fig. 2. A detector needs extra
stages for large objects (FPN's P6), but every stride-2 stage blurs where they are; DetNet adds
stages 5 and 6 at stride 16 and widens their receptive field with dilated 3x3 convolutions.
Counts are trainable parameters with 1000 classes (the ImageNet classifier it is pretrained as).

| stage   | output (224) | blocks                                                  | parameters |
|---------|--------------|---------------------------------------------------------|-----------:|
| stage 1 | 112x112x64   | 7x7, 64, stride 2                                       |      9,536 |
| stage 2 | 56x56x256    | 3x3 max pool /2; [1x1, 64; 3x3, 64; 1x1, 256] x 3       |    215,808 |
| stage 3 | 28x28x512    | [1x1, 128; 3x3, 128; 1x1, 512] x 4, first /2            |  1,219,584 |
| stage 4 | 14x14x1024   | [1x1, 256; 3x3, 256; 1x1, 1024] x 6, first /2           |  7,098,368 |
| stage 5 | 14x14x1024   | [1x1, 256; 3x3, 256, dilate 2; 1x1, 1024] x 3: B, A, A  |  4,402,176 |
| stage 6 | 14x14x1024   | [1x1, 256; 3x3, 256, dilate 2; 1x1, 1024] x 3: B, A, A  |  4,402,176 |
|         | 1x1          | global average pool, 1000-way fully connected, softmax  |  1,025,000 |
|         |              |                                                  total  | 18,372,648 |

Stages 1-4 are ResNet-50's (`cnnkit.models.resnet`, built headless and tapped at
`conv4_block6_out`). Bottleneck A (Fig. 2A) adds its input; bottleneck B (Fig. 2B), the first
of each new stage, adds a 1x1 convolution + BN of it, which marks a new stage where neither the
size nor the width changes. 1 + 3 x (3 + 4 + 6 + 3 + 3) + 1 = 59 weight layers.

Widths: "stage 5 and stage 6 keep the same channels as stage 4 (256 input channels for
bottleneck block)", i.e. stage 4's bottleneck of 256 and its 1024 outputs. This is the reading
that gives the paper's "4.8G FLOPs" (`cnnkit.analysis.model_macs`: 4.85 billion multiply-adds
at 224x224, where resnet50 has 3.86 against the paper's 3.8); blocks with 256 outputs would give
4.07 billion and 13,660,200 parameters. guoruoqian/DetNet_pytorch reads it the same way; some
re-implementations (e.g. becauseofAI/DetNet-Keras) give the blocks 256 outputs instead.

Layer names: ResNet-50's up to `conv4_block6_out`; block b of stage s (5, 6) is
`stage{s}_block{b}` with `_1_conv/_bn/_relu`, `_2_...` (the dilated 3x3), `_3_conv/_bn`, the
projection `_0_conv/_0_bn` (block 1), `_add` and `_out`; a detector taps `conv3_block4_out`
(stride 8), `conv4_block6_out`, `stage5_out` and `stage6_out` (all three stride 16).
"""

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn, resnet_stage
from cnnkit.models import resnet  # noqa: F401  (registers resnet50, whose taps come first)
from cnnkit.registry import Tap, build, model_info, register, tap_layers
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["detnet59", "dilated_bottleneck", "DETNET59_STAGES"]

# (bottleneck width, output channels, blocks, dilation) of stage 5 and stage 6, Table 1
DETNET59_STAGES = ((256, 1024, 3, 2), (256, 1024, 3, 2))
STAGE4 = "conv4"  # ResNet-50's declared tap after its stage 4 (conv4_x), stride 16


def dilated_bottleneck(x, width, filters, *, dilation, name, project=False):
    """DetNet's bottleneck: 1x1, dilated 3x3, 1x1, plus the input (A) or its projection (B).

    Stride 1 throughout: the 3x3 with `dilation` d sees a (2d + 1)-pixel square, as large as a
    stride-d layer would, without halving the maps. padding="same" pads d pixels on every side.
    """
    y = conv_bn(x, width, 1, name=f"{name}_1")
    y = conv_bn(y, width, 3, dilation_rate=dilation, name=f"{name}_2")
    y = conv_bn(y, filters, 1, activation=None, name=f"{name}_3")
    shortcut = x
    if project:
        shortcut = conv_bn(x, filters, 1, activation=None, name=f"{name}_0")
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("relu", name=f"{name}_out")(y)


def detnet59(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
             classes=1000, classifier_activation="softmax", name="detnet59"):
    """DetNet-59 as a Keras functional model: the ImageNet classifier it is pretrained as.

    Paper: "DetNet: Design Backbone for Object Detection" (arXiv 2018: "DetNet: A Backbone
    network for Object Detection"), Li, Peng, Yu, Zhang, Deng and Sun, Table 1 and Fig. 2.
    Stages 1-4 are cnnkit's resnet50 (keras.applications' layout: the stride on each stage's
    first 1x1), built headless on this model's input; stages 5 and 6 are three dilated
    bottlenecks each (B, A, A) at stride 16. The FPN-style detector that the paper puts on top
    (DetNet-59-FPN, Fig. 2E) is not part of it: it taps the stage outputs by name.
    """
    args = check_args("detnet59", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    backbone = build("resnet50", include_top=False, input_tensor=x)
    x = tap_layers(backbone, "resnet50", stages=[STAGE4])[STAGE4].output
    for stage, (width, filters, blocks, dilation) in enumerate(DETNET59_STAGES, start=5):
        # Bottleneck B, the first block, projects its shortcut; no block strides (strides=None).
        x = resnet_stage(x, dilated_bottleneck, blocks, first=dict(project=True),
                         name=f"stage{stage}", width=width, filters=filters, dilation=dilation)
        x = layers.Identity(name=f"stage{stage}_out")(x)  # a named tap for detectors
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: resnet50's conv1..conv4 (stages 1-4 of Table 1), then the dilated stages 5 and 6, which
# keep stride 16.
detnet59 = register("detnet59", detnet59, family="detnet",
                    paper="DetNet: A Backbone network for Object Detection", year=2018,
                    input_shape=(224, 224, 3), min_size=1, params=18_372_648,
                    taps=(*model_info("resnet50").taps[:4], Tap("stage5", "stage5_out", 16),
                          Tap("stage6", "stage6_out", 16)))
