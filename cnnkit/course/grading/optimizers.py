"""Graders of exercise 03 · Optimizers (solutions/03_optimizers.ipynb).

The student writes one step of SGD with momentum and one of RMSProp, each returning
`(new_w, new_state)`. Both values are checked after every step, over several steps, for several
hyper-parameter settings away from the usual defaults and from random starting states, against
Keras's update rules in float64 (`keras.optimizers.SGD` / `RMSprop`; tests/test_grading_03.py
checks these references against the Keras optimizers themselves).

An open experiment closes the exercise: the race to Rosenbrock's minimum. The student picks any
Keras optimizer and its settings and reports `{"optimizer": the optimizer it ran, "final_loss":
f at the last of RACE_STEPS steps}`. The grader runs a fresh copy of that optimizer (from its
config) over the same steps: the reported value must be the one measured, and below RACE_TARGET.
"""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student

__all__ = ["check_momentum_step", "check_rmsprop_step", "check_race"]

RACE_STEPS = 300
RACE_TARGET = 0.01  # SGD's, Momentum's and Adam's settings in lesson 03 all end above it

_TOLERANCE = dict(rtol=1e-4, atol=1e-7)


def keras_momentum(w, g, velocity, learning_rate, momentum):
    """Keras's SGD with momentum: the learning rate inside the velocity."""
    velocity = momentum * velocity - learning_rate * g
    return w + velocity, velocity


def keras_rmsprop(w, g, mean_square, learning_rate, rho, epsilon):
    """Keras's RMSprop (no centering, no momentum): epsilon inside the square root."""
    mean_square = rho * mean_square + (1 - rho) * g ** 2
    return w - learning_rate * g / np.sqrt(mean_square + epsilon), mean_square


def _run(step, name, reference, settings, state_name, slips, fallback, positive_state):
    """Step the student's function and the reference side by side; fail at the first difference."""
    rng = np.random.default_rng(6)
    for number, hyper in enumerate(settings):
        w = rng.normal(size=(4, 3))
        state = (rng.uniform(0, 2, (4, 3)) if positive_state else rng.normal(0, 0.1, (4, 3))
                 ) if number else np.zeros((4, 3))  # the first setting starts as Keras does
        args = ", ".join(f"{k}={v}" for k, v in hyper.items())
        for t in range(1, 6):
            g = rng.normal(size=(4, 3)) * 10 ** rng.uniform(-3, 1)
            call = f"step {t} of {name}(w, g, {state_name}, {args})"
            result = step(w.copy(), g.copy(), state.copy(), **hyper)
            expect(isinstance(result, (tuple, list)) and len(result) == 2, f"{call} returned "
                   f"{result!r:.60} of type {type(result).__name__}: return a pair "
                   f"(new_w, new_{state_name}).")
            got_w = array(result[0], call + "[0] (new_w)", shape=w.shape)
            got_s = array(result[1], call + f"[1] (new_{state_name})", shape=w.shape)
            want_w, want_s = reference(w, g, state, **hyper)
            ok_w, ok_s = (np.allclose(a, b, **_TOLERANCE) for a, b in
                          ((got_w, want_w), (got_s, want_s)))
            if not (ok_w and ok_s):
                got = np.stack([got_w, got_s])
                hint = one_of(got, [(np.stack([want_s, want_w]), f"return (new_w, "
                                     f"new_{state_name}) in that order")] + [
                    (np.stack(slip(w, g, state, **hyper)), text.format(**hyper))
                    for slip, text in slips],
                    fallback, **_TOLERANCE)
                which = (f"new_w and new_{state_name} differ" if not (ok_w or ok_s) else
                         "new_w differs" if not ok_w else f"new_{state_name} differs")
                expect(False, f"{call}: {which} from Keras's by up to "
                       f"{float(np.max(np.abs(got - np.stack([want_w, want_s])))):.3g}: {hint}.")
            w, state = want_w, want_s
    return len(settings)


