"""Custom layers and activations, each registered for `.keras` serialization (no Lambda)."""

from cnnkit.layers.activations import scaled_tanh
from cnnkit.layers.channels import ChannelShuffle, ChannelSplit
from cnnkit.layers.convolution import GroupConv2D
from cnnkit.layers.initializers import BilinearUpsampling, bilinear_kernel
from cnnkit.layers.normalization import LocalResponseNormalization

__all__ = ["scaled_tanh", "ChannelShuffle", "ChannelSplit", "GroupConv2D",
           "LocalResponseNormalization"]
__all__ += ["BilinearUpsampling", "bilinear_kernel"]
