"""airbench's training recipe, piece by piece: whitening from data, the triangular schedule,
Nesterov SGD with fast BatchNorm biases and lookahead, alternating flips, test-time augmentation.

Keller Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU" (2024, arXiv 2404.00498).
Every piece runs on TensorFlow, JAX and PyTorch (keras.ops and NumPy only). `Recipe` holds the
paper's hyperparameters, one field per trick, so an experiment turns one trick off with
`dataclasses.replace(recipe, label_smoothing=0.0)` and `train(recipe, ...)` measures it.

Simplified against the paper's code: the loss is the batch mean (the paper sums it and scales
the learning rate instead: the same steps, converted in `Recipe.keras_lr`); lookahead averages
the trainable weights (the paper also averages BatchNorm's running statistics); the whitening
bias stops receiving gradients after `whiten_bias_epochs` (its momentum then fades over a few
steps, where the paper's freezes at once).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace

import keras
import numpy as np

__all__ = ["patches", "whitening_weights", "whitening_kernel", "init_whitening",
           "TriangularSchedule", "AirbenchSGD", "alternating_flips", "translate",
           "AirbenchBatches", "tta_logits", "Recipe", "Result", "build_model", "train",
           "normalize"]


# --- whitening -------------------------------------------------------------------------------

def patches(images, size=2):
    """Every size x size patch of `images` (N, H, W, C), flattened in the order of a Keras
    kernel (row, column, channel): shape (N·(H-size+1)·(W-size+1), size·size·C)."""
    images = np.asarray(images, dtype="float64")
    n, h, w, c = images.shape
    windows = np.lib.stride_tricks.sliding_window_view(images, (size, size), axis=(1, 2))
    # (N, H', W', C, size, size) -> (N, H', W', size, size, C)
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, size * size * c)


def whitening_weights(patches, eps=5e-4):
    """(d, d): row i is the i-th eigenvector of the patches' second moments C = PᵀP / n,
    largest eigenvalue first, divided by sqrt(λᵢ + eps). Then W C Wᵀ = diag(λ / (λ + eps)): the
    patches projected on the rows are decorrelated and of (almost) unit variance."""
    patches = np.asarray(patches, dtype="float64")
    moments = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = np.linalg.eigh(moments)  # ascending, vectors as columns
    order = np.argsort(eigenvalues)[::-1]
    return eigenvectors[:, order].T / np.sqrt(eigenvalues[order] + eps)[:, None]


def whitening_kernel(images, size=2, eps=5e-4):
    """The whitening layer's kernel (size, size, C, 2d): each row of `whitening_weights` as a
    filter, then its negative, so that the GELU after it keeps both signs of every direction."""
    p = patches(images, size)
    w = whitening_weights(p, eps)
    filters = w.T.reshape(size, size, -1, w.shape[0])  # column j of w.T is filter j
    return np.concatenate([filters, -filters], axis=-1).astype("float32")


def init_whitening(model, images, layer="whiten", eps=5e-4):
    """Set the model's whitening kernel from `images` (N, H, W, C), normalised like the inputs."""
    whiten = model.get_layer(layer)
    size = whiten.kernel.shape[0]
    kernel = whitening_kernel(images, size, eps)
    whiten.kernel.assign(kernel)
    return kernel


# --- schedule and optimizer ------------------------------------------------------------------

@keras.saving.register_keras_serializable(package="cnnkit")
class TriangularSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """airbench's learning rate: linear from start·peak to peak over the first `warmup` of the
    steps, then linear down to end·peak at the last step."""

    def __init__(self, peak, total_steps, warmup=0.23, start=0.2, end=0.07):
        self.peak, self.total_steps = float(peak), int(total_steps)
        self.warmup, self.start, self.end = float(warmup), float(start), float(end)

    def factor(self, step):
        """The multiplier of `peak` at `step` (a tensor or a number)."""
        up = max(int(self.total_steps * self.warmup), 1)
        down = max(self.total_steps - up, 1)
        step = keras.ops.cast(step, "float32")
        rising = self.start + (1.0 - self.start) * step / up
        falling = 1.0 + (self.end - 1.0) * (step - up) / down
        return keras.ops.where(step < up, rising, keras.ops.maximum(falling, self.end))

    def __call__(self, step):
        return self.peak * self.factor(step)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup": self.warmup,
                "start": self.start, "end": self.end}


