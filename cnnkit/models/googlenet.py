"""GoogLeNet (Inception v1) and BN-Inception (Inception v2): wide modules of parallel filters.

GoogLeNet, Szegedy et al. 2014, Table 1 (224x224x3 input; every convolution has a bias and a
ReLU, "same" padding; each inception module concatenates its four columns):

| layer          | patch/stride | output     | #1x1 | #3x3 red | #3x3 | #5x5 red | #5x5 | pool proj | parameters |
|----------------|--------------|------------|-----:|---------:|-----:|---------:|-----:|----------:|-----------:|
| conv1_7x7_s2   | 7x7/2        | 112x112x64 |      |          |      |          |      |           |      9,472 |
| pool1_3x3_s2   | 3x3/2 max    | 56x56x64   |      |          |      |          |      |           |            |
| pool1_norm1    | LRN          | 56x56x64   |      |          |      |          |      |           |            |
| conv2_3x3      | 3x3/1        | 56x56x192  |      |       64 |  192 |          |      |           |    114,944 |
| conv2_norm2    | LRN          | 56x56x192  |      |          |      |          |      |           |            |
| pool2_3x3_s2   | 3x3/2 max    | 28x28x192  |      |          |      |          |      |           |            |
| inception_3a   |              | 28x28x256  |   64 |       96 |  128 |       16 |   32 |        32 |    163,696 |
| inception_3b   |              | 28x28x480  |  128 |      128 |  192 |       32 |   96 |        64 |    388,736 |
| pool3_3x3_s2   | 3x3/2 max    | 14x14x480  |      |          |      |          |      |           |            |
| inception_4a   |              | 14x14x512  |  192 |       96 |  208 |       16 |   48 |        64 |    376,176 |
| inception_4b   |              | 14x14x512  |  160 |      112 |  224 |       24 |   64 |        64 |    449,160 |
| inception_4c   |              | 14x14x512  |  128 |      128 |  256 |       24 |   64 |        64 |    510,104 |
| inception_4d   |              | 14x14x528  |  112 |      144 |  288 |       32 |   64 |        64 |    605,376 |
| inception_4e   |              | 14x14x832  |  256 |      160 |  320 |       32 |  128 |       128 |    868,352 |
| pool4_3x3_s2   | 3x3/2 max    | 7x7x832    |      |          |      |          |      |           |            |
| inception_5a   |              | 7x7x832    |  256 |      160 |  320 |       32 |  128 |       128 |  1,043,456 |
| inception_5b   |              | 7x7x1024   |  384 |      192 |  384 |       48 |  128 |       128 |  1,444,080 |
| avg_pool       | 7x7/1 avg    | 1x1x1024   |      |          |      |          |      |           |            |
| dropout (40%)  |              | 1x1x1024   |      |          |      |          |      |           |            |
| predictions    | linear       | 1x1x1000   |      |          |      |          |      |           |  1,025,000 |
|                |              |            |      |          |      |          |      | total     |  6,998,552 |

With aux_logits=True two auxiliary classifiers (Section 5) add 3,188,840 (on 4a) + 3,190,888
(on 4d) = 13,378,280.

BN-Inception, Ioffe & Szegedy 2015, Figure 5 (convolutions without bias, each followed by
BatchNorm and ReLU; the 5x5 column becomes two 3x3 convolutions, "double #3x3"; 3c and 4e
halve the maps with stride 2 and pass their max-pooled input through without a projection):

| layer        | output     | #1x1 | #3x3 red | #3x3 | double red | double #3x3 | pool + proj   | parameters |
|--------------|------------|-----:|---------:|-----:|-----------:|------------:|---------------|-----------:|
| conv1_7x7_s2 | 112x112x64 |      |          |      |            |             | 7x7/2         |      9,536 |
| pool1_3x3_s2 | 56x56x64   |      |          |      |            |             | 3x3/2 max     |            |
| conv2_3x3    | 56x56x192  |      |       64 |  192 |            |             |               |    115,200 |
| pool2_3x3_s2 | 28x28x192  |      |          |      |            |             | 3x3/2 max     |            |
| inception_3a | 28x28x256  |   64 |       64 |   64 |         64 |          96 | avg + 32      |    219,072 |
| inception_3b | 28x28x320  |   64 |       64 |   96 |         64 |          96 | avg + 64      |    260,160 |
| inception_3c | 14x14x576  |      |      128 |  160 |         64 |          96 | max, stride 2 |    385,088 |
| inception_4a | 14x14x576  |  224 |       64 |   96 |         96 |         128 | avg + 128     |    609,984 |
| inception_4b | 14x14x576  |  192 |       96 |  128 |         96 |         128 | avg + 128     |    665,344 |
| inception_4c | 14x14x608  |  160 |      128 |  160 |        128 |         160 | avg + 128     |    914,432 |
| inception_4d | 14x14x608  |   96 |      128 |  192 |        160 |         192 | avg + 128     |  1,142,912 |
| inception_4e | 7x7x1056   |      |      128 |  192 |        192 |         256 | max, stride 2 |  1,449,984 |
| inception_5a | 7x7x1024   |  352 |      192 |  320 |        160 |         224 | avg + 128     |  2,208,896 |
| inception_5b | 7x7x1024   |  352 |      192 |  320 |        192 |         224 | max + 128     |  2,279,616 |
| avg_pool     | 1x1x1024   |      |          |      |            |             | 7x7 global    |            |
| predictions  | 1000       |      |          |      |            |             | dense         |  1,025,000 |
|              |            |      |          |      |            |             | total         | 11,285,224 |
"""

