"""Graders of exercise 02 · Building blocks (solutions/02_building_blocks.ipynb).

The student writes `receptive_field(stack)` (checked against `cnnkit.analysis.receptive_fields`
on real Keras models built from fixed and random stacks) and `conv_params(...)` (checked against
`keras.layers.Conv2D(...).count_params()` for random sizes, groups and bias switches), and
predicts, before measuring, the output shapes of a fixed stack (`predicted_shapes`, a list:
compared with the shapes Keras computes, each wrong one named with the rule it breaks).
"""

from __future__ import annotations

import functools

import numpy as np

from .core import expect, grade, one_of, pair_of_whole_numbers, student, whole_number

__all__ = ["check_receptive_field", "check_conv_params", "check_predicted_shapes", "predict_stack",
           "measured_shapes"]


def _random_stacks(rng, n=12):
    """Random conv stacks as (kernel, stride, dilation) rows, plus the classic ones."""
    fixed = [[(3, 1, 1)] * 3, [(3, 1, 1), (3, 1, 2)], [(3, 1, 1), (3, 1, 2), (3, 1, 4)],
             [(7, 2, 1), (3, 2, 1), (3, 1, 1)], [(11, 4, 1), (3, 2, 1), (5, 1, 1)]]
    drawn = []
    for _ in range(n):
        stack = []
        for _ in range(int(rng.integers(1, 8))):
            dilation = int(rng.choice([1, 1, 2, 3]))
            stride = 1 if dilation > 1 else int(rng.integers(1, 3))  # Keras allows one or other
            stack.append((int(rng.choice([1, 3, 5, 7])), stride, dilation))
        drawn.append(stack)
    return fixed + drawn


def _recurrence(stack, field=1, kernel=lambda k: k - 1, dilate=True, early=False, times_jump=True):
    """The (field, jump) rows, right by default; each switch is a typical slip."""
    jump, rows = 1, []
    for k, s, d in stack:
        if early:
            jump *= s
        field += kernel(k) * (d if dilate else 1) * (jump if times_jump else 1)
        if not early:
            jump *= s
        rows.append((field, jump))
    return rows


_SLIPS = [
    (dict(early=True), "add (kernel − 1)·dilation·jump with the jump of the layer BELOW, then "
     "multiply the jump by the stride (you multiplied it first)"),
    (dict(dilate=False), "a dilated kernel spans (kernel − 1)·dilation + 1 pixels: multiply by "
     "the dilation"),
    (dict(times_jump=False), "each layer adds (kernel − 1)·dilation times the jump: a unit of a "
     "strided layer is `jump` input pixels from its neighbour"),
    (dict(kernel=lambda k: k), "a kernel of k pixels adds (kernel − 1)·dilation·jump, not "
     "kernel·dilation·jump"),
    (dict(field=0), "before the first layer the field is 1 (one pixel), not 0"),
]


@functools.cache
def _keras_fields():
    """(field, jump) rows of every stack, read by cnnkit.analysis from real Keras models (made
    once per session: they never change)."""
    import keras

    from cnnkit.analysis import receptive_fields

    rows = []
    for stack in _random_stacks(np.random.default_rng(4)):
        inputs = keras.Input((None, None, 1))
        x = inputs
        for k, s, d in stack:
            x = keras.layers.Conv2D(1, k, strides=s, dilation_rate=d, padding="same")(x)
        rows.append([(r.size[0], r.jump[0]) for r in receptive_fields(keras.Model(inputs, x))])
    return rows


def check_receptive_field(receptive_field):
    """`receptive_field(stack)` -> [(field, jump) after each layer], stack = [(k, s, d), ...]."""
    receptive_field = student(receptive_field)

    def run():
        stacks = _random_stacks(np.random.default_rng(4))
        for stack, want in zip(stacks, _keras_fields()):
            given = list(stack)
            call = f"receptive_field({stack})"
            got = receptive_field(given)
            expect(given == stack, f"{call} changed the list it was given (now {given}); read "
                   "it without removing or changing rows.")
            if isinstance(got, np.ndarray):
                got = got.tolist()
            expect(isinstance(got, (list, tuple)) and len(got) == len(stack), f"{call} returned "
                   f"{got!r:.80} of type {type(got).__name__}: return a list with one "
                   f"(field, jump) pair per layer, {len(stack)} here.")
            got = [pair_of_whole_numbers(pair, f"{call}[{i}]", "field, jump")
                   for i, pair in enumerate(got)]
            if got == want:
                continue
            swapped = [(j, f) for f, j in want]
            hint = one_of(got, [(swapped, "each pair is (field, jump), in that order")] + [
                (_recurrence(stack, **slip), text) for slip, text in _SLIPS] + [
                ([(f, 1) for f, _ in _recurrence(stack, times_jump=False)],
                 "each layer multiplies the jump by its stride")],
                "each layer adds (kernel − 1)·dilation·jump to the field, where jump is the "
                "product of the strides BEFORE it, then multiplies the jump by its stride")
            i = next(i for i, (g, w) in enumerate(zip(got, want)) if g != w)
            k, s, d = stack[i]
            expect(False, f"for the stack {stack}, after layer {i + 1} (kernel {k}, stride {s}, "
                   f"dilation {d}) you gave (field, jump) = {got[i]}, expected {want[i]}: {hint}.")
        return (f"{len(stacks)} stacks agree with Keras models; three 3x3 convolutions see 7x7, "
                "dilations 1, 2, 4 see 15x15.")

    return grade("receptive_field", run)


