"""FCN: VGG16 made fully convolutional, its coarse class scores upsampled and fused with finer ones.

VGG16's classifier read as convolutions ("convolutionalization"): fc6 is a 7x7 convolution over
pool5 and fc7 a 1x1 convolution, with exactly the weights of the dense fc1 and fc2 reshaped, so
the network slides over an image of any size and outputs a map of class scores. Layer names are
the Caffe release's (fcn.berkeleyvision.org); sizes for an HxW input (H, W divisible by 32),
parameters for 21 classes (PASCAL VOC, background included):

| layer          | what                                        | map  | parameters  | in      |
|----------------|---------------------------------------------|------|------------:|---------|
| block1..block5 | registered vgg16, headless                  | H/32 |  14,714,688 | all     |
| fc6            | conv 7x7, 4096, "same", ReLU, dropout 0.5   | H/32 | 102,764,544 | all     |
| fc7            | conv 1x1, 4096, ReLU, dropout 0.5           | H/32 |  16,781,312 | all     |
| score_fr       | conv 1x1 to the classes                     | H/32 |      86,037 | all     |
| upscore2       | 2x up-conv 4x4, bilinear start, learned     | H/16 |       7,056 | 16s, 8s |
| score_pool4    | conv 1x1 on block4_pool, zero start         | H/16 |      10,773 | 16s, 8s |
| fuse_pool4     | sum of the two                              | H/16 |           0 | 16s, 8s |
| upscore_pool4  | 2x up-conv 4x4, bilinear start, learned     | H/8  |       7,056 | 8s      |
| score_pool3    | conv 1x1 on block3_pool, zero start         | H/8  |       5,397 | 8s      |
| fuse_pool3     | sum of the two                              | H/8  |           0 | 8s      |
| upscore        | 32x up-conv 64x64, fixed bilinear           | H    |  (1,806,336)| 32s     |
| upscore16      | 16x up-conv 32x32, fixed bilinear           | H    |    (451,584)| 16s     |
| upscore8       | 8x up-conv 16x16, fixed bilinear            | H    |    (112,896)| 8s      |
| predictions    | softmax over the classes                    | H    |           0 | all     |

The fixed upsamplings' weights (in brackets) are saved but not trained. Trainable parameters:
fcn32s 134,346,581, fcn16s 134,364,410, fcn8s 134,376,863. fc6 holds 7*7*512*4096 + 4096 =
25088*4096 + 4096 parameters, exactly VGG16's fc1, and fc7 exactly fc2's.

Taps: the paper's pool1..pool5 (Fig. 3), VGG16's `block1_pool`..`block5_pool` (strides 2..32);
the skips read pool4 and pool3.
"""

import keras
from keras import layers

from cnnkit.layers import BilinearUpsampling
from cnnkit.models import vgg  # noqa: F401  (registers vgg16, whose taps are FCN's)
from cnnkit.registry import Tap, build, model_info, register, tap_layers
from cnnkit.validation import check_args, check_multiple, load_weights, model_inputs

__all__ = ["fcn", "fcn32s", "fcn16s", "fcn8s", "FCN_CONFIGS", "bilinear_upsampling"]

# name -> (output stride of the last fusion, trainable parameters at 21 classes)
FCN_CONFIGS = {
    "fcn32s": (32, 134_346_581),
    "fcn16s": (16, 134_364_410),
    "fcn8s": (8, 134_376_863),
}

# The skips, coarse to fine: (stride, VGG16's declared tap, Caffe's names of the pool and of the
# 2x upsampling that brings the coarser scores to it).
SKIPS = ((16, "block4", "pool4", "upscore2"), (8, "block3", "pool3", "upscore_pool4"))


def bilinear_upsampling(x, factor, *, name, trainable=True):
    """Transposed convolution that upsamples each channel `factor` times, initialised bilinear.

    Kernel 2*factor, stride factor, "same" cropping and no bias, as FCN's Deconvolution layers.
    trainable=False keeps it a fixed bilinear interpolation (its weights are still saved).
    """
    return layers.Conv2DTranspose(x.shape[-1], 2 * factor, strides=factor, padding="same",
                                  use_bias=False, kernel_initializer=BilinearUpsampling(),
                                  trainable=trainable, name=name)(x)