from typing import NamedTuple

import keras
from keras import layers

from cnnkit.blocks import classifier, conv_bn
from cnnkit.layers import LocalResponseNormalization
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["googlenet", "inception_v2", "inception_module", "bn_inception_module",
           "auxiliary_classifier", "Inception", "BNInception", "GOOGLENET_STAGES",
           "BN_INCEPTION_MODULES"]


class Inception(NamedTuple):
    """One inception module of GoogLeNet's Table 1: the filters of its four columns."""

    n1x1: int  # "#1x1": the 1x1 column
    n3x3red: int  # "#3x3 reduce": the 1x1 before the 3x3
    n3x3: int  # "#3x3"
    n5x5red: int  # "#5x5 reduce": the 1x1 before the 5x5
    n5x5: int  # "#5x5"
    pool_proj: int  # "pool proj": the 1x1 after the 3x3 max pool


# Table 1, one Inception per module, by stage; a 3x3/2 max pool sits between stages.
#                         #1x1  #3x3 reduce  #3x3  #5x5 reduce  #5x5  pool proj
GOOGLENET_STAGES = {
    3: {"3a": Inception(  64,         96,  128,          16,   32,        32),
        "3b": Inception( 128,        128,  192,          32,   96,        64)},
    4: {"4a": Inception( 192,         96,  208,          16,   48,        64),
        "4b": Inception( 160,        112,  224,          24,   64,        64),
        "4c": Inception( 128,        128,  256,          24,   64,        64),
        "4d": Inception( 112,        144,  288,          32,   64,        64),
        "4e": Inception( 256,        160,  320,          32,  128,       128)},
    5: {"5a": Inception( 256,        160,  320,          32,  128,       128),
        "5b": Inception( 384,        192,  384,          48,  128,       128)},
}
AUX_TAPS = ("4a", "4d")  # Section 5: the auxiliary classifiers sit on these modules' outputs
AUX_MIN_SIZE = 65  # smallest input whose 4a maps (input / 16) still hold one 5x5 pooling window



class BNInception(NamedTuple):
    """One module of BN-Inception's Figure 5: its columns' filters and its pooling.

    n1x1 0 means no 1x1 column, pool_proj 0 that the pooled maps pass through unprojected.
    """

    n1x1: int  # "#1x1"
    n3x3red: int  # "#3x3 reduce": the 1x1 before the 3x3
    n3x3: int  # "#3x3"
    double3x3red: int  # "double #3x3 reduce": the 1x1 before the two 3x3
    double3x3: int  # "double #3x3": each of the two 3x3
    pool: str  # "Pool +proj": a 3x3 "avg" or "max" pool ...
    pool_proj: int  # ... and its 1x1 projection


# Figure 5, one BNInception per module.
#                    #1x1  #3x3 reduce  #3x3  double reduce  double #3x3  pool  proj
BN_INCEPTION_MODULES = {
    "3a": BNInception(  64,         64,   64,            64,          96, "avg",  32),
    "3b": BNInception(  64,         64,   96,            64,          96, "avg",  64),
    "3c": BNInception(   0,        128,  160,            64,          96, "max",   0),
    "4a": BNInception( 224,         64,   96,            96,         128, "avg", 128),
    "4b": BNInception( 192,         96,  128,            96,         128, "avg", 128),
    "4c": BNInception( 160,        128,  160,           128,         160, "avg", 128),
    "4d": BNInception(  96,        128,  192,           160,         192, "avg", 128),
    "4e": BNInception(   0,        128,  192,           192,         256, "max",   0),
    "5a": BNInception( 352,        192,  320,           160,         224, "avg", 128),
    "5b": BNInception( 352,        192,  320,           192,         224, "max", 128),
}
BN_STRIDED = ("3c", "4e")  # these modules halve the maps: there is no pooling layer between stages
_POOLING = {"avg": layers.AveragePooling2D, "max": layers.MaxPooling2D}


