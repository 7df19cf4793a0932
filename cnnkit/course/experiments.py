"""Experiments that lessons run but learners need not read: networks trained side by side.

- `cifar_resnet(n, shortcut)`: the 6n+2-layer networks of ResNet's CIFAR-10 experiment (He et
  al., "Deep Residual Learning for Image Recognition", 2015, Sec. 4.2), plain or residual, built
  from the same `basic_block` as resnet18 and resnet34.
- `train_side_by_side(models, x, y, ...)`: several compiled models trained on the same batches,
  in the same order, one step each in turn, until the epochs are done or a time budget is spent,
  so their loss curves compare like with like (lesson 08's degradation experiment).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers

from cnnkit.blocks import BN_EPSILON, conv_bn, resnet_stage
from cnnkit.models.resnet import basic_block
from cnnkit.course.training import batch_loss, progress_bar

__all__ = ["cifar_resnet", "small_gap_net", "train_side_by_side", "SideBySide"]


def small_gap_net(shape, classes, name):
    """Lesson 15's network: conv 5x5 (16), pool, conv 3x3 (32), pool, conv 3x3 (64), global
    average pooling, a dense layer of logits: the shape CAM needs ("Learning Deep Features for
    Discriminative Localization", Zhou et al., 2016), small enough to train on a CPU."""
    inputs = keras.Input(shape)
    x = keras.layers.Conv2D(16, 5, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool1")(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D(name="pool2")(x)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu", name="conv3")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    return keras.Model(inputs, keras.layers.Dense(classes, name="fc")(x), name=name)


def cifar_resnet(n, shortcut="zero_pad", *, width=16, input_shape=(32, 32, 3), classes=10,
                 name=None):
    """ResNet's CIFAR-10 network of 6n+2 layers (Sec. 4.2), or its plain twin.

    A 3x3 convolution of `width` filters, three stages of n basic blocks with width, 2·width and
    4·width filters on maps of 32, 16 and 8 pixels (the first block of stages 2 and 3 has stride
    2), global average pooling and a `classes`-way softmax: n = 3, 5, 7, 9 give 20, 32, 44 and 56
    layers. As in the paper, shortcut="zero_pad" (option A) gives the residual network exactly
    the parameters of the plain one (shortcut=False); shortcut=True projects instead (option B).
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a whole number >= 1 (6n + 2 layers); got {n!r}.")
    inputs = keras.Input(input_shape, name="image")
    x = conv_bn(inputs, width, 3, name="conv1", epsilon=BN_EPSILON)
    for stage in range(3):
        x = resnet_stage(x, basic_block, n, strides=2 if stage > 0 else 1,
                         name=f"conv{stage + 2}", filters=width * 2 ** stage, shortcut=shortcut,
                         epsilon=BN_EPSILON)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="predictions")(x)
    kind = "plain" if shortcut is False else "resnet"
    return keras.Model(inputs, outputs, name=name or f"{kind}{6 * n + 2}")


@dataclass
class SideBySide:
    """What `train_side_by_side` measured: one loss per step for every model, same batches."""

    losses: dict  # model name -> list of training losses, one per step
    steps_per_epoch: int
    planned_steps: int
    seconds: float
    stopped_early: bool  # the time budget ran out before the planned steps
    step_seconds: dict = field(default_factory=dict)  # model name -> total seconds in its steps

    @property
    def steps(self) -> int:
        return len(next(iter(self.losses.values())))

    @property
    def epochs(self) -> float:
        return self.steps / self.steps_per_epoch

    def _window(self):
        """The last fifth of the run, at most one epoch: long enough to average out the batches."""
        return min(self.steps_per_epoch, max(1, self.steps // 5))

    def smoothed(self, name, window=None):
        """Running mean of `name`'s step losses over `window` steps (default: a fifth of the run,
        at most one epoch)."""
        losses = np.asarray(self.losses[name], dtype=float)
        window = max(1, min(window or self._window(), len(losses)))
        return np.convolve(losses, np.ones(window) / window, mode="valid")

    def final_loss(self, name, last=None):
        """Mean training loss of `name` over its `last` steps (default: the last fifth of the
        run, at most one epoch)."""
        return float(np.mean(self.losses[name][-(last or self._window()):]))


def train_side_by_side(models, x, y, *, batch_size=32, epochs=1, seconds=None, seed=0,
                       drop_remainder=True):
    """Train compiled `models` ({name: model}) on the same shuffled batches of (x, y), in turn.

    Every step draws one batch (a fresh random order each epoch) and gives it to each model's
    `train_on_batch`, so all models see the same examples in the same order and take the same
    number of steps. Training stops after `epochs`, or at the end of the first step that
    finishes after `seconds` have passed (None: no limit). drop_remainder=True skips each
    epoch's partial last batch: every step then has the same shape, so the backend compiles one
    training step per model rather than two. Works on every Keras backend (no tf.data).
    """
    if not models:
        raise ValueError("give at least one model, as {name: compiled model}.")
    n = len(x)
    if n != len(y) or n == 0:
        raise ValueError(f"x and y must hold the same, non-zero number of examples; got {len(x)} "
                         f"and {len(y)}.")
    steps_per_epoch = n // batch_size if drop_remainder else math.ceil(n / batch_size)
    if steps_per_epoch == 0:
        raise ValueError(f"{n} examples make no full batch of {batch_size}: lower batch_size "
                         "or pass drop_remainder=False.")
    planned = epochs * steps_per_epoch
    rng = np.random.default_rng(seed)
    losses = {name: [] for name in models}
    spent = {name: 0.0 for name in models}
    start = time.perf_counter()
    stopped = False
    bar = progress_bar(planned, latest=[f"{name} loss" for name in models])
    for step in range(planned):
        if step % steps_per_epoch == 0:
            order = rng.permutation(n)
        batch = order[(step % steps_per_epoch) * batch_size:][:batch_size]
        xb, yb = x[batch], y[batch]
        for name, model in models.items():
            t = time.perf_counter()
            losses[name].append(batch_loss(model, xb, yb))
            spent[name] += time.perf_counter() - t
        stopped = (seconds is not None and time.perf_counter() - start > seconds
                   and step + 1 < planned)
        bar.update(step + 1, [(f"{name} loss", losses[name][-1]) for name in models],
                   finalize=stopped or step + 1 == planned)
        if stopped:
            break
    return SideBySide(losses=losses, steps_per_epoch=steps_per_epoch, planned_steps=planned,
                      seconds=time.perf_counter() - start, stopped_early=stopped,
                      step_seconds=spent)


def fully_convolutional(model, name=None):
    """`model` with its dense layers turned into convolutions: the same weights, for images of
    any size, giving a map of class scores (VGG's dense evaluation).

    "Very Deep Convolutional Networks for Large-Scale Image Recognition" (Simonyan and
    Zisserman, 2015), Section 3.2: at test time the dense layers become convolutions, "the
    first FC layer to a 7 x 7 conv. layer, the last two FC layers to 1 x 1 conv. layers". The
    first dense layer's kernel, (height·width·channels, units), is reshaped to a (height,
    width, channels, units) convolution kernel: Flatten orders the values row by row, each
    pixel's channels together, exactly as a convolution kernel does, so at the training size
    the output is the model's.
    Larger images give one score vector per position of that window, sliding by the network's
    total stride. The layers before the flatten are the model's own (shared, not copied).
    Simplified: a chain of layers only (VGG's, LeNet's), and no pooling of the score map (that
    is `cnnkit.augment.dense_predict`'s).
    """
    previous = model.inputs[0]
    inputs = keras.Input((None, None, previous.shape[-1]), name=model.layers[0].name)
    x, window = inputs, None  # window: the (height, width) that Flatten flattened
    for layer in model.layers[1:]:
        try:
            chained = layer.input is previous
        except (AttributeError, ValueError):
            chained = False
        if not chained:
            raise ValueError(f"fully_convolutional converts a chain of layers, each taking the "
                             f"one before it; {layer.name!r} does not ({model.name}).")
        previous = layer.output
        if isinstance(layer, layers.Flatten):
            window = tuple(layer.input.shape[1:3])
            continue
        if isinstance(layer, layers.Dense) and len(layer.input.shape) == 2:
            kernel, *bias = layer.get_weights()
            size = window or (1, 1)  # after the first dense layer, each position is 1x1
            # zeros, overwritten at once: random initial weights would cost time to draw
            conv = layers.Conv2D(layer.units, size, activation=layer.activation,
                                 use_bias=layer.use_bias, kernel_initializer="zeros",
                                 name=layer.name)
            conv.build((None, None, None, kernel.shape[0] // (size[0] * size[1])))
            conv.set_weights([kernel.reshape(*size, -1, layer.units), *bias])
            x, window = conv(x), None
            continue
        x = layer(x)
        if len(x.shape) != 4:
            raise ValueError(f"{layer.name!r} ({type(layer).__name__}) turns the maps into "
                             f"vectors {tuple(x.shape)}: only Flatten before dense layers can "
                             "be converted.")
    return keras.Model(inputs, x, name=name or f"{model.name}_fully_convolutional")


__all__ += ["fully_convolutional"]


# --- What RepVGG's training-time branches buy (lesson 12) ---------------------------------------

from cnnkit.models.repvgg import BRANCHES, repvgg_block  # noqa: E402  (beside its users)


def deep_repvgg(depth, branches=BRANCHES, *, width=16, input_shape=(8, 8, 1),
                classes=10, name=None):
    """A deep, narrow RepVGG network: `depth` RepVGG blocks of `width` filters, global average
    pooling and a dense layer of logits; branches=("3x3",) gives the plain twin.

    "RepVGG: Making VGG-style ConvNets Great Again" (Ding et al., 2021), Table 6 in small: the
    same network trained with its 1x1 and identity branches, or as the ordinary plain network
    (3x3 conv, BatchNorm, ReLU in every layer). Both fold with `reparameterize` into the same
    deployed network, `depth` 3x3 convolutions with bias. Simplified: one resolution, no stride
    (the digits are 8x8), instead of Table 2's five stages; the first block, which changes the
    width, has no identity branch, as in the paper.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise ValueError(f"depth must be a whole number of blocks >= 1; got {depth!r}.")
    inputs = keras.Input(input_shape, name="image")
    x = inputs
    for i in range(1, depth + 1):
        x = repvgg_block(x, width, name=f"block{i}", branches=branches)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(classes, name="predictions")(x)
    kind = "repvgg" if len(branches) > 1 else "plain"
    return keras.Model(inputs, outputs, name=name or f"{kind}{depth}")


def ensemble_paths(model):
    """How many paths lead from the input to the output of a multi-branch RepVGG network: the
    product over its blocks of each block's number of branches (3x3, 1x1, identity).

    Veit et al. ("Residual Networks Behave Like Ensembles of Relatively Shallow Networks", 2016)
    read n residual blocks as 2^n paths; RepVGG (Ding et al., 2021, Sec. 3.2) reads n blocks of
    three branches as an ensemble of 3^n. Here a block that changes the stride or the width has
    no identity, so it counts 2; a plain network counts 1.
    """
    names = {layer.name for layer in model.layers}
    blocks = [n.removesuffix("_3x3_conv") for n in names if n.endswith("_3x3_conv")]
    if not blocks:
        raise ValueError(f"{model.name} has no RepVGG blocks (no '..._3x3_conv' layers).")
    return math.prod(1 + (f"{b}_1x1_conv" in names) + (f"{b}_identity_bn" in names)
                     for b in blocks)


__all__ += ["deep_repvgg", "ensemble_paths"]