def convolutionalized_classifier(x, classes):
    """VGG16's fc6 and fc7 as convolutions (with their dropout), then `score_fr` to classes."""
    x = layers.Conv2D(4096, 7, padding="same", activation="relu", name="fc6")(x)
    x = layers.Dropout(0.5, name="fc6_dropout")(x)
    x = layers.Conv2D(4096, 1, activation="relu", name="fc7")(x)
    x = layers.Dropout(0.5, name="fc7_dropout")(x)
    return layers.Conv2D(classes, 1, name="score_fr")(x)


def fcn(config, /, weights=None, input_tensor=None, input_shape=None, classes=21,
        classifier_activation="softmax", name=None):
    """FCN-32s, FCN-16s or FCN-8s on the registered VGG16, `config` "fcn32s", "fcn16s", "fcn8s".

    Paper: "Fully Convolutional Networks for Semantic Segmentation", Long, Shelhamer and Darrell,
    2015 (CVPR; PAMI 2016). Section 3.1 convolutionalizes the classifier, Section 3.3 upsamples
    in the network with a transposed ("backwards strided") convolution, Section 4.2 and Figure 3
    add the skips: FCN-16s sums 2x-upsampled stride-32 scores with 1x1 scores of pool4, FCN-8s
    then adds pool3 the same way. Output (batch, H, W, classes); H and W divisible by 32.

    Upsampling as Section 4.3 ("Dense Prediction"): the intermediate 2x layers start bilinear and
    are learned, the final 8x/16x/32x layer is fixed to bilinear interpolation (trainable=False).
    The reference Caffe release fixes all of them (lr_mult 0): its authors found no difference.
    score_pool4 and score_pool3 start at zero, as the paper's, so the skips leave the coarser
    net's predictions unchanged at the start.

    Simplified:
    - No 100-pixel padding and crop. The paper pads conv1_1 by 100 and uses fc6 without padding,
      then crops every score map back into line (Caffe pools round up); here fc6 is padded
      ("same") and the input must be divisible by 32, so every map is exactly H/2^k and the
      skips and the output line up with no crop: at 224x224, fc6's centre pixel sees exactly
      the 7x7 pool5 map that VGG16's fc1 saw.
    - score_fr starts random (Keras's default), where the paper zero-initialises it (Section 4.3,
      "Optimization"; it fine-tunes ImageNet VGG16): from scratch a zero classifier would stop
      every gradient into the backbone on the first step.
    - Trained at once from scratch (weights=None); the paper trains 32s, then 16s from 32s, then
      8s from 16s, on ImageNet VGG16.
    """
    stride, _ = FCN_CONFIGS[config]
    name = config if name is None else name
    args = check_args(config, weights=weights, input_tensor=input_tensor,
                      input_shape=input_shape, classes=classes,
                      classifier_activation=classifier_activation)
    check_multiple(config, args.input_shape, 32, "the stride of block5_pool, so that its "
                   "upsampled scores line up with the skips and the image")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    vgg = build("vgg16", include_top=False, input_tensor=x)
    taps = tap_layers(vgg, "vgg16")  # {"block1": its pool layer, ..., "block5": ...}
    x = convolutionalized_classifier(taps["block5"].output, args.classes)
    for skip_stride, tap, pool, upscore in SKIPS:
        if skip_stride < stride:
            break
        x = bilinear_upsampling(x, 2, name=upscore)
        score = layers.Conv2D(args.classes, 1, kernel_initializer="zeros",
                              name=f"score_{pool}")(taps[tap].output)
        x = layers.Add(name=f"fuse_{pool}")([x, score])
    x = bilinear_upsampling(x, stride, name="upscore" if stride == 32 else f"upscore{stride}",
                            trainable=False)
    x = layers.Activation(classifier_activation, name="predictions")(x)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: the registered vgg16's block1..block5 taps, under the paper's names pool1..pool5.
FCN = dict(family="fcn", paper="Fully Convolutional Networks for Semantic Segmentation",
           year=2015, input_shape=(224, 224, 3), min_size=32, classes=21, task="segmentation",
           taps=tuple(Tap(f"pool{b}", tap.layer, tap.stride)
                      for b, tap in enumerate(model_info("vgg16").taps, start=1)))

fcn32s = register("fcn32s", fcn, "fcn32s", **FCN, params=FCN_CONFIGS["fcn32s"][1])
fcn16s = register("fcn16s", fcn, "fcn16s", **FCN, params=FCN_CONFIGS["fcn16s"][1])
fcn8s = register("fcn8s", fcn, "fcn8s", **FCN, params=FCN_CONFIGS["fcn8s"][1])
