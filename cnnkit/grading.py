"""Graders that exercises call: each prints PASS or FAIL with a reason and raises on failure.

A grader raises `GradeFailure` (an AssertionError) after printing, so a learner sees a clear
message, "Run all" stops at the first exercise that is not done, and nbgrader's autograder
counts the cell as failed.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GradeFailure", "check_iterations_per_epoch", "check_epochs_for_iterations",
           "check_train_for_iterations", "check_receptive_field", "check_conv_params",
           "check_momentum_step", "check_rmsprop_step"]


class GradeFailure(AssertionError):
    """An exercise's answer is missing or wrong."""


def _grade(title, run_checks):
    """Run `run_checks()` (it returns a summary or raises GradeFailure) and report the result."""
    try:
        summary = run_checks()
    except NotImplementedError:
        message = "not implemented yet: replace `raise NotImplementedError()` with your code."
    except GradeFailure as failure:
        message = str(failure)
    except Exception as err:  # the learner's code crashed: say how, not a grader traceback
        message = f"your code raised {type(err).__name__}: {err}"
    else:
        print(f"✅ PASS  {title}: {summary}")
        return True
    print(f"❌ FAIL  {title}: {message}")
    raise GradeFailure(f"{title}: {message}")


def _expect(ok, message):
    if not ok:
        raise GradeFailure(message)


def _cases(rng, n=20):
    fixed = [(1000, 10), (1000, 32), (60_000, 128), (50_000, 256), (7, 7), (5, 8), (1, 1)]
    drawn = [(int(rng.integers(1, 100_000)), int(rng.integers(1, 1_024))) for _ in range(n)]
    return fixed + drawn


def check_iterations_per_epoch(iterations_per_epoch):
    """`iterations_per_epoch(n_samples, batch_size, drop_remainder=False)` -> whole number."""

    def run():
        cases = _cases(np.random.default_rng(1))
        for n, b in cases:
            for drop in (False, True):
                want = n // b if drop else math.ceil(n / b)
                got = iterations_per_epoch(n, b, drop_remainder=drop)
                hint = ("with drop_remainder=True the partial last batch is skipped"
                        if drop else "the last, partial batch is an iteration too")
                _expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                        f"return a whole number (int); got {got!r} of type {type(got).__name__}.")
                _expect(got == want, f"for n_samples={n:,}, batch_size={b}, "
                        f"drop_remainder={drop} you returned {got}, expected {want}: {hint}.")
        return f"{2 * len(cases)} cases agree, partial last batches included."

    return _grade("iterations_per_epoch", run)


def check_epochs_for_iterations(epochs_for_iterations):
    """`epochs_for_iterations(n_samples, batch_size, iterations)` -> epochs (a float)."""

    def run():
        rng = np.random.default_rng(2)
        cases = [(1_281_167, 256, 600_000)] + [
            (n, b, int(rng.integers(1, 1_000_000))) for n, b in _cases(rng)]
        for n, b, iters in cases:
            want = iters / math.ceil(n / b)
            got = epochs_for_iterations(n, b, iters)
            _expect(got is not None and math.isclose(float(got), want, rel_tol=1e-9),
                    f"for n_samples={n:,}, batch_size={b}, iterations={iters:,} you returned "
                    f"{got!r}, expected {want:.6g}: an epoch is ceil(n_samples / batch_size) "
                    "iterations.")
        return (f"{len(cases)} cases agree; ResNet's 600,000 iterations of batch 256 on "
                f"ImageNet's 1,281,167 images are {cases[0][2] / math.ceil(cases[0][0] / 256):.1f} "
                "epochs.")

    return _grade("epochs_for_iterations", run)


class _SpyModel:
    """Passes every call to a real model and records what `train_on_batch` was given."""

    def __init__(self, model):
        self._model = model
        self.batches = []
        self.returned = []

    def train_on_batch(self, x, y=None, **kwargs):
        self.batches.append((np.asarray(x), np.asarray(y)))
        loss = self._model.train_on_batch(x, y, **kwargs)
        self.returned.append(float(np.asarray(loss).reshape(-1)[0]))
        return loss

    def __getattr__(self, name):
        return getattr(self._model, name)


def check_train_for_iterations(train_for_iterations):
    """`train_for_iterations(model, x, y, batch_size, iterations, seed=0)` -> per-iteration losses.

    Training runs for a number of iterations, as papers state it, crossing epoch boundaries: each
    epoch is a new random order of all examples, cut into batches with a partial last one.
    """
    import keras

    from cnnkit.registry import build

    def run():
        n, batch_size, iterations = 100, 32, 10
        per_epoch = math.ceil(n / batch_size)
        rng = np.random.default_rng(3)
        x = rng.random((n, 32, 32, 1), dtype=np.float32)
        x[:, 0, 0, 0] = np.arange(n) / n  # a tag that tells which example a row is
        y = rng.integers(0, 10, n).astype("int32")
        model = build("lenet5")
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss="sparse_categorical_crossentropy")
        spy = _SpyModel(model)
        losses = train_for_iterations(spy, x, y, batch_size, iterations, seed=0)
        _expect(spy.batches, "call model.train_on_batch(x_batch, y_batch) once per iteration.")
        sizes = [len(bx) for bx, _ in spy.batches]
        want_sizes = ([batch_size] * (per_epoch - 1) + [n % batch_size]) * 3
        want_sizes = want_sizes[:iterations]
        _expect(len(sizes) == iterations, f"asked for {iterations} iterations, you called "
                f"train_on_batch {len(sizes)} times (batch sizes {sizes}).")
        _expect(sizes == want_sizes, f"{n} examples in batches of {batch_size} make epochs of "
                f"{per_epoch} batches, the last of {n % batch_size}; over {iterations} iterations "
                f"the sizes should be {want_sizes}, yours were {sizes}.")
        tags = [np.rint(bx[:, 0, 0, 0] * n).astype(int) for bx, _ in spy.batches]
        for (bx, by), tag in zip(spy.batches, tags):
            _expect(np.array_equal(y[tag], by), "each image must stay with its own label when "
                    "you shuffle: index x and y with the same permutation.")
        epochs = [np.concatenate(tags[i:i + per_epoch]) for i in range(0, iterations, per_epoch)]
        for number, order in enumerate(epochs[:-1], start=1):
            _expect(np.array_equal(np.sort(order), np.arange(n)),
                    f"epoch {number} must show every example exactly once.")
        last = epochs[-1]
        _expect(len(np.unique(last)) == len(last),
                "within an epoch no example may come twice, even in an unfinished epoch.")
        _expect(not np.array_equal(epochs[0], np.arange(n)),
                "visit the examples in a random order (a permutation), not 0, 1, 2, ...")
        _expect(not np.array_equal(epochs[0], epochs[1]),
                "draw a new order for every epoch; yours repeated the first epoch's order.")
        _expect(int(model.optimizer.iterations) == iterations,
                f"the optimizer took {int(model.optimizer.iterations)} steps, "
                f"expected {iterations}.")
        _expect(losses is not None and len(losses) == iterations,
                f"return a list of {iterations} losses, one per iteration; got {losses!r}.")
        _expect(np.allclose(np.asarray(losses, dtype=float).reshape(-1), spy.returned),
                "return the losses that train_on_batch gave back, in order.")
        return (f"{iterations} iterations = {iterations / per_epoch:.2f} epochs of {per_epoch} "
                f"batches; every epoch reshuffled, partial batches kept, labels with images.")

    return _grade("train_for_iterations", run)


# --- 02 building blocks ----------------------------------------------------------------------

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


def check_receptive_field(receptive_field):
    """`receptive_field(stack)` -> [(field, jump) after each layer], stack = [(k, s, d), ...].

    Checked against cnnkit.analysis on real Keras models built from random stacks.
    """
    import keras

    from cnnkit.analysis import receptive_fields

    def run():
        stacks = _random_stacks(np.random.default_rng(4))
        for stack in stacks:
            inputs = keras.Input((None, None, 1))
            x = inputs
            for k, s, d in stack:
                x = keras.layers.Conv2D(1, k, strides=s, dilation_rate=d, padding="same")(x)
            want = [(r.size[0], r.jump[0]) for r in receptive_fields(keras.Model(inputs, x))]
            got = receptive_field(list(stack))
            _expect(got is not None and len(got) == len(stack),
                    f"return one (field, jump) pair per layer; for {stack} you returned {got!r}.")
            got = [tuple(int(v) for v in pair) for pair in got]
            for i, (g, w) in enumerate(zip(got, want)):
                k, s, d = stack[i]
                hint = ("each layer adds (k − 1)·d·jump to the field, where jump is the product "
                        "of the strides BEFORE it" if g[0] != w[0] else
                        "the jump is multiplied by each layer's stride")
                _expect(g == w, f"for the stack {stack}, after layer {i + 1} (kernel {k}, stride "
                        f"{s}, dilation {d}) you gave (field, jump) = {g}, expected {w}: {hint}.")
        return (f"{len(stacks)} stacks agree with Keras models; three 3x3 convolutions see 7x7, "
                "dilations 1, 2, 4 see 15x15.")

    return _grade("receptive_field", run)


def check_conv_params(conv_params):
    """`conv_params(kernel_size, c_in, c_out, groups=1, use_bias=True)` -> parameters of a Conv2D."""
    import keras

    def run():
        rng = np.random.default_rng(5)
        cases = [(3, 16, 32, 1, True), (3, 256, 256, 8, False), (1, 64, 128, 1, False),
                 (5, 96, 256, 2, True), (3, 32, 32, 32, True)]
        for _ in range(15):
            groups = int(rng.choice([1, 2, 4, 8]))
            cases.append((int(rng.choice([1, 3, 5, 7])), groups * int(rng.integers(1, 33)),
                          groups * int(rng.integers(1, 33)), groups, bool(rng.integers(2))))
        for k, c_in, c_out, groups, bias in cases:
            layer = keras.layers.Conv2D(c_out, k, groups=groups, use_bias=bias)
            layer.build((None, 16, 16, c_in))
            want = layer.count_params()
            got = conv_params(k, c_in, c_out, groups=groups, use_bias=bias)
            hint = ("each of the c_out filters sees only c_in / groups channels"
                    if groups > 1 else "k·k·c_in weights per filter, plus one bias per filter")
            _expect(got == want, f"Conv2D({c_out}, {k}, groups={groups}, use_bias={bias}) on "
                    f"{c_in} channels has {want:,} parameters; you returned {got!r}: {hint}.")
        return (f"{len(cases)} convolutions agree with Keras; 256 → 256 3x3 in 8 groups has "
                f"{conv_params(3, 256, 256, groups=8, use_bias=False):,} weights, one eighth "
                f"of {conv_params(3, 256, 256, use_bias=False):,}.")

    return _grade("conv_params", run)


# --- 03 optimizers ---------------------------------------------------------------------------

def _against_keras(step_function, make_optimizer, state_names, title_hint, steps=8):
    """Run the learner's update next to a Keras optimizer on the same random gradients."""
    import keras

    rng = np.random.default_rng(6)
    w0 = rng.normal(size=(4, 3))
    gradients = [rng.normal(size=(4, 3)) * 10 ** rng.uniform(-3, 1) for _ in range(steps)]
    variable = keras.Variable(w0.astype("float32"))
    optimizer = make_optimizer()
    w = w0.copy()
    state = np.zeros_like(w0)
    for t, g in enumerate(gradients, start=1):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")), variable)])
        result = step_function(w, g, state)
        _expect(isinstance(result, tuple) and len(result) == 2,
                f"return a pair (new_w, new_{state_names}); got {type(result).__name__}.")
        w, state = (np.asarray(v, dtype=float) for v in result)
        err = float(np.max(np.abs(w - np.array(variable))))
        _expect(err < 1e-4, f"after step {t} your weights differ from Keras's by {err:.3g}: "
                f"{title_hint}.")
    return err


def check_momentum_step(momentum_step):
    """`momentum_step(w, g, velocity, learning_rate, momentum)` -> (new_w, new_velocity)."""
    import keras

    def run():
        lr, mu = 0.05, 0.9
        err = _against_keras(
            lambda w, g, v: momentum_step(w, g, v, learning_rate=lr, momentum=mu),
            lambda: keras.optimizers.SGD(lr, momentum=mu), "velocity",
            "velocity = momentum·velocity − learning_rate·g, then w = w + velocity")
        return f"8 steps agree with keras.optimizers.SGD(momentum=0.9) (max difference {err:.1e})."

    return _grade("momentum_step", run)


def check_rmsprop_step(rmsprop_step):
    """`rmsprop_step(w, g, mean_square, learning_rate, rho, epsilon)` -> (new_w, new_mean_square)."""
    import keras

    def run():
        lr, rho, eps = 0.01, 0.9, 1e-7
        err = _against_keras(
            lambda w, g, s: rmsprop_step(w, g, s, learning_rate=lr, rho=rho, epsilon=eps),
            lambda: keras.optimizers.RMSprop(lr, rho=rho, epsilon=eps), "mean_square",
            "mean_square = rho·mean_square + (1 − rho)·g², then "
            "w = w − learning_rate·g / sqrt(mean_square + epsilon)")
        return f"8 steps agree with keras.optimizers.RMSprop (max difference {err:.1e})."

    return _grade("rmsprop_step", run)


# --- 06 classic cnns -------------------------------------------------------------------------

__all__ += ["check_conv_output_size", "check_stack_vs_large_kernel",
            "check_dense_params_after_flatten"]


def _whole_number(got, call):
    _expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
            f"{call} returned {got!r} of type {type(got).__name__}: return a whole number (int); "
            "`//` divides and rounds down in one step.")


