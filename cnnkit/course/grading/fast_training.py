"""Graders of exercise 16 · Fast training (solutions/16_fast_training.ipynb).

The student writes `whitening_weights` (airbench's patch-whitening filters from the eigen-
decomposition of the patches' second moments), checked on correlated random patches with a
mean, for several sizes and epsilons, up to the sign of each filter (an eigenvector's sign is
arbitrary), and for whitening the patches exactly when eps = 0; and `lr_factor`, airbench's
triangular learning-rate schedule, checked at every step of several runs against the formula
and against `cnnkit.fast_training.TriangularSchedule`.
"""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, real_number, student

__all__ = ["check_whitening_weights", "check_lr_factor"]


def _patches(rng, n, d):
    """n correlated patches of length d with a mean, as image patches are."""
    mixing = rng.normal(size=(d, d)) * rng.uniform(0.2, 2.0, size=d)
    return rng.normal(size=(n, d)) @ mixing + rng.normal(size=d)


def _reference(p, eps, *, center=False, ddof=0, ascending=False, power=0.5, eps_outside=False):
    """The solution, and the variants that the hints recognise."""
    p = p - p.mean(axis=0) if center else p
    moments = p.T @ p / (len(p) - ddof)
    values, vectors = np.linalg.eigh(moments)
    order = np.argsort(values) if ascending else np.argsort(values)[::-1]
    values, vectors = values[order], vectors[:, order]
    scale = (np.sqrt(values) + eps) if eps_outside else (values + eps) ** power
    return vectors.T / scale[:, None]


def _signs_like(got, want):
    """`got` with each row's sign chosen to agree with the same row of `want`."""
    signs = np.sign(np.sum(got * want, axis=1, keepdims=True))
    signs[signs == 0] = 1
    return got * signs


def check_whitening_weights(whitening_weights):
    """`whitening_weights(patches, eps=5e-4)` -> (d, d), one whitening filter per row."""
    whitening_weights = student(whitening_weights)

    def run():
        rng = np.random.default_rng(16)
        cases = [(300, 12, 5e-4), (200, 12, 0.1), (500, 27, 1e-3), (150, 8, 0.0), (400, 12, None)]
        for n, d, eps in cases:
            p = _patches(rng, n, d)
            if eps is None:
                call = f"whitening_weights(patches of shape {p.shape})"
                got, eps = whitening_weights(p.copy()), 5e-4
            else:
                call = f"whitening_weights(patches of shape {p.shape}, eps={eps})"
                got = whitening_weights(p.copy(), eps=eps)
            got = array(got, call)
            expect(got.shape == (d, d), f"{call} returned shape {got.shape}; expected ({d}, {d}):"
                   " one filter of d = patch length numbers per row, d filters (PᵀP is d x d, "
                   "not P Pᵀ).")
            want = _reference(p, eps)
            if np.allclose(_signs_like(got, want), want, rtol=1e-6, atol=1e-9):
                continue
            variants = [
                (_reference(p, eps, power=0.0), "divide each eigenvector by sqrt(λ + eps): "
                 "unscaled eigenvectors decorrelate the patches but leave their variances"),
                (_reference(p, eps, power=1.0), "divide by the square root of λ + eps, not by "
                 "λ + eps itself"),
                (_reference(p, eps, power=-0.5), "divide by sqrt(λ + eps); multiplying by it "
                 "makes the large directions larger"),
                (_reference(p, eps, ascending=True), "largest eigenvalue first: np.linalg.eigh "
                 "returns them in ascending order, so reverse both"),
                (_reference(p, eps).T, "one filter per row: np.linalg.eigh returns the "
                 "eigenvectors as columns, so transpose them"),
                (_reference(p, 0.0), "add eps to every eigenvalue before the square root"),
                (_reference(p, eps, eps_outside=True), "eps goes inside the square root: "
                 "sqrt(λ + eps), not sqrt(λ) + eps"),
                (_reference(p, eps, center=True), "use the second moments PᵀP / n as they are, "
                 "without subtracting the mean (the images are already normalised)"),
                (_reference(p, eps, ddof=1), "divide PᵀP by n, the number of patches, not by "
                 "n - 1"),
            ]
            hint = None
            for value, text in variants:
                if np.allclose(_signs_like(got, value), value, rtol=1e-6, atol=1e-9):
                    hint = text
                    break
            if hint is None:
                vectors = np.linalg.eigh(p.T @ p / n)[1]
                zca = vectors @ np.diag(1 / np.sqrt(np.linalg.eigh(p.T @ p / n)[0] + eps)) \
                    @ vectors.T
                hint = one_of(got, [(zca, "that is ZCA whitening (V D Vᵀ); airbench's filters "
                                     "are the scaled eigenvectors themselves, the rows of D Vᵀ")],
                              "row i must be the eigenvector of PᵀP / n with the i-th largest "
                              "eigenvalue λᵢ, divided by sqrt(λᵢ + eps)", rtol=1e-6, atol=1e-9)
            expect(False, f"{call} is not airbench's whitening: {hint}.")
        # eps = 0 whitens exactly: the filtered patches are uncorrelated with unit variance.
        p = _patches(rng, 250, 12)
        w = array(whitening_weights(p.copy(), eps=0.0), "whitening_weights(patches, eps=0.0)")
        filtered = p @ w.T
        expect(np.allclose(filtered.T @ filtered / len(p), np.eye(12), atol=1e-8),
               "with eps=0 the filtered patches should have identity second moments.")
        return (f"{len(cases)} sets of patches agree (each filter up to its sign); with eps=0 "
                "the 12 filtered dimensions are uncorrelated with unit variance.")

    return grade("whitening_weights", run)


