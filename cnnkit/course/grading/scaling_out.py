"""Graders of exercise 17 · Scaling out (solutions/17_scaling_out.ipynb).

The student writes `global_batch_and_steps` (the global batch of N replicas and the iterations
of one epoch, with and without the partial last batch) and `lr_at` (Goyal et al.'s linearly
scaled learning rate after a gradual, linear warm-up from the base rate; "Accurate, Large
Minibatch SGD: Training ImageNet in 1 Hour", 2017). Both are checked against the exact formulas
on the paper's own case, fixed edge cases and random ones, with every argument away from its
default.
"""

from __future__ import annotations

import math

import numpy as np

from .core import (GradeFailure, StudentCrash, expect, grade, one_of, pair_of_whole_numbers,
                   real_number, student)

__all__ = ["check_global_batch_and_steps", "check_lr_at"]


def _batch_cases(rng, n=20):
    # (n_samples, per_replica_batch, replicas): two GPUs, ImageNet on Goyal et al.'s 256 GPUs of
    # 32, a TPU's 8 cores, sizes that divide exactly, a last batch of one, fewer than one batch.
    fixed = [(60_000, 64, 2), (1_281_167, 32, 256), (50_000, 128, 8), (1000, 25, 4),
             (1001, 25, 4), (99, 100, 1), (7, 3, 3), (12, 6, 2)]
    drawn = [(int(rng.integers(1, 200_000)), int(rng.integers(1, 257)), int(rng.integers(2, 17)))
             for _ in range(n)]
    return fixed + drawn


