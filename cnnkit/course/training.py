"""Callbacks the lessons use to look inside `model.fit` (iterations counted, epochs timed), one
training step that returns its own batch's loss, and the progress every long loop shows."""

import os
import time

import keras
import numpy as np

__all__ = ["BatchCounter", "EpochTimer", "TimeLimit", "accuracy", "batch_loss",
           "few_steps_eagerly", "progress", "progress_bar"]

PROGRESS_ENV = "CNNKIT_PROGRESS"


def progress() -> int:
    """The `verbose` a lesson gives `fit`: 1, Keras's live bar, for a learner at the notebook;
    2, one line per epoch, where a tool runs the notebook and keeps its outputs
    (tools/refresh_notebooks.py and CI set CNNKIT_PROGRESS=lines), since every redraw of a
    bar is stored as text."""
    value = os.environ.get(PROGRESS_ENV, "bar").strip().lower()
    if value not in ("bar", "lines"):
        raise ValueError(f"{PROGRESS_ENV}={value!r}: use 'bar' (the default) or 'lines'.")
    return 2 if value == "lines" else 1


def progress_bar(target: int, unit: str = "step", latest=()) -> keras.utils.Progbar:
    """A `keras.utils.Progbar` for a lesson's own loop of `target` steps: live for a learner;
    where outputs are kept, only its final line, `target/target` with the time taken. The
    values named in `latest` show their last value (else a Progbar may show their mean)."""
    return keras.utils.Progbar(target, verbose=progress(), unit_name=unit,
                               stateful_metrics=list(latest))


def few_steps_eagerly() -> bool:
    """The `run_eagerly` for a handful of training steps of a large model: True on TensorFlow,
    where tracing a few hundred layers into a graph costs more than the steps; False on JAX,
    whose eager mode compiles every operation on its own, so one compiled step is cheaper
    (GoogLeNet with its auxiliary heads, one step at 224x224: 51 s compiled, 148 s eager, on a
    loaded 2-core machine, 2026-12-03). PyTorch runs eagerly either way."""
    return keras.backend.backend() == "tensorflow"


def accuracy(model, x, y, batch_size=256) -> float:
    """The share of `x` whose highest output is its label `y`, the model called in inference
    mode on batches (no `predict`, which would compile a function for a few calls)."""
    predicted = [keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=False)).argmax(
        axis=-1) for i in range(0, len(x), batch_size)]
    return float(np.mean(np.concatenate(predicted) == np.asarray(y)))


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