def _momentum_slips():
    def torch(w, g, v, learning_rate, momentum):
        buf = momentum * v + g
        return w - learning_rate * buf, buf

    def old_velocity(w, g, v, learning_rate, momentum):
        return w + v, momentum * v - learning_rate * g

    def plus_gradient(w, g, v, learning_rate, momentum):
        return keras_momentum(w, -g, v, learning_rate, momentum)

    def stale_state(w, g, v, learning_rate, momentum):
        return keras_momentum(w, g, v, learning_rate, momentum)[0], v

    def fixed(**constant):
        return lambda w, g, v, **hyper: keras_momentum(w, g, v, **{**hyper, **constant})

    return [(torch, "that is PyTorch's convention (buf = momentum·buf + g, w −= lr·buf): Keras "
             "keeps velocity = momentum·velocity − learning_rate·g and steps w = w + velocity"),
            (old_velocity, "update the velocity first, then add the NEW velocity to w"),
            (plus_gradient, "the velocity SUBTRACTS learning_rate·g (downhill)"),
            (stale_state, "return the NEW velocity, the one you added to w"),
            (fixed(momentum=0.9), "use the `momentum` argument (here {momentum}), not 0.9"),
            (fixed(learning_rate=0.01),
             "use the `learning_rate` argument (here {learning_rate}), not 0.01")]


def check_momentum_step(momentum_step):
    """`momentum_step(w, g, velocity, learning_rate, momentum)` -> (new_w, new_velocity)."""
    momentum_step = student(momentum_step)

    def run():
        settings = [dict(learning_rate=0.05, momentum=0.9), dict(learning_rate=0.3, momentum=0.5),
                    dict(learning_rate=0.002, momentum=0.99)]
        steps = _run(momentum_step, "momentum_step", keras_momentum, settings, "velocity",
                     _momentum_slips(), "velocity = momentum·velocity − learning_rate·g, then "
                     "w = w + velocity", positive_state=False)
        return (f"{steps} settings × 5 steps agree with keras.optimizers.SGD(momentum=...): "
                "new weights and new velocity.")

    return grade("momentum_step", run)


def check_rmsprop_step(rmsprop_step):
    """`rmsprop_step(w, g, mean_square, learning_rate, rho, epsilon)` -> (new_w, new_mean_square)."""
    rmsprop_step = student(rmsprop_step)

    def run():
        settings = [dict(learning_rate=0.01, rho=0.8, epsilon=1e-3),
                    dict(learning_rate=0.003, rho=0.95, epsilon=1e-7),
                    dict(learning_rate=0.05, rho=0.5, epsilon=0.1)]
        steps = _run(rmsprop_step, "rmsprop_step", keras_rmsprop, settings, "mean_square",
                     _RMSPROP_SLIPS, "mean_square = rho·mean_square + (1 − rho)·g², then "
                     "w = w − learning_rate·g / sqrt(mean_square + epsilon)",
                     positive_state=True)
        return (f"{steps} settings × 5 steps agree with keras.optimizers.RMSprop: new weights and "
                "new mean_square.")

    return grade("rmsprop_step", run)


def _rms(**changes):
    """The RMSProp step with one slip, given as a changed piece of the rule."""
    def step(w, g, s, learning_rate, rho, epsilon):
        r = changes.get("rho", lambda rho: rho)(rho)
        eps = changes.get("epsilon", epsilon)
        new_s = r * s + (1 - r) * (changes.get("square", lambda g: g ** 2)(g))
        used = s if changes.get("old") else new_s
        denominator = changes.get("root", lambda v, e: np.sqrt(v + e))(used, eps)
        return w - learning_rate * g / denominator, s if changes.get("stale") else new_s
    return step


_RMSPROP_SLIPS = [
    (_rms(rho=lambda rho: 1 - rho), "mean_square = rho·mean_square + (1 − rho)·g²: rho weighs "
     "the OLD mean_square"),
    (_rms(root=lambda v, e: np.sqrt(v) + e), "Keras adds epsilon INSIDE the square root, "
     "sqrt(mean_square + epsilon); PyTorch adds it outside"),
    (_rms(root=lambda v, e: v + e), "divide by the square ROOT of mean_square + epsilon"),
    (_rms(old=True), "update mean_square first, then divide by the root of the NEW one"),
    (_rms(stale=True), "return the NEW mean_square, the one you divided by"),
    (_rms(square=lambda g: np.abs(g)), "average the SQUARED gradient, g²"),
    (_rms(rho=lambda rho: 0.9), "use the `rho` argument (here {rho}), not 0.9"),
    (_rms(epsilon=1e-7), "use the `epsilon` argument (here {epsilon}), not 1e-7"),
]