def _factor(step, total, warmup=0.23, start=0.2, end=0.07, *, rounding=int, ramp_from=None):
    up = rounding(total * warmup)
    if step < up:
        return (ramp_from if ramp_from is not None else start) * (1 - step / up) + step / up
    frac = (step - up) / (total - up)
    return 1.0 * (1 - frac) + end * frac


def check_lr_factor(lr_factor):
    """`lr_factor(step, total_steps)` -> the multiple of the peak learning rate at `step`."""
    lr_factor = student(lr_factor)

    def run():
        rng = np.random.default_rng(3)
        totals = [100, 97, 500, 1000, 49] + [int(t) for t in rng.integers(30, 3000, size=5)]
        checked = 0
        for total in totals:
            steps = range(total + 1)
            for step in steps:
                call = f"lr_factor({step}, {total})"
                got = real_number(lr_factor(step, total), call)
                want = _factor(step, total)
                checked += 1
                if np.isclose(got, want, rtol=1e-6, atol=1e-7):  # float32 answers pass
                    continue
                up = int(total * 0.23)
                frac = step / total
                hint = one_of(got, [
                    (_factor(step, total, rounding=round), "the warm-up lasts int(0.23 · "
                     "total_steps) steps (rounded down), not round(...)"),
                    (_factor(step, total, ramp_from=0.0), "the warm-up starts at 0.2 of the "
                     "peak, not at 0"),
                    (_factor(step, total, end=0.0), "the decay ends at 0.07 of the peak at the "
                     "last step, not at 0"),
                    (1 - 0.93 * frac, "warm up first: 0.2 → 1 over the first 23% of the steps"),
                    (_factor(step + 1, total) if step < total else None, "step 0 is the first "
                     "step: at step 0 the factor is 0.2"),
                    (1.0 + (0.07 - 1.0) * (step - up) / total if step >= up else None,
                     "the decay spans the steps left after the warm-up: divide by total_steps "
                     "- warm-up steps"),
                    (0.07 + 0.93 * 0.5 * (1 + np.cos(np.pi * (step - up) / (total - up)))
                     if step >= up else None, "the decay is linear, not a cosine"),
                    (_factor(step, total, warmup=0.2), "the peak comes after 23% of the steps, "
                     "not 20%"),
                    (_factor(step, total) * 11.5, "return the factor (a multiple of the peak), "
                     "not the learning rate"),
                ], "0.2 → 1 linearly over int(0.23 · total_steps) steps, then 1 → 0.07 "
                   "linearly at the last step", rtol=1e-6, atol=1e-7)
                expect(False, f"{call} returned {got!r}, expected {want:.6g}: {hint}.")
        from cnnkit.fast_training import TriangularSchedule
        import keras

        schedule = TriangularSchedule(2.5, 400)
        for step in (0, 1, 91, 92, 93, 250, 400):
            got = real_number(lr_factor(step, 400), f"lr_factor({step}, 400)") * 2.5
            expect(np.isclose(got, float(keras.ops.convert_to_numpy(schedule(step))),
                              rtol=1e-5), f"lr_factor({step}, 400) disagrees with "
                   "cnnkit.fast_training.TriangularSchedule.")
        return (f"{checked} steps of {len(totals)} runs agree; the peak at step "
                f"int(0.23 · total), e.g. step {int(0.23 * 1000)} of 1,000.")

    return grade("lr_factor", run)
