"""Graders of exercise 03 (optimizers): every right answer passes, every wrong one fails with the
hint that names its mistake; the graders' float64 references agree with Keras's optimizers."""

import sys

import keras
import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.course.grading.optimizers import keras_momentum, keras_rmsprop

from grading_harness import Table, assert_verdict, verdict_cases


# momentum_step -------------------------------------------------------------------------------

def right_momentum(w, g, velocity, learning_rate, momentum):
    velocity = momentum * velocity - learning_rate * g
    return w + velocity, velocity


def momentum_with_keras_ops(w, g, velocity, learning_rate, momentum):
    velocity = keras.ops.subtract(keras.ops.multiply(momentum, velocity),
                                  keras.ops.multiply(learning_rate, g))
    return [keras.ops.add(w, velocity), velocity]


def momentum_pytorch(w, g, velocity, learning_rate, momentum):
    velocity = momentum * velocity + g
    return w - learning_rate * velocity, velocity


def momentum_adds_old_velocity(w, g, velocity, learning_rate, momentum):
    return w + velocity, momentum * velocity - learning_rate * g


def momentum_uphill(w, g, velocity, learning_rate, momentum):
    velocity = momentum * velocity + learning_rate * g
    return w + velocity, velocity


def momentum_old_state(w, g, velocity, learning_rate, momentum):
    return w + momentum * velocity - learning_rate * g, velocity


def momentum_fixed_at_09(w, g, velocity, learning_rate, momentum):
    return right_momentum(w, g, velocity, learning_rate, 0.9)


def learning_rate_fixed(w, g, velocity, learning_rate, momentum):
    return right_momentum(w, g, velocity, 0.01, momentum)


def momentum_swapped(w, g, velocity, learning_rate, momentum):
    return right_momentum(w, g, velocity, learning_rate, momentum)[::-1]


def momentum_in_place(w, g, velocity, learning_rate, momentum):
    velocity *= momentum
    velocity -= learning_rate * g
    return w + velocity, velocity


def momentum_without_memory(w, g, velocity, learning_rate, momentum):
    return w - learning_rate * g, velocity


def nesterov(w, g, velocity, learning_rate, momentum):
    velocity = momentum * velocity - learning_rate * g
    return w + momentum * velocity - learning_rate * g, velocity


def momentum_weights_only(w, g, velocity, learning_rate, momentum):
    return right_momentum(w, g, velocity, learning_rate, momentum)[0]


def momentum_exit(w, g, velocity, learning_rate, momentum):
    sys.exit("bye")


# rmsprop_step --------------------------------------------------------------------------------