def check_conv_output_size(conv_output_size):
    """`conv_output_size(n, kernel, stride=1, padding=0)` -> side of the output map.

    Checked against Keras on random cases: ZeroPadding2D(padding), then a Conv2D or a
    MaxPooling2D with that kernel and stride and no padding of its own.
    """
    import keras

    def run():
        rng = np.random.default_rng(8)
        cases = [(227, 11, 4, 0), (224, 11, 4, 0), (224, 7, 2, 1), (55, 3, 2, 0),
                 (27, 5, 1, 2), (32, 5, 1, 0), (13, 3, 1, 1), (110, 3, 2, 0)]
        answers = []
        while len(cases) < 30:
            k = int(rng.choice([1, 2, 3, 5, 7, 11]))
            s, p = int(rng.integers(1, 5)), int(rng.integers(0, 4))
            cases.append((int(rng.integers(max(1, k - 2 * p), 120)), k, s, p))
        for index, (n, k, s, p) in enumerate(cases):
            inputs = keras.Input((n, n, 1))
            x = keras.layers.ZeroPadding2D(p)(inputs) if p else inputs
            pooling = index % 3 == 2
            layer = (keras.layers.MaxPooling2D(k, strides=s) if pooling
                     else keras.layers.Conv2D(1, k, strides=s))
            want = int(layer(x).shape[1])
            call = f"conv_output_size({n}, {k}, {s}, {p})"
            got = conv_output_size(n, k, s, p)
            what = (f"a {k}x{k} {'max pooling' if pooling else 'convolution'} with stride {s} on "
                    f"{n}x{n} pixels padded by {p}")
            rounded_up = -(-(n + 2 * p - k) // s) + 1
            if (isinstance(got, float) and not got.is_integer()) or got == rounded_up:
                hint = ("round down: a window that would hang over the edge is not computed, "
                        "so use floor division //")
            elif got == (n + 2 * p - k) // s:
                hint = "count the window's first position too: + 1"
            elif p and got == (n + p - k) // s + 1:
                hint = "the padding goes on both sides: n + 2·padding"
            else:
                hint = ("the window starts at the first pixel of the padded input and moves "
                        "`stride` pixels at a time while it still fits")
            _expect(got == want, f"{what} gives {want}x{want} maps in Keras; {call} returned "
                    f"{got!r}: {hint}.")
            answers.append((got, call))
        for got, call in answers:  # right values, but are they ints? (55.0 is not a map side)
            _whole_number(got, call)
        return (f"{len(cases)} convolutions and poolings agree with Keras; AlexNet's 11x11 stride "
                f"4 gives {conv_output_size(227, 11, 4, 0)} on 227 pixels but "
                f"{conv_output_size(224, 11, 4, 0)} on the 224 the paper states.")

    return _grade("conv_output_size", run)


def check_stack_vs_large_kernel(stack_vs_large_kernel):
    """`stack_vs_large_kernel(channels, n_convs)` -> (stack_weights, one_kernel_weights, field).

    n_convs 3x3 convolutions from `channels` to `channels` maps, without biases, against one
    convolution with the same receptive field: checked against Keras layers and cnnkit.analysis.
    """
    import keras

    from cnnkit.analysis import receptive_field

    def conv_stack(channels, kernel, n):
        inputs = keras.Input((None, None, channels))
        x = inputs
        for _ in range(n):
            x = keras.layers.Conv2D(channels, kernel, padding="same", use_bias=False)(x)
        return keras.Model(inputs, x)

    def run():
        rng = np.random.default_rng(9)
        cases = [(64, 3), (64, 2), (1, 1), (3, 4)] + [
            (int(rng.integers(1, 129)), int(rng.integers(1, 6))) for _ in range(10)]
        for channels, n in cases:
            stack = conv_stack(channels, 3, n)
            field = receptive_field(stack)[0]
            want = (stack.count_params(), conv_stack(channels, field, 1).count_params(), field)
            call = f"stack_vs_large_kernel({channels}, {n})"
            got = stack_vs_large_kernel(channels, n)
            _expect(isinstance(got, tuple) and len(got) == 3,
                    f"return a tuple (stack_weights, one_kernel_weights, field); {call} "
                    f"returned {got!r}.")
            for value in got:
                _whole_number(value, call)
            what = f"{n} stacked 3x3 convolutions of {channels} maps"
            if got[2] != want[2]:
                hint = ("the first 3x3 sees 3 pixels and every further one adds 2"
                        if got[2] == 3 * n else
                        "one pixel to start with, and every 3x3 of stride 1 widens it by 2")
                _expect(False, f"{what} see {want[2]}x{want[2]} pixels; {call} gave a field of "
                        f"{got[2]}: {hint}.")
            if got[0] != want[0]:
                hint = ("count weights only: the paper's 27C² has no biases"
                        if got[0] == want[0] + n * channels else
                        f"each layer has 3·3·C·C weights (C = {channels} maps in and out)")
                _expect(False, f"{what} have {want[0]:,} weights; {call} gave {got[0]!r}: "
                        f"{hint}.")
            if got[1] != want[1]:
                hint = ("count weights only, no bias"
                        if got[1] == want[1] + channels else
                        f"one {want[2]}x{want[2]} layer has {want[2]}·{want[2]}·C·C weights")
                _expect(False, f"one {want[2]}x{want[2]} convolution of {channels} maps has "
                        f"{want[1]:,} weights; {call} gave {got[1]!r}: {hint}.")
        three, seven, _ = stack_vs_large_kernel(64, 3)
        return (f"{len(cases)} stacks agree with Keras layers; three 3x3 layers of 64 maps have "
                f"{three:,} weights (27C²), one 7x7 has {seven:,} (49C²).")

    return _grade("stack_vs_large_kernel", run)


def check_dense_params_after_flatten(dense_params_after_flatten):
    """`dense_params_after_flatten(height, width, channels, n_pools, units)` -> parameters.

    Maps of height x width x channels go through n_pools 2x2 max poolings (stride 2), are
    flattened and feed Dense(units): checked against those Keras layers on random sizes.
    """
    import keras

    def run():
        rng = np.random.default_rng(10)
        cases = [(28, 28, 64, 2, 10), (7, 7, 512, 0, 16), (13, 13, 256, 1, 100),
                 (100, 60, 3, 3, 7)]
        answers = []
        for _ in range(16):
            n_pools = int(rng.integers(0, 6))
            h, w = (int(rng.integers(1, 9)) * 2 ** n_pools + int(rng.integers(0, 2 ** n_pools))
                    for _ in range(2))
            cases.append((h, w, int(rng.integers(1, 65)), n_pools, int(rng.integers(1, 129))))
        for h, w, c, n_pools, units in cases:
            inputs = keras.Input((h, w, c))
            x = inputs
            for _ in range(n_pools):
                x = keras.layers.MaxPooling2D(2)(x)
            dense = keras.layers.Dense(units)
            dense(keras.layers.Flatten()(x))
            want = dense.count_params()
            call = f"dense_params_after_flatten({h}, {w}, {c}, {n_pools}, {units})"
            got = dense_params_after_flatten(h, w, c, n_pools, units)
            side_h, side_w = h // 2 ** n_pools, w // 2 ** n_pools
            if got == want - units:
                hint = "add one bias per unit"
            elif (isinstance(got, float) and not got.is_integer()) or got == round(
                    h / 2 ** n_pools * w / 2 ** n_pools * c * units + units):
                hint = (f"each 2x2 pooling rounds down (7 pixels become 3), so after {n_pools} "
                        f"poolings {h}x{w} maps are {side_h}x{side_w}")
            else:
                hint = (f"the maps become {side_h}x{side_w}x{c}; flattened, every one of those "
                        "values connects to every unit, plus one bias per unit")
            _expect(got == want, f"Dense({units}) after {n_pools} poolings of {h}x{w}x{c} maps "
                    f"has {want:,} parameters; {call} returned {got!r}: {hint}.")
            answers.append((got, call))
        for got, call in answers:
            _whole_number(got, call)
        fc1 = dense_params_after_flatten(224, 224, 512, 5, 4096)
        return (f"{len(cases)} cases agree with Keras layers; VGG-16's fc1 on 224x224 images has "
                f"{fc1:,} parameters.")

    return _grade("dense_params_after_flatten", run)


# --- 07 inception ----------------------------------------------------------------------------

__all__ += ["check_inception_module_params", "check_factorized_params",
            "check_separable_params"]


def _two_whole_numbers(got, call, names):
    _expect(isinstance(got, tuple) and len(got) == 2,
            f"return a tuple ({names}); {call} returned {got!r}.")
    for value in got:
        _expect(isinstance(value, (int, np.integer)) and not isinstance(value, bool),
                f"{call} returned {got!r}: return whole numbers (int), not "
                f"{type(value).__name__}.")


def check_inception_module_params(inception_module_params):
    """`inception_module_params(c_in, n1x1, n3x3red, n3x3, n5x5red, n5x5, pool_proj)`
    -> (parameters, output_channels) of GoogLeNet's Inception module (Figure 2b).

    Checked against the kit's `inception_module` (Keras layers, every convolution with a bias)
    on GoogLeNet's nine modules of Table 1 and on random widths.
    """
    import keras

    from cnnkit.models.googlenet import GOOGLENET_STAGES, inception_module

    def real(c_in, filters):
        inputs = keras.Input((7, 7, c_in))
        outputs = inception_module(inputs, filters, name="module")
        return keras.Model(inputs, outputs).count_params(), int(outputs.shape[-1])

    def run():
        cases, c_in = [], 192  # GoogLeNet's modules, each fed by the one before
        for modules in GOOGLENET_STAGES.values():
            for filters in modules.values():
                cases.append((c_in, filters))
                c_in = sum(filters[i] for i in (0, 2, 4, 5))
        rng = np.random.default_rng(11)
        for _ in range(6):
            cases.append((int(rng.integers(1, 257)),
                          tuple(int(v) for v in rng.integers(1, 129, size=6))))
        for c_in, filters in cases:
            n1, r3, n3, r5, n5, proj = filters
            want_params, want_channels = real(c_in, filters)
            call = f"inception_module_params({c_in}, {', '.join(map(str, filters))})"
            got = inception_module_params(c_in, *filters)
            _two_whole_numbers(got, call, "parameters, output_channels")
            params, channels = got
            what = f"a module on {c_in} channels with widths {filters}"
            if params != want_params:
                biases = n1 + r3 + n3 + r5 + n5 + proj
                direct = (c_in * n1 + 9 * c_in * n3 + 25 * c_in * n5 + c_in * proj + biases
                          - r3 - r5)
                if params == want_params - biases:
                    hint = f"every convolution has a bias: one per filter, {biases} here"
                elif params == want_params - c_in * proj - proj:
                    hint = ("the pool branch has weights too: after the 3x3 max pooling comes a "
                            "1x1 convolution from c_in to pool_proj channels")
                elif params in (direct, direct + c_in * (r3 + r5) + r3 + r5):
                    hint = ("the 3x3 convolution sees the n3x3red channels of its 1x1 reduction, "
                            "not c_in (and the 5x5 sees n5x5red)")
                else:
                    hint = ("count each convolution as k·k·(channels in)·filters + filters: the "
                            "1x1, the 3x3 reduction and the 3x3, the 5x5 reduction and the 5x5, "
                            "and the pool projection")
                _expect(False, f"{what} has {want_params:,} parameters in Keras; {call} gave "
                        f"{params!r}: {hint}.")
            if channels != want_channels:
                if channels == want_channels - proj + c_in:
                    hint = ("the pool branch ends with its 1x1 projection, so it adds pool_proj "
                            "channels, not c_in")
                elif channels == want_channels + r3 + r5:
                    hint = ("only the last layer of each branch is concatenated; the reductions "
                            "feed the 3x3 and 5x5 convolutions")
                else:
                    hint = ("the output is the four branches' last layers side by side: their "
                            "channels add up")
                _expect(False, f"{what} outputs {want_channels} channels; {call} gave "
                        f"{channels!r}: {hint}.")
        params, channels = inception_module_params(192, *GOOGLENET_STAGES[3]["3a"])
        return (f"{len(cases)} modules agree with Keras layers, GoogLeNet's nine among them; "
                f"inception_3a has {params:,} parameters and outputs {channels} channels.")

    return _grade("inception_module_params", run)


def check_factorized_params(factorized_params):
    """`factorized_params(n, c)` -> (weights of an n×n convolution, weights of a 1×n followed by
    an n×1), c channels in and out, no biases: checked against Keras Conv2D layers."""
    import keras

    def weights(c, *kernels):
        total = 0
        for kernel in kernels:
            layer = keras.layers.Conv2D(c, kernel, use_bias=False)
            layer.build((None, 17, 17, c))
            total += layer.count_params()
        return total

    def run():
        rng = np.random.default_rng(12)
        cases = [(7, 192), (3, 64), (5, 1), (2, 3)] + [
            (int(rng.integers(2, 12)), int(rng.integers(1, 300))) for _ in range(12)]
        for n, c in cases:
            want = (weights(c, (n, n)), weights(c, (1, n), (n, 1)))
            call = f"factorized_params({n}, {c})"
            got = factorized_params(n, c)
            _two_whole_numbers(got, call, "square_weights, factorized_weights")
            square, pair = got
            if square != want[0]:
                hint = ("count weights only, no biases" if square == want[0] + c else
                        f"an n×n kernel has n·n taps for every pair of input and output "
                        f"channels: n·n·c·c")
                _expect(False, f"a {n}x{n} convolution of {c} channels has {want[0]:,} weights; "
                        f"{call} gave {square!r} for it: {hint}.")
            if pair != want[1]:
                if pair == want[1] + 2 * c:
                    hint = "count weights only, no biases"
                elif pair == 2 * n * c:
                    hint = ("each of the two layers has n·c·c weights: n taps for every pair of "
                            "input and output channels")
                elif pair == want[1] // 2:
                    hint = "there are two layers, a 1×n and an n×1: count both"
                else:
                    hint = "a 1×n layer has n·c·c weights, and so has the n×1 after it"
                _expect(False, f"a 1x{n} then a {n}x1 convolution of {c} channels have "
                        f"{want[1]:,} weights; {call} gave {pair!r} for them: {hint}.")
        square, pair = factorized_params(7, 192)
        return (f"{len(cases)} cases agree with Keras layers; on 192 channels a 7x7 has "
                f"{square:,} weights, a 1x7 and a 7x1 {pair:,}: {1 - pair / square:.0%} fewer, "
                "1 − 2/7.")

    return _grade("factorized_params", run)


def check_separable_params(separable_params):
    """`separable_params(kernel_size, c_in, c_out, depth_multiplier=1, use_bias=True)`
    -> parameters of keras.layers.SeparableConv2D on c_in channels, checked against Keras."""
    import keras

    def run():
        rng = np.random.default_rng(13)
        cases = [(3, 728, 728, 1, False), (3, 32, 64, 1, True), (5, 16, 32, 2, True),
                 (3, 3, 8, 4, False), (1, 10, 20, 1, True)]
        for _ in range(15):
            cases.append((int(rng.choice([1, 3, 5, 7])), int(rng.integers(1, 257)),
                          int(rng.integers(1, 257)), int(rng.choice([1, 1, 2, 3])),
                          bool(rng.integers(2))))
        for k, c_in, c_out, m, bias in cases:
            layer = keras.layers.SeparableConv2D(c_out, k, depth_multiplier=m, use_bias=bias)
            layer.build((None, 16, 16, c_in))
            want = layer.count_params()
            call = (f"separable_params({k}, {c_in}, {c_out}, depth_multiplier={m}, "
                    f"use_bias={bias})")
            got = separable_params(k, c_in, c_out, depth_multiplier=m, use_bias=bias)
            b = c_out if bias else 0
            if got == k * k * c_in * c_out + b and got != want:
                hint = ("that is a regular convolution; a separable one filters each channel on "
                        "its own (k·k·c_in·depth_multiplier weights), then mixes the channels "
                        "with a 1x1 (c_in·depth_multiplier·c_out weights)")
            elif got == want - b + (0 if bias else c_out) and got != want:
                hint = ("with use_bias=True there is one bias per output filter, none with "
                        "use_bias=False")
            elif bias and got == want + c_in * m:
                hint = "SeparableConv2D has a single bias vector, after the pointwise step"
            elif got == k * k * c_in * m + c_in * c_out + b:
                hint = ("the pointwise 1x1 sees all c_in·depth_multiplier channels that the "
                        "depthwise step makes")
            elif got == k * k * c_in + c_in * c_out + b:
                hint = ("the depthwise step makes depth_multiplier maps from each input "
                        "channel: k·k·c_in·depth_multiplier weights, and the 1x1 after it sees "
                        "c_in·depth_multiplier channels")
            else:
                hint = ("depthwise k·k·c_in·depth_multiplier, pointwise "
                        "c_in·depth_multiplier·c_out, plus c_out biases if use_bias")
            _expect(got == want, f"SeparableConv2D({c_out}, {k}, depth_multiplier={m}, "
                    f"use_bias={bias}) on {c_in} channels has {want:,} parameters; {call} "
                    f"returned {got!r}: {hint}.")
            _expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                    f"{call} returned {got!r}: return a whole number (int), not "
                    f"{type(got).__name__}.")
        xception = separable_params(3, 728, 728, depth_multiplier=1, use_bias=False)
        return (f"{len(cases)} layers agree with Keras; Xception's 3x3 separable convolution "
                f"of 728 channels has {xception:,} weights, a regular one "
                f"{3 * 3 * 728 * 728:,}.")

    return _grade("separable_params", run)


