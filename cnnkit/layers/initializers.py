"""Initializers that carry a meaning of their own, registered for `.keras` files (safe mode)."""

import keras
import numpy as np

__all__ = ["BilinearUpsampling", "bilinear_kernel"]


def bilinear_kernel(size):
    """The (size, size) kernel with which a stride-`(size + 1) // 2` transposed convolution
    interpolates bilinearly: the outer product of a triangle with itself.

    It is the Caffe FCN release's `upsample_filt`: for a factor f the kernel is 2f wide,
    centred at f - 0.5, and falls from 1 to 0 over f pixels, so 4x4 gives 0.25, 0.75, 0.75, 0.25
    on each axis. With the transposed convolution cropping f/2 pixels on each side (Keras's
    padding="same"), output pixel o takes 1 - |(o + 0.5) / f - 0.5 - i| of input pixel i:
    bilinear interpolation between pixel centres.
    """
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    triangle = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(triangle, triangle)


@keras.saving.register_keras_serializable(package="cnnkit")
class BilinearUpsampling(keras.initializers.Initializer):
    """Kernel of a `Conv2DTranspose` that upsamples every channel bilinearly, on its own.

    Long, Shelhamer and Darrell (FCN, 2015) initialise each in-network upsampling this way: the
    kernel (kh, kw, out_channels, in_channels) holds `bilinear_kernel` on its diagonal (class c
    to class c) and zeros elsewhere, so at the start no class leaks into another. Use it with
    kernel_size = 2 * factor, strides = factor, padding="same", use_bias=False.
    """

    def __call__(self, shape, dtype=None):
        kh, kw, out_channels, in_channels = shape
        if kh != kw:
            raise ValueError(f"BilinearUpsampling needs a square kernel; got {kh}x{kw}.")
        kernel = np.zeros(shape, dtype="float64")
        filt = bilinear_kernel(kh)
        for channel in range(min(out_channels, in_channels)):
            kernel[:, :, channel, channel] = filt
        return keras.ops.convert_to_tensor(
            kernel, dtype=keras.backend.standardize_dtype(dtype or keras.backend.floatx()))

    def get_config(self):
        return {}
