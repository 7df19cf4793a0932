"""Graders that exercises call: each prints PASS or FAIL with a reason and raises on failure.

A grader raises `GradeFailure` (an AssertionError) after printing, so a learner sees a clear
message, "Run all" stops at the first exercise that is not done, and nbgrader's autograder
counts the cell as failed.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["GradeFailure", "check_iterations_per_epoch", "check_epochs_for_iterations",
           "check_train_for_iterations"]


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

    from cnnkit.models import lenet5

    def run():
        n, batch_size, iterations = 100, 32, 10
        per_epoch = math.ceil(n / batch_size)
        rng = np.random.default_rng(3)
        x = rng.random((n, 32, 32, 1), dtype=np.float32)
        x[:, 0, 0, 0] = np.arange(n) / n  # a tag that tells which example a row is
        y = rng.integers(0, 10, n).astype("int32")
        model = lenet5()
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