# --- 08 resnet -------------------------------------------------------------------------------

__all__ += ["check_residual_block", "check_bottleneck_params"]


def _reference_block(shape, filters, strides):
    """cnnkit's basic block (projection shortcut where the shape changes) on an input `shape`."""
    import keras

    from cnnkit.models.resnet import basic_block

    inputs = keras.Input(shape)
    return keras.Model(inputs, basic_block(inputs, filters, strides=strides, shortcut=True,
                                           name="reference", epsilon=1e-5))


def check_residual_block(residual_block):
    """`residual_block(x, filters, strides=1)` -> ResNet's basic block on the Keras tensor x.

    Built on random shapes and checked against cnnkit's `basic_block`: output shape, trainable
    parameters, and, with every convolution kernel set to zero (F = 0), that the block returns
    ReLU(x) where the shortcut is the identity.
    """
    import keras

    from cnnkit.analysis import count_params

    def run():
        rng = np.random.default_rng(11)
        cases = [((8, 8, 16), 16, 1), ((8, 8, 16), 32, 2), ((6, 6, 8), 16, 1), ((9, 7, 8), 8, 2),
                 ((56, 56, 64), 64, 1), ((56, 56, 64), 128, 2)]
        for _ in range(8):
            c_in = int(rng.choice([4, 8, 12, 16]))
            strides = int(rng.integers(1, 3))
            filters = c_in * int(rng.choice([1, 2])) if rng.random() < 0.7 else int(
                rng.choice([4, 8, 24]))
            cases.append(((int(rng.integers(3, 12)), int(rng.integers(3, 12)), c_in), filters,
                          strides))
        for shape, filters, strides in cases:
            call = f"residual_block(x, {filters}, strides={strides}) on x of shape {shape}"
            identity = strides == 1 and shape[-1] == filters
            reference = _reference_block(shape, filters, strides)
            inputs = keras.Input(shape)
            try:
                outputs = residual_block(inputs, filters, strides=strides)
            except NotImplementedError:
                raise
            except Exception as err:
                if identity:
                    raise
                raise GradeFailure(
                    f"{call} raised {type(err).__name__}: {err}. Here F(x) has another shape "
                    f"than x, so the shortcut must be projected: a 1x1 Conv2D with {filters} "
                    f"filters and strides={strides} (no bias), then BatchNormalization.") from err
            _expect(outputs is not None and hasattr(outputs, "shape"),
                    f"{call} returned {outputs!r}: return the block's output tensor.")
            model = keras.Model(inputs, outputs)
            want_shape = tuple(reference.output.shape[1:])
            _expect(tuple(model.output.shape[1:]) == want_shape,
                    f"{call} gives an output of shape {tuple(model.output.shape[1:])}, expected "
                    f"{want_shape}: the first 3x3 convolution has the stride, and both use "
                    "padding='same'.")
            got, want = count_params(model), count_params(reference)
            biases = 2 * filters + (0 if identity else filters)
            if got == want + biases:
                hint = ("BatchNorm follows every convolution, so a bias would be cancelled by it: "
                        "use Conv2D(..., use_bias=False)")
            elif identity and got == want + shape[-1] * filters + 2 * filters:
                hint = ("x and F(x) already have the same shape here: the shortcut is the "
                        "identity, project it only when the stride or the channels change")
            elif identity and got == want + shape[-1] * filters + 3 * filters:
                hint = ("x and F(x) already have the same shape here: the shortcut is the "
                        "identity, with no 1x1 convolution")
            elif not identity and got == want - 2 * filters:
                hint = ("the projection shortcut needs its own BatchNormalization after its 1x1 "
                        "convolution")
            else:
                hint = ("two 3x3 convolutions without bias, each followed by BatchNormalization, "
                        "and a 1x1 projection (+ BatchNormalization) only where the shape changes")
            _expect(got == want, f"{call} has {got:,} trainable parameters, cnnkit's basic block "
                    f"{want:,}: {hint}.")
            if identity:
                for layer in model.layers:  # F = 0: every convolution outputs zeros
                    if isinstance(layer, keras.layers.Conv2D):
                        layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
                x = rng.normal(size=(2, *shape)).astype("float32")
                y = keras.ops.convert_to_numpy(model(x, training=False))
                if np.allclose(y, 0, atol=1e-6):
                    hint = ("with F = 0 your block returns zeros: it has no shortcut. Add x to "
                            "F(x) with layers.Add()")
                elif np.allclose(y, x, atol=1e-5):
                    hint = ("with F = 0 your block returns x itself: apply the ReLU after the "
                            "addition, y = ReLU(F(x) + x)")
                else:
                    hint = ("with F = 0 (every kernel zero, BatchNorm at its initial state) "
                            "y = ReLU(0 + x) must come out: F(x) = BN(conv(ReLU(BN(conv(x))))), "
                            "then y = ReLU(F(x) + x)")
                _expect(np.allclose(y, np.maximum(x, 0), atol=1e-5), f"{call}: {hint}.")
        return (f"{len(cases)} blocks agree with cnnkit's basic_block (shapes and parameters); "
                "with F = 0 the identity blocks return ReLU(x).")

    return _grade("residual_block", run)


def _reference_bottleneck_params(c_in, width, c_out, groups):
    import keras

    from cnnkit.analysis import count_params
    from cnnkit.models.resnet import bottleneck

    inputs = keras.Input((4, 4, c_in))
    outputs = bottleneck(inputs, width, c_out, strides=1, groups=groups, name="reference",
                         epsilon=1e-5)
    return count_params(keras.Model(inputs, outputs))


def check_bottleneck_params(bottleneck_params):
    """`bottleneck_params(c_in, width, c_out, groups=1)` -> trainable parameters of a bottleneck.

    1x1 c_in -> width, 3x3 width -> width in `groups` groups, 1x1 width -> c_out, each without
    bias and followed by BatchNorm (γ and β), plus a 1x1 projection and its BatchNorm when
    c_in != c_out (stride 1). Checked against cnnkit's `bottleneck` block on random sizes.
    """

    def run():
        rng = np.random.default_rng(12)
        cases = [(256, 64, 256, 1), (64, 64, 256, 1), (512, 128, 512, 1), (256, 128, 256, 32),
                 (1024, 512, 1024, 32), (256, 256, 256, 8)]
        for _ in range(14):
            groups = int(rng.choice([1, 1, 2, 4, 8, 32]))
            width = groups * int(rng.integers(1, 9))
            c_in = int(rng.integers(1, 65)) * 4
            c_out = c_in if rng.random() < 0.5 else int(rng.integers(1, 65)) * 4
            cases.append((c_in, width, c_out, groups))
        for c_in, width, c_out, groups in cases:
            want = _reference_bottleneck_params(c_in, width, c_out, groups)
            call = f"bottleneck_params({c_in}, {width}, {c_out}, groups={groups})"
            got = bottleneck_params(c_in, width, c_out, groups=groups)
            _whole_number(got, call)
            projection = (c_in * c_out + 2 * c_out) if c_in != c_out else 0
            bn = 2 * (width + width + c_out) + (2 * c_out if projection else 0)
            if projection and got == want - projection:
                hint = (f"c_in ≠ c_out, so the shortcut is projected: a 1x1 convolution "
                        f"({c_in}·{c_out} weights) and its BatchNorm")
            elif got == want + bn:
                hint = ("count only γ and β of each BatchNorm: its moving mean and variance are "
                        "not trainable")
            elif got == want - bn:
                hint = "every convolution is followed by a BatchNorm with γ and β per channel"
            elif groups > 1 and got == want + 9 * width * width * (groups - 1) // groups:
                hint = (f"the 3x3 is split into {groups} groups: each filter sees only "
                        f"{width}/{groups} = {width // groups} channels")
            else:
                hint = ("1x1 (c_in·width) + 3x3 (9·width·width/groups) + 1x1 (width·c_out) "
                        "weights, 2 per channel for each BatchNorm, and a projection only "
                        "when c_in ≠ c_out")
            _expect(got == want, f"{call} returned {got!r}; cnnkit's bottleneck block has "
                    f"{want:,} trainable parameters: {hint}.")
        resnet = bottleneck_params(256, 64, 256)
        resnext = bottleneck_params(256, 128, 256, groups=32)
        return (f"{len(cases)} blocks agree with cnnkit's bottleneck; at 256 channels ResNet-50's "
                f"block has {resnet:,} parameters and ResNeXt-50's (32 groups, twice as wide) "
                f"{resnext:,}.")

    return _grade("bottleneck_params", run)


# --- 09 dense connections ------------------------------------------------------------------

__all__ += ["check_dense_block_channels", "check_dense_layer_params", "check_transition_output"]


def check_dense_block_channels(dense_block_channels):
    """`dense_block_channels(k0, k, layers)` -> the channels after each layer of a dense block.

    Checked against the `_concat` outputs of cnnkit's `dense_block` (DenseNet's BN-ReLU-1x1(4k)-
    BN-ReLU-3x3(k) layers, each concatenated to its input) on random sizes.
    """
    import keras

    from cnnkit.models.densenet import dense_block

    def run():
        rng = np.random.default_rng(13)
        cases = [(64, 32, 6), (24, 12, 8), (16, 48, 3), (3, 1, 1)]
        cases += [(int(rng.integers(1, 129)), int(rng.integers(1, 49)), int(rng.integers(1, 9)))
                  for _ in range(6)]
        for k0, k, depth in cases:
            inputs = keras.Input((1, 1, k0))
            reference = keras.Model(inputs, dense_block(inputs, depth, k, name="reference"))
            want = [reference.get_layer(f"reference_block{b}_concat").output.shape[-1]
                    for b in range(1, depth + 1)]
            call = f"dense_block_channels({k0}, {k}, {depth})"
            got = dense_block_channels(k0, k, depth)
            _expect(isinstance(got, (list, tuple)),
                    f"{call} returned {got!r}: return a list with the channels after each of "
                    f"the {depth} layers, e.g. [{k0 + k}, {k0 + 2 * k}, ...].")
            got = list(got)
            for value in got:
                _whole_number(value, call)
            if len(got) != depth:
                hint = f"one number per dense layer: {depth} of them"
            elif got == [k0 + layer * k for layer in range(depth)]:
                hint = ("off by one: after layer l the block holds k0 + l·k channels, so the "
                        "first entry is k0 + k")
            elif got == [k0 + layer * 4 * k for layer in range(1, depth + 1)]:
                hint = ("the 1x1 bottleneck's 4k maps stay inside the layer: only the k maps of "
                        "its 3x3 convolution are concatenated")
            elif got == [layer * k for layer in range(1, depth + 1)]:
                hint = ("concatenation keeps the block's input: its k0 channels are part of "
                        "every layer's output")
            elif got == [k0] * depth or got == [k] * depth:
                hint = ("a dense layer concatenates, it does not add: the channels grow by k "
                        "per layer")
            else:
                hint = "each layer appends its k new maps to everything before it: k0 + l·k"
            _expect(got == want, f"{call} returned {got}; cnnkit's dense_block gives {want}: "
                    f"{hint}.")
        ends = [dense_block_channels(k0, 32, depth)[-1]
                for k0, depth in ((64, 6), (128, 12), (256, 24), (512, 16))]
        return (f"{len(cases)} blocks agree with cnnkit's dense_block; DenseNet-121's four "
                f"blocks end with {', '.join(map(str, ends))} channels.")

    return _grade("dense_block_channels", run)


def _reference_dense_layer_params(c_in, k, bottleneck):
    """Trainable parameters of a dense layer: cnnkit's `dense_layer` (its bottleneck is 4), or
    the same BN-ReLU-1x1(bottleneck·k)-BN-ReLU-3x3(k) built from Keras layers for another."""
    import keras
    from keras import layers

    from cnnkit.analysis import count_params
    from cnnkit.models.densenet import BOTTLENECK, dense_layer

    inputs = keras.Input((3, 3, c_in))
    if bottleneck == BOTTLENECK:
        outputs = dense_layer(inputs, k, name="reference")
    else:
        y = layers.ReLU()(layers.BatchNormalization()(inputs))
        y = layers.Conv2D(bottleneck * k, 1, use_bias=False)(y)
        y = layers.ReLU()(layers.BatchNormalization()(y))
        y = layers.Conv2D(k, 3, padding="same", use_bias=False)(y)
        outputs = layers.Concatenate()([inputs, y])
    return count_params(keras.Model(inputs, outputs))