def _conv(x, filters, kernel_size, name):
    return layers.Conv2D(filters, kernel_size, padding="same", activation="relu", name=name)(x)


def _lrn(name):
    # The paper gives no constants; these are the Caffe reference model's (bvlc_googlenet): size
    # 5, alpha 1e-4, beta 0.75, k 1. Caffe divides alpha by the size, the layer here does not.
    return LocalResponseNormalization(size=5, k=1.0, alpha=1e-4 / 5, beta=0.75, name=name)


def inception_module(x, filters, *, name):
    """GoogLeNet's module (Figure 2b): 1x1, 3x3 and 5x5 convolutions and a 3x3 max pool side by
    side, concatenated; 1x1 "reduce" convolutions shrink the channels before the costly ones.
    `filters`: an Inception row, or its six numbers as a plain tuple."""
    f = Inception(*filters)
    branch1 = _conv(x, f.n1x1, 1, f"{name}_1x1")
    branch3 = _conv(_conv(x, f.n3x3red, 1, f"{name}_3x3_reduce"), f.n3x3, 3, f"{name}_3x3")
    branch5 = _conv(_conv(x, f.n5x5red, 1, f"{name}_5x5_reduce"), f.n5x5, 5, f"{name}_5x5")
    pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    pool = _conv(pool, f.pool_proj, 1, f"{name}_pool_proj")
    return layers.Concatenate(name=f"{name}_output")([branch1, branch3, branch5, pool])


