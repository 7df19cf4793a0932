"""Graders of exercise 17 (scaling out): every right answer passes, every wrong one fails with the
hint that names its mistake."""

import math

import keras
import numpy as np
import pytest

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


# global_batch_and_steps ----------------------------------------------------------------------

def right_plan(n_samples, per_replica_batch, replicas, drop_remainder=False):
    global_batch = per_replica_batch * replicas
    if drop_remainder:
        return global_batch, n_samples // global_batch
    return global_batch, math.ceil(n_samples / global_batch)


def plan_from_lesson_01(n_samples, per_replica_batch, replicas, drop_remainder=False):
    """Lesson 01's iterations_per_epoch on the global batch, returned as a list of NumPy ints."""
    g = np.int64(per_replica_batch) * replicas
    whole = np.floor(n_samples / g) if drop_remainder else np.ceil(n_samples / g)
    return [g, np.int64(whole)]


def one_replicas_batch(n, b, r, drop_remainder=False):
    return right_plan(n, b, 1, drop_remainder)


def batch_split_between_replicas(n, b, r, drop_remainder=False):
    g = b // r
    return g, (n // g if drop_remainder else math.ceil(n / g))


def floor_always(n, b, r, drop_remainder=False):
    return b * r, n // (b * r)


def ceil_always(n, b, r, drop_remainder=False):
    return b * r, math.ceil(n / (b * r))


def plus_one(n, b, r, drop_remainder=False):
    return b * r, (n // (b * r) if drop_remainder else n // (b * r) + 1)


def rounded(n, b, r, drop_remainder=False):
    return b * r, (n // (b * r) if drop_remainder else round(n / (b * r)))


def steps_per_replica(n, b, r, drop_remainder=False):
    g, steps = right_plan(n, b, r, drop_remainder)
    return g, steps * r


def swapped(n, b, r, drop_remainder=False):
    return right_plan(n, b, r, drop_remainder)[::-1]


def default_drops(n, b, r, drop_remainder=True):
    return right_plan(n, b, r, drop_remainder)


def true_division(n, b, r, drop_remainder=False):
    return b * r, n / (b * r)


def steps_only(n, b, r, drop_remainder=False):
    return right_plan(n, b, r, drop_remainder)[1]


def plan_as_text(n, b, r, drop_remainder=False):
    return str(right_plan(n, b, r, drop_remainder))


# lr_at ---------------------------------------------------------------------------------------

def right_lr(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    if step < warmup_steps:
        return base_lr + (target - base_lr) * step / warmup_steps
    return target


def lr_from_keras(step, base_lr, base_batch, global_batch, warmup_steps):
    """Keras's own schedule: CosineDecay's linear warm-up, then no decay (alpha=1)."""
    schedule = keras.optimizers.schedules.CosineDecay(
        base_lr, decay_steps=1, alpha=1.0, warmup_target=base_lr * global_batch / base_batch,
        warmup_steps=warmup_steps)
    return float(schedule(step))


def lr_by_interpolation(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    return float(np.interp(step, [0, max(warmup_steps, 1e-12)], [base_lr if warmup_steps else
                                                                 target, target]))


def not_scaled(step, base_lr, base_batch, global_batch, warmup_steps):
    return right_lr(step, base_lr, base_batch, base_batch, warmup_steps)


def inverse_ratio(step, base_lr, base_batch, global_batch, warmup_steps):
    return right_lr(step, base_lr, global_batch, base_batch, warmup_steps)


def square_root_scaling(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * math.sqrt(global_batch / base_batch)
    if step < warmup_steps:
        return base_lr + (target - base_lr) * step / warmup_steps
    return target


def whole_ratio(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * (global_batch // base_batch)
    if step < warmup_steps:
        return base_lr + (target - base_lr) * step / warmup_steps
    return target


def warm_from_zero(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    return target * min(step / warmup_steps, 1.0) if warmup_steps else target


def one_step_ahead(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    if step < warmup_steps:
        return base_lr + (target - base_lr) * (step + 1) / warmup_steps
    return target


def never_stops_rising(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    return base_lr + (target - base_lr) * step / warmup_steps if warmup_steps else target


def no_warm_up(step, base_lr, base_batch, global_batch, warmup_steps):
    return base_lr * global_batch / base_batch


def geometric_warm_up(step, base_lr, base_batch, global_batch, warmup_steps):
    k = global_batch / base_batch
    return base_lr * k ** min(step / warmup_steps, 1.0) if warmup_steps else base_lr * k


def back_to_base(step, base_lr, base_batch, global_batch, warmup_steps):
    return right_lr(step, base_lr, base_batch, global_batch, warmup_steps) if step < warmup_steps \
        else base_lr


def divides_by_zero_warm_up(step, base_lr, base_batch, global_batch, warmup_steps):
    target = base_lr * global_batch / base_batch
    return base_lr + (target - base_lr) * min(step / warmup_steps, 1.0)


def lr_as_text(step, base_lr, base_batch, global_batch, warmup_steps):
    return f"{right_lr(step, base_lr, base_batch, global_batch, warmup_steps):.4f}"


def lr_none(step, base_lr, base_batch, global_batch, warmup_steps):
    right_lr(step, base_lr, base_batch, global_batch, warmup_steps)


TABLES = [
    Table(grading.check_global_batch_and_steps, right_plan,
          right=[plan_from_lesson_01],
          wrong=[(one_replicas_batch, "per_replica_batch · replicas, not one replica's"),
                 (batch_split_between_replicas, "their product, not a quotient"),
                 (floor_always, "the last, partial global batch is an iteration too"),
                 (ceil_always, "with drop_remainder=True the partial last batch is skipped"),
                 (plus_one, "n // g + 1 counts one too many"),
                 (rounded, "not to the nearest whole number"),
                 (steps_per_replica, "one iteration per global batch, not one per replica's"),
                 (swapped, "return (global_batch, steps) in that order"),
                 (default_drops, "global_batch_and_steps(1001, 25, 4) returned (100, 10), "
                                 "expected (100, 11)"),
                 (true_division, "of type float: return a whole number (int)"),
                 (steps_only, "return a pair (global_batch, steps)"),
                 (plan_as_text, "return a pair (global_batch, steps)")]),
    Table(grading.check_lr_at, right_lr,
          right=[lr_from_keras, lr_by_interpolation],
          wrong=[(not_scaled, "scale the rate linearly with the batch"),
                 (inverse_ratio, "not the inverse ratio"),
                 (square_root_scaling, "not with the square root of the batch ratio"),
                 (whole_ratio, "divide with /, not //"),
                 (warm_from_zero, "starts from base_lr at step 0, not from 0"),
                 (one_step_ahead, "at step 0 the rate is base_lr"),
                 (never_stops_rising, "it stops rising"),
                 (no_warm_up, "rises gradually from base_lr to the target"),
                 (geometric_warm_up, "not geometrically"),
                 (back_to_base, "the scaled target, not base_lr"),
                 (divides_by_zero_warm_up, "with warmup_steps=0 there is no warm-up"),
                 (lr_as_text, "of type str: return a number"),
                 (lr_none, "returned None")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_messages_quote_the_paper(capsys):
    grading.check_global_batch_and_steps(right_plan)
    grading.check_lr_at(right_lr)
    out = capsys.readouterr().out
    assert "global batch 8,192, 157 iterations per epoch" in out
    assert "warms from 0.1 through 1.65 to 3.2 over 5 epochs" in out
    with pytest.raises(grading.GradeFailure) as failure:
        grading.check_lr_at(not_scaled)
    assert ("lr_at(1, 0.1, 256, 8192, 785) returned 0.1, expected 0.103949: scale the rate "
            "linearly" in str(failure.value))