def right_rmsprop(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square = rho * mean_square + (1 - rho) * g ** 2
    return w - learning_rate * g / np.sqrt(mean_square + epsilon), mean_square


def rmsprop_with_keras_ops(w, g, mean_square, learning_rate, rho, epsilon):
    ops = keras.ops
    mean_square = ops.add(ops.multiply(rho, mean_square), ops.multiply(1 - rho, ops.square(g)))
    step = ops.divide(ops.multiply(learning_rate, g), ops.sqrt(ops.add(mean_square, epsilon)))
    return ops.subtract(w, step), mean_square


def rho_swapped(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, 1 - rho, epsilon)


def epsilon_outside(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square = rho * mean_square + (1 - rho) * g ** 2
    return w - learning_rate * g / (np.sqrt(mean_square) + epsilon), mean_square


def no_square_root(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square = rho * mean_square + (1 - rho) * g ** 2
    return w - learning_rate * g / (mean_square + epsilon), mean_square


def divides_by_old_mean_square(w, g, mean_square, learning_rate, rho, epsilon):
    return (w - learning_rate * g / np.sqrt(mean_square + epsilon),
            rho * mean_square + (1 - rho) * g ** 2)


def rmsprop_old_state(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, rho, epsilon)[0], mean_square


def absolute_gradient(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square = rho * mean_square + (1 - rho) * np.abs(g)
    return w - learning_rate * g / np.sqrt(mean_square + epsilon), mean_square


def rho_fixed_at_09(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, 0.9, epsilon)


def epsilon_fixed(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, rho, 1e-7)


def rmsprop_swapped(w, g, mean_square, learning_rate, rho, epsilon):
    return right_rmsprop(w, g, mean_square, learning_rate, rho, epsilon)[::-1]


def rmsprop_in_place(w, g, mean_square, learning_rate, rho, epsilon):
    mean_square *= rho
    mean_square += (1 - rho) * g ** 2
    return w - learning_rate * g / np.sqrt(mean_square + epsilon), mean_square


def rmsprop_three_values(w, g, mean_square, learning_rate, rho, epsilon):
    return (*right_rmsprop(w, g, mean_square, learning_rate, rho, epsilon), epsilon)


def rmsprop_exit(w, g, mean_square, learning_rate, rho, epsilon):
    raise SystemExit(2)


# race: an open experiment's report, re-measured by the grader ---------------------------------

def race(optimizer, steps=grading.optimizers.RACE_STEPS):
    """The optimizer after its run, and f along its path (float64)."""
    from cnnkit.course.optimviz import rosenbrock, trajectory

    path = trajectory(optimizer, steps).astype("float64")
    return optimizer, rosenbrock(path[:, 0], path[:, 1])


NESTEROV, NESTEROV_F = race(keras.optimizers.SGD(0.0015, momentum=0.9, nesterov=True))
LION, LION_F = race(keras.optimizers.Lion(0.01))  # dips to 1e-9 on the way, ends at 0.035
MOMENTUM, MOMENTUM_F = race(keras.optimizers.SGD(0.001, momentum=0.9))  # 0.012: just above


TABLES = [
    Table(grading.check_momentum_step, right_momentum,
          right=[momentum_with_keras_ops],
          wrong=[(momentum_pytorch, "that is PyTorch's convention"),
                 (momentum_adds_old_velocity, "add the NEW velocity to w"),
                 (momentum_uphill, "SUBTRACTS learning_rate·g"),
                 (momentum_old_state, "return the NEW velocity"),
                 (momentum_fixed_at_09, "use the `momentum` argument (here 0.5), not 0.9"),
                 (learning_rate_fixed, "use the `learning_rate` argument (here 0.05), not 0.01"),
                 (momentum_swapped, "return (new_w, new_velocity) in that order"),
                 (momentum_in_place, "changed its input argument 3 in place"),
                 (momentum_without_memory, "new_velocity differs from Keras's"),
                 (nesterov, "learning_rate·g, then w = w + velocity"),
                 (momentum_weights_only, "return a pair (new_w, new_velocity)"),
                 (momentum_exit, "sys.exit('bye')")]),
    Table(grading.check_rmsprop_step, right_rmsprop,
          right=[rmsprop_with_keras_ops],
          wrong=[(rho_swapped, "rho weighs the OLD mean_square"),
                 (epsilon_outside, "epsilon INSIDE the square root"),
                 (no_square_root, "divide by the square ROOT"),
                 (divides_by_old_mean_square, "divide by the root of the NEW one"),
                 (rmsprop_old_state, "return the NEW mean_square"),
                 (absolute_gradient, "average the SQUARED gradient"),
                 (rho_fixed_at_09, "use the `rho` argument (here 0.8), not 0.9"),
                 (epsilon_fixed, "use the `epsilon` argument (here 0.001), not 1e-7"),
                 (rmsprop_swapped, "return (new_w, new_mean_square) in that order"),
                 (rmsprop_in_place, "changed its input argument 3 in place"),
                 (rmsprop_three_values, "return a pair (new_w, new_mean_square)"),
                 (rmsprop_exit, "sys.exit(2)")]),
    Table(grading.check_race, {"optimizer": NESTEROV, "final_loss": float(NESTEROV_F[-1])},
          untouched=False,
          right=[{"optimizer": NESTEROV, "final_loss": np.float32(NESTEROV_F[-1]),
                  "notes": "Nesterov, just below SGD's stability limit"},
                 {"final_loss": NESTEROV_F[-1], "optimizer": keras.optimizers.get(
                     {"class_name": "SGD", "config": {"learning_rate": 0.0015, "momentum": 0.9,
                                                      "nesterov": True}})},
                 {"optimizer": NESTEROV, "final_loss": np.array(NESTEROV_F[-1])}],
          wrong=[({"optimizer": LION, "final_loss": float(LION_F.min())}, "lowest f along the"),
                 ({"optimizer": NESTEROV, "final_loss": float(NESTEROV_F[-2])},
                  "that is f after 299 steps"),
                 ({"optimizer": NESTEROV, "final_loss": float(np.log10(NESTEROV_F[-1]))},
                  "that is log10(f)"),
                 ({"optimizer": NESTEROV, "final_loss": 1e-6}, "report what your run measured"),
                 ({"optimizer": MOMENTUM, "final_loss": float(MOMENTUM_F[-1])},
                  "above the target 0.01: your report is honest"),
                 ({"optimizer": keras.optimizers.SGD(0.01), "final_loss": float("nan")},
                  "diverges on Rosenbrock's valley"),
                 ({"optimizer": "sgd", "final_loss": 0.002}, "give the optimizer object you ran"),
                 ({"optimizer": keras.optimizers.SGD, "final_loss": 0.002},
                  "give the optimizer object you ran"),
                 ({"optimizer": NESTEROV, "final_loss": "0.0022"}, "one number"),
                 ({"optimizer": NESTEROV, "final_loss": NESTEROV_F}, "one number"),
                 ({"optimizer": NESTEROV}, 'it needs "optimizer" and "final_loss"'),
                 ({"optimizer": NESTEROV, "final_loss": 0.002, "loss": 0.002},
                  'it needs "optimizer" and "final_loss"'),
                 ([NESTEROV, float(NESTEROV_F[-1])], "make it a dict"),
                 (None, "not implemented yet")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


@pytest.mark.parametrize("reference, optimizer, slot, hyper", [
    (keras_momentum, keras.optimizers.SGD, "momentums", dict(learning_rate=0.3, momentum=0.5)),
    (keras_rmsprop, keras.optimizers.RMSprop, "_velocities",
     dict(learning_rate=0.05, rho=0.8, epsilon=1e-3))])
def test_the_references_are_keras_optimizers(reference, optimizer, slot, hyper):
    """The graders' float64 rules take the steps Keras takes, weights and state alike."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3))
    variable, keras_optimizer = keras.Variable(w.astype("float32")), optimizer(**hyper)
    state = np.zeros_like(w)
    for _ in range(4):
        g = rng.normal(size=(4, 3))
        keras_optimizer.apply_gradients([(keras.ops.convert_to_tensor(g.astype("float32")),
                                          variable)])
        w, state = reference(w, g, state, **hyper)
        assert np.allclose(keras.ops.convert_to_numpy(variable), w, atol=1e-5)
        assert np.allclose(keras.ops.convert_to_numpy(getattr(keras_optimizer, slot)[0]), state,
                           atol=1e-5)


def test_the_lessons_own_settings_miss_the_race_target():
    # What exercise 03 §4 says: lesson 03's SGD, Momentum and Adam settings all end above it.
    target = grading.optimizers.RACE_TARGET
    for optimizer in (keras.optimizers.SGD(0.002), keras.optimizers.SGD(0.001, momentum=0.9),
                      keras.optimizers.Adam(0.1)):
        assert race(optimizer)[1][-1] > target, optimizer.get_config()
    assert NESTEROV_F[-1] < target  # the solution's setting reaches it
