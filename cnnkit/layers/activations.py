"""Activations that Keras does not ship, registered so saved models load with safe_mode=True."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cnnkit")
def scaled_tanh(x):
    """LeNet-5's squashing function f(a) = A tanh(S a), A = 1.7159, S = 2/3.

    From "Gradient-Based Learning Applied to Document Recognition" (LeCun et al., 1998),
    Appendix A: the constants make f(1) = 1 and f(-1) = -1, and keep the gain near 1 where
    inputs are normalised, so the units stay out of saturation early in training.
    """
    return 1.7159 * ops.tanh((2.0 / 3.0) * x)
