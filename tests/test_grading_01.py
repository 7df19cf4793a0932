"""Graders of exercise 01 (epochs and iterations): every right answer passes, every wrong one
fails with the hint that names its mistake."""

import math
import sys

import numpy as np
import pytest

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


# iterations_per_epoch ------------------------------------------------------------------------

def right_iterations(n, b, drop_remainder=False):
    return n // b if drop_remainder else math.ceil(n / b)


def iterations_by_negative_floor(n, b, drop_remainder=False):
    return n // b if drop_remainder else -(-n // b)


def iterations_as_numpy_int(n, b, drop_remainder=False):
    return np.int64(np.floor(n / b) if drop_remainder else np.ceil(n / b))


def floor_always(n, b, drop_remainder=False):
    return n // b


def ceil_always(n, b, drop_remainder=False):
    return math.ceil(n / b)


def plus_one(n, b, drop_remainder=False):
    return n // b if drop_remainder else n // b + 1


def rounded(n, b, drop_remainder=False):
    return round(n / b) if not drop_remainder else n // b


def flag_reversed(n, b, drop_remainder=False):
    return right_iterations(n, b, not drop_remainder)


def true_division(n, b, drop_remainder=False):
    return n / b


def ceil_as_float(n, b, drop_remainder=False):
    return float(right_iterations(n, b, drop_remainder))


def default_drops(n, b, drop_remainder=True):
    return right_iterations(n, b, drop_remainder)


def batches_per_sample(n, b, drop_remainder=False):
    return right_iterations(b, n, drop_remainder)


def iterations_as_text(n, b, drop_remainder=False):
    return str(right_iterations(n, b, drop_remainder))


def iterations_exit(n, b, drop_remainder=False):
    sys.exit(1)


# epochs_for_iterations -----------------------------------------------------------------------

def right_epochs(n, b, iterations):
    return iterations / math.ceil(n / b)


def epochs_with_numpy(n, b, iterations):
    return np.float64(iterations) / np.ceil(n / b)


def epochs_from_samples(n, b, iterations):
    return iterations * b / n


def epochs_floor_division(n, b, iterations):
    return iterations // math.ceil(n / b)


def epochs_dropping_partial(n, b, iterations):
    return iterations / (n // b)


def epochs_inverted(n, b, iterations):
    return math.ceil(n / b) / iterations


def epochs_hard_coded_resnet(n, b, iterations):
    return 600_000 / math.ceil(1_281_167 / 256)


def epochs_as_text(n, b, iterations):
    return f"{right_epochs(n, b, iterations):.1f}"


def epochs_none(n, b, iterations):
    right_epochs(n, b, iterations)


def epochs_crash(n, b, iterations):
    return 1 / 0


def epochs_exit(n, b, iterations):
    raise SystemExit("done")


# train_for_iterations ------------------------------------------------------------------------

def right_train(model, x, y, batch_size, iterations, seed=0):
    rng, losses, order, position = np.random.default_rng(seed), [], None, len(x)
    for _ in range(iterations):
        if position >= len(x):  # a new epoch: a new order
            order, position = rng.permutation(len(x)), 0
        batch = order[position:position + batch_size]
        position += batch_size
        losses.append(float(model.train_on_batch(x[batch], y[batch])))
    return losses


def train_by_epochs_reordering_arrays(model, x, y, batch_size, iterations, seed=0):
    rng, losses = np.random.default_rng(seed), []
    while True:
        order = rng.permutation(len(x))
        xs, ys = x[order], y[order]
        for start in range(0, len(x), batch_size):
            if len(losses) == iterations:
                return np.array(losses)
            losses.append(model.train_on_batch(x=xs[start:start + batch_size],
                                               y=ys[start:start + batch_size]))


def without_shuffle(model, x, y, batch_size, iterations, seed=0):
    starts = list(range(0, len(x), batch_size)) * iterations
    return [float(model.train_on_batch(x[s:s + batch_size], y[s:s + batch_size]))
            for s in starts[:iterations]]


def one_order_for_all_epochs(model, x, y, batch_size, iterations, seed=0):
    order = np.random.default_rng(seed).permutation(len(x))
    starts = list(range(0, len(x), batch_size)) * iterations
    return [float(model.train_on_batch(x[order[s:s + batch_size]], y[order[s:s + batch_size]]))
            for s in starts[:iterations]]


def new_rng_every_epoch(model, x, y, batch_size, iterations, seed=0):
    losses = []
    while len(losses) < iterations:
        order = np.random.default_rng(seed).permutation(len(x))
        for s in range(0, len(x), batch_size):
            if len(losses) < iterations:
                losses.append(model.train_on_batch(x[order[s:s + batch_size]],
                                                   y[order[s:s + batch_size]]))
    return losses


def seed_ignored(model, x, y, batch_size, iterations, seed=0):
    return right_train(model, x, y, batch_size, iterations, seed=0)


def legacy_random_state(model, x, y, batch_size, iterations, seed=0):
    rng, losses = np.random.RandomState(seed), []
    while len(losses) < iterations:
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch_size):
            if len(losses) < iterations:
                losses.append(model.train_on_batch(x[order[s:s + batch_size]],
                                                   y[order[s:s + batch_size]]))
    return losses