@keras.saving.register_keras_serializable(package="cnnkit")
class AirbenchSGD(keras.optimizers.SGD):
    """Nesterov SGD as airbench runs it: weight decay added to the gradient (PyTorch's coupled
    form, `l2` times the weight); BatchNorm biases (β) `bias_scaler` times faster; the whitening
    layer's bias trained for `whiten_bias_steps` steps only; and lookahead: every
    `lookahead_every` steps the weights move to a slow copy that follows them with a decay rising
    as 0.95⁵ · (step / total)³ ("Lookahead Optimizer: k steps forward, 1 step back", Zhang et al.,
    2019). lookahead_every=0 turns it off."""

    def __init__(self, learning_rate=0.01, momentum=0.85, nesterov=True, l2=0.0,
                 bias_scaler=64.0, whiten_bias_steps=None, lookahead_every=5, total_steps=1,
                 name="airbench_sgd", **kwargs):
        super().__init__(learning_rate=learning_rate, momentum=momentum, nesterov=nesterov,
                         name=name, **kwargs)
        self.l2, self.bias_scaler = float(l2), float(bias_scaler)
        self.whiten_bias_steps = whiten_bias_steps
        self.lookahead_every, self.total_steps = int(lookahead_every), int(total_steps)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        # The model's variables, kept outside the optimizer's own variables: an attribute
        # holding them directly would be tracked as optimizer state (and a JAX step would then
        # donate the same buffer twice).
        self._model = _Held(list(var_list))
        self._slow = {}
        if self.lookahead_every:
            for v in var_list:
                self._slow[v.path] = self.add_variable_from_reference(v, "slow")

    @staticmethod
    def is_norm_bias(variable):
        return variable.path.split("/")[-1] == "beta"

    @staticmethod
    def is_whiten_bias(variable):
        return variable.path.endswith("whiten/bias")

    def _adjust(self, gradient, variable):
        """The gradient SGD sees: β's scaled up, the whitening bias's gated, L2 added."""
        if gradient is None:
            return None
        gradient = keras.ops.cast(gradient, variable.dtype)
        if self.is_norm_bias(variable):
            gradient = gradient * self.bias_scaler
        if self.is_whiten_bias(variable) and self.whiten_bias_steps is not None:
            gradient = gradient * keras.ops.cast(self.iterations < self.whiten_bias_steps,
                                                 variable.dtype)
        if self.l2:
            gradient = gradient + self.l2 * keras.ops.cast(variable, variable.dtype)
        return gradient

    def apply(self, grads, trainable_variables=None):
        if trainable_variables is not None and not self.built:
            self.build(trainable_variables)
        variables = (self._model.variables if trainable_variables is None
                     else list(trainable_variables))
        grads = [self._adjust(g, v) for g, v in zip(grads, variables)]
        result = super().apply(grads, trainable_variables)
        if self.lookahead_every:
            self._lookahead(variables)
        return result

    def _lookahead(self, variables):
        iterations = keras.ops.convert_to_tensor(self.iterations)  # already counts this step
        step = keras.ops.cast(iterations, "float32")
        due = keras.ops.equal(keras.ops.mod(iterations, self.lookahead_every), 0)
        decay = 0.95 ** 5 * keras.ops.minimum(step / self.total_steps, 1.0) ** 3
        # The first visit copies the weights (the slow copy starts at zero, not at them).
        decay = keras.ops.where(keras.ops.equal(iterations, self.lookahead_every), 0.0, decay)
        for v in variables:
            slow = self._slow[v.path]
            old, fast = keras.ops.convert_to_tensor(slow), keras.ops.convert_to_tensor(v)
            new = old + (1.0 - keras.ops.cast(decay, old.dtype)) * (fast - old)
            self.assign(slow, keras.ops.where(due, new, old))
            self.assign(v, keras.ops.where(due, keras.ops.cast(new, fast.dtype), fast))

    def finish(self, model):
        """The paper's last step: the weights become the slow copy (decay 1). Call after fit."""
        if self.lookahead_every and self._slow:
            for v in model.trainable_variables:
                if v.path in self._slow:
                    v.assign(keras.ops.cast(self._slow[v.path], v.dtype))

    def get_config(self):
        return {**super().get_config(), "l2": self.l2, "bias_scaler": self.bias_scaler,
                "whiten_bias_steps": self.whiten_bias_steps,
                "lookahead_every": self.lookahead_every, "total_steps": self.total_steps}


