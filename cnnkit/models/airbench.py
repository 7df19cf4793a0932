"""airbench94, the network of "94% on CIFAR-10 in 3.29 seconds": a whitening layer and three
convolution groups, about 2 million parameters.

| layer          | here                                                       | output (32x32x3) | trainable |
|----------------|------------------------------------------------------------|------------------|----------:|
| whitening      | 2x2 convolution, valid, 24 filters, FROZEN (only its bias) | 31x31x24         |        24 |
| block1 (64)    | conv 3x3 · max pool 2 · BN · GELU · conv 3x3 · BN · GELU   | 15x15x64         |    50,816 |
| block2 (256)   | the same, 256 filters                                      | 7x7x256          |   737,792 |
| block3 (256)   | the same, 256 filters                                      | 3x3x256          | 1,180,160 |
| head           | global max pool (the paper's 3x3 max pool), dense, x 1/9   | 10               |     2,560 |
|                |                                                            | total            | 1,971,352 |

Each block's convolutions have no bias (BatchNorm's β is the bias), its BatchNorms no scale γ
(fixed at 1), momentum 0.6 in Keras's convention (PyTorch's 0.4) and epsilon 1e-12. Every
convolution starts as the identity on its first input channels ("identity initialisation"):
the first `c_in` filters pass their input channel through unchanged, the others are PyTorch's
default uniform. The whitening filters are set from the training images' 2x2 patches by
`cnnkit.fast_training.init_whitening`; until then they hold a random draw.
"""

import keras
import numpy as np
from keras import layers

from cnnkit.blocks import global_pool
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["airbench94", "PatchWhitening", "PartialIdentity", "WIDTHS", "WHITEN_KERNEL"]

WIDTHS = (64, 256, 256)  # the three convolution groups of airbench94
WHITEN_KERNEL = 2  # 2x2 patches of 3 channels: 12 dimensions, each eigenvector twice (+ and -)
BN_MOMENTUM, BN_EPSILON = 0.6, 1e-12
LOGIT_SCALE = 1 / 9  # the logits are scaled down before the softmax


@keras.saving.register_keras_serializable(package="cnnkit")
class PartialIdentity(keras.initializers.Initializer):
    """Convolution kernel whose first min(c_in, c_out) filters are the identity (filter i passes
    input channel i through at the kernel's centre) and the rest PyTorch's default
    U(±1/sqrt(fan_in)), as airbench initialises every convolution (torch.nn.init.dirac_ on the
    first c_in filters)."""

    def __init__(self, seed=None):
        self.seed = seed
        self._fallback = keras.initializers.VarianceScaling(
            scale=1 / 3, mode="fan_in", distribution="uniform", seed=seed)

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        kernel = keras.ops.convert_to_numpy(self._fallback(shape, dtype="float32")).copy()
        n = min(c_in, c_out)
        kernel[:, :, :, :n] = 0.0
        kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        return keras.ops.convert_to_tensor(
            kernel, dtype=keras.backend.standardize_dtype(dtype or keras.backend.floatx()))

    def get_config(self):
        return {"seed": self.seed}


@keras.saving.register_keras_serializable(package="cnnkit")
class PatchWhitening(layers.Conv2D):
    """A valid convolution whose kernel is frozen (set from data, never trained) and whose bias
    trains: airbench's first layer. `frozen=False` makes it an ordinary trainable convolution,
    for the experiment without whitening."""

    def __init__(self, filters, kernel_size, frozen=True, **kwargs):
        kwargs.setdefault("padding", "valid")
        super().__init__(filters, kernel_size, use_bias=True, **kwargs)
        self.frozen = frozen

    def build(self, input_shape):
        super().build(input_shape)
        if self.frozen:
            self.kernel.trainable = False

    def get_config(self):
        config = super().get_config()
        config.pop("use_bias", None)
        return {**config, "frozen": self.frozen}


def _torch_uniform(seed=None):
    return keras.initializers.VarianceScaling(scale=1 / 3, mode="fan_in", distribution="uniform",
                                              seed=seed)


def conv_group(x, filters, name, identity_init=True):
    """airbench's ConvGroup: conv · pool · BN · GELU · conv · BN · GELU (no bias, no γ)."""
    init = PartialIdentity if identity_init else _torch_uniform
    for i in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init(),
                          name=f"{name}_conv{i}")(x)
        if i == 1:  # pooling before BatchNorm: the statistics of the smaller map
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = layers.BatchNormalization(scale=False, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                                      name=f"{name}_bn{i}")(x)
        x = layers.Activation("gelu", name=f"{name}_gelu{i}")(x)
    return x


def airbench94(include_top=True, weights=None, input_tensor=None, input_shape=None, pooling=None,
               classes=10, classifier_activation="softmax", name="airbench94", widths=WIDTHS,
               whitening="frozen", identity_init=True):
    """airbench94 as a Keras functional model.

    Paper: "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", Keller Jordan, 2024 (arXiv
    2404.00498), Section 3.1 and Figure 2. `widths` are the three groups' filters (a narrower
    network for a CPU); `whitening="trainable"` and `identity_init=False` undo two of its tricks,
    for the experiments that measure them.

    Simplified: the paper's final 3x3 max pool is a global max pool (the same on 32x32 images,
    whose last maps are 3x3, and defined on any size); the network runs in float32 unless a
    mixed precision policy is set (the paper's runs are float16, keras.mixed_precision gives
    bfloat16).
    """
    args = check_args("airbench94", include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    if whitening not in ("frozen", "trainable"):
        raise ValueError(f"whitening must be 'frozen' or 'trainable'; got {whitening!r}.")
    if len(widths) != 3 or not all(isinstance(w, (int, np.integer)) and w >= 1 for w in widths):
        raise ValueError(f"widths must be three whole numbers >= 1; got {widths!r}.")
    inputs, x = model_inputs(input_tensor, args.input_shape)
    channels = args.input_shape[2]
    x = PatchWhitening(2 * channels * WHITEN_KERNEL ** 2, WHITEN_KERNEL,
                       frozen=whitening == "frozen", name="whiten")(x)
    x = layers.Activation("gelu", name="whiten_gelu")(x)
    for i, filters in enumerate(widths, start=1):
        x = conv_group(x, int(filters), f"block{i}", identity_init)
    if include_top:
        x = layers.GlobalMaxPooling2D(name="pool")(x)
        x = layers.Dense(args.classes, use_bias=False, kernel_initializer=_torch_uniform(),
                         name="fc")(x)
        x = layers.Rescaling(LOGIT_SCALE, name="logit_scale")(x)
        x = layers.Activation(classifier_activation, name="predictions")(x)
    else:
        x = global_pool(x, pooling)
    return load_weights(keras.Model(inputs, x, name=name), weights)


# Taps: the whitening layer and the three convolution groups of the table above.
airbench94 = register("airbench94", airbench94, family="airbench",
                      paper="94% on CIFAR-10 in 3.29 Seconds on a Single GPU", year=2024,
                      input_shape=(32, 32, 3), min_size=9, classes=10, params=1_971_352,
                      taps=(Tap("whitening", "whiten_gelu", 1), Tap("block1", "block1_gelu2", 2),
                            Tap("block2", "block2_gelu2", 4), Tap("block3", "block3_gelu2", 8)))