def check_race(report):
    """`report` = {"optimizer": a Keras optimizer, "final_loss": f at the end of RACE_STEPS
    steps from Rosenbrock's start}, optionally with "notes": re-measured, then held to
    RACE_TARGET."""
    import math
    import numbers

    import keras

    from cnnkit.course.optimviz import rosenbrock, trajectory

    def run():
        expect(report is not None, "not implemented yet: replace `raise NotImplementedError()` "
               "with your experiment and its report.")
        expect(isinstance(report, dict), f"report is {type(report).__name__}: make it a dict, "
               '{"optimizer": ..., "final_loss": ...}.')
        missing = {"optimizer", "final_loss"} - set(report)
        extra = set(report) - {"optimizer", "final_loss", "notes"}
        expect(not missing and not extra, f"report has the keys {sorted(map(str, report))}; it "
               'needs "optimizer" and "final_loss" (and may have "notes").')
        optimizer, reported = report["optimizer"], report["final_loss"]
        expect(isinstance(optimizer, keras.optimizers.Optimizer), f'report["optimizer"] is '
               f"{optimizer!r:.60}: give the optimizer object you ran, e.g. "
               "keras.optimizers.SGD(0.001, momentum=0.9).")
        ok = isinstance(reported, numbers.Real) and not isinstance(reported, bool) or (
            isinstance(reported, np.ndarray) and reported.shape == () or
            isinstance(reported, np.generic) and np.ndim(reported) == 0)
        expect(ok, f'report["final_loss"] is {reported!r:.60} of type '
               f"{type(reported).__name__}: report f(x, y) at the last point, one number.")
        reported = float(reported)
        fresh = type(optimizer).from_config(optimizer.get_config())  # its settings, no state
        path = trajectory(fresh, RACE_STEPS).astype("float64")
        losses = rosenbrock(path[:, 0], path[:, 1])
        measured = float(losses[-1])
        rate = optimizer.get_config().get("learning_rate")
        name = type(optimizer).__name__ + (f"({rate:g})" if isinstance(rate, numbers.Real)
                                           else " (with a schedule)")
        if not math.isfinite(measured):
            expect(False, f"{name} diverges on Rosenbrock's valley (f becomes {measured}): a "
                   "smaller learning rate keeps the steps inside the walls.")
        if not math.isclose(reported, measured, rel_tol=1e-4, abs_tol=1e-9):
            earlier = [k for k in range(RACE_STEPS) if math.isclose(reported, losses[k],
                                                                    rel_tol=1e-4, abs_tol=1e-9)]
            if math.isclose(reported, losses.min(), rel_tol=1e-4, abs_tol=1e-9):
                hint = ("that is the lowest f along the path; the report is f at the LAST "
                        f"point, after all {RACE_STEPS} steps")
            elif earlier:
                hint = (f"that is f after {earlier[-1]} steps; run all {RACE_STEPS}: "
                        f"trajectory(optimizer, {RACE_STEPS})")
            elif measured > 0 and math.isclose(reported, math.log10(measured), rel_tol=1e-4):
                hint = "that is log10(f): report f itself"
            else:
                hint = ("report what your run measured, rosenbrock(*path[-1]), with the optimizer "
                        "you give here (the grader reruns it from its settings)")
            expect(False, f"the grader ran a fresh {name} for {RACE_STEPS} steps from (-1.2, 1) "
                   f"and measured f = {measured:.4g}; your report says {reported:.4g}: {hint}.")
        expect(measured <= RACE_TARGET, f"{name} ends at f = {measured:.4g} after {RACE_STEPS} "
               f"steps, above the target {RACE_TARGET}: your report is honest, now tune it "
               "(lesson 03: momentum and Nesterov run along the valley; a learning rate just "
               "below the stability limit helps).")
        return (f"{name} reaches f = {measured:.4g} in {RACE_STEPS} steps (target "
                f"{RACE_TARGET}), and your report says so.")

    return grade("race", run)
