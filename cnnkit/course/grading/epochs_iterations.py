"""Graders of exercise 01 · Epochs and iterations (solutions/01_epochs_iterations.ipynb).

The student writes `iterations_per_epoch`, `epochs_for_iterations` (checked against the exact
formulas on fixed and random sizes) and `train_for_iterations`, checked with a recording model
that stands in for a Keras one: it costs nothing to train and keeps every batch it was given,
so the exact batches the exercise prescribes (one `default_rng(seed)`, a `permutation` per
epoch, partial last batches kept) can be compared one by one.
"""

from __future__ import annotations

import math

import numpy as np

from .core import array, expect, grade, one_of, real_number, student, whole_number

__all__ = ["check_iterations_per_epoch", "check_epochs_for_iterations", "check_train_for_iterations"]


def _cases(rng, n=20):
    fixed = [(1000, 10), (1000, 32), (60_000, 128), (50_000, 256), (7, 7), (5, 8), (1, 1)]
    drawn = [(int(rng.integers(1, 100_000)), int(rng.integers(1, 1_024))) for _ in range(n)]
    return fixed + drawn


def check_iterations_per_epoch(iterations_per_epoch):
    """`iterations_per_epoch(n_samples, batch_size, drop_remainder=False)` -> an int."""
    iterations_per_epoch = student(iterations_per_epoch)

    def run():
        cases = _cases(np.random.default_rng(1))
        calls = [(n, b, drop) for n, b in cases for drop in (False, True)] + [(1000, 32, None)]
        for n, b, drop in calls:
            if drop is None:  # the default: keep the partial batch
                call = f"iterations_per_epoch({n}, {b})"
                got, drop = iterations_per_epoch(n, b), False
            else:
                call = f"iterations_per_epoch({n}, {b}, drop_remainder={drop})"
                got = iterations_per_epoch(n, b, drop_remainder=drop)
            got = whole_number(got, call)
            want = n // b if drop else -(-n // b)
            hint = one_of(got, [
                (-(-n // b) if drop else n // b,
                 "with drop_remainder=True the partial last batch is skipped: n_samples // "
                 "batch_size" if drop else "the last, partial batch is an iteration too: round "
                 "up, math.ceil(n_samples / batch_size)"),
                (n // b + 1, "when batch_size divides n_samples there is no partial batch: "
                 "n // b + 1 counts one too many; use math.ceil(n_samples / batch_size)"),
                (round(n / b), "round up (math.ceil), not to the nearest whole number"),
                (-(-b // n) if drop is False else b // n, "n_samples / batch_size, not the other "
                 "way round")], "ceil(n_samples / batch_size) iterations, or n_samples // "
                "batch_size with drop_remainder=True")
            expect(got == want, f"{call} returned {got}, expected {want}: {hint}.")
        return f"{len(calls)} cases agree, partial last batches included."

    return grade("iterations_per_epoch", run)


def check_epochs_for_iterations(epochs_for_iterations):
    """`epochs_for_iterations(n_samples, batch_size, iterations)` -> epochs (a float)."""
    epochs_for_iterations = student(epochs_for_iterations)

    def run():
        rng = np.random.default_rng(2)
        cases = [(1_281_167, 256, 600_000), (1000, 32, 100), (100, 10, 25)] + [
            (n, b, int(rng.integers(1, 1_000_000))) for n, b in _cases(rng)]
        for n, b, iters in cases:
            call = f"epochs_for_iterations({n}, {b}, {iters})"
            got = real_number(epochs_for_iterations(n, b, iters), call)
            per_epoch = -(-n // b)
            want = iters / per_epoch
            hint = one_of(got, [
                (iters // per_epoch, "divide with /, not //: a run may end inside an epoch"),
                (iters / (n // b) if n >= b else None, "every epoch keeps its last, partial "
                 "batch: an epoch is ceil(n_samples / batch_size) iterations, not n // b"),
                (iters * b / n, "iterations · batch_size / n_samples counts the partial batch as "
                 "full: an epoch is ceil(n_samples / batch_size) iterations"),
                (per_epoch / iters, "epochs = iterations / iterations per epoch, not the inverse")],
                "an epoch is ceil(n_samples / batch_size) iterations", rtol=1e-9, atol=0)
            expect(math.isclose(got, want, rel_tol=1e-9), f"{call} returned {got!r}, expected "
                   f"{want:.6g}: {hint}.")
        return (f"{len(cases)} cases agree; ResNet's 600,000 iterations of batch 256 on "
                f"ImageNet's 1,281,167 images are {600_000 / math.ceil(1_281_167 / 256):.1f} "
                "epochs.")

    return grade("epochs_for_iterations", run)


class _RecordingModel:
    """Stands in for a compiled Keras model: `train_on_batch` keeps the batch it was given and
    returns a distinct loss (a float, as Keras 3 does); `fit` is recorded so it can be refused."""

    def __init__(self, seed):
        self.batches, self.returned, self.fit_calls = [], [], 0
        self._losses = np.random.default_rng(seed)

    def train_on_batch(self, x, y=None, sample_weight=None, class_weight=None, return_dict=False):
        self.batches.append((np.array(x), np.array(y)))
        loss = float(self._losses.uniform(0.5, 2.5))
        self.returned.append(loss)
        return {"loss": loss} if return_dict else loss

    def fit(self, *args, **kwargs):
        self.fit_calls += 1

        class History:
            history = {"loss": [1.0]}

        return History()


def _expected_orders(n, batch_size, iterations, seed):
    """The batches (as example indices) the exercise prescribes."""
    rng, batches, order, position = np.random.default_rng(seed), [], None, n
    for _ in range(iterations):
        if position >= n:
            order, position = rng.permutation(n), 0
        batches.append(order[position:position + batch_size])
        position += batch_size
    return batches


def _diagnose(tags, by_epoch, n, wrong_labels, batch_size, iterations, seed):
    """The hint for batches that are not the prescribed ones, once the sizes are right."""
    if wrong_labels:
        return ("each image must stay with its own label when you shuffle: index x and y with "
                "the same permutation")
    if any(len(np.unique(e)) != len(e) for e in by_epoch) or any(
            len(e) == n and not np.array_equal(np.sort(e), np.arange(n)) for e in by_epoch):
        return ("every epoch must show each example exactly once (an unfinished last epoch: "
                "no example twice): cut one permutation into consecutive batches")
    if np.array_equal(by_epoch[0], np.arange(n)):
        return "visit the examples in a random order (a permutation), not in the order 0, 1, 2"
    if len(by_epoch) > 1 and np.array_equal(by_epoch[0], by_epoch[1]):
        return "draw a new order for every epoch; yours repeated the first epoch's order"
    if seed != 0 and all(np.array_equal(t, w) for t, w in zip(
            tags, _expected_orders(n, batch_size, iterations, 0))):
        return f"use the `seed` argument (here {seed}): np.random.default_rng(seed), not a fixed 0"
    return ("the orders are not the prescribed ones: make rng = np.random.default_rng(seed) once, "
            "before the loop, and draw each epoch's order with rng.permutation(len(x))")


def check_train_for_iterations(train_for_iterations):
    """`train_for_iterations(model, x, y, batch_size, iterations, seed=0)` -> the losses.

    Training runs for a number of iterations, crossing epoch boundaries: each epoch is a new
    random order of all examples, cut into batches with a partial last one. The batches are
    compared with the prescribed ones for several sizes and seeds.
    """
    train_for_iterations = student(train_for_iterations)

    def run():
        settings = [(50, 8, 17, 11), (23, 5, 12, 3), (6, 10, 3, 7)]  # n, batch, iterations, seed
        for n, batch_size, iterations, seed in settings:
            per_epoch = -(-n // batch_size)
            rng = np.random.default_rng(n)
            x = rng.normal(size=(n, 3)).astype("float32")
            x[:, 0] = np.arange(n)  # a tag that tells which example a row is
            y = rng.integers(0, 10, n).astype("int32")
            model = _RecordingModel(seed)
            call = f"train_for_iterations(model, x, y, batch_size={batch_size}, " \
                   f"iterations={iterations}, seed={seed}) on {n} examples"
            losses = train_for_iterations(model, x, y, batch_size, iterations, seed=seed)
            expect(not model.fit_calls, f"{call} called model.fit: call "
                   "model.train_on_batch(x_batch, y_batch) once per iteration instead.")
            expect(model.batches, f"{call}: call model.train_on_batch(x_batch, y_batch) once per "
                   "iteration.")
            expect(all(bx.shape[1:] == x.shape[1:] and by.shape[:1] == bx.shape[:1]
                       for bx, by in model.batches), f"{call}: give train_on_batch the rows of x "
                   "and of y of the batch, e.g. x[batch] and y[batch].")
            sizes = [len(bx) for bx, _ in model.batches]
            last = n - (per_epoch - 1) * batch_size
            want_sizes = (([batch_size] * (per_epoch - 1) + [last]) * iterations)[:iterations]
            expect(len(sizes) == iterations, f"{call}: asked for {iterations} iterations, you "
                   f"called train_on_batch {len(sizes)} times (batch sizes {sizes}).")
            expect(sizes == want_sizes, f"{call}: {n} examples in batches of {batch_size} make "
                   f"epochs of {per_epoch} batches, the last of {last}; over {iterations} "
                   f"iterations the sizes should be {want_sizes}, yours were {sizes}.")
            tags = [np.rint(bx[:, 0]).astype(int) for bx, _ in model.batches]
            expected = _expected_orders(n, batch_size, iterations, seed)
            labels_ok = all(by.shape == y[t].shape and np.array_equal(y[t], by)
                            for t, (_, by) in zip(tags, model.batches))
            if not (labels_ok and all(np.array_equal(t, w) for t, w in zip(tags, expected))):
                by_epoch = [np.concatenate(tags[i:i + per_epoch])
                            for i in range(0, iterations, per_epoch)]
                hint = _diagnose(tags, by_epoch, n, not labels_ok, batch_size, iterations, seed)
                expect(False, f"{call}: {hint}.")
            got = array(losses, call, shape=(iterations,))
            expect(np.allclose(got, model.returned, rtol=1e-6, atol=0), f"{call}: return the "
                   f"{iterations} losses that train_on_batch gave back, in order.")
        return (f"{len(settings)} runs (e.g. 17 iterations = {17 / 7:.2f} epochs of 7 batches): "
                "every epoch reshuffled, partial batches kept, labels with images, losses in "
                "order.")

    return grade("train_for_iterations", run)