def check_conv_params(conv_params):
    """`conv_params(kernel_size, c_in, c_out, groups=1, use_bias=True)` -> parameters of a Conv2D."""
    conv_params = student(conv_params)
    import keras

    def run():
        rng = np.random.default_rng(5)
        cases = [(3, 16, 32, 1, True), (3, 256, 256, 8, False), (1, 64, 128, 1, False),
                 (5, 96, 256, 2, True), (3, 32, 32, 32, True), (7, 12, 6, 3, True)]
        for _ in range(12):
            groups = int(rng.choice([1, 2, 4, 8]))
            cases.append((int(rng.choice([1, 3, 5, 7])), groups * int(rng.integers(1, 33)),
                          groups * int(rng.integers(1, 33)), groups, bool(rng.integers(2))))
        calls = [(3, 16, 32, None, None)] + cases  # first with the defaults: groups=1, bias
        for k, c_in, c_out, groups, bias in calls:
            if groups is None:
                call = f"conv_params({k}, {c_in}, {c_out})"
                got, groups, bias = conv_params(k, c_in, c_out), 1, True
            else:
                call = f"conv_params({k}, {c_in}, {c_out}, groups={groups}, use_bias={bias})"
                got = conv_params(k, c_in, c_out, groups=groups, use_bias=bias)
            got = whole_number(got, call)
            layer = keras.layers.Conv2D(c_out, k, groups=groups, use_bias=bias)
            layer.build((None, 16, 16, c_in))
            want = layer.count_params()
            weights = k * k * (c_in // groups) * c_out
            hint = one_of(got, [
                (weights + (0 if bias else c_out), "plus one bias per filter when use_bias=True"
                 if bias else "use_bias=False: no biases"),
                (k * k * c_in * c_out + bias * c_out, "each of the c_out filters sees only "
                 "c_in / groups channels"),
                (k * k * (c_in // groups) * (c_out // groups) + bias * c_out, "there are c_out "
                 "filters in all (c_out / groups per group), each seeing c_in / groups channels"),
                (k * (c_in // groups) * c_out + bias * c_out, "a k×k kernel has k·k weights per "
                 "input channel"),
                (weights + bias * c_in, "one bias per filter (per output channel), not per input "
                 "channel")], "k·k·(c_in / groups) weights per filter, times c_out filters, plus "
                "one bias per filter when use_bias")
            expect(got == want, f"Conv2D({c_out}, {k}, groups={groups}, use_bias={bias}) on "
                   f"{c_in} channels has {want:,} parameters; {call} returned {got:,}: {hint}.")
        return (f"{len(calls)} convolutions agree with Keras; 256 → 256 3x3 in 8 groups has "
                f"{3 * 3 * 32 * 256:,} weights, one eighth of {3 * 3 * 256 * 256:,}.")

    return grade("conv_params", run)


# --- Predict, then measure: the shapes of a stack, predicted by hand, measured by Keras --------

PREDICT_INPUT = (29, 29, 3)


def predict_stack():
    """The stack whose output shapes exercise 02 asks for, as fresh Keras layers (one home for
    the notebook that shows it and the grader that measures it)."""
    from keras import layers

    return [layers.Conv2D(16, 5, name="conv5x5"),
            layers.Conv2D(32, 3, dilation_rate=2, name="dilated3x3"),
            layers.Conv2D(32, 3, strides=2, padding="same", name="strided3x3_same"),
            layers.MaxPooling2D(3, strides=2, name="maxpool3x3_s2"),
            layers.Conv2DTranspose(8, 3, strides=2, padding="same", name="transposed3x3_s2"),
            layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise3x3_x2"),
            layers.GlobalAveragePooling2D(name="gap")]


def measured_shapes():
    """Each layer's output shape (batch axis left out), as Keras computes it."""
    import keras

    x = inputs = keras.Input(PREDICT_INPUT)
    shapes = []
    for layer in predict_stack():
        x = layer(x)
        shapes.append(tuple(int(d) for d in x.shape[1:]))
    del inputs
    return shapes


def _shape_slips(i, before):
    """(shape, hint) for the usual slips at layer i, given the true shape `before` it."""
    h, w, c = before if len(before) == 3 else (None, None, before[0])
    valid = "padding='valid' (Keras's default) keeps only full windows: n − k + 1"
    return [
        [((h, w, 16), valid), ((h - 5, w - 5, 16), valid), ((h - 4, w - 4, c), "a convolution "
          "outputs one channel per filter: 16")],
        [((h - 2, w - 2, 32), "with dilation 2 a 3x3 kernel spans 5 pixels, so 'valid' shrinks "
          "the map by (k − 1)·d = 4"), ((h, w, 32), "this convolution is 'valid' (the default), "
          "not 'same'")],
        [((h // 2, w // 2, 32), "'same' pads so that the output is ceil(n / stride), "
          "here ceil(21 / 2) = 11"), ((h, w, 32), "stride 2 halves the map (rounding up with "
          "'same')")],
        [((-(-h // 2), -(-w // 2), c), "pooling is 'valid' unless told otherwise: "
          "floor((n − k) / s) + 1"), ((h - 2, w - 2, c), "the pooling has stride 2: "
          "floor((n − k) / s) + 1")],
        [(((h - 1) * 2 + 3, (w - 1) * 2 + 3, 8), "that is the 'valid' size (n − 1)·s + k; with "
          "'same' a transposed convolution outputs n · stride"), ((h // 2, w // 2, 8),
          "a transposed convolution with stride 2 upsamples: n · stride")],
        [((h - 2, w - 2, c), "depth_multiplier=2 gives two output channels per input channel"),
         ((h, w, 2 * c), "this depthwise convolution is 'valid': n − k + 1")],
        [((1, 1, c), "GlobalAveragePooling2D drops the spatial axes: the shape is (channels,)"),
         ((h, w, c), "global pooling averages over the whole map: (channels,)")],
    ][i]


def _as_shape(entry, call):
    """One predicted shape as a tuple of ints; a bare int stands for the shape (int,)."""
    if isinstance(entry, (int, np.integer)) and not isinstance(entry, (bool, np.bool_)):
        return (int(entry),)
    expect(isinstance(entry, (tuple, list, np.ndarray)),
           f"{call} is {entry!r:.60} of type {type(entry).__name__}: write each shape as a "
           "tuple such as (25, 25, 16).")
    for d in entry:
        ok = isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_))
        expect(ok, f"{call} = {tuple(entry)!r:.60} holds {d!r} of type {type(d).__name__}: "
               "sizes are whole numbers (ints).")
    return tuple(int(d) for d in entry)


def check_predicted_shapes(predicted_shapes):
    """`predicted_shapes`: the output shape of each layer of `predict_stack()` on an input of
    PREDICT_INPUT, predicted by hand (batch axis left out); then measured by Keras."""
    def run():
        want = measured_shapes()
        names = [layer.name for layer in predict_stack()]
        expect(predicted_shapes is not None, "not implemented yet: replace `raise NotImplementedError()` "
               "with your answer.")
        expect(isinstance(predicted_shapes, (list, tuple)),
               f"predicted_shapes is {type(predicted_shapes).__name__}: make it a list with one "
               f"shape per layer, {len(want)} in all.")
        expect(len(predicted_shapes) == len(want),
               f"predicted_shapes has {len(predicted_shapes)} shapes; the stack has {len(want)} "
               f"layers ({', '.join(names)}): one shape per layer.")
        for p, w in zip(predicted_shapes, want):
            if isinstance(p, (tuple, list)) and len(p) == len(w) + 1 and tuple(p[1:]) == w:
                expect(False, "leave out the batch axis: write (height, width, channels), as "
                       "`model.output_shape[1:]` shows it.")
        got = [_as_shape(p, f"predicted_shapes[{i}]") for i, p in enumerate(predicted_shapes)]
        for i, (g, w) in enumerate(zip(got, want)):
            if g == w:
                continue
            before = want[i - 1] if i else PREDICT_INPUT
            if len(g) == len(w) == 3 and g == (w[2], w[0], w[1]):
                hint = "Keras is channels-last: (height, width, channels)"
            else:
                hint = one_of(g, [(s, text) for s, text in _shape_slips(i, before)],
                              "work it out from the input shape the layer receives, "
                              "its kernel, stride, padding and dilation")
            expect(False, f"layer {i + 1}, {names[i]}, receives {before} and outputs {w}; you "
                   f"predicted {g}: {hint}.")
        return (f"all {len(want)} shapes match what Keras measures: "
                + " → ".join(["x".join(map(str, PREDICT_INPUT))]
                             + ["x".join(map(str, w)) for w in want]) + ".")

    return grade("predicted_shapes", run)
