"""Local response normalization, the "brightness normalization" of AlexNet and GoogLeNet."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cnnkit")
class LocalResponseNormalization(keras.layers.Layer):
    """Divide each activation by the energy of its `size` neighbouring channels at that pixel.

    From "ImageNet Classification with Deep Convolutional Neural Networks" (Krizhevsky,
    Sutskever and Hinton, 2012), Section 3.3:
        b[c] = a[c] / (k + alpha * sum(a[c']**2 for c' within size//2 of c)) ** beta
    with the paper's k = 2, size n = 5, alpha = 1e-4, beta = 0.75. Neurons compete with their
    neighbours across channels ("lateral inhibition"). alpha multiplies the sum, not the mean,
    as in the paper and in Caffe's and TensorFlow's versions.
    """

    def __init__(self, size=5, k=2.0, alpha=1e-4, beta=0.75, **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"size must be an odd number of channels >= 1; got {size}.")
        self.size, self.k, self.alpha, self.beta = int(size), float(k), float(alpha), float(beta)

    def call(self, x):
        channels = x.shape[-1]
        half = self.size // 2
        squares = ops.pad(ops.square(x), [[0, 0]] * (len(x.shape) - 1) + [[half, half]])
        # A sum of `size` shifted slices: exact, and the same code on every backend.
        energy = squares[..., 0:channels]
        for shift in range(1, self.size):
            energy = energy + squares[..., shift:shift + channels]
        return x / ops.power(self.k + self.alpha * energy, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "k": self.k, "alpha": self.alpha,
                "beta": self.beta}
