"""Layers that rearrange channels: ShuffleNet's channel shuffle and a channel split."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="cnnkit")
class ChannelShuffle(keras.layers.Layer):
    """Interleave the channels of `groups` groups, so the next group convolution mixes them.

    From "ShuffleNet: An Extremely Efficient Convolutional Neural Network for Mobile Devices"
    (Zhang, Zhou, Lin and Sun, 2017), Fig. 1: reshape the C channels to (groups, C/groups),
    transpose to (C/groups, groups) and flatten back. Channel c = g * (C/groups) + i moves to
    position i * groups + g. It has no weights and keeps the shape.
    """

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        if int(groups) < 1:
            raise ValueError(f"groups must be a whole number >= 1; got {groups!r}.")
        self.groups = int(groups)

    def build(self, input_shape):
        if input_shape[-1] % self.groups:
            raise ValueError(f"ChannelShuffle: {input_shape[-1]} channels do not split into "
                             f"{self.groups} equal groups; use a channel count divisible by it.")

    def call(self, x):
        channels = x.shape[-1]
        shape = ops.shape(x)
        x = ops.reshape(x, (-1, shape[1], shape[2], self.groups, channels // self.groups))
        x = ops.transpose(x, (0, 1, 2, 4, 3))
        return ops.reshape(x, (-1, shape[1], shape[2], channels))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@keras.saving.register_keras_serializable(package="cnnkit")
class ChannelSplit(keras.layers.Layer):
    """Split the channels (last axis) into consecutive parts of the given sizes: a list out.

    Keras has Concatenate but no inverse of it; ShuffleNetV2's channel split, DPN's residual
    and dense parts and GhostNet's trimming all need one, and a Lambda would not load in
    safe mode. `sizes` is a list of channel counts, or an int n for n equal parts.
    """

    def __init__(self, sizes, **kwargs):
        super().__init__(**kwargs)
        self.sizes = int(sizes) if isinstance(sizes, int) else [int(s) for s in sizes]

    def _sizes(self, channels):
        if isinstance(self.sizes, int):
            if channels % self.sizes:
                raise ValueError(f"ChannelSplit: {channels} channels do not split into "
                                 f"{self.sizes} equal parts.")
            return [channels // self.sizes] * self.sizes
        if sum(self.sizes) != channels:
            raise ValueError(f"ChannelSplit: sizes {self.sizes} add up to {sum(self.sizes)}, "
                             f"but the input has {channels} channels.")
        return self.sizes

    def build(self, input_shape):
        self._sizes(input_shape[-1])

    def call(self, x):
        parts, start = [], 0
        for size in self._sizes(x.shape[-1]):
            parts.append(x[..., start:start + size])
            start += size
        return parts

    def compute_output_shape(self, input_shape):
        return [(*input_shape[:-1], size) for size in self._sizes(input_shape[-1])]

    def get_config(self):
        return {**super().get_config(), "sizes": self.sizes}