def check_dense_layer_params(dense_layer_params):
    """`dense_layer_params(c_in, k, bottleneck=4)` -> trainable parameters of a DenseNet-B layer.

    BN-ReLU-1x1 conv (bottleneck·k maps)-BN-ReLU-3x3 conv (k maps), no biases, BatchNorm with γ
    and β: checked against cnnkit's `dense_layer` (bottleneck 4) and the same Keras layers with
    other bottlenecks, on random sizes.
    """

    def run():
        rng = np.random.default_rng(14)
        cases = [(64, 32, 4), (992, 32, 4), (24, 12, 4), (128, 48, 4), (64, 32, 2), (40, 12, 1)]
        cases += [(int(rng.integers(1, 1025)), int(rng.integers(1, 65)),
                   int(rng.choice([4, 4, 4, 1, 2, 3, 6]))) for _ in range(12)]
        for c, k, b in cases:
            want = _reference_dense_layer_params(c, k, b)
            call = f"dense_layer_params({c}, {k}, bottleneck={b})"
            got = dense_layer_params(c, k, bottleneck=b)
            _whole_number(got, call)
            bn = 2 * c + 2 * b * k
            if got == want + bn:
                hint = ("count only γ and β of each BatchNorm: its moving mean and variance are "
                        "not trainable")
            elif got == want - bn:
                hint = ("each BatchNorm has γ and β per channel: 2·c_in before the 1x1, "
                        "2·bottleneck·k before the 3x3")
            elif got == want + b * k + k:
                hint = ("the convolutions have no bias (BatchNorm follows each one): "
                        "use_bias=False")
            elif got == 2 * c + 9 * c * k:
                hint = ("the layer has a bottleneck: a 1x1 convolution to bottleneck·k maps, "
                        "and the 3x3 reads those, not the c_in input channels")
            elif got == want - 9 * b * k * k + 9 * c * k:
                hint = "the 3x3 convolution reads the bottleneck's bottleneck·k maps, not c_in"
            elif b != 4 and got == _reference_dense_layer_params(c, k, 4):
                hint = "use the bottleneck argument: the 1x1 makes bottleneck·k maps"
            else:
                hint = ("BN on c_in (2·c_in), 1x1 c_in → bottleneck·k, BN (2·bottleneck·k), "
                        "3x3 bottleneck·k → k")
            _expect(got == want, f"{call} returned {got!r}; the real layer has {want:,} "
                    f"trainable parameters: {hint}.")
        first, last = dense_layer_params(64, 32), dense_layer_params(992, 32)
        return (f"{len(cases)} layers agree with the real ones; in DenseNet-121 the first dense "
                f"layer has {first:,} parameters and the last of block 3 (992 channels in) "
                f"{last:,}.")

    return _grade("dense_layer_params", run)


