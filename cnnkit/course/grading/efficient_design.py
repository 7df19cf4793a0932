"""Graders of exercise 11 · Efficient design (solutions/11_efficient_design.ipynb).

- `channel_shuffle(x, groups)`: ShuffleNet's shuffle in NumPy, checked on random arrays and
  group counts against cnnkit.layers.ChannelShuffle;
- `ghost_module_params(c_in, filters, ratio=2, dw_size=3)`: an int, checked against cnnkit's
  ghost_module with every argument varied;
- `round_filters(filters, width)`: an int, checked against cnnkit's efficientnet.round_filters
  (an exact tie, v = 8k + 4, may round either way: the exercise says only "nearest").
- `design`: a design under a budget, {"alpha": α, "resolution": r} for MobileNet v1 whose
  multiply-accumulates (cnnkit.analysis, the papers' convention) fall in BUDGET_MACS.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from .core import array, expect, grade, student, whole_number

__all__ = ["check_channel_shuffle", "check_ghost_module_params", "check_round_filters",
           "check_design"]

# The design task's budget: at most 150 M multiply-accumulates, and at least 90% of it used.
BUDGET_MACS = (135_000_000, 150_000_000)


def check_channel_shuffle(channel_shuffle):
    """`channel_shuffle(x, groups)` -> x (a NumPy array, channels last) with its channels
    shuffled as ShuffleNet's Fig. 1: checked against cnnkit.layers.ChannelShuffle."""
    channel_shuffle = student(channel_shuffle)
    import keras

    from cnnkit.layers import ChannelShuffle

    def shuffle(x, groups):
        return keras.ops.convert_to_numpy(ChannelShuffle(groups)(x))

    def run():
        rng = np.random.default_rng(14)
        # 12 channels in 3 groups first: there the inverse shuffle (4 groups) and a shuffle in
        # 2 groups differ, so each hint below names its own mistake.
        cases = [((1, 1, 1, 12), 3), ((1, 1, 1, 6), 3), ((1, 1, 1, 6), 2), ((2, 3, 4, 12), 3),
                 ((1, 2, 2, 8), 4), ((1, 1, 1, 10), 5), ((1, 2, 3, 9), 1), ((1, 1, 1, 4), 4)]
        for _ in range(10):
            groups = int(rng.integers(2, 9))
            shape = (int(rng.integers(1, 3)), int(rng.integers(1, 5)), int(rng.integers(1, 5)),
                     groups * int(rng.integers(1, 7)))
            cases.append((shape, groups))
        for shape, groups in cases:
            # channel c holds c plus a little noise, so a wrong order can be named
            x = (np.arange(shape[-1]) + 0.01 * rng.normal(size=shape)).astype("float32")
            want = shuffle(x, groups)
            call = f"channel_shuffle(x, {groups}) on x of shape {shape}"
            got = array(channel_shuffle(x.copy(), groups), call)
            expect(got.shape == want.shape, f"{call} returned shape {got.shape}: a shuffle "
                   f"only reorders the channels, the shape stays {want.shape}.")
            if np.allclose(got, want):
                continue
            order = [int(np.rint(v)) for v in np.mean(got, axis=(0, 1, 2))]
            expected = [int(np.rint(v)) for v in np.mean(want, axis=(0, 1, 2))]
            if np.allclose(got, x):
                hint = ("you returned the channels in their original order: reshape them to "
                        "(..., groups, channels // groups), swap the last two axes, flatten back")
            elif groups not in (1, shape[-1]) and np.allclose(got, shuffle(x, shape[-1] // groups)):
                hint = ("that is the inverse shuffle: reshape to (..., groups, channels // groups) "
                        "with the groups FIRST (channel c = g·(C/groups) + i), then transpose")
            elif groups != 2 and shape[-1] % 2 == 0 and np.allclose(got, shuffle(x, 2)):
                hint = f"use the groups argument: here {groups} groups, not 2"
            elif np.allclose(got, x[..., ::-1]):
                hint = "a shuffle interleaves the groups; it does not reverse the channels"
            else:
                hint = ("reshape the last axis to (groups, channels // groups), swap those two "
                        "axes, and reshape back to channels")
            expect(False, f"{call}: the channels (0, 1, 2, ...) come out in the order {order}, "
                   f"expected {expected}: {hint}.")
        six = channel_shuffle(np.arange(6).reshape(1, 1, 1, 6), 3)
        six = array(six, "channel_shuffle(np.arange(6).reshape(1, 1, 1, 6), 3)").astype(int)
        return (f"{len(cases)} arrays agree with cnnkit.layers.ChannelShuffle; 6 channels in 3 "
                f"groups become {six.ravel()}.")

    return grade("channel_shuffle", run)


@functools.lru_cache(maxsize=None)
def _reference_ghost_params(c_in, filters, ratio, dw_size):
    import keras

    from cnnkit.analysis import count_params
    from cnnkit.models.ghostnet import ghost_module

    inputs = keras.Input((6, 6, c_in))
    return count_params(keras.Model(inputs, ghost_module(inputs, filters, name="reference",
                                                         ratio=ratio, dw_size=dw_size)))


def check_ghost_module_params(ghost_module_params):
    """`ghost_module_params(c_in, filters, ratio=2, dw_size=3)` -> trainable parameters of
    GhostNet's ghost module: checked against cnnkit.models.ghostnet.ghost_module."""
    ghost_module_params = student(ghost_module_params)

    def run():
        rng = np.random.default_rng(15)
        cases = [(80, 200, 2, 3), (16, 16, 2, 3), (24, 72, 2, 3), (160, 960, 2, 3),
                 (40, 35, 2, 3), (64, 96, 3, 3), (32, 64, 2, 5), (8, 10, 4, 3)]
        for _ in range(8):
            cases.append((int(rng.integers(1, 200)), int(rng.integers(1, 300)),
                          int(rng.choice([2, 2, 3, 4])), int(rng.choice([1, 3, 5]))))
        for c_in, filters, ratio, d in cases:
            want = _reference_ghost_params(c_in, filters, ratio, d)
            call = f"ghost_module_params({c_in}, {filters}, ratio={ratio}, dw_size={d})"
            got = whole_number(ghost_module_params(c_in, filters, ratio=ratio, dw_size=d), call)
            if got == want:
                continue
            m = math.ceil(filters / ratio)
            ghosts = m * (ratio - 1)
            bn = 2 * (m + ghosts)
            if ratio != 2 and got == _reference_ghost_params(c_in, filters, 2, d):
                hint = f"use the ratio argument: here ratio = {ratio}, not 2"
            elif d != 3 and got == _reference_ghost_params(c_in, filters, ratio, 3):
                hint = f"use the dw_size argument: here the cheap convolution is {d}x{d}, not 3x3"
            elif got == want - bn:
                hint = ("each of the two convolutions is followed by BatchNorm, with a trainable "
                        "γ and β per channel")
            elif got == want + bn:
                hint = ("count only BatchNorm's γ and β: its moving mean and variance are not "
                        "trainable")
            elif m != filters // ratio and got == _ghost_formula(c_in, filters // ratio, ratio, d):
                hint = (f"{filters} / {ratio} is not whole: the module makes ceil(filters / ratio)"
                        f" = {m} intrinsic maps and trims the extra channels at the end")
            elif got == c_in * m + 2 * m + d * d * (filters - m) + 2 * (filters - m):
                hint = (f"the cheap depthwise convolution makes ratio − 1 = {ratio - 1} ghosts of "
                        f"every one of the {m} intrinsic maps ({ghosts} maps), before the extra "
                        "channels are trimmed")
            elif got == c_in * filters or got == c_in * filters + 2 * filters:
                hint = ("that is a plain 1x1 convolution to all the maps; the primary 1x1 makes "
                        "only ceil(filters / ratio) of them")
            else:
                hint = ("primary 1x1: c_in·m weights, m = ceil(filters / ratio); cheap depthwise: "
                        "dw_size²·m·(ratio − 1); and γ, β for every channel of both")
            expect(False, f"{call} returned {got!r}; cnnkit's ghost_module has {want:,} "
                   f"trainable parameters: {hint}.")
        ghost = whole_number(ghost_module_params(80, 200), "ghost_module_params(80, 200)")
        plain = 80 * 200
        return (f"{len(cases)} modules agree with cnnkit's ghost_module; 80 -> 200 channels "
                f"takes {ghost:,} parameters, a plain 1x1 {plain:,} weights.")

    return grade("ghost_module_params", run)


def _ghost_formula(c_in, m, ratio, d):
    ghosts = m * (ratio - 1)
    return c_in * m + 2 * m + d * d * ghosts + 2 * ghosts


def _ten_percent_rule(rounded, value):
    """Step 2 on a multiple of 8 (at least 8): add 8 when it lost more than 10% of value."""
    rounded = max(8, int(rounded))
    return rounded + 8 if rounded < 0.9 * value else rounded


def check_round_filters(round_filters):
    """`round_filters(filters, width)` -> filters·width rounded to a multiple of 8 as MobileNetV2
    and EfficientNet round it: checked against cnnkit.models.efficientnet.round_filters."""
    round_filters = student(round_filters)
    from cnnkit.models.efficientnet import B0_STAGES, VARIANTS
    from cnnkit.models.efficientnet import round_filters as reference

    def run():
        rng = np.random.default_rng(16)
        widths = sorted({w for w, _, _, _ in VARIANTS.values()} | {0.25, 0.35, 0.5, 0.75, 1.3})
        cases = [(62, 1.0), (100, 1.0), (22, 0.5), (32, 0.35), (16, 0.25), (1280, 1.1),
                 (320, 2.0), (112, 1.8), (11, 1.0), (4, 1.0), (1, 1.0)]
        cases += [(s.filters_out, w) for s in B0_STAGES for w in widths]
        cases += [(int(rng.integers(1, 1500)), float(rng.choice(widths))) for _ in range(40)]
        for filters, width in cases:
            want = reference(filters, width)
            call = f"round_filters({filters}, {width})"
            got = whole_number(round_filters(filters, width), call)
            value = filters * width
            if got == want or value % 8 == 4 and got == _ten_percent_rule(value - 4, value):
                continue  # an exact tie may round down too: the exercise says "nearest" only
            nearest = int(value + 4) // 8 * 8
            down = max(8, int(value // 8 * 8))
            if width != 1 and got == reference(filters, 1.0):
                hint = f"round v = filters · width = {value:g}, not filters alone"
            elif got == down and down != max(8, nearest):
                hint = "round to the NEAREST multiple of 8 (add 4 before dividing), not down"
            elif got == max(8, nearest):
                hint = (f"rounding {value:g} to the nearest multiple of 8 gives {got}, more than "
                        "10% below it: then add 8")
            elif got == max(8, nearest) + 8 and max(8, nearest) >= 0.9 * value:
                hint = (f"{max(8, nearest)} is the nearest multiple of 8 and keeps at least 90% "
                        f"of {value:g}: round to the NEAREST (add 4 before dividing, not up), "
                        "and add 8 only when that result is below 0.9·v")
            else:
                hint = ("v = filters·width; r = max(8, int(v + 4) // 8 · 8); if r < 0.9·v, "
                        "r += 8")
            expect(False, f"{call} returned {got!r}, expected {want}: {hint}.")
        b7 = whole_number(round_filters(320, 2.0), "round_filters(320, 2.0)")
        mobile = whole_number(round_filters(32, 0.35), "round_filters(32, 0.35)")
        return (f"{len(cases)} widths agree with cnnkit's round_filters; EfficientNet-B7's last "
                f"stage has {b7} channels, MobileNetV2 0.35's first conv {mobile}.")

    return grade("round_filters", run)


@functools.lru_cache(maxsize=None)
def design_macs(alpha, resolution):
    """Multiply-accumulates of one image through MobileNet v1 (1000 classes) at width `alpha`
    and input `resolution` x `resolution`, as cnnkit.analysis counts them."""
    import cnnkit
    from cnnkit.analysis import model_macs

    return model_macs(cnnkit.build("mobilenet_v1", alpha=alpha,
                                   input_shape=(resolution, resolution, 3)))


def check_design(design):
    """`design` = {"alpha": α, "resolution": r}: MobileNet v1 at width α and input r x r,
    built by cnnkit, must spend between 90% and 100% of a 150 M multiply-accumulate budget."""
    def run():
        import numbers

        low, high = BUDGET_MACS
        expect(design is not None, "not implemented yet: replace `raise NotImplementedError()` "
               "with your answer.")
        expect(isinstance(design, dict), f"design is {type(design).__name__} {design!r:.60}: "
               'make it a dict, {"alpha": ..., "resolution": ...}.')
        keys = set(design)
        expect(keys == {"alpha", "resolution"}, f"design has the keys {sorted(map(str, keys))}; "
               'it needs exactly "alpha" and "resolution".')
        alpha, resolution = design["alpha"], design["resolution"]
        expect(isinstance(alpha, numbers.Real) and not isinstance(alpha, bool) and 0 < alpha,
               f"alpha is {alpha!r:.40} of type {type(alpha).__name__}: the width multiplier is "
               "a number > 0, such as 0.5 or 0.75.")
        expect(isinstance(resolution, (int, np.integer)) and not isinstance(resolution, bool),
               f"resolution is {resolution!r:.40} of type {type(resolution).__name__}: the input "
               "side in pixels is a whole number (the input is resolution x resolution x 3).")
        expect(resolution >= 32, f"resolution {resolution} is below MobileNet's smallest input, "
               "32 pixels: its five stride-2 layers would leave no pixel.")
        macs = design_macs(float(alpha), int(resolution))
        scaling = ("MACs grow about as α² (every 1x1 convolution is α·c_in by α·c_out) and as "
                   "r² (every layer sees (r/224)² as many pixels)")
        expect(macs <= high, f"α = {alpha}, resolution {resolution} costs {macs / 1e6:.1f} M "
               f"multiply-accumulates, over the {high / 1e6:.0f} M budget: {scaling}; shrink one.")
        expect(macs >= low, f"α = {alpha}, resolution {resolution} costs {macs / 1e6:.1f} M "
               f"multiply-accumulates, less than 90% of the {high / 1e6:.0f} M budget: you "
               f"leave accuracy unused. {scaling}; grow one.")
        return (f"α = {alpha}, {resolution}x{resolution}: {macs / 1e6:.1f} M multiply-accumulates, "
                f"{macs / high:.0%} of the {high / 1e6:.0f} M budget.")

    return grade("design", run)
