"""LeNet-5, the network that read bank cheques: two convolutions, two subsamplings, three dense layers.

| layer  | paper | here                                     | output (32x32x1 input) | parameters |
|--------|-------|------------------------------------------|------------------------|-----------:|
| c1     | C1    | 6 convolutions 5x5, valid, A·tanh(S·a)   | 28x28x6                |        156 |
| s2     | S2    | 2x2 average pooling, stride 2            | 14x14x6                |          0 |
| c3     | C3    | 16 convolutions 5x5, valid               | 10x10x16               |      2,416 |
| s4     | S4    | 2x2 average pooling, stride 2            | 5x5x16                 |          0 |
| c5     | C5    | 120 units over the flattened 5x5x16 maps | 120                    |     48,120 |
| f6     | F6    | 84 units                                 | 84                     |     10,164 |
| output | RBF   | `classes` units, softmax                 | 10                     |        850 |
|        |       |                                          | total                  |     61,706 |
"""

import keras
from keras import layers

from cnnkit.blocks import global_pool
from cnnkit.layers import scaled_tanh
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["lenet5"]


def lenet5(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes=10, classifier_activation="softmax", name="lenet5"):
    """LeNet-5 as a Keras functional model.

    Paper: "Gradient-Based Learning Applied to Document Recognition", LeCun, Bottou, Bengio and
    Haffner, 1998. Section II.B and Appendix A give the layers and the A·tanh(S·a) squashing.

    Simplified, as almost every modern reading does (and as the 61,706 count assumes):
    - S2 and S4 are plain 2x2 averages; the paper multiplies each map's average by a trainable
      coefficient, adds a trainable bias and squashes it (12 and 32 more parameters).
    - C3 sees all six S2 maps; the paper's Table I connects each C3 map to a subset of them.
    - The output is a dense softmax layer; the paper used Euclidean radial basis units.
    The paper's own network has "340,908 connections, but only 60,000 trainable free parameters".
    C5 is a dense layer over the flattened S4 maps: the paper calls it a convolution because its
    5x5 kernels cover the whole 5x5 map, which is the same computation for a 32x32 input.
    """
    args = check_args("lenet5", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    x = layers.Conv2D(6, 5, activation=scaled_tanh, name="c1_conv")(x)
    x = layers.AveragePooling2D(2, name="s2_pool")(x)
    x = layers.Conv2D(16, 5, activation=scaled_tanh, name="c3_conv")(x)
    x = layers.AveragePooling2D(2, name="s4_pool")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(120, activation=scaled_tanh, name="c5_dense")(x)
        x = layers.Dense(84, activation=scaled_tanh, name="f6_dense")(x)
        x = layers.Dense(args.classes, activation=classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: the two feature stages, each a convolution with the subsampling after it (C1 + S2,
# C3 + S4); C5 onwards reads the whole map, so it is the head.
lenet5 = register("lenet5", lenet5, family="lenet",
                  paper="Gradient-Based Learning Applied to Document Recognition", year=1998,
                  input_shape=(32, 32, 1), min_size=16, classes=10, params=61_706,
                  fixed_size_top=True, taps=(Tap("c1", "s2_pool", 2), Tap("c3", "s4_pool", 4)))
