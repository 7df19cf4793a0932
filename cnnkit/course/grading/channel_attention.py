"""Graders of exercise 10 · Channel attention (solutions/10_channel_attention.ipynb).

- `se_params(channels, r)`: an int, checked against cnnkit's se_block on random widths and r;
- `squeeze_excite_numpy(x, w1, b1, w2, b2)`: the SE block in NumPy, checked on random inputs
  and weights against cnnkit.blocks.squeeze_excite holding the same weights;
- `sk_select(branches, logits)`: SKNet's select step, checked on random branches and logits
  against cnnkit's sknet.radix_softmax and sknet.weighted_sum.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import array, expect, grade, student, whole_number

__all__ = ["check_se_params", "check_squeeze_excite_numpy", "check_sk_select"]


@functools.lru_cache(maxsize=None)
def _reference_se_params(channels, r):
    import keras

    from cnnkit.analysis import count_params
    from cnnkit.models.senet import se_block

    inputs = keras.Input((2, 2, channels))
    return count_params(keras.Model(inputs, se_block(inputs, name="reference", reduction=r)))


def check_se_params(se_params):
    """`se_params(channels, r)` -> trainable parameters of an SE block on `channels` channels
    with channels // r hidden units: checked against cnnkit's se_block built on random widths."""
    se_params = student(se_params)

    def run():
        rng = np.random.default_rng(17)
        cases = [(256, 16), (2048, 16), (512, 16), (64, 4), (32, 8), (100, 16), (24, 8), (40, 3)]
        for _ in range(12):
            r = int(rng.choice([2, 4, 8, 16, 32]))
            cases.append((int(rng.integers(r, 1200)), r))
        for c, r in cases:
            want = _reference_se_params(c, r)
            call = f"se_params({c}, {r})"
            got = whole_number(se_params(c, r), call)
            if got == want:
                continue
            d = c // r
            if r != 16 and got == 2 * c * (c // 16) + c // 16 + c:
                hint = f"use the argument r: here r = {r}, not 16"
            elif got == 2 * c * d:
                hint = ("that counts the weights only (the paper's Eq. 5); each FC layer has a "
                        f"bias too: {d} for the first, {c} for the second")
            elif got in (2 * c * d + d, 2 * c * d + c):
                hint = ("one bias is missing: the reduce layer has C // r biases, the expand "
                        "layer C")
            elif got in (c * d + d, c * d + c, c * d):
                hint = ("there are two FC layers, C -> C // r and C // r -> C: count both")
            elif got == round(2 * c * c / r + c / r + c) or got == int(2 * c * c / r + c / r + c):
                hint = (f"the hidden layer has a whole number of units, C // r = {d}; "
                        f"{c} / {r} = {c / r:g} is not one")
            elif got in (2 * c * d + d + c + 2 * c, 2 * c * d + 2 * d + c):
                hint = "the squeeze (global average) and the scale (a product) have no parameters"
            else:
                hint = "two FC layers with biases: C·(C // r) + C // r, then (C // r)·C + C"
            expect(False, f"{call} returned {got!r}; cnnkit's SE block has {want:,} trainable "
                   f"parameters: {hint}.")
        blocks = ((3, 256), (4, 512), (6, 1024), (3, 2048))  # SE-ResNet-50: blocks, channels
        added = sum(n * whole_number(se_params(c, 16), f"se_params({c}, 16)") for n, c in blocks)
        return (f"{len(cases)} blocks agree with cnnkit's se_block; the 16 blocks of "
                f"SE-ResNet-50 add {added:,} parameters to ResNet-50.")

    return grade("se_params", run)


def _reference_se(x, w1, b1, w2, b2):
    """cnnkit.blocks.squeeze_excite with the given weights, applied to x."""
    import keras

    from cnnkit.blocks import squeeze_excite

    inputs = keras.Input(x.shape[1:])
    model = keras.Model(inputs, squeeze_excite(inputs, w1.shape[1], name="reference"))
    model.get_layer("reference_reduce").set_weights([w1[None, None], b1])
    model.get_layer("reference_expand").set_weights([w2[None, None], b2])
    return keras.ops.convert_to_numpy(model(x))


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def _softmax(v, axis):
    e = np.exp(v - v.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def check_squeeze_excite_numpy(squeeze_excite_numpy):
    """`squeeze_excite_numpy(x, w1, b1, w2, b2)` -> x (N, H, W, C) scaled channel by channel by
    the SE gates, in NumPy: checked against cnnkit.blocks.squeeze_excite with the same weights."""
    squeeze_excite_numpy = student(squeeze_excite_numpy)

    def run():
        rng = np.random.default_rng(18)
        cases = [(2, 4, 4, 8, 2), (1, 7, 7, 32, 2), (3, 1, 1, 4, 1), (1, 5, 3, 16, 4)]
        for _ in range(6):
            cases.append((int(rng.integers(1, 4)), int(rng.integers(1, 7)),
                          int(rng.integers(1, 7)), int(rng.integers(2, 40)),
                          int(rng.integers(1, 9))))
        for n, h, w, c, d in cases:
            x = rng.normal(size=(n, h, w, c)).astype("float32")
            w1, b1 = rng.normal(size=(c, d)).astype("float32"), rng.normal(size=d).astype("float32")
            w2 = rng.normal(size=(d, c)).astype("float32")
            b2 = rng.normal(size=c).astype("float32")
            want = _reference_se(x, w1, b1, w2, b2)
            call = f"squeeze_excite_numpy(x, w1, b1, w2, b2) on x of shape {x.shape}, C/r = {d}"
            got = array(squeeze_excite_numpy(x.copy(), w1, b1, w2, b2), call)
            z = x.mean(axis=(1, 2))
            s = _sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)
            if got.shape != want.shape:
                if got.size == s.size:
                    hint = "that looks like the gates alone: return x multiplied by them"
                else:
                    hint = "the block only rescales the channels, so the output has x's shape"
                expect(False, f"{call} returned shape {got.shape}, expected {want.shape}: "
                       f"{hint}.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            variants = {
                "the gate ends with a sigmoid, σ(v) = 1 / (1 + e^−v), so each gate lies in "
                "[0, 1]": x * (np.maximum(z @ w1 + b1, 0) @ w2 + b2)[:, None, None],
                "the first FC layer is followed by a ReLU": x * _sigmoid(
                    (z @ w1 + b1) @ w2 + b2)[:, None, None],
                "squeeze with the global AVERAGE of each channel (over H and W), not its "
                "maximum": x * _sigmoid(np.maximum(x.max(axis=(1, 2)) @ w1 + b1, 0) @ w2
                                        + b2)[:, None, None],
                "squeeze with the global AVERAGE of each channel (divide by H·W), not its "
                "sum": x * _sigmoid(np.maximum(x.sum(axis=(1, 2)) @ w1 + b1, 0) @ w2
                                    + b2)[:, None, None],
                "average each image on its own, over H and W only (axis=(1, 2)), not over "
                "the batch too": x * _sigmoid(np.maximum(x.mean(axis=(0, 1, 2)) @ w1 + b1, 0)
                                              @ w2 + b2),
                "each FC layer adds its bias: z·W₁ + b₁, then ·W₂ + b₂":
                    x * _sigmoid(np.maximum(z @ w1, 0) @ w2)[:, None, None],
                "the ReLU follows the first FC layer and the sigmoid the second, not the other "
                "way round": x * np.maximum(_sigmoid(z @ w1 + b1) @ w2 + b2, 0)[:, None, None],
                "scale every pixel of channel c by the gate s_c (x * s), do not add it":
                    x + s[:, None, None],
            }
            hint = next((h for h, v in variants.items() if v.shape == want.shape
                         and np.allclose(got, v, rtol=1e-4, atol=1e-5)),
                        "z = mean of x over H and W; s = σ(ReLU(z·W₁ + b₁)·W₂ + b₂); return "
                        "x · s for every pixel")
            worst = float(np.abs(got - want).max())
            expect(False, f"{call}: your output differs from cnnkit's squeeze_excite by up to "
                   f"{worst:.3g}: {hint}.")
        return f"{len(cases)} random blocks agree with cnnkit.blocks.squeeze_excite."

    return grade("squeeze_excite_numpy", run)


def _reference_sk_select(branches, logits):
    """cnnkit's SK select step (sknet.radix_softmax, then sknet.weighted_sum) in Keras."""
    import keras

    from cnnkit.models.sknet import radix_softmax, weighted_sum

    m, (n, h, w, c) = len(branches), branches[0].shape
    stacked_in, logits_in = keras.Input((h, w, m * c)), keras.Input((1, 1, m * c))
    weights = radix_softmax(logits_in, m, name="reference")
    model = keras.Model([stacked_in, logits_in], weighted_sum(stacked_in, weights, m,
                                                              name="reference_select"))
    stacked = np.concatenate(branches, axis=-1)
    return keras.ops.convert_to_numpy(model([stacked, logits.reshape(n, 1, 1, m * c)]))


def check_sk_select(sk_select):
    """`sk_select(branches, logits)` -> SKNet's select step: branches is a list of M arrays
    (N, H, W, C), logits (N, M, C); a softmax across the M branches for every channel weights
    them, and their weighted sum (N, H, W, C) is returned. Checked against cnnkit's
    sknet.radix_softmax and sknet.weighted_sum."""
    sk_select = student(sk_select)

    def run():
        rng = np.random.default_rng(19)
        cases = [(2, 2, 4, 4, 6), (3, 2, 3, 3, 8), (2, 1, 2, 5, 4), (4, 3, 1, 1, 5)]
        for _ in range(6):
            cases.append((int(rng.integers(2, 5)), int(rng.integers(1, 4)),
                          int(rng.integers(1, 6)), int(rng.integers(1, 6)),
                          int(rng.integers(2, 17))))
        for m, n, h, w, c in cases:
            branches = [rng.normal(size=(n, h, w, c)).astype("float32") for _ in range(m)]
            logits = (2 * rng.normal(size=(n, m, c))).astype("float32")
            want = _reference_sk_select(branches, logits)
            call = (f"sk_select({m} branches of shape {(n, h, w, c)}, logits of shape "
                    f"{logits.shape})")
            got = array(sk_select([b.copy() for b in branches], logits.copy()), call)
            expect(got.shape == want.shape, f"{call} returned shape {got.shape}, expected "
                   f"{want.shape}: the M branches are summed into one map of C channels.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            stacked = np.stack(branches, axis=1)  # (N, M, H, W, C)

            def mix(a):  # a: (N, M, C) weights
                return (stacked * a[:, :, None, None, :]).sum(axis=1)

            variants = {
                "the softmax runs across the M BRANCHES (axis 1 of the logits), separately for "
                "every channel, not across the channels": mix(_softmax(logits, axis=2)),
                "the softmax runs across the M branches (axis 1), not across the batch "
                "(axis 0)": mix(_softmax(logits, axis=0)),
                "turn the logits into weights with a softmax across the branches first":
                    mix(logits),
                "a sigmoid per branch is SE's gate; SK's weights come from a softmax across the "
                "branches, so they sum to 1": mix(_sigmoid(logits)),
                "weight the branches: a plain sum ignores the attention": stacked.sum(axis=1),
                "weight the branches: a plain mean ignores the attention": stacked.mean(axis=1),
            }
            if m > 2:  # M = 2 hard-coded: the first two branches, softmax over all M or two
                firsts = [_softmax(logits, axis=1)[:, :2], _softmax(logits[:, :2], axis=1)]
                variants[f"sum all M = {m} branches, not only the first two"] = [
                    (stacked[:, :2] * a[:, :, None, None, :]).sum(axis=1) for a in firsts]
            hint = next((h for h, v in variants.items()
                         if any(np.allclose(got, one, rtol=1e-4, atol=1e-5)
                                for one in (v if isinstance(v, list) else [v]))),
                        "a = softmax(logits, axis=1) so that a[:, :, c] sums to 1; then "
                        "V = Σ_m a[:, m, c] · branches[m][..., c]")
            expect(False, f"{call}: your output differs from cnnkit's SK select by up to "
                   f"{float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} random selections of 2 to 4 branches agree with cnnkit's "
                "radix_softmax and weighted_sum.")

    return grade("sk_select", run)
