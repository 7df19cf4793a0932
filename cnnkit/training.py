"""Callbacks the lessons use to look inside `model.fit` (iterations counted, epochs timed), and
one training step that returns its own batch's loss."""

import time

import keras
import numpy as np

__all__ = ["BatchCounter", "EpochTimer", "TimeLimit", "batch_loss"]


def batch_loss(model, x, y) -> float:
    """One iteration, `model.train_on_batch(x, y)`, and the loss of this batch alone.

    Keras keeps the loss as a running mean over the batches since its metrics were last reset.
    Keras 3.15 resets them in every `train_on_batch` call; Keras 3.13 (Colab's in 2026) does
    not, and returns the mean over every batch so far. Resetting first gives this batch's loss
    on both.
    """
    model.reset_metrics()
    return float(np.asarray(model.train_on_batch(x, y)).reshape(-1)[0])


class BatchCounter(keras.callbacks.Callback):
    """Counts the training iterations (batches) of every epoch.

    After `fit`, `per_epoch[i]` is the number of optimizer steps taken in epoch i.
    """

    def on_train_begin(self, logs=None):
        self.per_epoch = []

    def on_epoch_begin(self, epoch, logs=None):
        self.per_epoch.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.per_epoch[-1] += 1

    @property
    def total(self) -> int:
        return sum(self.per_epoch)


class EpochTimer(keras.callbacks.Callback):
    """Wall-clock seconds of every epoch; the first includes tracing and compilation."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


class TimeLimit(keras.callbacks.Callback):
    """Stops training at the end of the epoch in which `seconds` have passed.

    It keeps a lesson inside its profile's budget on a slower machine than expected.
    """

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.stopped_early = False

    def on_train_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if time.perf_counter() - self._start > self.seconds:
            self.model.stop_training = True
            self.stopped_early = True
