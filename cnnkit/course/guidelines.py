"""ShuffleNet V2's four guidelines as small networks to time: equal FLOPs, different speed.

Ma, Zhang, Zheng and Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design" (2018), Sec. 2, measured four controlled experiments on a GPU and an ARM phone and drew
one lesson from them: FLOPs are not speed. Each builder here returns {configuration: model}, one
experiment, with exactly the same multiply-accumulates in every model of it (`cnnkit.analysis`
counts them; the tests check it), so any difference in `time_forward` comes from the memory
traffic and the parallelism, which FLOPs do not see.

- `g1_models`: G1, equal channel width minimizes memory access cost (Table 1): ten blocks of two
  1x1 convolutions c1 -> c2 -> c1, c1·c2 = 140² in every row, c1:c2 from 1:1 to 1:12.
- `g2_models`: G2, excessive group convolution increases memory access (Table 2): ten 1x1
  convolutions in g = 1, 2, 4, 8 groups, widened so that c²/g stays 140².
- `g3_models`: G3, network fragmentation reduces parallelism (Table 3): ten blocks of 1, 2 or 4
  1x1 convolutions in series or in parallel.
- `g4_models`: G4, element-wise operations are non-negligible (Table 4): ten ResNet bottleneck
  units with their ReLUs and shortcuts switched on and off.
- `time_forward(model, batch_size, repeats)`: median seconds of a compiled forward pass.
- `compare(models, batch_size, repeats)`: one `GuidelineRow` per model: MACs, memory access,
  time and speed relative to the first, the models timed in turn, round after round;
  `format_rows` prints them.

Simplified: the paper's exact channel counts make the FLOPs only nearly equal (e.g. 90·180 =
16,200 against 128² = 16,384); here they are chosen so the FLOPs are exactly equal, at the price
of ratios such as 1:1.96 for the paper's 1:2 (the 1x1 convolutions have no bias, as the
experiments care only about the multiplications). The networks use keras.layers only, so they
run on every Keras backend.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import NamedTuple

import keras
import numpy as np
from keras import layers

from cnnkit.analysis import memory_access, model_macs
from cnnkit.layers import GroupConv2D

__all__ = ["g1_models", "g2_models", "g3_models", "g4_models", "time_forward", "compare",
           "format_rows", "GuidelineRow", "G1_CHANNELS", "G2_CHANNELS", "G3_WIDTH",
           "G4_WIDTH"]

# G1: (c1, c2) with c1·c2 = 19,600 = 140² in every row, c2/c1 within 5% of 1, 2, 6 and 12.
G1_CHANNELS = [(140, 140), (100, 196), (56, 350), (40, 490)]
# G2: groups -> (c_a, c_b), the widths the layers alternate between: c_a·c_b / g = 140², both
# divisible by g. Where c² / g = 140² has no whole solution (g = 2, 8) the layers alternate
# between two widths 2-4% apart; by G1's own formula that costs under 0.1% more memory access.
G2_CHANNELS = {1: (140, 140), 2: (196, 200), 4: (280, 280), 8: (392, 400)}
G3_WIDTH = 140  # a block's input and output channels in G3
G4_WIDTH = 128  # a bottleneck unit's channels in G4 (c/4 = 32 inside, as in ResNet-50)


def _conv1x1(filters, name, groups=1):
    # GroupConv2D is Conv2D(groups=g) computed as the kit's models compute it: on TensorFlow's
    # CPU, g convolutions side by side (TensorFlow has no grouped kernel there).
    return GroupConv2D(filters, 1, groups=groups, use_bias=False, name=name)


def _model(inputs, outputs, name):
    return keras.Model(inputs, outputs, name=name)


def g1_models(side=56, blocks=10, channels=None):
    """G1 (Table 1): `blocks` blocks of two 1x1 convolutions, c1 -> c2 and c2 -> c1.

    Every model has 2·blocks·side²·c1·c2 MACs, the same in every row of `channels`
    (default `G1_CHANNELS`). Memory access per convolution is side²·(c1 + c2) + c1·c2, smallest,
    for a given product c1·c2, when c1 = c2.
    """
    models = {}
    for c1, c2 in channels or G1_CHANNELS:
        inputs = keras.Input((side, side, c1))
        x = inputs
        for b in range(1, blocks + 1):
            x = _conv1x1(c2, f"block{b}_conv1")(x)
            x = _conv1x1(c1, f"block{b}_conv2")(x)
        ratio = f"{c2 / c1:.3g}"
        models[f"c1:c2 = 1:{ratio} ({c1}, {c2})"] = _model(inputs, x, f"g1_{c1}_{c2}")
    return models


def g2_models(side=56, depth=10, channels=None):
    """G2 (Table 2): `depth` 1x1 convolutions in g groups, alternating widths c_a and c_b.

    MACs are depth·side²·c_a·c_b/g, equal for every g in `channels` (default `G2_CHANNELS`):
    more groups buy wider layers for the same FLOPs, and wider layers read and write more.
    """
    models = {}
    for groups, (c_a, c_b) in (channels or G2_CHANNELS).items():
        inputs = keras.Input((side, side, c_a))
        x = inputs
        for i in range(1, depth + 1):
            x = _conv1x1(c_b if i % 2 else c_a, f"layer{i}_conv", groups=groups)(x)
        width = f"{c_a}" if c_a == c_b else f"{c_a}/{c_b}"
        models[f"g = {groups} (c = {width})"] = _model(inputs, x, f"g2_groups{groups}")
    return models


def g3_models(side=56, blocks=10, width=G3_WIDTH):
    """G3 (Table 3): blocks of 1, 2 or 4 1x1 convolutions in series or in parallel.

    All have blocks·side²·width² MACs (width must be divisible by 4 and width²/2 must split
    into two near-equal factors, as 140² / 2 = 98·100 does):
    - 1 fragment: width -> width;
    - 2 in series: width_a -> width_b -> width_a with width_a·width_b = width² / 2;
    - 4 in series: four width/2 -> width/2;
    - 2 or 4 in parallel: n branches width -> width/n side by side, concatenated: the same
      arithmetic as one convolution, cut into n fragments.
    """
    half_a, half_b = _near_square_factors(width * width // 2)
    models = {}

    def series(x, widths, b):
        for i, w in enumerate(widths, start=1):
            x = _conv1x1(w, f"block{b}_conv{i}")(x)
        return x

    def parallel(x, n, b):
        return layers.Concatenate(name=f"block{b}_concat")(
            [_conv1x1(width // n, f"block{b}_branch{i}")(x) for i in range(1, n + 1)])

    plans = {"1-fragment": (width, lambda x, b: series(x, [width], b)),
             "2-fragment-series": (half_a, lambda x, b: series(x, [half_b, half_a], b)),
             "4-fragment-series": (width // 2, lambda x, b: series(x, [width // 2] * 4, b)),
             "2-fragment-parallel": (width, lambda x, b: parallel(x, 2, b)),
             "4-fragment-parallel": (width, lambda x, b: parallel(x, 4, b))}
    for label, (c_in, block) in plans.items():
        inputs = keras.Input((side, side, c_in))
        x = inputs
        for b in range(1, blocks + 1):
            x = block(x, b)
        models[label] = _model(inputs, x, f"g3_{label.replace('-', '_')}")
    return models


def _near_square_factors(n):
    """The pair a <= b with a·b = n and a as close to sqrt(n) as whole numbers allow."""
    a = int(np.sqrt(n))
    while n % a:
        a -= 1
    return a, n // a


def g4_models(side=56, units=10, width=G4_WIDTH):
    """G4 (Table 4): ResNet bottleneck units (1x1 c -> c/4, 3x3, 1x1 c/4 -> c), ReLU and
    shortcut each on or off. The four models have the same weights and MACs; only the
    element-wise operations (a ReLU after every convolution, the shortcut's addition) differ.
    """
    models = {}
    for relu in (True, False):
        for shortcut in (True, False):
            inputs = keras.Input((side, side, width))
            x = inputs
            for u in range(1, units + 1):
                y = x
                for i, (filters, kernel) in enumerate(
                        [(width // 4, 1), (width // 4, 3), (width, 1)], start=1):
                    y = layers.Conv2D(filters, kernel, padding="same", use_bias=False,
                                      name=f"unit{u}_conv{i}")(y)
                    if relu and i < 3:
                        y = layers.ReLU(name=f"unit{u}_relu{i}")(y)
                if shortcut:
                    y = layers.Add(name=f"unit{u}_add")([x, y])
                if relu:
                    y = layers.ReLU(name=f"unit{u}_out")(y)
                x = y
            label = f"ReLU {'on ' if relu else 'off'}, shortcut {'on' if shortcut else 'off'}"
            models[label] = _model(inputs, x, f"g4_relu{int(relu)}_shortcut{int(shortcut)}")
    return models


def time_forward(model, batch_size, repeats=3, seed=0):
    """Median seconds of one compiled forward pass (inference) of a batch, after a warm-up.

    `predict_on_batch` runs the model as Keras compiles it for inference on the active backend
    (a tf.function on TensorFlow, XLA where Keras turns it on, jax.jit on JAX), so the time is
    the network's, not Python's. The random input is made on the device once, outside the clock,
    and a global average pool is added to the timed copy so that little comes back to the host.
    """
    return _median_times({"model": model}, batch_size, repeats, seed)["model"]


def _median_times(models, batch_size, repeats, seed=0):
    """Median seconds per model, the models timed in turn in every round, so that a machine
    busy with something else slows them all alike rather than whichever ran at that moment."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1; got {repeats!r}.")
    inputs, timed = {}, {}
    for name, model in models.items():
        # Only the pooled (batch, channels) result comes back to the host: copying the whole
        # last feature map off a GPU would time the bus, not the network.
        timed[name] = keras.Model(model.inputs, layers.GlobalAveragePooling2D()(model.outputs[0]))
        inputs[name] = keras.random.normal((batch_size, *model.input_shape[1:]), seed=seed)
        with _quiet_retracing():
            timed[name].predict_on_batch(inputs[name])  # warm-up: trace and compile
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in timed.items():
            start = time.perf_counter()
            model.predict_on_batch(inputs[name])
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(t)) for name, t in times.items()}