def auxiliary_classifier(x, classes, activation, *, name):
    """Section 5's side classifier: 5x5/3 average pool, 1x1 conv 128, dense 1024, 70% dropout.

    It adds gradient to the middle of the network while training; at test time it is dropped.
    """
    x = layers.AveragePooling2D(5, strides=3, name=f"{name}_pool")(x)
    x = _conv(x, 128, 1, f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(0.7, name=f"{name}_dropout")(x)
    return layers.Dense(classes, activation=activation, name=f"{name}_predictions")(x)


def _check_aux(aux_logits, include_top, shape):
    if not isinstance(aux_logits, bool):
        raise ValueError(f"aux_logits must be True or False; got {aux_logits!r}.")
    if not aux_logits:
        return
    if not include_top:
        raise ValueError("aux_logits=True adds classifiers, so it needs include_top=True; use "
                         "aux_logits=False for a headless feature extractor.")
    if None in shape[:2]:
        raise ValueError("aux_logits=True flattens the auxiliary classifiers' maps, so it needs a "
                         f"fixed input size; got {shape}. Give input_shape=(224, 224, 3).")
    if min(shape[:2]) < AUX_MIN_SIZE:
        raise ValueError(f"aux_logits=True needs inputs of at least {AUX_MIN_SIZE}x{AUX_MIN_SIZE} "
                         f"pixels (the 5x5 pooling on 4a's maps); got {shape[0]}x{shape[1]}. Use "
                         "a larger input_shape or aux_logits=False.")


def googlenet(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
              classes=1000, classifier_activation="softmax", aux_logits=False, name="googlenet"):
    """GoogLeNet as in Table 1 and Figure 3 of the paper: no BatchNorm, 5x5 columns, LRN.

    Paper: "Going Deeper with Convolutions", Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan,
    Vanhoucke and Rabinovich, 2014 (CVPR 2015). aux_logits=True adds the two auxiliary
    classifiers of Section 5 as extra outputs, [main, aux on 4a, aux on 4d]; the paper weights
    their losses by 0.3 (`loss_weights=[1, 0.3, 0.3]` in compile). They flatten their maps, so
    they need a fixed input size; their parameter count above is for 224x224.

    Choices the paper leaves open follow the Caffe reference model bvlc_googlenet: the 7x7
    convolution pads 3 pixels each side, the LRN constants; the 7x7 average pool is a global one,
    the same at 224x224 and usable at any size.
    """
    args = check_args("googlenet", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    _check_aux(aux_logits, include_top, args.input_shape)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(64, 7, strides=2, activation="relu", name="conv1_7x7_s2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = _lrn("pool1_norm1")(x)
    x = _conv(x, 64, 1, "conv2_3x3_reduce")
    x = _conv(x, 192, 3, "conv2_3x3")
    x = _lrn("conv2_norm2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    aux = []
    for stage, modules in GOOGLENET_STAGES.items():
        if stage > 3:
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"pool{stage - 1}_3x3_s2")(x)
        for module, filters in modules.items():
            x = inception_module(x, filters, name=f"inception_{module}")
            if aux_logits and module in AUX_TAPS:
                aux.append(auxiliary_classifier(x, args.classes, classifier_activation,
                                                name=f"aux_{module}"))
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation, dropout=0.4)
    outputs = [x, *aux] if aux_logits else x
    return load_weights(keras.Model(inputs, outputs, name=name), weights)


def bn_inception_module(x, filters, *, name, strides=1):
    """BN-Inception's module (Figure 5): every convolution is followed by BatchNorm, and the 5x5
    column is two 3x3 convolutions (same receptive field, 18 instead of 25 weights per pair of
    channels). With strides=2 the last layer of each column halves the maps and the pooled maps
    pass through unprojected, so the module also grows the channels: a grid reduction.
    `filters`: a BNInception row, or its seven values as a plain tuple."""
    f = BNInception(*filters)
    branches = [conv_bn(x, f.n1x1, 1, name=f"{name}_1x1")] if f.n1x1 else []
    branch = conv_bn(x, f.n3x3red, 1, name=f"{name}_3x3_reduce")
    branches.append(conv_bn(branch, f.n3x3, 3, strides=strides, name=f"{name}_3x3"))
    branch = conv_bn(x, f.double3x3red, 1, name=f"{name}_double_3x3_reduce")
    branch = conv_bn(branch, f.double3x3, 3, name=f"{name}_double_3x3_1")
    branches.append(conv_bn(branch, f.double3x3, 3, strides=strides,
                            name=f"{name}_double_3x3_2"))
    pool = _POOLING[f.pool](3, strides=strides, padding="same", name=f"{name}_pool")(x)
    branches.append(conv_bn(pool, f.pool_proj, 1, name=f"{name}_pool_proj") if f.pool_proj
                    else pool)
    return layers.Concatenate(name=f"{name}_output")(branches)


def inception_v2(include_top=True, weights=None, input_tensor=None, input_shape=None,
                 pooling=None, classes=1000, classifier_activation="softmax",
                 name="inception_v2"):
    """BN-Inception, the network of Figure 5, often called Inception v2.

    Paper: "Batch Normalization: Accelerating Deep Network Training by Reducing Internal
    Covariate Shift", Ioffe and Szegedy, 2015. GoogLeNet with BatchNorm (scale and shift, as
    Algorithm 1) after every convolution, 5x5 columns replaced by two 3x3, three 28x28 modules,
    and strided modules 3c and 4e in place of the pooling layers between stages. As in the
    paper's Section 4.2.1 there is no LRN and no dropout. The stem is Figure 5's plain 7x7/2
    convolution (TF-slim's inception_v2 makes it depthwise separable; the figure does not), padded
    3 pixels each side as in GoogLeNet. The figure's output sizes 3c 28x28 and 4c, 4d 576 and 4e
    1024 contradict its own filter columns; the columns are followed (14x14, 608, 608, 1056).
    """
    args = check_args("inception_v2", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = conv_bn(x, 64, 7, strides=2, padding="valid", name="conv1_7x7_s2")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool1_3x3_s2")(x)
    x = conv_bn(x, 64, 1, name="conv2_3x3_reduce")
    x = conv_bn(x, 192, 3, name="conv2_3x3")
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="pool2_3x3_s2")(x)
    for module, filters in BN_INCEPTION_MODULES.items():
        strides = 2 if module in BN_STRIDED else 1
        x = bn_inception_module(x, filters, strides=strides, name=f"inception_{module}")
    x = classifier(x, include_top=include_top, pooling=pooling, classes=args.classes,
                   activation=classifier_activation)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: the two convolutions, each with the pooling after it, and the inception groups 3, 4
# and 5 of Table 1 (GoogLeNet's 3 and 4 closed by their pooling, v2's by their strided module).
googlenet = register("googlenet", googlenet, family="inception",
                     paper="Going Deeper with Convolutions", year=2014,
                     input_shape=(224, 224, 3), min_size=1, params=6_998_552,
                     taps=(Tap("conv1", "pool1_norm1", 4), Tap("conv2", "pool2_3x3_s2", 8),
                           Tap("inception3", "pool3_3x3_s2", 16),
                           Tap("inception4", "pool4_3x3_s2", 32),
                           Tap("inception5", "inception_5b_output", 32)))
inception_v2 = register(
    "inception_v2", inception_v2, family="inception",
    paper="Batch Normalization: Accelerating Deep Network Training by Reducing Internal "
          "Covariate Shift", year=2015, input_shape=(224, 224, 3), min_size=1, params=11_285_224,
    taps=(Tap("conv1", "pool1_3x3_s2", 4), Tap("conv2", "pool2_3x3_s2", 8),
          Tap("inception3", "inception_3c_output", 16),
          Tap("inception4", "inception_4e_output", 32),
          Tap("inception5", "inception_5b_output", 32)))