def check_transition_output(transition_output):
    """`transition_output(shape, compression=0.5)` -> (height, width, channels) it outputs.

    Checked against cnnkit's `transition` (BN-ReLU, 1x1 conv to ⌊θ·m⌋ channels, 2x2 average pool
    with stride 2) on random shapes, odd sizes included.
    """
    import keras

    from cnnkit.models.densenet import transition

    def run():
        rng = np.random.default_rng(15)
        cases = [((56, 56, 256), 0.5), ((28, 28, 512), 0.5), ((14, 14, 1024), 0.5),
                 ((7, 9, 15), 0.5), ((8, 8, 96), 1.0), ((13, 12, 30), 0.75)]
        # Dyadic shares (0.375 = 3/8, ...) keep θ·m exact in floating point.
        for _ in range(12):
            shape = tuple(int(n) for n in (rng.integers(2, 40), rng.integers(2, 40),
                                           rng.integers(4, 513)))
            cases.append((shape, float(rng.choice([0.5, 0.5, 0.25, 0.375, 0.625, 0.75, 1.0]))))
        for shape, theta in cases:
            inputs = keras.Input(shape)
            want = tuple(transition(inputs, theta, name="reference").shape[1:])
            call = f"transition_output({shape}, compression={theta})"
            got = transition_output(shape, compression=theta)
            _expect(isinstance(got, (tuple, list)) and len(got) == 3,
                    f"{call} returned {got!r}: return (height, width, channels).")
            got = tuple(got)
            for value in got:
                _whole_number(value, call)
            h, w, c = shape
            size_wrong = got[:2] != want[:2]
            if size_wrong and got[:2] == (h, w):
                hint = "the 2x2 average pooling with stride 2 halves the height and the width"
            elif size_wrong and got[:2] == (-(-h // 2), -(-w // 2)):
                hint = ("the pooling has no padding: an odd size loses its last row or column, "
                        "⌊h/2⌋")
            elif size_wrong:
                hint = "the size halves, rounded down: (⌊h/2⌋, ⌊w/2⌋)"
            elif got[2] == c:
                hint = "the 1x1 convolution keeps only a share θ of the channels: ⌊θ·m⌋"
            elif got[2] == c // 2 and theta != 0.5:
                hint = "use the compression argument θ: ⌊θ·m⌋ channels, not always half"
            elif got[2] == round(c * theta) or got[2] == math.ceil(c * theta):
                hint = "the channels are rounded down: ⌊θ·m⌋, int(θ·m)"
            else:
                hint = "(⌊h/2⌋, ⌊w/2⌋, ⌊θ·m⌋)"
            _expect(got == want, f"{call} returned {got}; cnnkit's transition gives {want}: "
                    f"{hint}.")
        shapes = [transition_output(s, compression=0.5)
                  for s in ((56, 56, 256), (28, 28, 512), (14, 14, 1024))]
        return (f"{len(cases)} transitions agree with cnnkit's; DenseNet-121's three give "
                + ", ".join("x".join(map(str, s)) for s in shapes) + ".")

    return _grade("transition_output", run)


# --- 10 channel attention ------------------------------------------------------------------

__all__ += ["check_se_params", "check_squeeze_excite_numpy", "check_sk_select"]


def _reference_se_params(channels, r):
    import keras

    from cnnkit.analysis import count_params
    from cnnkit.models.senet import se_block

    inputs = keras.Input((2, 2, channels))
    return count_params(keras.Model(inputs, se_block(inputs, name="reference", reduction=r)))


def check_se_params(se_params):
    """`se_params(channels, r)` -> trainable parameters of an SE block on `channels` channels
    with channels // r hidden units: checked against cnnkit's se_block built on random widths."""

    def run():
        rng = np.random.default_rng(17)
        cases = [(256, 16), (2048, 16), (512, 16), (64, 4), (32, 8), (100, 16), (24, 8), (40, 3)]
        for _ in range(12):
            r = int(rng.choice([2, 4, 8, 16, 32]))
            cases.append((int(rng.integers(r, 1200)), r))
        for c, r in cases:
            want = _reference_se_params(c, r)
            call = f"se_params({c}, {r})"
            got = se_params(c, r)
            _whole_number(got, call)
            if got == want:
                continue
            d = c // r
            if got == 2 * c * d:
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
            _expect(False, f"{call} returned {got!r}; cnnkit's SE block has {want:,} trainable "
                    f"parameters: {hint}.")
        blocks = ((3, 256), (4, 512), (6, 1024), (3, 2048))  # SE-ResNet-50: blocks, channels
        added = sum(n * se_params(c, 16) for n, c in blocks)
        return (f"{len(cases)} blocks agree with cnnkit's se_block; the 16 blocks of "
                f"SE-ResNet-50 add {added:,} parameters to ResNet-50.")

    return _grade("se_params", run)


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


def check_squeeze_excite_numpy(squeeze_excite_numpy):
    """`squeeze_excite_numpy(x, w1, b1, w2, b2)` -> x (N, H, W, C) scaled channel by channel by
    the SE gates, in NumPy: checked against cnnkit.blocks.squeeze_excite with the same weights."""

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
            got = squeeze_excite_numpy(x.copy(), w1, b1, w2, b2)
            _expect(got is not None, f"{call} returned None: return x scaled by the gates.")
            got = np.asarray(got)
            z = x.mean(axis=(1, 2))
            s = _sigmoid(np.maximum(z @ w1 + b1, 0) @ w2 + b2)
            if got.shape != want.shape:
                if got.size == s.size:
                    hint = "that looks like the gates alone: return x multiplied by them"
                else:
                    hint = "the block only rescales the channels, so the output has x's shape"
                _expect(False, f"{call} returned shape {got.shape}, expected {want.shape}: "
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
                "each FC layer adds its bias: z·W₁ + b₁, then ·W₂ + b₂":
                    x * _sigmoid(np.maximum(z @ w1, 0) @ w2)[:, None, None],
                "scale every pixel of channel c by the gate s_c (x * s), do not add it":
                    x + s[:, None, None],
            }
            hint = next((h for h, v in variants.items() if v.shape == want.shape
                         and np.allclose(got, v, rtol=1e-4, atol=1e-5)),
                        "z = mean of x over H and W; s = σ(ReLU(z·W₁ + b₁)·W₂ + b₂); return "
                        "x · s for every pixel")
            worst = float(np.abs(got - want).max())
            _expect(False, f"{call}: your output differs from cnnkit's squeeze_excite by up to "
                    f"{worst:.3g}: {hint}.")
        return f"{len(cases)} random blocks agree with cnnkit.blocks.squeeze_excite."

    return _grade("squeeze_excite_numpy", run)


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

    def run():
        rng = np.random.default_rng(19)
        cases = [(2, 1, 4, 4, 6), (2, 2, 3, 3, 8), (3, 1, 2, 5, 4), (4, 2, 1, 1, 5)]
        for _ in range(6):
            cases.append((int(rng.integers(2, 5)), int(rng.integers(1, 4)),
                          int(rng.integers(1, 6)), int(rng.integers(1, 6)),
                          int(rng.integers(2, 17))))
        for m, n, h, w, c in cases:
            branches = [rng.normal(size=(n, h, w, c)).astype("float32") for _ in range(m)]
            logits = (2 * rng.normal(size=(n, m, c))).astype("float32")
            want = _reference_sk_select(branches, logits)
            call = f"sk_select({m} branches of shape {(n, h, w, c)}, logits of shape {logits.shape})"
            got = sk_select([b.copy() for b in branches], logits.copy())
            _expect(got is not None, f"{call} returned None: return the weighted sum.")
            got = np.asarray(got)
            _expect(got.shape == want.shape, f"{call} returned shape {got.shape}, expected "
                    f"{want.shape}: the M branches are summed into one map of C channels.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            stacked = np.stack(branches, axis=1)  # (N, M, H, W, C)

            def mix(a):  # a: (N, M, C) weights
                return (stacked * a[:, :, None, None, :]).sum(axis=1)

            e = np.exp(logits - logits.max(axis=-1, keepdims=True))
            variants = {
                "the softmax runs across the M BRANCHES (axis 1 of the logits), separately for "
                "every channel, not across the channels": mix(e / e.sum(axis=-1, keepdims=True)),
                "turn the logits into weights with a softmax across the branches first":
                    mix(logits),
                "a sigmoid per branch is SE's gate; SK's weights come from a softmax across the "
                "branches, so they sum to 1": mix(_sigmoid(logits)),
                "weight the branches: a plain sum ignores the attention": stacked.sum(axis=1),
                "weight the branches: a plain mean ignores the attention": stacked.mean(axis=1),
            }
            hint = next((h for h, v in variants.items()
                         if np.allclose(got, v, rtol=1e-4, atol=1e-5)),
                        "a = softmax(logits, axis=1) so that a[:, :, c] sums to 1; then "
                        "V = Σ_m a[:, m, c] · branches[m][..., c]")
            _expect(False, f"{call}: your output differs from cnnkit's SK select by up to "
                    f"{float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} random selections of 2 to 4 branches agree with cnnkit's "
                "radix_softmax and weighted_sum.")

    return _grade("sk_select", run)


# --- 11 efficient design ---------------------------------------------------------------------

__all__ += ["check_channel_shuffle", "check_ghost_module_params", "check_round_filters"]


def check_channel_shuffle(channel_shuffle):
    """`channel_shuffle(x, groups)` -> x (a NumPy array, channels last) with its channels
    shuffled as ShuffleNet's Fig. 1: checked against cnnkit.layers.ChannelShuffle."""
    import keras

    from cnnkit.layers import ChannelShuffle

    def shuffle(x, groups):
        return keras.ops.convert_to_numpy(ChannelShuffle(groups)(x))

    def run():
        rng = np.random.default_rng(14)
        cases = [((1, 1, 1, 6), 3), ((1, 1, 1, 6), 2), ((2, 3, 4, 12), 3), ((1, 2, 2, 8), 4),
                 ((1, 1, 1, 10), 5), ((1, 2, 3, 9), 1), ((1, 1, 1, 4), 4)]
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
            got = channel_shuffle(x.copy(), groups)
            _expect(got is not None, f"{call} returned None: return the shuffled array.")
            got = np.asarray(got)
            _expect(got.shape == want.shape, f"{call} returned shape {got.shape}: a shuffle "
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
            else:
                hint = ("reshape the last axis to (groups, channels // groups), swap those two "
                        "axes, and reshape back to channels")
            _expect(False, f"{call}: the channels (0, 1, 2, ...) come out in the order {order}, "
                    f"expected {expected}: {hint}.")
        return (f"{len(cases)} arrays agree with cnnkit.layers.ChannelShuffle; 6 channels in 3 "
                f"groups become {channel_shuffle(np.arange(6).reshape(1, 1, 1, 6), 3).ravel()}.")

    return _grade("channel_shuffle", run)


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
            got = ghost_module_params(c_in, filters, ratio=ratio, dw_size=d)
            _whole_number(got, call)
            m = math.ceil(filters / ratio)
            ghosts = m * (ratio - 1)
            bn = 2 * (m + ghosts)
            if got == want:
                continue
            if got == want - bn:
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
            _expect(False, f"{call} returned {got!r}; cnnkit's ghost_module has {want:,} "
                    f"trainable parameters: {hint}.")
        ghost, plain = ghost_module_params(80, 200), 80 * 200
        return (f"{len(cases)} modules agree with cnnkit's ghost_module; 80 -> 200 channels "
                f"takes {ghost:,} parameters, a plain 1x1 {plain:,} weights.")

    return _grade("ghost_module_params", run)


def _ghost_formula(c_in, m, ratio, d):
    ghosts = m * (ratio - 1)
    return c_in * m + 2 * m + d * d * ghosts + 2 * ghosts


def check_round_filters(round_filters):
    """`round_filters(filters, width)` -> filters·width rounded to a multiple of 8 as MobileNetV2
    and EfficientNet round it: checked against cnnkit.models.efficientnet.round_filters."""
    from cnnkit.models.efficientnet import B0_STAGES, VARIANTS
    from cnnkit.models.efficientnet import round_filters as reference

    def run():
        rng = np.random.default_rng(16)
        widths = sorted({w for w, _, _, _ in VARIANTS.values()} | {0.25, 0.35, 0.5, 0.75, 1.3})
        cases = [(100, 1.0), (22, 0.5), (32, 0.35), (16, 0.25), (1280, 1.1), (320, 2.0), (112, 1.8),
                 (11, 1.0), (4, 1.0), (1, 1.0)]
        cases += [(s.filters_out, w) for s in B0_STAGES for w in widths]
        cases += [(int(rng.integers(1, 1500)), float(rng.choice(widths))) for _ in range(40)]
        for filters, width in cases:
            want = reference(filters, width)
            call = f"round_filters({filters}, {width})"
            got = round_filters(filters, width)
            _whole_number(got, call)
            value = filters * width
            nearest = int(value + 4) // 8 * 8
            if got == want:
                continue
            down = max(8, int(value // 8 * 8))
            if got == down and down != max(8, nearest):
                hint = "round to the NEAREST multiple of 8 (add 4 before dividing), not down"
            elif got == max(8, nearest):
                hint = (f"rounding {value:g} to the nearest multiple of 8 gives {got}, more than "
                        "10% below it: then add 8")
            elif got == -(-value // 8) * 8:
                hint = "round to the NEAREST multiple of 8 (add 4 before dividing), not up"
            else:
                hint = ("v = filters·width; r = max(8, int(v + 4) // 8 · 8); if r < 0.9·v, "
                        "r += 8")
            _expect(False, f"{call} returned {got!r}, expected {want}: {hint}.")
        return (f"{len(cases)} widths agree with cnnkit's round_filters; EfficientNet-B7's last "
                f"stage has {round_filters(320, 2.0)} channels, MobileNetV2 0.35's first conv "
                f"{round_filters(32, 0.35)}.")

    return _grade("round_filters", run)


# --- 12 reparameterization -------------------------------------------------------------------

__all__ += ["check_fuse_conv_bn", "check_pad_to_3x3", "check_identity_as_3x3"]


def _run_conv(x, kernel, bias=None):
    """Output of a real Keras Conv2D (stride 1, padding "same") holding `kernel` (and `bias`)."""
    import keras

    kernel = np.asarray(kernel, dtype="float32")
    layer = keras.layers.Conv2D(kernel.shape[-1], kernel.shape[:2], padding="same",
                                use_bias=bias is not None)
    layer.build(x.shape)
    layer.set_weights([kernel] + ([np.asarray(bias, dtype="float32")] if bias is not None else []))
    return keras.ops.convert_to_numpy(layer(x))


def _array(got, what):
    _expect(got is not None, f"{what} returned None: return a NumPy array.")
    try:
        return np.asarray(got, dtype="float64")
    except (TypeError, ValueError) as err:
        raise GradeFailure(f"{what} returned {type(got).__name__}, not an array of numbers: "
                           f"{err}") from err


def _fuse_hint(kernel, bias, w, gamma, beta, mean, var, eps):
    """Name the usual slip behind a wrong fused (kernel, bias)."""
    scale = gamma / np.sqrt(var + eps)

    def near(a, b):
        return a.shape == np.shape(b) and np.allclose(a, b, rtol=1e-4, atol=1e-6)

    no_eps = gamma / np.sqrt(var)
    if not near(kernel, w * scale):
        if near(kernel, w):
            return ("the kernel changes too: scale each output channel's filter (the LAST axis "
                    "of the kernel) by gamma / sqrt(var + eps)")
        if near(kernel, w * no_eps):
            return f"add eps = {eps:g} to the variance under the square root: sqrt(var + eps)"
        if near(kernel, w * gamma / (var + eps)):
            return "divide by the standard deviation sqrt(var + eps), not by the variance"
        return ("W' = W · gamma / sqrt(var + eps), one factor per OUTPUT channel: the last axis "
                "of a Keras kernel (height, width, c_in, c_out)")
    if near(bias, beta - mean * no_eps):
        return f"add eps = {eps:g} to the variance under the square root: sqrt(var + eps)"
    if near(bias, beta - mean):
        return "the mean is scaled too: b' = beta − mean · gamma / sqrt(var + eps)"
    if near(bias, beta):
        return "BatchNorm subtracts the moving mean: b' = beta − mean · gamma / sqrt(var + eps)"
    return "your kernel is right; the bias is b' = beta − mean · gamma / sqrt(var + eps)"


def check_fuse_conv_bn(fuse_conv_bn):
    """`fuse_conv_bn(kernel, gamma, beta, mean, var, eps)` -> (kernel, bias) of one Conv2D.

    Checked on real layers: a Conv2D without bias followed by a BatchNormalization with random
    statistics, in inference mode, must equal one Conv2D holding the returned kernel and bias.
    """
    import keras

    def run():
        rng = np.random.default_rng(12)
        # (kernel size, c_in, c_out, eps, variances from, to): small variances make eps matter.
        cases = [(3, 4, 6, 1e-5, 0.2, 3.0), (1, 8, 8, 1e-3, 0.2, 3.0), (3, 6, 6, 1e-3, 1e-3, 5e-3),
                 (3, 5, 3, 1e-5, 1e-5, 5e-5), (1, 3, 16, 1e-5, 0.5, 2.0)]
        for _ in range(5):
            c = int(rng.integers(1, 17))
            cases.append((int(rng.choice([1, 3])), c, c if rng.random() < 0.5 else int(
                rng.integers(1, 17)), float(rng.choice([1e-3, 1e-5])), 0.05, 4.0))
        for k, c_in, c_out, eps, low, high in cases:
            x = rng.normal(size=(2, 7, 7, c_in)).astype("float32")
            conv = keras.layers.Conv2D(c_out, k, padding="same", use_bias=False)
            bn = keras.layers.BatchNormalization(epsilon=eps)
            bn(conv(x))  # builds both
            w = conv.get_weights()[0].astype("float64")
            gamma, beta = rng.normal(1, 0.3, c_out), rng.normal(0, 0.3, c_out)
            mean, var = rng.normal(0, 0.5, c_out), rng.uniform(low, high, c_out)
            bn.set_weights([gamma, beta, mean, var])
            want = keras.ops.convert_to_numpy(bn(conv(x), training=False))
            call = (f"fuse_conv_bn(kernel of shape {w.shape}, gamma, beta, mean, var, "
                    f"eps={eps:g})")
            result = fuse_conv_bn(w.copy(), gamma.copy(), beta.copy(), mean.copy(), var.copy(),
                                  eps)
            _expect(isinstance(result, (tuple, list)) and len(result) == 2,
                    f"{call} returned {type(result).__name__}: return a pair (kernel, bias).")
            kernel, bias = _array(result[0], "your kernel"), _array(result[1], "your bias")
            _expect(kernel.shape == w.shape, f"{call}: your kernel has shape {kernel.shape}, "
                    f"expected {w.shape}, the shape of the convolution's kernel.")
            _expect(bias.shape == (c_out,), f"{call}: your bias has shape {bias.shape}, expected "
                    f"({c_out},): one bias per output channel.")
            got = _run_conv(x, kernel, bias)
            error = float(np.abs(got - want).max())
            _expect(np.allclose(got, want, rtol=1e-4, atol=1e-4),
                    f"{call}: a Conv2D with your kernel and bias differs from Conv2D + "
                    f"BatchNormalization (inference) by up to {error:.3g}: "
                    f"{_fuse_hint(kernel, bias, w, gamma, beta, mean, var, eps)}.")
        return (f"{len(cases)} Conv2D + BatchNormalization pairs (1x1 and 3x3, eps 1e-3 and "
                "1e-5, small and large variances) equal one Conv2D with your kernel and bias.")

    return _grade("fuse_conv_bn", run)


def check_pad_to_3x3(pad_to_3x3):
    """`pad_to_3x3(kernel)` -> the (1, 1, c_in, c_out) kernel as a (3, 3, c_in, c_out) kernel.

    Checked by running real Conv2D layers with padding="same": the 3x3 kernel must give the 1x1
    kernel's output.
    """

    def run():
        rng = np.random.default_rng(13)
        cases = [(4, 6), (1, 1), (8, 8), (3, 16)] + [
            (int(rng.integers(1, 13)), int(rng.integers(1, 13))) for _ in range(6)]
        for c_in, c_out in cases:
            k1 = rng.normal(size=(1, 1, c_in, c_out))
            call = f"pad_to_3x3(kernel of shape {k1.shape})"
            k3 = _array(pad_to_3x3(k1.copy()), call)
            if k3.shape == (3, 3, c_in + 2, c_out + 2):
                hint = ("pad only the two spatial axes (the first two), not the channels: "
                        "np.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))")
            else:
                hint = "a 3x3 kernel has shape (3, 3, c_in, c_out)"
            _expect(k3.shape == (3, 3, c_in, c_out), f"{call} has shape {k3.shape}, expected "
                    f"{(3, 3, c_in, c_out)}: {hint}.")
            x = rng.normal(size=(2, 7, 6, c_in)).astype("float32")
            want, got = _run_conv(x, k1), _run_conv(x, k3)
            if not np.allclose(k3[1, 1], k1[0, 0]):
                hint = ("the 1x1 weights go to the centre tap [1, 1]: with padding='same' the "
                        "centre of a 3x3 window is the pixel the 1x1 kernel reads")
            else:
                hint = "every tap but the centre must be zero"
            _expect(np.allclose(got, want, rtol=1e-4, atol=1e-5),
                    f"{call}: Conv2D(padding='same') with your 3x3 kernel differs from the 1x1 "
                    f"convolution by up to {float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} 1x1 kernels padded to 3x3: with padding='same' every one gives "
                "the 1x1 convolution's output.")

    return _grade("pad_to_3x3", run)


def check_identity_as_3x3(identity_as_3x3):
    """`identity_as_3x3(channels)` -> a (3, 3, channels, channels) kernel that copies its input.

    Checked by running a real Conv2D (padding="same") with the kernel on random maps.
    """

    def run():
        rng = np.random.default_rng(14)
        cases = [1, 3, 4, 8, 16] + [int(rng.integers(2, 33)) for _ in range(3)]
        for c in cases:
            call = f"identity_as_3x3({c})"
            kernel = _array(identity_as_3x3(c), call)
            _expect(kernel.shape == (3, 3, c, c), f"{call} has shape {kernel.shape}, expected "
                    f"{(3, 3, c, c)}: (height, width, input channels, output channels).")
            x = rng.normal(size=(2, 5, 6, c)).astype("float32")
            got = _run_conv(x, kernel)
            eye = np.eye(c)
            if c > 1 and np.allclose(kernel[1, 1], 1):
                hint = ("channel i goes to channel i only: at the centre the c×c matrix is the "
                        "identity matrix np.eye(c), not all ones (that sums the channels)")
            elif all(np.allclose(kernel[i, j], eye) for i in range(3) for j in range(3)):
                hint = ("only the centre tap [1, 1] is non-zero: the other eight would add the "
                        "neighbouring pixels")
            elif not np.allclose(kernel[1, 1], eye) and any(
                    np.allclose(kernel[i, j], eye) for i in range(3) for j in range(3)):
                hint = ("put the 1s at the centre tap [1, 1]: another tap shifts the image by "
                        "one pixel")
            else:
                hint = ("a 1 at the centre tap from input channel i to output channel i, "
                        "kernel[1, 1, i, i] = 1, and 0 everywhere else")
            _expect(np.allclose(got, x, atol=1e-5), f"{call}: Conv2D(padding='same') with your "
                    f"kernel changes its input (by up to {float(np.abs(got - x).max()):.3g}): "
                    f"{hint}.")
        return (f"{len(cases)} identity kernels (1 to {max(cases)} channels): a Conv2D with each "
                "returns its input unchanged.")

    return _grade("identity_as_3x3", run)


# --- 05 data_augmentation --------------------------------------------------------------------

__all__ += ["check_random_crop", "check_pca_color_shift", "check_ten_crop_views"]


def _image_array(got, call):
    """`got` as a float NumPy array, or a GradeFailure that says what came back."""
    _expect(got is not None, f"{call} returned None: return the image (a NumPy array).")
    try:
        got = np.asarray(got, dtype="float64")
    except (TypeError, ValueError) as err:
        raise GradeFailure(f"{call} returned {type(got).__name__}, not an array of numbers: "
                           f"{err}") from err
    return got


def _window_positions(image, patch):
    """Every (top, left) at which `patch` is exactly a window of `image`."""
    h, w = patch.shape[:2]
    return [(t, l) for t in range(image.shape[0] - h + 1) for l in range(image.shape[1] - w + 1)
            if np.array_equal(image[t:t + h, l:l + w], patch)]


def check_random_crop(random_crop):
    """`random_crop(image, size, rng)` -> a (height, width) window of `image` (H, W, C) at a
    random position drawn from the NumPy Generator `rng`: AlexNet's random patches.

    Checked on random images (crop sizes as cnnkit.augment.PerImageRandomCrop takes them): the
    output is a window of the input, every position (edges included) comes up, and the same rng
    state gives the same crop.
    """

    def run():
        rng = np.random.default_rng(5)
        # (image height, width, channels, crop height, crop width): non-square on purpose, so
        # swapping height and width shows; (H, W) crops (one position) and 1x1 crops too.
        cases = [(10, 10, 3, 8, 8), (12, 9, 3, 7, 4), (6, 11, 1, 6, 5), (9, 7, 2, 9, 7),
                 (5, 4, 3, 1, 1)]
        for _ in range(3):  # at most 5 x 5 positions, so that every one can be seen to come up
            h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
            cases.append((h, w, int(rng.choice([1, 3])), h - int(rng.integers(0, min(h, 5))),
                          w - int(rng.integers(0, min(w, 5)))))
        for h, w, c, ch, cw in cases:
            image = rng.uniform(size=(h, w, c))  # distinct values: a window has one position
            call = f"random_crop(image of shape {(h, w, c)}, size={(ch, cw)}, rng)"
            seen = set()
            draws = 40 * (h - ch + 1) * (w - cw + 1)
            for i in range(draws):
                got = _image_array(random_crop(image.copy(), (ch, cw),
                                               np.random.default_rng(1000 + i)), call)
                if got.shape != (ch, cw, c):
                    hint = ("size is (height, width): the first number counts rows"
                            if got.shape == (cw, ch, c) else
                            "keep every channel and crop rows and columns only")
                    _expect(False, f"{call} has shape {got.shape}, expected {(ch, cw, c)}: "
                            f"{hint}.")
                where = _window_positions(image, got)
                if not where:
                    flipped = _window_positions(image[:, ::-1], got)
                    hint = ("that is a window of the mirrored image: crop only, flipping is a "
                            "separate step" if flipped else
                            "return image[top:top + height, left:left + width] with the "
                            "pixels unchanged")
                    _expect(False, f"{call} is not a window of the image: {hint}.")
                seen.add(where[0])
            every = {(t, l) for t in range(h - ch + 1) for l in range(w - cw + 1)}
            missing = sorted(every - seen)
            if missing:
                edge = any(t == h - ch for t, _ in missing) or any(l == w - cw for _, l in missing)
                hint = (f"the offsets run from 0 to {h - ch} (rows) and {w - cw} (columns) "
                        "inclusive: rng.integers(0, H - height + 1), whose upper bound is "
                        "excluded" if edge and len(seen) > 1 else
                        "draw the position from rng, anew for every call")
                _expect(False, f"{call}: over {draws} calls with different rngs the windows at "
                        f"(top, left) {missing[:4]} never came up: {hint}.")
            for seed in (7, 8, 9):
                once = random_crop(image.copy(), (ch, cw), np.random.default_rng(seed))
                again = random_crop(image.copy(), (ch, cw), np.random.default_rng(seed))
                _expect(np.array_equal(np.asarray(once), np.asarray(again)),
                        f"{call}: two calls with np.random.default_rng({seed}) cropped "
                        "different windows: draw the position with the rng you are given "
                        "(rng.integers), not np.random, so a seed reproduces the crop.")
        return (f"{len(cases)} images: every crop is a window of its image, every position from "
                "corner to corner comes up, and a seed reproduces the crop.")

    return _grade("random_crop", run)


def _reference_color_shift(eigenvalues, eigenvectors, alpha):
    """cnnkit's PCAColorAugmentation.color_shift: sum_i alpha_i * lambda_i * p_i."""
    import keras

    from cnnkit.augment import PCAColorAugmentation

    layer = PCAColorAugmentation(eigenvalues, eigenvectors)
    return keras.ops.convert_to_numpy(layer.color_shift(np.asarray(alpha, "float32"))).astype(
        "float64")


def check_pca_color_shift(pca_color_shift):
    """`pca_color_shift(image, eigenvalues, eigenvectors, alpha)` -> the image (H, W, 3) plus
    AlexNet's colour shift sum_i alpha_i * lambda_i * p_i at every pixel, with p_i the COLUMNS
    of `eigenvectors`. Checked against cnnkit.augment.PCAColorAugmentation.color_shift."""

    def run():
        rng = np.random.default_rng(6)
        cases = [(4, 5), (1, 1), (8, 3), (6, 6)] + [
            (int(rng.integers(1, 9)), int(rng.integers(1, 9))) for _ in range(4)]
        for h, w in cases:
            image = rng.uniform(size=(h, w, 3))
            # A random rotation of RGB space: its rows are not its columns.
            vectors = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            values = np.sort(rng.uniform(0.001, 0.3, 3))[::-1]
            alpha = rng.normal(0, 0.1, 3)
            shift = _reference_color_shift(values, vectors, alpha)
            want = image + shift
            call = f"pca_color_shift(image of shape {(h, w, 3)}, eigenvalues, eigenvectors, alpha)"
            got = _image_array(pca_color_shift(image.copy(), values.copy(), vectors.copy(),
                                               alpha.copy()), call)
            _expect(got.shape == want.shape, f"{call} has shape {got.shape}, expected "
                    f"{want.shape}: add the shift to every pixel and return the whole image.")
            if np.allclose(got, want, atol=1e-5):
                continue
            variants = {
                "the eigenvectors are the COLUMNS of `eigenvectors` (p_i = eigenvectors[:, i]); "
                "you used its rows": vectors.T @ (alpha * values),
                "each term is scaled by its eigenvalue too: alpha_i * lambda_i * p_i":
                    vectors @ alpha,
                "the paper multiplies by the eigenvalue lambda_i itself, not its square root":
                    vectors @ (alpha * np.sqrt(values)),
                "return the shifted image, not the shift alone": vectors @ (alpha * values) - image,
                "ADD the shift to the image (image + shift)": -(vectors @ (alpha * values)),
            }
            hint = next((h_ for h_, v in variants.items()
                         if np.allclose(got, image + v, atol=1e-5)), None)
            if hint is None and np.ptp((got - image).reshape(-1, 3), axis=0).max() > 1e-6:
                hint = ("the shift is the same for every pixel of the image (alpha is drawn once "
                        "per image): compute the 3-vector once and add it everywhere")
            elif hint is None:
                hint = ("shift = eigenvectors @ (alpha * eigenvalues), the same 3 numbers added "
                        "to every pixel")
            _expect(False, f"{call} differs from cnnkit's PCA colour shift by up to "
                    f"{float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} images shifted exactly as cnnkit.augment.PCAColorAugmentation "
                "shifts them.")

    return _grade("pca_color_shift", run)


def check_ten_crop_views(ten_crop_views):
    """`ten_crop_views(image, size)` -> (10, height, width, C): AlexNet's ten test views of one
    image (H, W, C): the top-left, top-right, bottom-left, bottom-right and centre crops, then
    the same five mirrored left to right. Checked against cnnkit.augment.ten_crop."""
    import keras

    from cnnkit.augment import ten_crop

    def run():
        rng = np.random.default_rng(8)
        # Odd room for the centre (floor of half, as ten_crop) and non-square crops.
        cases = [(8, 8, 3, 6, 6), (9, 12, 3, 6, 7), (7, 5, 1, 4, 4), (6, 6, 2, 6, 6),
                 (11, 10, 3, 8, 5)]
        for _ in range(3):
            h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
            cases.append((h, w, int(rng.choice([1, 3])), int(rng.integers(1, h + 1)),
                          int(rng.integers(1, w + 1))))
        for h, w, c, ch, cw in cases:
            image = rng.uniform(size=(h, w, c)).astype("float32")
            want = keras.ops.convert_to_numpy(ten_crop(image[None], (ch, cw)))[:, 0]
            call = f"ten_crop_views(image of shape {(h, w, c)}, size={(ch, cw)})"
            got = _image_array(ten_crop_views(image.copy(), (ch, cw)), call)
            if got.shape != want.shape:
                hint = ("size is (height, width): the first number counts rows"
                        if got.shape == (10, cw, ch, c) else
                        "ten views, each a (height, width, channels) crop, stacked on a new first "
                        "axis (np.stack)")
                _expect(False, f"{call} has shape {got.shape}, expected {want.shape}: {hint}.")
            if np.allclose(got, want):
                continue
            top, left = (h - ch) // 2, (w - cw) // 2
            wrong = [i for i in range(10) if not np.allclose(got[i], want[i])]
            names = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
            names += [f"mirrored {n}" for n in names]
            if all(np.allclose(got[i], want[i]) for i in range(5)):
                mirrored_image = image[:, ::-1]
                views = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), (top, left)]
                if all(np.allclose(got[5 + i], mirrored_image[t:t + ch, l:l + cw])
                       for i, (t, l) in enumerate(views)):
                    hint = ("mirror each of the five crops (crop[:, ::-1]); cropping the mirrored "
                            "image swaps the left and right corners")
                elif all(np.allclose(got[5 + i], want[i][::-1]) for i in range(5)):
                    hint = ("mirror left to right, the WIDTH axis (crop[:, ::-1]); crop[::-1] "
                            "turns the image upside down")
                else:
                    hint = "views 6 to 10 are views 1 to 5 mirrored left to right, in that order"
            elif any(np.allclose(got[4], image[t:t + ch, l:l + cw])
                     for t in (top, h - ch - top) for l in (left, w - cw - left)):
                hint = (f"the centre crop starts at ((H - height) // 2, (W - width) // 2) = "
                        f"{(top, left)}: round the offsets down")
            elif all(any(np.allclose(g, v) for v in want) for g in got) and all(
                    any(np.allclose(g, v) for g in got) for v in want):
                hint = ("the views are right but in another order: top-left, top-right, "
                        "bottom-left, bottom-right, centre, then the same five mirrored")
            else:
                hint = ("the four corners are image[:height, :width], image[:height, W - width:], "
                        "image[H - height:, :width], image[H - height:, W - width:]")
            _expect(False, f"{call}: view {wrong[0] + 1} ({names[wrong[0]]}) differs from "
                    f"cnnkit.augment.ten_crop's: {hint}.")
        return (f"{len(cases)} images: your ten views equal cnnkit.augment.ten_crop's, in its "
                "order.")

    return _grade("ten_crop_views", run)


# --- 14 detection_blocks ---------------------------------------------------------------------

__all__ += ["check_encode_box", "check_decode_box", "check_iou"]


def _random_corner_boxes(rng, n, low=0.0, high=200.0, smallest=2.0, largest=120.0):
    """n corner boxes (x1, y1, x2, y2) with widths and heights between `smallest` and `largest`."""
    xy = rng.uniform(low, high, size=(n, 2))
    wh = rng.uniform(smallest, largest, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _centres(b):
    """(cx, cy, w, h) of corner boxes b (..., 4), continuous coordinates."""
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
                     b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


def _corners(c):
    return np.stack([c[..., 0] - c[..., 2] / 2, c[..., 1] - c[..., 3] / 2,
                     c[..., 0] + c[..., 2] / 2, c[..., 1] + c[..., 3] / 2], axis=-1)


def _box_result(got, call, shape):
    _expect(got is not None, f"{call} returned None: return a NumPy array of shape {shape}.")
    try:
        got = np.asarray(got, dtype="float64")
    except (TypeError, ValueError) as err:
        raise GradeFailure(f"{call} returned {type(got).__name__}, not an array of numbers: "
                           f"{err}") from err
    return got


def _first_match(got, variants, fallback, **tolerance):
    return next((hint for hint, v in variants.items()
                 if v.shape == got.shape and np.allclose(got, v, **tolerance)), fallback)


def _encode_variants(p, g):
    """The usual slips in R-CNN's targets, each with the hint that names it."""
    px, py, pw, ph = np.moveaxis(_centres(p), -1, 0)
    gx, gy, gw, gh = np.moveaxis(_centres(g), -1, 0)
    qx, qy, qw, qh = np.moveaxis(_centres(p + [0, 0, 1, 1]), -1, 0)  # pixel-count widths
    hx, hy, hw, hh = np.moveaxis(_centres(g + [0, 0, 1, 1]), -1, 0)
    t = np.stack
    return {
        "the targets move the PROPOSAL onto the ground truth: (G_x − P_x) / P_w and "
        "log(G_w / P_w); you swapped P and G":
            t([(px - gx) / gw, (py - gy) / gh, np.log(pw / gw), np.log(ph / gh)], -1),
        "t_w and t_h are logarithms: t_w = log(G_w / P_w), not the ratio itself":
            t([(gx - px) / pw, (gy - py) / ph, gw / pw, gh / ph], -1),
        "t_w and t_h are logarithms: t_w = log(G_w / P_w), not the ratio minus 1":
            t([(gx - px) / pw, (gy - py) / ph, gw / pw - 1, gh / ph - 1], -1),
        "t_w and t_h use the natural logarithm (np.log), not log10":
            t([(gx - px) / pw, (gy - py) / ph, np.log10(gw / pw), np.log10(gh / ph)], -1),
        "divide the shift by the PROPOSAL's size (P_w, P_h), not the ground truth's":
            t([(gx - px) / gw, (gy - py) / gh, np.log(gw / pw), np.log(gh / ph)], -1),
        "divide the shift by the proposal's width and height: t_x = (G_x − P_x) / P_w, so "
        "that zooming the image does not change the targets":
            t([gx - px, gy - py, np.log(gw / pw), np.log(gh / ph)], -1),
        "t_x divides by the width P_w and t_y by the height P_h; you swapped them":
            t([(gx - px) / ph, (gy - py) / pw, np.log(gw / pw), np.log(gh / ph)], -1),
        "shift the CENTRES: convert (x1, y1, x2, y2) to centre (x, y) = ((x1 + x2) / 2, "
        "(y1 + y2) / 2), width x2 − x1 and height y2 − y1 first":
            t([(g[:, 0] - p[:, 0]) / pw, (g[:, 1] - p[:, 1]) / ph, np.log(gw / pw),
               np.log(gh / ph)], -1),
        "use continuous coordinates, w = x2 − x1 (no + 1), as cnnkit.boxes does":
            t([(hx - qx) / qw, (hy - qy) / qh, np.log(hw / qw), np.log(hh / qh)], -1),
        "return the four targets in the order (t_x, t_y, t_w, t_h)":
            t([(gx - px) / pw, np.log(gw / pw), (gy - py) / ph, np.log(gh / ph)], -1),
    }


def check_encode_box(encode_box):
    """`encode_box(proposal, truth)` -> R-CNN's targets (N, 4): (t_x, t_y, t_w, t_h) that move
    each proposal (N, 4) onto its ground-truth box (N, 4), both in corners (x1, y1, x2, y2).
    Checked against cnnkit.boxes.encode on random boxes."""
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(140)
        cases = [(np.array([[10.0, 20.0, 110.0, 70.0]]), np.array([[20.0, 10.0, 140.0, 90.0]])),
                 (np.array([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 6.0, 9.0]]),
                  np.array([[-5.0, 0.0, 15.0, 10.0], [4.0, 6.0, 8.0, 7.0]]))]
        for _ in range(6):
            n = int(rng.integers(1, 9))
            cases.append((_random_corner_boxes(rng, n), _random_corner_boxes(rng, n)))
        for proposal, truth in cases:
            n = len(proposal)
            want = keras.ops.convert_to_numpy(boxes.encode(truth, proposal))
            call = f"encode_box(proposal, truth) on {n} pair(s) of boxes"
            got = _box_result(encode_box(proposal.copy(), truth.copy()), call, (n, 4))
            _expect(got.shape == (n, 4), f"{call} returned shape {got.shape}, expected {(n, 4)}: "
                    "one row (t_x, t_y, t_w, t_h) per proposal.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            hint = _first_match(got, _encode_variants(proposal, truth),
                                "t_x = (G_x − P_x) / P_w, t_y = (G_y − P_y) / P_h, "
                                "t_w = log(G_w / P_w), t_h = log(G_h / P_h), with centres, "
                                "widths and heights", rtol=1e-4, atol=1e-5)
            row = int(np.abs(got - want).max(axis=1).argmax())
            _expect(False, f"{call}: for proposal {proposal[row].round(2).tolist()} and truth "
                    f"{truth[row].round(2).tolist()} you returned {got[row].round(4).tolist()}, "
                    f"expected {want[row].round(4).tolist()}: {hint}.")
        pairs = sum(len(p) for p, _ in cases)
        return (f"{pairs} proposal / ground-truth pairs agree with cnnkit.boxes.encode; the "
                "lesson's P and G give (0.2, 0.1, 0.1823, 0.47).")

    return _grade("encode_box", run)


def _decode_variants(d, p):
    px, py, pw, ph = np.moveaxis(_centres(p), -1, 0)
    dx, dy, dw, dh = np.moveaxis(d, -1, 0)
    t = np.stack
    right = t([pw * dx + px, ph * dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)
    return {
        "return corners (x1, y1, x2, y2), not (centre x, centre y, width, height): "
        "x1 = Ĝ_x − Ĝ_w / 2, x2 = Ĝ_x + Ĝ_w / 2": right,
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w·d_w":
            _corners(t([pw * dx + px, ph * dy + py, pw * dw, ph * dh], -1)),
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w·(1 + d_w)":
            _corners(t([pw * dx + px, ph * dy + py, pw * (1 + dw), ph * (1 + dh)], -1)),
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w + d_w":
            _corners(t([pw * dx + px, ph * dy + py, pw + dw, ph + dh], -1)),
        "the shift is relative to the proposal's size: Ĝ_x = P_w·d_x + P_x":
            _corners(t([dx + px, dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)),
        "Ĝ_x moves by P_w·d_x (the width) and Ĝ_y by P_h·d_y (the height); you swapped them":
            _corners(t([ph * dx + px, pw * dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)),
        "shift the proposal's CENTRE (P_x = (x1 + x2) / 2), not its corner x1":
            _corners(t([pw * dx + p[:, 0], ph * dy + p[:, 1], pw * np.exp(dw),
                        ph * np.exp(dh)], -1)),
        "the deltas are in the order (d_x, d_y, d_w, d_h)":
            _corners(t([pw * dx + px, ph * dw + py, pw * np.exp(dy), ph * np.exp(dh)], -1)),
    }


def check_decode_box(decode_box):
    """`decode_box(deltas, proposal)` -> corner boxes (N, 4) that the deltas (N, 4), (d_x, d_y,
    d_w, d_h), make of the proposals (N, 4). Checked against cnnkit.boxes.decode (clip=None) on
    random boxes, and as the inverse of cnnkit.boxes.encode."""
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(141)
        cases = [(np.array([[0.2, 0.1, np.log(1.2), np.log(1.6)]]),
                  np.array([[10.0, 20.0, 110.0, 70.0]])),
                 (np.array([[0.0, -0.25, np.log(2), -np.log(2)], [0.0, 0.0, 0.0, 0.0]]),
                  np.array([[0.0, 0.0, 10.0, 20.0], [3.0, 4.0, 5.0, 9.0]]))]
        for _ in range(6):
            n = int(rng.integers(1, 9))
            cases.append((rng.normal(0, 0.4, size=(n, 4)), _random_corner_boxes(rng, n)))
        for deltas, proposal in cases:
            n = len(proposal)
            want = keras.ops.convert_to_numpy(boxes.decode(deltas, proposal, clip=None))
            call = f"decode_box(deltas, proposal) on {n} box(es)"
            got = _box_result(decode_box(deltas.copy(), proposal.copy()), call, (n, 4))
            _expect(got.shape == (n, 4), f"{call} returned shape {got.shape}, expected {(n, 4)}: "
                    "one corner box (x1, y1, x2, y2) per proposal.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-3):
                continue
            hint = _first_match(got, _decode_variants(deltas, proposal),
                                "Ĝ_x = P_w·d_x + P_x, Ĝ_y = P_h·d_y + P_y, Ĝ_w = P_w·exp(d_w), "
                                "Ĝ_h = P_h·exp(d_h); then back to corners", rtol=1e-4, atol=1e-3)
            row = int(np.abs(got - want).max(axis=1).argmax())
            _expect(False, f"{call}: for deltas {deltas[row].round(4).tolist()} and proposal "
                    f"{proposal[row].round(2).tolist()} you returned "
                    f"{got[row].round(3).tolist()}, expected {want[row].round(3).tolist()}: "
                    f"{hint}.")
        proposal, truth = _random_corner_boxes(rng, 8), _random_corner_boxes(rng, 8)
        targets = keras.ops.convert_to_numpy(boxes.encode(truth, proposal))
        back = _box_result(decode_box(targets, proposal.copy()), "decode_box", (8, 4))
        _expect(back.shape == (8, 4) and np.allclose(back, truth, rtol=1e-4, atol=1e-3),
                "decode_box(encode(G, P), P) should give G back; on random boxes it does not.")
        boxes_seen = sum(len(p) for _, p in cases) + 8
        return (f"{boxes_seen} boxes agree with cnnkit.boxes.decode, and decoding "
                "cnnkit.boxes.encode's targets gives the ground truth back.")

    return _grade("decode_box", run)


def _iou_variants(a, b):
    a, b = a[:, None], b[None]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = area_a + area_b - inter
    plus = (a + [0, 0, 1, 1], b + [0, 0, 1, 1])
    w1 = np.minimum(plus[0][..., 2], plus[1][..., 2]) - np.maximum(plus[0][..., 0],
                                                                   plus[1][..., 0])
    h1 = np.minimum(plus[0][..., 3], plus[1][..., 3]) - np.maximum(plus[0][..., 1],
                                                                   plus[1][..., 1])
    inter1 = np.maximum(w1, 0) * np.maximum(h1, 0)
    area1_a, area1_b = ((q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1]) for q in plus)
    clamp = ("clamp the intersection's width and height at 0 SEPARATELY, before multiplying: "
             "for boxes apart in both x and y the two negative sides multiply to a positive "
             "'area'")
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            clamp: (w * h) / (area_a + area_b - w * h),
            clamp + " (clamping the product is too late)":
                np.maximum(w * h, 0) / (area_a + area_b - np.maximum(w * h, 0)),
            "the union counts the intersection once: area(a) + area(b) − intersection":
                inter / (area_a + area_b),
            "divide by the UNION, area(a) + area(b) − intersection, not by the smaller area":
                inter / np.minimum(area_a, area_b),
            "use continuous coordinates, w = x2 − x1 (no + 1), as cnnkit.boxes does":
                inter1 / (area1_a + area1_b - inter1),
            "IoU is intersection / union, not union / intersection": union / inter,
        }


def check_iou(iou):
    """`iou(a, b)` -> the (N, M) matrix of intersection over union of every corner box in a
    (N, 4) with every corner box in b (M, 4). Checked against cnnkit.boxes.iou on random boxes:
    nested, overlapping, touching and apart (in x, in y, and in both)."""
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(142)
        lesson = np.array([[1, 1, 5, 5], [3, 2, 8, 6], [2, 2, 4, 4], [7, 7, 9, 9]], float)
        cases = [(lesson, lesson), (lesson[:1], lesson[3:]),  # A and D: apart in x and in y
                 (np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[2.0, 0.0, 4.0, 2.0],
                                                              [0.0, 3.0, 2.0, 5.0]]))]
        for _ in range(6):
            n, m = int(rng.integers(1, 8)), int(rng.integers(1, 8))
            cases.append((_random_corner_boxes(rng, n, high=100, largest=60),
                          _random_corner_boxes(rng, m, high=100, largest=60)))
        for a, b in cases:
            n, m = len(a), len(b)
            want = keras.ops.convert_to_numpy(boxes.iou(a, b))
            call = f"iou(a, b) with {n} box(es) in a and {m} in b"
            got = _box_result(iou(a.copy(), b.copy()), call, (n, m))
            if got.shape != (n, m):
                hint = ("one IoU for EVERY pair: broadcast a[:, None, :] (N, 1, 4) against "
                        "b[None, :, :] (1, M, 4)")
                _expect(False, f"{call} returned shape {got.shape}, expected {(n, m)}: {hint}.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-6):
                continue
            hint = _first_match(got, _iou_variants(a, b),
                                "intersection = max(0, min(x2) − max(x1)) · max(0, min(y2) − "
                                "max(y1)); IoU = intersection / (area(a) + area(b) − "
                                "intersection)", rtol=1e-4, atol=1e-6, equal_nan=True)
            i, j = np.unravel_index(int(np.abs(np.nan_to_num(got, nan=1e9) - want).argmax()),
                                    want.shape)
            _expect(False, f"{call}: for a[{i}] = {a[i].round(2).tolist()} and b[{j}] = "
                    f"{b[j].round(2).tolist()} you returned {got[i, j]:.4f}, expected "
                    f"{want[i, j]:.4f}: {hint}.")
        pairs = sum(len(a) * len(b) for a, b in cases)
        return (f"{pairs} pairs of boxes agree with cnnkit.boxes.iou, boxes that only touch or "
                "lie apart included.")

    return _grade("iou", run)


# --- 13 segmentation -------------------------------------------------------------------------

__all__ += ["check_transposed_output_size", "check_center_crop", "check_iou_per_class"]


def _transposed_hint(got, size, kernel, stride, padding):
    valid = (size - 1) * stride + kernel
    if got == (size - kernel) // stride + 1 or got == -(-size // stride):
        return ("that is a convolution's output size; a transposed convolution goes the other "
                "way and enlarges: about size · stride")
    if padding == "same":
        return "with padding='same' the output is exactly size · stride, whatever the kernel"
    if kernel < stride and got == valid:
        return (f"with a kernel ({kernel}) smaller than the stride ({stride}) Keras still gives "
                "every input pixel its own stride x stride block: size · stride + max(kernel − "
                "stride, 0)")
    if got == size * stride:
        return ("with padding='valid' nothing is cropped: the last pixel's kernel reaches "
                "kernel − stride pixels further, (size − 1) · stride + kernel")
    return ("'valid': (size − 1) · stride + kernel (size · stride when the kernel is smaller "
            "than the stride); 'same': size · stride")


def check_transposed_output_size(transposed_output_size):
    """`transposed_output_size(size, kernel, stride, padding)` -> the output side of a
    Conv2DTranspose. Checked against real keras.layers.Conv2DTranspose layers."""
    import keras

    def run():
        rng = np.random.default_rng(13)
        cases = [(2, 2, 2, "valid"), (2, 4, 2, "same"), (3, 3, 2, "valid"), (4, 1, 2, "valid"),
                 (5, 3, 1, "same"), (7, 16, 8, "same"), (1, 3, 3, "valid"), (6, 4, 2, "valid")]
        cases += [(int(rng.integers(1, 33)), int(rng.integers(1, 9)), int(rng.integers(1, 5)),
                   str(rng.choice(["valid", "same"]))) for _ in range(16)]
        for size, kernel, stride, padding in cases:
            layer = keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding=padding)
            out = layer(np.zeros((1, size, size, 1), "float32"))
            want = int(out.shape[1])
            call = (f"transposed_output_size({size}, kernel={kernel}, stride={stride}, "
                    f"padding={padding!r})")
            got = transposed_output_size(size, kernel, stride, padding)
            _expect(isinstance(got, (int, np.integer)) and not isinstance(got, bool),
                    f"{call} returned {got!r}: return a whole number (int).")
            _expect(got == want, f"{call} returned {got}; Conv2DTranspose gives {want}: "
                    f"{_transposed_hint(got, size, kernel, stride, padding)}.")
        return (f"{len(cases)} cases agree with keras.layers.Conv2DTranspose, 'valid' and 'same', "
                "kernels smaller and larger than the stride.")

    return _grade("transposed_output_size", run)


def _crop_hint(got, x, h, w):
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    if got.shape == (x.shape[0], h, w, x.shape[3]):
        if np.array_equal(got, x[:, :h, :w]):
            return "crop the centre, not the top-left corner: start at (H − h) // 2"
        if np.array_equal(got, x[:, -h:, -w:]):
            return "crop the centre, not the bottom-right corner: start at (H − h) // 2"
        for dy, dx in ((1, 0), (0, 1), (1, 1)):
            if np.array_equal(got, x[:, top + dy:top + dy + h, left + dx:left + dx + w]):
                return ("when H − h is odd the extra pixel comes off the bottom (or W − w: the "
                        "right): start at (H − h) // 2, rounding down")
        return "the window starts at row (H − h) // 2 and column (W − w) // 2"
    if got.shape == (x.shape[0], h, w):
        return "keep the channels: the result is (batch, h, w, channels)"
    if got.shape[:3] == (h, w, x.shape[3]) or got.shape[1:3] != (h, w):
        return ("x is (batch, height, width, channels): crop axes 1 and 2, keep the batch and "
                "the channels")
    return f"the result must be (batch, h, w, channels) = {(x.shape[0], h, w, x.shape[3])}"


def check_center_crop(center_crop):
    """`center_crop(x, target)` -> the central (h, w) window of every map of x (batch, H, W, C).

    Checked against keras.layers.Cropping2D, U-Net's crops (64 -> 56, 136 -> 104, 280 -> 200,
    568 -> 392) and random sizes, odd differences included (the extra pixel off the bottom and
    right, as tf.image.resize_with_crop_or_pad).
    """
    import keras

    def run():
        rng = np.random.default_rng(14)
        cases = [((1, 64, 64, 2), (56, 56)), ((1, 136, 136, 1), (104, 104)),
                 ((1, 280, 280, 1), (200, 200)), ((1, 568, 568, 1), (392, 392)),
                 ((2, 9, 12, 3), (4, 7)), ((2, 6, 6, 2), (6, 6)), ((3, 10, 8, 1), (1, 1))]
        for _ in range(8):
            height, width = (int(v) for v in rng.integers(2, 30, 2))
            cases.append(((int(rng.integers(1, 4)), height, width, int(rng.integers(1, 5))),
                          (int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1)))))
        for shape, (h, w) in cases:
            x = rng.normal(size=shape).astype("float32")
            dh, dw = shape[1] - h, shape[2] - w
            crop = keras.layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
            want = keras.ops.convert_to_numpy(crop(x))
            call = f"center_crop(x of shape {shape}, target={(h, w)})"
            got = _array(center_crop(x.copy(), (h, w)), call)
            _expect(got.shape == want.shape and np.array_equal(got, want),
                    f"{call} gave shape {got.shape}, not Cropping2D's crop of shape "
                    f"{want.shape}: {_crop_hint(got, x, h, w)}.")
        return (f"{len(cases)} crops equal keras.layers.Cropping2D's, U-Net's four skips "
                "(64 -> 56 up to 568 -> 392) and odd differences included.")

    return _grade("center_crop", run)


def _iou_hint(got, truth, pred, classes):
    t = np.bincount(truth.ravel(), minlength=classes).astype(float)
    p = np.bincount(pred.ravel(), minlength=classes).astype(float)
    tp = np.bincount(truth[truth == pred].ravel(), minlength=classes).astype(float)
    present = (t + p) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        if np.any(~present) and np.allclose(got[present], (tp / (t + p - tp))[present]):
            return ("a class in neither map has no IoU: return NaN (np.nan) for it, so that "
                    "the mean over the classes present leaves it out")
        slips = [(tp / t, "that is the recall (right pixels over TRUE pixels): IoU divides by "
                          "the union, TP + FP + FN"),
                 (tp / p, "that is the precision (right pixels over PREDICTED pixels): IoU "
                          "divides by the union, TP + FP + FN"),
                 (2 * tp / (t + p), "that is the Dice coefficient (F1), 2·TP / (|truth| + "
                                    "|prediction|); IoU is TP / (TP + FP + FN)"),
                 (tp / (t + p), "the union counts the intersection once: |truth| + "
                                "|prediction| − TP")]
    for value, hint in slips:
        if np.allclose(got[present], value[present], equal_nan=True):
            return hint
    return "per class: TP / (TP + FP + FN), NaN where the class is in neither map"


def check_iou_per_class(iou_per_class):
    """`iou_per_class(y_true, y_pred, classes)` -> the IoU of each class (NaN where absent).

    Checked against cnnkit.segmentation.class_iou on random label maps, with classes that are
    missing, only predicted, or never right; its NaN-mean must equal segmentation.mean_iou.
    """
    from cnnkit import segmentation

    def run():
        rng = np.random.default_rng(15)
        cases = []
        for i in range(12):
            classes = int(rng.integers(3 if i % 3 == 0 else 2, 7))
            shape = (int(rng.integers(1, 4)), int(rng.integers(2, 12)), int(rng.integers(2, 12)))
            used = classes - 1 if i % 3 == 0 else classes  # the last class in neither map
            truth = rng.integers(0, used, shape)
            pred = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, used, shape))
            cases.append((truth, pred, classes))
        truth = np.zeros((1, 4, 4), int)
        truth[0, :2] = 1
        pred = truth.copy()
        pred[0, 3, 3] = 2  # class 2 only predicted: IoU 0
        cases.append((truth, pred, 3))
        for truth, pred, classes in cases:
            want = segmentation.class_iou(truth, pred, classes)
            call = (f"iou_per_class(y_true, y_pred, classes={classes}) on maps of shape "
                    f"{truth.shape}")
            got = _array(iou_per_class(truth.copy(), pred.copy(), classes), call)
            _expect(got.shape == (classes,), f"{call} returned shape {got.shape}; return one "
                    f"IoU per class, shape ({classes},).")
            _expect(np.allclose(got, want, equal_nan=True),
                    f"{call} returned {np.round(got, 3)}, expected {np.round(want, 3)}: "
                    f"{_iou_hint(got, truth, pred, classes)}.")
            _expect(np.isclose(np.nanmean(got), segmentation.mean_iou(truth, pred, classes)),
                    f"{call}: the mean over the classes present should be "
                    f"segmentation.mean_iou's.")
        return (f"{len(cases)} label maps agree with cnnkit.segmentation.class_iou, absent "
                "classes NaN and a class only predicted 0.")

    return _grade("iou_per_class", run)


# --- 04 transfer_learning --------------------------------------------------------------------

__all__ += ["check_freeze_all_but_last", "check_fold_bias_into_bn", "check_new_classifier"]


def _transfer_models():
    """Small real models for the transfer graders: LeNet-5 (no BatchNorm) and ResNet-8 (BN)."""
    from cnnkit.experiments import cifar_resnet
    from cnnkit.registry import build

    return [build("lenet5"), cifar_resnet(1, input_shape=(12, 12, 3), classes=4)]


def check_freeze_all_but_last(freeze_all_but_last):
    """`freeze_all_but_last(model, n)`: the last n of `model.layers` trainable, the others frozen.

    Checked on LeNet-5 and ResNet-8 for n from 0 to all layers, each time from a random mix of
    frozen and trainable layers (sometimes the whole model frozen), against `cnnkit.transfer`:
    the same trainable flags, and the same trainable parameter count in `trainable_summary`.
    """
    from cnnkit import transfer

    def run():
        rng = np.random.default_rng(4)
        total = 0
        for model in _transfer_models():
            size = len(model.layers)
            drawn = rng.integers(0, size + 1, 4).tolist()
            ns = sorted({0, 1, 2, size // 2, size - 1, size, *drawn})
            for n in ns:
                n = int(n)
                start = rng.random(size) < 0.5  # a random state the function must overwrite
                model.trainable = True
                for layer, flag in zip(model.layers, start):
                    layer.trainable = bool(flag)
                if rng.random() < 0.25:
                    model.trainable = False  # everything frozen, the model included
                call = f"freeze_all_but_last({model.name}, n={n}) ({size} layers)"
                start_flags = [layer.trainable for layer in model.layers]
                freeze_all_but_last(model, n)
                got_flags = [layer.trainable for layer in model.layers]
                got = transfer.trainable_summary(model).trainable
                transfer.freeze(model)
                if n:
                    transfer.unfreeze(model, slice(size - n, None), train_bn=True)
                want_flags = [layer.trainable for layer in model.layers]
                want = transfer.trainable_summary(model).trainable
                wrong = [layer.name for layer, g, w in zip(model.layers, got_flags, want_flags)
                         if g != w]
                last, first = slice(size - n, None), slice(0, size - n)
                if n == 0 and got_flags == [True] * size:
                    hint = ("for n = 0 nothing trains, but model.layers[-0:] is the WHOLE list "
                            "(-0 == 0): handle n = 0 on its own, or slice with [size - n:]")
                elif n and not all(got_flags[last]) and got_flags[last] == start_flags[last]:
                    hint = (f"the last {n} layers must be made trainable too (some were frozen "
                            "before your call): layer.trainable = True for each")
                elif any(got_flags[first]) and got_flags[first] == start_flags[first]:
                    hint = ("every layer before the last n must be frozen (some were trainable "
                            "before your call): layer.trainable = False for each")
                elif got_flags in ([i >= size - n - 1 for i in range(size)],
                                   [i >= size - n + 1 for i in range(size)]):
                    hint = (f"one layer off: exactly {n} layers train, model.layers[-n:] for "
                            "n > 0")
                elif got_flags == want_flags and got != want:
                    hint = ("your layer flags are right, but the model itself is frozen: "
                            "model.trainable = False hides every weight from the optimizer "
                            "whatever its layers say; set model.trainable = True first")
                else:
                    hint = "the last n layers are model.layers[-n:] (for n > 0), the rest frozen"
                _expect(got_flags == want_flags and got == want,
                        f"{call}: {len(wrong)} layers have the wrong trainable flag (e.g. "
                        f"{', '.join(wrong[:3]) or 'none'}), {got:,} trainable parameters instead "
                        f"of {want:,}: {hint}.")
                total += 1
        return (f"{total} cases on LeNet-5 and ResNet-8 (n = 0 to every layer, from random "
                "starting states) agree with cnnkit.transfer, flag for flag.")

    return _grade("freeze_all_but_last", run)


def check_fold_bias_into_bn(fold_bias_into_bn):
    """`fold_bias_into_bn(bias, moving_mean)` -> the moving mean of the BatchNorm after a
    convolution WITHOUT that bias, so that both pairs compute the same in inference mode.

    Checked on real Keras layers: Conv2D(bias b) + BatchNormalization(μ) with random weights and
    statistics against Conv2D(no bias) + BatchNormalization(your mean), on random images.
    """
    import keras

    def run():
        rng = np.random.default_rng(40)
        cases = [(3, 4, 3), (1, 8, 1), (5, 16, 3), (2, 1, 1)] + [
            (int(rng.integers(1, 9)), int(rng.integers(1, 33)), int(rng.choice([1, 3])))
            for _ in range(6)]
        for c_in, c_out, k in cases:
            x = rng.normal(size=(2, 6, 6, c_in)).astype("float32")
            with_bias = keras.layers.Conv2D(c_out, k, use_bias=True)
            bn = keras.layers.BatchNormalization(epsilon=1.001e-5)
            bn(with_bias(x))  # builds both
            bias = rng.normal(0, 0.5, c_out).astype("float32")
            with_bias.set_weights([with_bias.get_weights()[0], bias])
            gamma, beta = rng.normal(1, 0.2, c_out), rng.normal(0, 0.2, c_out)
            mean, var = rng.normal(0, 0.5, c_out), rng.uniform(0.5, 2.0, c_out)
            bn.set_weights([gamma, beta, mean, var])
            want = keras.ops.convert_to_numpy(bn(with_bias(x), training=False))
            call = f"fold_bias_into_bn(bias of shape ({c_out},), moving_mean of shape ({c_out},))"
            got = fold_bias_into_bn(bias.copy(), mean.copy())
            _expect(got is not None, f"{call} returned None: return the new moving mean.")
            got = np.asarray(got, dtype="float64")
            _expect(got.shape == (c_out,), f"{call} returned shape {got.shape}: one mean per "
                    f"channel, shape ({c_out},).")
            no_bias = keras.layers.Conv2D(c_out, k, use_bias=False)
            folded = keras.layers.BatchNormalization(epsilon=1.001e-5)
            folded(no_bias(x))
            no_bias.set_weights([with_bias.get_weights()[0]])
            folded.set_weights([gamma, beta, got, var])
            out = keras.ops.convert_to_numpy(folded(no_bias(x), training=False))
            if np.allclose(got, mean + bias):
                hint = ("the sign: conv(x) + b minus μ is conv(x) minus (μ − b), so the bias "
                        "LOWERS the mean")
            elif np.allclose(got, bias - mean):
                hint = "the new mean is μ − b, not b − μ"
            elif np.allclose(got, mean):
                hint = "the bias must go somewhere: into the mean, μ − b"
            else:
                hint = "BN(conv(x) + b) = BN(conv(x)) with moving mean μ − b"
            _expect(np.allclose(out, want, atol=1e-4), f"{call}: Conv2D without bias + "
                    f"BatchNormalization with your mean differs from the pair with the bias by up "
                    f"to {float(np.abs(out - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} Conv2D + BatchNormalization pairs: without the bias and with your "
                "moving mean, each computes exactly what it computed with the bias.")

    return _grade("fold_bias_into_bn", run)


def _tiny_base(rng, name):
    """conv-BN-ReLU stages named like cnnkit's ResNets, with random sizes: a base to transfer."""
    import keras

    side, channels = int(rng.choice([6, 8, 10])), int(rng.choice([1, 3]))
    inputs = keras.Input((side, side, channels), name=f"{name}_input")
    x = inputs
    for stage in range(1, int(rng.integers(2, 4)) + 1):
        x = keras.layers.Conv2D(int(rng.choice([4, 6, 8])), 3, padding="same", use_bias=False,
                                name=f"conv{stage}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"conv{stage}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{stage}_relu")(x)
    return keras.Model(inputs, x, name=name)


def _snapshot(layers_):
    import keras

    return {f"{layer.name}/{i}": keras.ops.convert_to_numpy(w).copy()
            for layer in layers_ for i, w in enumerate(layer.weights)}


def check_new_classifier(new_classifier):
    """`new_classifier(base, classes)` -> a model: the frozen `base`, global average pooling and a
    Dense softmax layer of `classes` units.

    Checked on random conv-BN bases and a headless ResNet-8: output shape and probabilities,
    trainable parameters (the head only), and two real training steps (Keras `fit`) after which
    no weight of the base and no BatchNorm statistic may have moved, while the head learnt.
    """
    import keras

    from cnnkit import transfer
    from cnnkit.experiments import cifar_resnet

    def run():
        rng = np.random.default_rng(41)
        source = cifar_resnet(1, input_shape=(8, 8, 3), classes=3)
        resnet8 = keras.Model(source.input, source.get_layer("avg_pool").input, name="resnet8")
        bases = [resnet8] + [_tiny_base(rng, f"base{i}") for i in range(3)]
        for base in bases:
            classes = int(rng.integers(2, 8))
            height, width, channels = base.output.shape[1:]
            call = (f"new_classifier({base.name} with output {tuple(base.output.shape[1:])}, "
                    f"{classes})")
            model = new_classifier(base, classes)
            _expect(isinstance(model, keras.Model), f"{call} returned {type(model).__name__}: "
                    "return a keras.Model (keras.Model(inputs, outputs)).")
            _expect(tuple(model.output.shape[1:]) == (classes,),
                    f"{call}: the output has shape {tuple(model.output.shape)}, expected "
                    f"(None, {classes}): one probability per class.")
            head = channels * classes + classes
            got = transfer.trainable_summary(model).trainable
            bn_scales = sum(2 * layer.gamma.shape[0] for layer in transfer.layers_of(base)
                            if isinstance(layer, keras.layers.BatchNormalization))
            if got == height * width * channels * classes + classes:
                hint = ("pool with GlobalAveragePooling2D (one number per channel), not Flatten "
                        "(a weight for every position)")
            elif got == head + bn_scales:
                hint = ("the BatchNorm layers of the base are still trainable: in fit they run in "
                        "training mode and move their moving statistics. Freeze them too: "
                        "base.trainable = False freezes every layer")
            elif got > head:
                hint = ("freeze the base: base.trainable = False. In Keras 3 calling "
                        "base(x, training=False) neither freezes it nor protects its BatchNorm "
                        "statistics in fit")
            else:
                hint = (f"the head is Dense({classes}) on the {channels} pooled channels: "
                        f"{channels}·{classes} weights + {classes} biases")
            _expect(got == head, f"{call} has {got:,} trainable parameters, expected {head:,} "
                    f"(the head only): {hint}.")
            x = rng.normal(2.0, 3.0, size=(8, *base.input_shape[1:])).astype("float32")
            y = rng.integers(0, classes, 8)
            probabilities = keras.ops.convert_to_numpy(model(x, training=False))
            _expect(np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4) and
                    probabilities.min() >= 0, f"{call}: the outputs of each image should be "
                    "probabilities that sum to 1: Dense(classes, activation='softmax').")
            names = {layer.name for layer in transfer.layers_of(base)}
            inside = [layer for layer in transfer.layers_of(model) if layer.name in names]
            head_layers = [layer for layer in transfer.layers_of(model)
                           if layer.name not in names and layer.weights]
            before, head_before = _snapshot(inside), _snapshot(head_layers)
            model.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                          run_eagerly=True)  # two steps: tracing would cost more
            model.fit(x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
            after = _snapshot(inside)
            moved = sorted({key.split("/")[0] for key in before
                            if not np.array_equal(before[key], after[key])})
            kinds = {type(layer) for layer in inside if layer.name in moved}
            if kinds == {keras.layers.BatchNormalization}:
                hint = ("only BatchNorm layers moved: their moving mean and variance, updated in "
                        "the forward pass because they are trainable. Freeze the whole base, "
                        "BatchNorm included (base.trainable = False): a frozen BatchNorm runs in "
                        "inference mode; training=False on the call does not survive fit in "
                        "Keras 3")
            else:
                hint = "freeze the whole base, BatchNorm included: base.trainable = False"
            _expect(not moved, f"{call}: after two training steps {len(moved)} layers of the base "
                    f"changed (e.g. {', '.join(moved[:3])}): {hint}.")
            head_after = _snapshot(head_layers)
            _expect(any(not np.array_equal(head_before[k], head_after[k]) for k in head_before),
                    f"{call}: after two training steps the head has not changed: its Dense layer "
                    "must be trainable.")
        return (f"{len(bases)} bases (a headless ResNet-8 and random conv-BN stacks): only the "
                "head trains, and after real training steps every base weight and BatchNorm "
                "statistic is where it was.")

    return _grade("new_classifier", run)
