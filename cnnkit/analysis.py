"""Counting tools a lesson prints: parameters now; receptive fields and FLOPs build on this."""

import math

__all__ = ["count_params"]


def count_params(model, trainable=True) -> int:
    """Trainable (or, with trainable=False, non-trainable) parameters of a built model."""
    weights = model.trainable_weights if trainable else model.non_trainable_weights
    return int(sum(math.prod(w.shape) for w in weights))