def check_global_batch_and_steps(global_batch_and_steps):
    """`global_batch_and_steps(n_samples, per_replica_batch, replicas, drop_remainder=False)` ->
    (global batch, iterations per epoch)."""
    global_batch_and_steps = student(global_batch_and_steps)

    def run():
        calls = [(n, b, r, drop) for n, b, r in _batch_cases(np.random.default_rng(17))
                 for drop in (False, True)] + [(1001, 25, 4, None)]
        rounded_up = False  # a partial batch of at least half was counted right before
        for n, b, r, drop in calls:
            if drop is None:  # the default keeps the partial batch
                call = f"global_batch_and_steps({n}, {b}, {r})"
                got, drop = global_batch_and_steps(n, b, r), False
            else:
                call = f"global_batch_and_steps({n}, {b}, {r}, drop_remainder={drop})"
                got = global_batch_and_steps(n, b, r, drop_remainder=drop)
            got = pair_of_whole_numbers(got, call, "global_batch, steps")
            g = b * r
            want = (g, n // g if drop else -(-n // g))
            if got == want:
                rounded_up |= not drop and n % g >= g / 2
                continue
            steps = want[1]
            hint = one_of(got, [
                ((g, round(n / g)) if rounded_up and not drop else None, "round up (math.ceil), "
                 "not to the nearest whole number"),
                (want[::-1], "return (global_batch, steps) in that order"),
                ((b, n // b if drop else -(-n // b)), "the global batch is what all replicas "
                 "take in one step together: per_replica_batch · replicas, not one replica's"),
                ((b // r, n // max(b // r, 1) if drop else -(-n // max(b // r, 1))),
                 "each replica takes per_replica_batch examples: the global batch is their "
                 "product, not a quotient"),
                ((g, -(-n // g) if drop else n // g), "with drop_remainder=True the partial last "
                 "batch is skipped: n_samples // global_batch" if drop else "the last, partial "
                 "global batch is an iteration too: round up, math.ceil(n_samples / "
                 "global_batch)"),
                ((g, n // g + 1), "when the global batch divides n_samples there is no partial "
                 "batch: n // g + 1 counts one too many"),
                ((g, steps * r), "the replicas step together: one iteration per global batch, "
                 "not one per replica's batch"),
            ], "the global batch is per_replica_batch · replicas, and an epoch is ceil(n / "
               "global_batch) iterations (n // global_batch with drop_remainder=True)")
            expect(False, f"{call} returned {got}, expected {want}: {hint}.")
        return (f"{len(calls)} cases agree; ImageNet on Goyal et al.'s 256 GPUs of 32 images: "
                f"global batch 8,192, {math.ceil(1_281_167 / 8192)} iterations per epoch.")

    return grade("global_batch_and_steps", run)


def _lr(step, base_lr, base_batch, global_batch, warmup_steps):
    return _warm(step, base_lr, base_lr * global_batch / base_batch, warmup_steps)


def _warm(step, base_lr, target, warmup_steps):
    if step < warmup_steps:
        return base_lr + (target - base_lr) * step / warmup_steps
    return target


def check_lr_at(lr_at):
    """`lr_at(step, base_lr, base_batch, global_batch, warmup_steps)` -> the learning rate."""
    lr_at = student(lr_at)

    def run():
        rng = np.random.default_rng(170)
        # Goyal et al.: 0.1 for 256 images, 8,192 images, 5 epochs of 157 iterations of warm-up.
        settings = [(0.1, 256, 8192, 785), (0.05, 32, 96, 10), (0.2, 128, 64, 7),
                    (0.01, 64, 1000, 3)]
        settings += [(float(rng.uniform(1e-3, 0.5)), int(rng.integers(16, 512)),
                      int(rng.integers(16, 16_384)), int(rng.integers(1, 2_000))) for _ in range(8)]
        cases = []
        for lr, base, glob, warm in settings:
            steps = {0, 1, warm // 3, warm // 2, warm - 1, warm, warm + 1, 3 * warm + 5}
            steps |= {int(s) for s in rng.integers(0, 3 * warm + 2, 4)}
            cases += [(s, lr, base, glob, warm) for s in sorted(steps) if s >= 0]
        for case in cases + [(5, 0.1, 256, 1024, 0)]:
            step, lr, base, glob, warm = case
            call = f"lr_at({step}, {lr:g}, {base}, {glob}, {warm})"
            try:
                got = real_number(lr_at(step, lr, base, glob, warm), call)
            except StudentCrash as crash:
                if warm == 0:
                    raise GradeFailure(f"{call} raised {type(crash.error).__name__}: with "
                                       "warmup_steps=0 there is no warm-up; return the scaled "
                                       "rate from step 0") from None
                raise
            want = _lr(step, lr, base, glob, warm)
            if math.isclose(got, want, rel_tol=1e-6, abs_tol=1e-12):  # float32 schedules too
                continue
            target, k = lr * glob / base, glob / base
            during = step < warm
            hint = one_of(got, [
                (lr if during else None, "scale the rate linearly with the batch: the target "
                 "is base_lr · global_batch / base_batch"),
                (_warm(step, lr, lr * base / glob, warm), "the target is base_lr · "
                 "global_batch / base_batch, not the inverse ratio"),
                (_warm(step, lr, lr * math.sqrt(k), warm), "Goyal et al. scale linearly, not "
                 "with the square root of the batch ratio"),
                (_warm(step, lr, lr * (glob // base), warm) if glob % base else None,
                 "global_batch / base_batch need not be whole: divide with /, not //"),
                (target * step / warm if during else None, "Goyal et al.'s warm-up starts from "
                 "base_lr at step 0, not from 0"),
                (lr + (target - lr) * (step + 1) / warm if during else None, "at step 0 the rate "
                 "is base_lr: add (target − base_lr) · step / warmup_steps"),
                (lr + (target - lr) * step / warm if not during else None, "after "
                 "warmup_steps the rate stays at the scaled target; it stops rising"),
                (target if during else None, "during the first warmup_steps steps the rate "
                 "rises gradually from base_lr to the target"),
                (lr * k ** (step / warm) if during else None, "rise linearly (by the same "
                 "amount every step), not geometrically"),
                (lr if not during else None, "after warm-up the rate is the scaled target, not "
                 "base_lr"),
            ], "warm up linearly from base_lr to base_lr · global_batch / base_batch over "
               "warmup_steps steps, then stay there", rtol=1e-6, atol=1e-12)
            expect(False, f"{call} returned {got!r}, expected {want:.6g}: {hint}.")
        paper = [_lr(s, 0.1, 256, 8192, 785) for s in (0, 392, 785)]
        return (f"{len(cases) + 1} cases agree; Goyal et al.'s batch of 8,192 warms from "
                f"{paper[0]:.1f} through {paper[1]:.2f} to {paper[2]:.1f} over 5 epochs.")

    return grade("lr_at", run)