class _Held:
    """A plain holder, which Keras's attribute tracking does not look into."""

    def __init__(self, variables):
        self.variables = variables


# --- data ------------------------------------------------------------------------------------

def alternating_flips(first, epoch):
    """Which images are mirrored in `epoch` (0, 1, ...): epoch 0 mirrors the random half
    `first` (booleans, one per image); every later epoch mirrors exactly the images the epoch
    before did not. Every image is then seen both ways every two epochs, which random flips
    only promise on average."""
    first = np.asarray(first, dtype=bool)
    return first ^ bool(epoch % 2)


def translate(images, shifts, pad):
    """Each image moved by its (dy, dx) in `shifts` (|d| <= pad), its border reflected."""
    n, h, w, _ = images.shape
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    out = np.empty_like(images)
    for dy in range(-pad, pad + 1):
        for dx in range(-pad, pad + 1):
            rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
            if len(rows):
                out[rows] = padded[rows, pad + dy:pad + dy + h, pad + dx:pad + dx + w]
    return out


class AirbenchBatches(keras.utils.PyDataset):
    """Training batches with airbench's augmentation, made once per epoch in NumPy: flips
    ('alternating', 'random' or None) and random translations by up to `translate` pixels
    (reflected border), the labels one-hot for label smoothing. Batches are shuffled every
    epoch; the last partial batch is dropped, as the paper does."""

    def __init__(self, x, y, classes, batch_size=1024, flip="alternating", translate=2, seed=0):
        super().__init__(workers=1, use_multiprocessing=False)
        if flip not in ("alternating", "random", None):
            raise ValueError(f"flip must be 'alternating', 'random' or None; got {flip!r}.")
        self.x, self.y = np.asarray(x, "float32"), np.asarray(y)
        self.onehot = np.eye(classes, dtype="float32")[self.y]
        self.batch_size, self.flip, self.pad = int(batch_size), flip, int(translate)
        self.rng = np.random.default_rng(seed)
        self.first_flips = self.rng.random(len(self.x)) < 0.5
        self.epoch = 0
        self._make_epoch()

    def flips(self, epoch):
        if self.flip == "alternating":
            return alternating_flips(self.first_flips, epoch)
        if self.flip == "random":
            return self.first_flips if epoch == 0 else self.rng.random(len(self.x)) < 0.5
        return np.zeros(len(self.x), bool)

    def _make_epoch(self):
        images = self.x
        if self.pad:
            shifts = self.rng.integers(-self.pad, self.pad + 1, size=(len(images), 2))
            images = translate(images, shifts, self.pad)
        mirrored = self.flips(self.epoch)
        self.images = np.where(mirrored[:, None, None, None], images[:, :, ::-1], images)
        self.order = self.rng.permutation(len(self.x))

    def __len__(self):
        return len(self.x) // self.batch_size

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        return self.images[rows], self.onehot[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self._make_epoch()


def tta_logits(model, x, level=2, batch_size=1000, plain=None):
    """Logits averaged over views (airbench's test-time augmentation): level 0 the image alone;
    1 the image and its mirror; 2 also both mirrored after a 1-pixel shift up-left and one
    down-right (reflected border), weighted 1/2 unshifted, 1/4 each shifted. `plain`, the
    logits of `x` alone if already computed, saves one pass."""
    x = np.asarray(x, "float32")

    def logits(images):
        return np.asarray(model.predict(images, batch_size=batch_size, verbose=0), "float64")

    def mirrored(images, unmirrored=None):
        unmirrored = logits(images) if unmirrored is None else unmirrored
        return 0.5 * unmirrored + 0.5 * logits(images[:, :, ::-1])

    if level == 0:
        return logits(x) if plain is None else np.asarray(plain, "float64")
    if level == 1:
        return mirrored(x, plain)
    n = len(x)
    up_left = translate(x, np.full((n, 2), -1), 1)
    down_right = translate(x, np.full((n, 2), 1), 1)
    return 0.5 * mirrored(x, plain) + 0.25 * mirrored(up_left) + 0.25 * mirrored(down_right)


def normalize(x, mean, std):
    return ((np.asarray(x, "float32") - mean) / std).astype("float32")


# --- the recipe ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recipe:
    """airbench94's hyperparameters (Jordan 2024, Table and code), one field per trick.

    lr and weight_decay are the paper's decoupled values (per 1024 examples, independent of the
    momentum): `keras_lr` and `keras_l2` convert them for a mean loss and Keras's SGD.
    """

    epochs: float = 9.9
    batch_size: int = 1024
    lr: float = 11.5
    momentum: float = 0.85
    nesterov: bool = True
    weight_decay: float = 0.0153
    bias_scaler: float = 64.0
    label_smoothing: float = 0.2
    whiten_bias_epochs: float = 3
    whitening: bool = True  # frozen patch-whitening first layer (else a trained convolution)
    identity_init: bool = True
    lookahead: bool = True
    flip: str | None = "alternating"
    translate: int = 2
    tta_level: int = 2
    widths: tuple = (64, 256, 256)
    precision: str = "float32"

    @property
    def keras_lr(self):
        """Peak learning rate for Keras's SGD on a mean loss: the paper divides its lr by
        1024·(1 + 1/(1 - momentum)) and sums the loss over the batch."""
        return self.lr * self.batch_size / 1024 / (1 + 1 / (1 - self.momentum))

    @property
    def keras_l2(self):
        """The L2 coefficient added to the mean loss's gradient: the paper's decay per step is
        wd · batch / (1024·(1 + 1/(1 - momentum))), that is keras_lr · weight_decay / lr."""
        return self.weight_decay / self.lr

    def steps(self, n_train):
        return math.ceil(n_train // self.batch_size * self.epochs)


@dataclass
class Result:
    accuracy: float  # test accuracy without test-time augmentation
    tta_accuracy: float  # with the recipe's test-time augmentation
    seconds: float  # training time, whitening included, evaluation not
    steps: int
    history: dict


def build_model(recipe, input_shape, classes):
    """airbench94 with the recipe's widths and tricks, logits out (no softmax)."""
    from cnnkit.registry import build

    return build("airbench94", input_shape=input_shape, classes=classes,
                 classifier_activation=None, widths=tuple(recipe.widths),
                 whitening="frozen" if recipe.whitening else "trainable",
                 identity_init=recipe.identity_init)


def train(recipe, x_train, y_train, x_test, y_test, classes, *, seed=0, verbose=0, eager=False):
    """Train airbench94 by `recipe` on normalised images and return its `Result`; eager=True
    skips compiling the step, quicker for a run of a few steps."""
    keras.utils.set_random_seed(seed)
    previous = keras.mixed_precision.global_policy().name
    keras.mixed_precision.set_global_policy(recipe.precision)
    try:
        start = time.perf_counter()
        model = build_model(recipe, x_train.shape[1:], classes)
        if recipe.whitening:
            init_whitening(model, x_train[:5000])
        batches = AirbenchBatches(x_train, y_train, classes, recipe.batch_size, recipe.flip,
                                  recipe.translate, seed=seed)
        total = recipe.steps(len(x_train))
        per_epoch = len(batches)
        optimizer = AirbenchSGD(
            TriangularSchedule(recipe.keras_lr, total), momentum=recipe.momentum,
            nesterov=recipe.nesterov, l2=recipe.keras_l2, bias_scaler=recipe.bias_scaler,
            whiten_bias_steps=int(recipe.whiten_bias_epochs * per_epoch),
            lookahead_every=5 if recipe.lookahead else 0, total_steps=total)
        model.compile(optimizer=optimizer,
                      loss=keras.losses.CategoricalCrossentropy(
                          from_logits=True, label_smoothing=recipe.label_smoothing),
                      run_eagerly=eager)
        epochs = math.ceil(total / per_epoch)
        history = model.fit(batches, epochs=epochs, steps_per_epoch=None, verbose=verbose,
                            callbacks=[_StopAt(total)])
        optimizer.finish(model)
        seconds = time.perf_counter() - start
        logits = tta_logits(model, x_test, 0)
        plain = float(np.mean(logits.argmax(1) == y_test))
        tta = float(np.mean(tta_logits(model, x_test, recipe.tta_level, plain=logits).argmax(1)
                            == y_test))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    return Result(plain, tta, seconds, int(optimizer.iterations), history.history)


class _StopAt(keras.callbacks.Callback):
    """Stops training after `steps` steps: the paper's 9.9 epochs end inside the tenth."""

    def __init__(self, steps):
        super().__init__()
        self.steps, self.done = steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.done += 1
        if self.done >= self.steps:
            self.model.stop_training = True
