"""The graders accept right answers and reject wrong ones with a message that helps."""

import math

import numpy as np
import pytest

from cnnkit import grading


def right_iterations(n, b, drop_remainder=False):
    return n // b if drop_remainder else math.ceil(n / b)


def right_epochs(n, b, iterations):
    return iterations / math.ceil(n / b)


def right_train_for_iterations(model, x, y, batch_size, iterations, seed=0):
    rng, losses, order, position = np.random.default_rng(seed), [], None, len(x)
    for _ in range(iterations):
        if position >= len(x):  # a new epoch: a new order
            order, position = rng.permutation(len(x)), 0
        batch = order[position:position + batch_size]
        position += batch_size
        losses.append(float(model.train_on_batch(x[batch], y[batch])))
    return losses


def not_done(*args, **kwargs):
    raise NotImplementedError()


def test_right_answers_pass(capsys):
    assert grading.check_iterations_per_epoch(right_iterations)
    assert grading.check_epochs_for_iterations(right_epochs)
    assert grading.check_train_for_iterations(right_train_for_iterations)
    out = capsys.readouterr().out
    assert out.count("✅ PASS") == 3
    assert "600,000 iterations of batch 256 on ImageNet's 1,281,167 images are 119.9 epochs" in out


@pytest.mark.parametrize("check", [grading.check_iterations_per_epoch,
                                   grading.check_epochs_for_iterations,
                                   grading.check_train_for_iterations])
def test_untouched_exercise_fails_with_not_implemented(check, capsys):
    with pytest.raises(grading.GradeFailure):
        check(not_done)
    assert "❌ FAIL" in capsys.readouterr().out


def grade_message(check, answer, capsys):
    with pytest.raises(grading.GradeFailure) as failure:
        check(answer)
    out = capsys.readouterr().out
    assert out.startswith("❌ FAIL")
    return str(failure.value)


def test_floor_division_misses_the_partial_batch(capsys):
    message = grade_message(grading.check_iterations_per_epoch, lambda n, b, drop_remainder=False:
                            n // b, capsys)
    assert "for n_samples=1,000, batch_size=32, drop_remainder=False you returned 31, " \
           "expected 32: the last, partial batch is an iteration too." in message


def test_float_answer_is_refused(capsys):
    message = grade_message(grading.check_iterations_per_epoch, lambda n, b, drop_remainder=False:
                            n / b, capsys)
    assert "return a whole number (int)" in message


def test_epochs_from_samples_instead_of_iterations_is_wrong(capsys):
    message = grade_message(grading.check_epochs_for_iterations, lambda n, b, it: it * b / n,
                            capsys)
    assert "an epoch is ceil(n_samples / batch_size) iterations" in message


def test_crash_in_learner_code_is_reported_not_raised_raw(capsys):
    message = grade_message(grading.check_epochs_for_iterations, lambda n, b, it: 1 / 0, capsys)
    assert "your code raised ZeroDivisionError" in message


def without_shuffle(model, x, y, batch_size, iterations, seed=0):
    return [float(model.train_on_batch(x[(i * batch_size) % 128:][:batch_size],
                                       y[(i * batch_size) % 128:][:batch_size]))
            for i in range(iterations)]


def one_order_for_all_epochs(model, x, y, batch_size, iterations, seed=0):
    order = np.random.default_rng(seed).permutation(len(x))
    starts = [s for s in range(0, len(x), batch_size)] * iterations
    return [float(model.train_on_batch(x[order[s:s + batch_size]], y[order[s:s + batch_size]]))
            for s in starts[:iterations]]


def equal_batches_wrapping_around(model, x, y, batch_size, iterations, seed=0):
    order = np.tile(np.random.default_rng(seed).permutation(len(x)), iterations)
    return [float(model.train_on_batch(x[order[i * batch_size:(i + 1) * batch_size]],
                                       y[order[i * batch_size:(i + 1) * batch_size]]))
            for i in range(iterations)]


def shuffling_images_only(model, x, y, batch_size, iterations, seed=0):
    order = np.random.default_rng(seed).permutation(len(x))
    return [float(model.train_on_batch(x[order[s:s + batch_size]], y[s:s + batch_size]))
            for s in ([s for s in range(0, len(x), batch_size)] * 3)[:iterations]]


def using_fit(model, x, y, batch_size, iterations, seed=0):
    history = model.fit(x, y, batch_size=batch_size, epochs=3, verbose=0)
    return history.history["loss"]


def returning_the_mean(model, x, y, batch_size, iterations, seed=0):
    losses = right_train_for_iterations(model, x, y, batch_size, iterations, seed)
    return [float(np.mean(losses))] * len(losses)


@pytest.mark.parametrize("answer, expected", [
    (without_shuffle, "visit the examples in a random order"),
    (one_order_for_all_epochs, "draw a new order for every epoch"),
    (equal_batches_wrapping_around, "the last of 4"),
    (shuffling_images_only, "each image must stay with its own label"),
    (using_fit, "call model.train_on_batch(x_batch, y_batch) once per iteration"),
    (returning_the_mean, "return the losses that train_on_batch gave back, in order"),
])
def test_wrong_training_loops_are_caught(answer, expected, capsys):
    assert expected in grade_message(grading.check_train_for_iterations, answer, capsys)
