"""Graders of exercise 16 (fast training): every right answer passes, every wrong one fails with
the hint that names its mistake."""

import math
import sys

import numpy as np
import pytest

from cnnkit import fast_training

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


# whitening_weights ---------------------------------------------------------------------------

def right_whitening(patches, eps=5e-4):
    moments = patches.T @ patches / len(patches)
    values, vectors = np.linalg.eigh(moments)
    values, vectors = values[::-1], vectors[:, ::-1]
    return vectors.T / np.sqrt(values + eps)[:, None]


def whitening_by_svd(patches, eps=5e-4):
    # The right singular vectors of P / sqrt(n) are the eigenvectors of PᵀP / n, s² their
    # eigenvalues, already largest first; their signs may differ from eigh's.
    _, s, vt = np.linalg.svd(patches / np.sqrt(len(patches)), full_matrices=False)
    return vt / np.sqrt(s ** 2 + eps)[:, None]


def whitening_as_list(patches, eps=5e-4):
    return (-right_whitening(patches, eps)).tolist()  # every filter's sign flipped: still right


def unscaled(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors[:, ::-1].T


def divided_by_eigenvalue(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors[:, ::-1].T / (values[::-1] + eps)[:, None]


def multiplied(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors[:, ::-1].T * np.sqrt(values[::-1] + eps)[:, None]


def ascending(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors.T / np.sqrt(values + eps)[:, None]


def columns(patches, eps=5e-4):
    return right_whitening(patches, eps).T


def eps_ignored(patches, eps=5e-4):
    return right_whitening(patches, 0.0)


def eps_outside(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors[:, ::-1].T / (np.sqrt(values[::-1]) + eps)[:, None]


def centred(patches, eps=5e-4):
    return right_whitening(patches - patches.mean(axis=0), eps)


def sample_covariance(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / (len(patches) - 1))
    return vectors[:, ::-1].T / np.sqrt(values[::-1] + eps)[:, None]


def gram_matrix(patches, eps=5e-4):
    return patches @ patches.T / len(patches)


def zca(patches, eps=5e-4):
    values, vectors = np.linalg.eigh(patches.T @ patches / len(patches))
    return vectors @ np.diag(1 / np.sqrt(values + eps)) @ vectors.T


def normalised_in_place(patches, eps=5e-4):
    patches /= np.abs(patches).max()
    return right_whitening(patches, eps)


def whitening_returns_none(patches, eps=5e-4):
    right_whitening(patches, eps)


def whitening_exits(patches, eps=5e-4):
    sys.exit(3)


# lr_factor -----------------------------------------------------------------------------------

def right_factor(step, total_steps):
    warmup = int(0.23 * total_steps)
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / (total_steps - warmup)


def factor_by_interp(step, total_steps):
    warmup = int(total_steps * 0.23)
    return float(np.interp(step, [0, warmup, total_steps], [0.2, 1.0, 0.07]))


def factor_from_schedule(step, total_steps):
    schedule = fast_training.TriangularSchedule(1.0, total_steps)
    return float(np.asarray(schedule.factor(step)))


def rounded_warmup(step, total_steps):
    warmup = round(0.23 * total_steps)
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / (total_steps - warmup)


def from_zero(step, total_steps):
    warmup = int(0.23 * total_steps)
    if step < warmup:
        return step / warmup
    return right_factor(step, total_steps)


def to_zero(step, total_steps):
    warmup = int(0.23 * total_steps)
    if step < warmup:
        return right_factor(step, total_steps)
    return 1.0 - (step - warmup) / (total_steps - warmup)


def no_warmup(step, total_steps):
    return 1.0 - 0.93 * step / total_steps


def one_step_late(step, total_steps):
    return right_factor(min(step + 1, total_steps), total_steps)


def decay_over_all_steps(step, total_steps):
    warmup = int(0.23 * total_steps)
    if step < warmup:
        return right_factor(step, total_steps)
    return 1.0 - 0.93 * (step - warmup) / total_steps


def cosine_decay(step, total_steps):
    warmup = int(0.23 * total_steps)
    if step < warmup:
        return right_factor(step, total_steps)
    return 0.07 + 0.93 * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total_steps - warmup)))


def peak_at_20_percent(step, total_steps):
    warmup = int(0.2 * total_steps)
    if step < warmup:
        return 0.2 + 0.8 * step / warmup
    return 1.0 - 0.93 * (step - warmup) / (total_steps - warmup)


def learning_rate_not_factor(step, total_steps):
    return 11.5 * right_factor(step, total_steps)


def factor_as_text(step, total_steps):
    return f"{right_factor(step, total_steps):.3f}"


def factor_exits(step, total_steps):
    sys.exit(0)


TABLES = [
    Table(grading.check_whitening_weights, right_whitening,
          right=[whitening_by_svd, whitening_as_list, fast_training.whitening_weights],
          wrong=[(unscaled, "divide each eigenvector by sqrt(λ + eps)"),
                 (divided_by_eigenvalue, "not by λ + eps itself"),
                 (multiplied, "multiplying by it makes the large directions larger"),
                 (ascending, "largest eigenvalue first"),
                 (columns, "returns the eigenvectors as columns"),
                 (eps_ignored, "add eps to every eigenvalue"),
                 (eps_outside, "eps goes inside the square root"),
                 (centred, "without subtracting the mean"),
                 (sample_covariance, "not by n - 1"),
                 (gram_matrix, "(PᵀP is d x d, not P Pᵀ)"),
                 (zca, "that is ZCA whitening"),
                 (normalised_in_place, "changed its input argument 1 in place"),
                 (whitening_returns_none, "returned None"),
                 (whitening_exits, "sys.exit(3)")]),
    Table(grading.check_lr_factor, right_factor,
          right=[factor_by_interp, factor_from_schedule],
          wrong=[(rounded_warmup, "not round(...)"),
                 (from_zero, "the warm-up starts at 0.2 of the peak"),
                 (to_zero, "the decay ends at 0.07 of the peak"),
                 (no_warmup, "warm up first"),
                 (one_step_late, "step 0 is the first step"),
                 (decay_over_all_steps, "the decay spans the steps left after the warm-up"),
                 (cosine_decay, "the decay is linear, not a cosine"),
                 (peak_at_20_percent, "not 20%"),
                 (learning_rate_not_factor, "not the learning rate"),
                 (factor_as_text, "of type str"),
                 (factor_exits, "sys.exit(0)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)