def equal_batches_wrapping_around(model, x, y, batch_size, iterations, seed=0):
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(iterations)])
    return [float(model.train_on_batch(x[order[i * batch_size:(i + 1) * batch_size]],
                                       y[order[i * batch_size:(i + 1) * batch_size]]))
            for i in range(iterations)]


def partial_batch_dropped(model, x, y, batch_size, iterations, seed=0):
    rng, losses = np.random.default_rng(seed), []
    while len(losses) < iterations:
        order = rng.permutation(len(x))
        for s in range(0, len(x) - batch_size + 1, batch_size):
            if len(losses) < iterations:
                losses.append(model.train_on_batch(x[order[s:s + batch_size]],
                                                   y[order[s:s + batch_size]]))
    return losses


def shuffling_images_only(model, x, y, batch_size, iterations, seed=0):
    rng, losses = np.random.default_rng(seed), []
    while len(losses) < iterations:
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch_size):
            if len(losses) < iterations:
                losses.append(model.train_on_batch(x[order[s:s + batch_size]],
                                                   y[s:s + batch_size]))
    return losses


def one_iteration_too_many(model, x, y, batch_size, iterations, seed=0):
    return right_train(model, x, y, batch_size, iterations + 1, seed)[:iterations]


def using_fit(model, x, y, batch_size, iterations, seed=0):
    return model.fit(x, y, batch_size=batch_size, epochs=3, verbose=0).history["loss"]


def returning_the_mean(model, x, y, batch_size, iterations, seed=0):
    losses = right_train(model, x, y, batch_size, iterations, seed)
    return [float(np.mean(losses))] * len(losses)


def returning_the_last_loss(model, x, y, batch_size, iterations, seed=0):
    return right_train(model, x, y, batch_size, iterations, seed)[-1]


def returning_nothing(model, x, y, batch_size, iterations, seed=0):
    right_train(model, x, y, batch_size, iterations, seed)


def shuffling_in_place(model, x, y, batch_size, iterations, seed=0):
    order = np.random.default_rng(seed).permutation(len(x))
    x[:], y[:] = x[order], y[order]
    return right_train(model, x, y, batch_size, iterations, seed)


def training_exit(model, x, y, batch_size, iterations, seed=0):
    sys.exit()


TABLES = [
    Table(grading.check_iterations_per_epoch, right_iterations,
          right=[iterations_by_negative_floor, iterations_as_numpy_int],
          wrong=[(floor_always, "the last, partial batch is an iteration too"),
                 (ceil_always, "with drop_remainder=True the partial last batch is skipped"),
                 (plus_one, "n // b + 1 counts one too many"),
                 (rounded, "the last, partial batch is an iteration too"),
                 (flag_reversed, "the last, partial batch is an iteration too"),
                 (default_drops, "iterations_per_epoch(1000, 32) returned 31, expected 32"),
                 (batches_per_sample, "not the other way round"),
                 (true_division, "return a whole number (int)"),
                 (ceil_as_float, "of type float: return a whole number (int)"),
                 (iterations_as_text, "of type str: return a whole number (int)"),
                 (iterations_exit, "sys.exit(1)")]),
    Table(grading.check_epochs_for_iterations, right_epochs,
          right=[epochs_with_numpy],
          wrong=[(epochs_from_samples, "counts the partial batch as full"),
                 (epochs_floor_division, "divide with /, not //"),
                 (epochs_dropping_partial, "every epoch keeps its last, partial batch"),
                 (epochs_inverted, "not the inverse"),
                 (epochs_hard_coded_resnet, "an epoch is ceil(n_samples / batch_size) iterations"),
                 (epochs_as_text, "of type str: return a number"),
                 (epochs_none, "returned None"),
                 (epochs_crash, "your code raised ZeroDivisionError"),
                 (epochs_exit, "sys.exit('done')")]),
    Table(grading.check_train_for_iterations, right_train,
          right=[train_by_epochs_reordering_arrays],
          wrong=[(without_shuffle, "visit the examples in a random order"),
                 (one_order_for_all_epochs, "draw a new order for every epoch"),
                 (new_rng_every_epoch, "draw a new order for every epoch"),
                 (seed_ignored, "use the `seed` argument (here 11)"),
                 (legacy_random_state, "make rng = np.random.default_rng(seed) once"),
                 (equal_batches_wrapping_around, "the last of 2"),
                 (partial_batch_dropped, "the last of 2"),
                 (shuffling_images_only, "each image must stay with its own label"),
                 (one_iteration_too_many, "you called train_on_batch 18 times"),
                 (using_fit, "called model.fit"),
                 (returning_the_mean, "return the 17 losses that train_on_batch gave back"),
                 (returning_the_last_loss, "expected shape (17,)"),
                 (returning_nothing, "returned None"),
                 (shuffling_in_place, "changed its input argument 2 in place"),
                 (training_exit, "sys.exit(None)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_messages_name_the_case_and_the_classic_result(capsys):
    grading.check_epochs_for_iterations(right_epochs)
    assert ("600,000 iterations of batch 256 on ImageNet's 1,281,167 images are 119.9 epochs"
            in capsys.readouterr().out)
    with pytest.raises(grading.GradeFailure) as failure:
        grading.check_iterations_per_epoch(floor_always)
    assert ("iterations_per_epoch(1000, 32, drop_remainder=False) returned 31, expected 32: the "
            "last, partial batch is an iteration too" in str(failure.value))