@contextlib.contextmanager
def _quiet_retracing():
    """Silence TensorFlow's "triggered tf.function retracing" warning: every model here is new,
    so its first call is meant to trace."""
    logger = logging.getLogger("tensorflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


class GuidelineRow(NamedTuple):
    """One configuration of an experiment, for one image (MACs, memory) and one batch (time)."""

    config: str
    macs: int  # multiply-accumulates, "papers" convention
    memory: int  # memory access cost in elements (ShuffleNet V2's MAC)
    seconds: float  # median time of a forward pass of a batch
    speed: float  # speed relative to the first row (2.0: twice as fast)


def compare(models, batch_size, repeats=3):
    """Time every model of an experiment ({config: model}) and count its MACs and memory.

    The models are timed side by side: each round runs every model once, `repeats` rounds.
    """
    seconds = _median_times(models, batch_size, repeats)
    rows = [GuidelineRow(config, model_macs(model), memory_access(model), seconds[config], 0.0)
            for config, model in models.items()]
    first = rows[0].seconds
    return [row._replace(speed=first / row.seconds) for row in rows]


def format_rows(rows) -> str:
    """An experiment's rows as an aligned table: MACs and memory in millions, time in ms."""
    head = ("configuration", "MMACs", "memory (M)", "ms / batch", "speed")
    cells = [head] + [(r.config, f"{r.macs / 1e6:,.1f}", f"{r.memory / 1e6:,.2f}",
                       f"{1000 * r.seconds:,.1f}", f"{r.speed:.2f}x") for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    return "\n".join("  ".join(v.ljust(w) if i == 0 else v.rjust(w)
                               for i, (v, w) in enumerate(zip(row, widths))) for row in cells)
