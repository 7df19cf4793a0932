"""A toy neural architecture search that runs in a lesson: NASNet-style cells on 8x8 digits.

Zoph, Vasudevan, Shlens and Le, "Learning Transferable Architectures for Scalable Image
Recognition" (2018) searched for two cells, a Normal cell that keeps the map size and a
Reduction cell that halves it, and stacked them. Here the same idea is small enough to search
on a CPU within a minute, a few seconds per candidate (most of them spent compiling it):

- the search space is data: `OPS` (what a block may apply to an input), `WIDTHS` and `REPEATS`;
  an `Architecture` holds a Normal and a Reduction cell (each a tuple of `Block` rows), a width
  and the number of Normal cells per stage;
- `build_model(arch)` stacks the cells into a Keras model for 8x8x1 digits;
- `sample_architecture(rng)` draws one uniformly (the random-search "controller"), and
  `mutate(arch, rng)` changes one choice, as regularized evolution does (Real, Aggarwal, Huang
  and Le, "Regularized Evolution for Image Classifier Architecture Search", 2019);
- `random_search` and `regularized_evolution` train every candidate briefly on scikit-learn's
  digits (`digits_splits`) and return `Candidate` rows (architecture, parameters, MACs,
  validation accuracy) in the order they were evaluated.

What is simplified, against NASNet: an RNN controller trained by reinforcement learning is
replaced by random sampling or evolution; a cell reads only the previous cell's output (NASNet's
read the last two), has two blocks (NASNet's five) whose two operations are added, and applies
each separable convolution once (NASNet twice); an identity on a strided input keeps every
other pixel (NASNet's factorized reduction also mixes channels); operations are conv-BN-ReLU
(NASNet's ReLU-conv-BN).
"""

from __future__ import annotations

from typing import NamedTuple

import keras
import numpy as np
from keras import layers

from cnnkit.analysis import count_params, model_macs
from cnnkit.blocks import BN_EPSILON, BN_MOMENTUM, conv_bn
from cnnkit.course.training import accuracy, progress_bar

__all__ = ["OPS", "WIDTHS", "REPEATS", "BLOCKS", "Block", "Architecture", "Candidate",
           "build_model", "space_size", "sample_architecture", "mutate", "digits_splits",
           "evaluate", "random_search", "regularized_evolution", "best_so_far", "describe"]

# What a block may apply to one of its inputs (NASNet's list has 13; these are its most used).
OPS = ("identity", "conv3x3", "conv5x5", "sepconv3x3", "sepconv5x5", "maxpool3x3", "avgpool3x3")
WIDTHS = (8, 16, 24)  # channels of the first stage; the Reduction cell doubles them
REPEATS = (1, 2)  # Normal cells before and after the Reduction cell
BLOCKS = 2  # blocks per cell
INPUT_SHAPE, CLASSES = (8, 8, 1), 10


class Block(NamedTuple):
    """One block of a cell: two inputs (0 is the cell's input, j > 0 block j-1's output), an
    operation on each, and their sum."""

    input_a: int
    op_a: str
    input_b: int
    op_b: str


class Architecture(NamedTuple):
    """A point of the search space: the two cells, the first stage's width, and how many Normal
    cells each of the two stages repeats."""

    normal: tuple[Block, ...]
    reduction: tuple[Block, ...]
    width: int
    repeats: int


class Candidate(NamedTuple):
    """One evaluated architecture: its size, its cost for one image and its reward."""

    architecture: Architecture
    params: int
    macs: int  # the papers' convention (convolutions and dense layers), `cnnkit.analysis`
    accuracy: float  # on the validation split, after `epochs` of training


def _check(arch: Architecture):
    if arch.width not in WIDTHS or arch.repeats not in REPEATS:
        raise ValueError(f"width must be one of {WIDTHS} and repeats one of {REPEATS}; got "
                         f"{arch.width} and {arch.repeats}.")
    for cell in (arch.normal, arch.reduction):
        for j, block in enumerate(cell):
            for i, op in ((block.input_a, block.op_a), (block.input_b, block.op_b)):
                if op not in OPS:
                    raise ValueError(f"unknown operation {op!r}; the search space has {OPS}.")
                if not 0 <= i <= j:
                    raise ValueError(f"block {j + 1} may read inputs 0..{j} (0 is the cell's "
                                     f"input); got {i}.")


def _op(x, op, width, strides, name):
    if op == "identity":
        # A pool of size 1 with stride 2 keeps every other pixel: still no weights, no MACs.
        return x if strides == 1 else layers.MaxPooling2D(1, strides, name=f"{name}_skip")(x)
    if op.startswith("conv"):
        return conv_bn(x, width, int(op[-1]), strides=strides, name=name)
    if op.startswith("sepconv"):
        x = layers.SeparableConv2D(width, int(op[-1]), strides=strides, padding="same",
                                   use_bias=False, name=f"{name}_conv")(x)
        x = layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                      name=f"{name}_bn")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)
    pool = layers.MaxPooling2D if op == "maxpool3x3" else layers.AveragePooling2D
    return pool(3, strides, padding="same", name=f"{name}_pool")(x)


def _cell(x, blocks, width, reduction, name):
    # NASNet's preprocessing: a 1x1 brings whatever came in (a concatenation, a narrower map) to
    # the cell's width, so every operation, pooling and identity included, outputs `width`.
    states = [conv_bn(x, width, 1, name=f"{name}_pre")]
    for j, block in enumerate(blocks):
        pair = []
        for side, i, op in (("a", block.input_a, block.op_a), ("b", block.input_b, block.op_b)):
            strides = 2 if reduction and i == 0 else 1  # only the cell's input is strided
            pair.append(_op(states[i], op, width, strides, f"{name}_block{j + 1}{side}_{op}"))
        states.append(layers.Add(name=f"{name}_block{j + 1}_add")(pair))
    read = {i for block in blocks for i in (block.input_a, block.input_b)}
    loose = [s for i, s in enumerate(states) if i > 0 and i not in read]
    # As in NASNet, the cell's output concatenates the blocks that no other block reads.
    return loose[0] if len(loose) == 1 else layers.Concatenate(name=f"{name}_concat")(loose)


def build_model(arch: Architecture, *, name="nas_candidate") -> keras.Model:
    """The network of `arch` for 8x8x1 images: a 3x3 stem, `repeats` Normal cells, a Reduction
    cell (8x8 to 4x4, twice the width), `repeats` Normal cells, global average pooling and a
    10-way softmax (NASNet's CIFAR-10 layout with one Reduction cell instead of two)."""
    _check(arch)
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = conv_bn(inputs, arch.width, 3, name="stem")
    cells = ([("normal", arch.width)] * arch.repeats + [("reduction", 2 * arch.width)]
             + [("normal", 2 * arch.width)] * arch.repeats)
    for c, (kind, width) in enumerate(cells):
        blocks = arch.reduction if kind == "reduction" else arch.normal
        x = _cell(x, blocks, width, kind == "reduction", name=f"cell{c + 1}_{kind}")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def space_size() -> int:
    """How many architectures the space holds, op(a) + op(b) and op(b) + op(a) counted apart:
    block j chooses each of its two inputs among j + 1 states and each operation among OPS."""
    cell = 1
    for j in range(BLOCKS):
        cell *= ((j + 1) * len(OPS)) ** 2
    return cell ** 2 * len(WIDTHS) * len(REPEATS)


def _sample_cell(rng):
    return tuple(Block(int(rng.integers(j + 1)), str(rng.choice(OPS)),
                       int(rng.integers(j + 1)), str(rng.choice(OPS))) for j in range(BLOCKS))


def sample_architecture(rng: np.random.Generator) -> Architecture:
    """One architecture drawn uniformly from the search space with the numpy Generator `rng`."""
    normal, reduction = _sample_cell(rng), _sample_cell(rng)
    return Architecture(normal, reduction, int(rng.choice(WIDTHS)), int(rng.choice(REPEATS)))


def mutate(arch: Architecture, rng: np.random.Generator) -> Architecture:
    """A copy of `arch` with one choice redrawn to a different value: one block's input or
    operation in one cell (Real et al.'s hidden-state and op mutations), or the width or the
    repeats (the toy's network-level choices)."""
    # Block 1 reads only the cell's input, so its inputs have nothing to mutate to.
    choices = [("width", None), ("repeats", None)] + [
        (cell, (j, field)) for cell in ("normal", "reduction") for j in range(BLOCKS)
        for field in Block._fields if j > 0 or field.startswith("op")]
    cell, where = choices[rng.integers(len(choices))]
    if where is None:
        old = getattr(arch, cell)
        values = [v for v in (WIDTHS if cell == "width" else REPEATS) if v != old]
        return arch._replace(**{cell: int(values[rng.integers(len(values))])})
    j, field = where
    block = getattr(arch, cell)[j]
    old = getattr(block, field)
    values = [v for v in (range(j + 1) if field.startswith("input") else OPS) if v != old]
    blocks = list(getattr(arch, cell))
    blocks[j] = block._replace(**{field: type(old)(values[rng.integers(len(values))])})
    return arch._replace(**{cell: tuple(blocks)})


def digits_splits(validation=360):
    """scikit-learn's digits at their own 8x8 size, (x_train, y_train, x_val, y_val): the kit's
    stratified training split (`cnnkit.data`, 1,437 images) cut into training and
    `validation`; the kit's 360 test images are left out, so a search never sees them."""
    from cnnkit.data import FALLBACKS

    x, y, _, _, _, _ = FALLBACKS["mnist"](8)  # the digits that stand in for MNIST offline
    return x[validation:], y[validation:], x[:validation], y[:validation]


def evaluate(arch, data, *, epochs=3, batch_size=64, seed=0) -> Candidate:
    """Train `arch` for `epochs` on data's training split and measure its validation accuracy:
    the reward of the search. Every candidate starts from `keras.utils.set_random_seed(seed)`
    (which also reseeds NumPy and Python), so on one backend and machine a result depends on the
    architecture alone."""
    x_train, y_train, x_val, y_val = data
    # Whole batches only: a shorter last batch would make the backend compile the training step
    # a second time, and compiling, not training, is most of a small candidate's cost.
    whole = len(x_train) // batch_size * batch_size
    keras.utils.set_random_seed(seed)
    model = build_model(arch)
    # SGD with momentum, not Adam: on TensorFlow, Adam's extra per-weight state doubles the time
    # it takes to trace the training step, which is most of a candidate's cost here.
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy")
    model.fit(x_train[:whole], y_train[:whole], epochs=epochs, batch_size=batch_size, verbose=0)
    _recompute_batchnorm(model, x_train[:whole])
    result = Candidate(arch, count_params(model), model_macs(model),
                       accuracy(model, x_val, y_val, batch_size=len(x_val)))
    keras.backend.clear_session()  # a long search would otherwise keep every graph in memory
    return result


def _recompute_batchnorm(model, x):
    """Set every BatchNorm's moving mean and variance to their values on `x` under the final
    weights. After a few dozen steps the running averages still trail the fast-changing weights
    (in a trial, 24% accuracy in inference mode from weights that scored 95% with batch
    statistics), and the search would then rank architectures by how fast their averages
    settle."""
    norms = [layer for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    for layer in norms:
        layer.momentum = 0.0  # the next update replaces the average by this batch's statistics
    model(x, training=True)  # called eagerly, so the momentum just set is the one used
    for layer in norms:
        layer.momentum = BN_MOMENTUM


def _evaluator(data, epochs, seed, cache, progress, budget):
    cache = {} if cache is None else cache
    bar = progress_bar(budget, unit="candidate", latest=["accuracy", "best"]) if progress else None
    history = []

    def run(arch):
        if arch not in cache:
            cache[arch] = evaluate(arch, data, epochs=epochs, seed=seed)
        history.append(cache[arch])
        if bar is not None:
            bar.update(len(history), [("accuracy", history[-1].accuracy),
                                      ("best", max(c.accuracy for c in history))])
        return cache[arch]

    return run, history


def random_search(data, budget, *, epochs=3, seed=0, cache=None, progress=True):
    """Random search: `budget` architectures drawn by `sample_architecture`, each evaluated.

    `cache` ({Architecture: Candidate}) holds evaluations already made, and receives the new
    ones: an architecture met again is not trained again (its result would be the same). Returns
    the `Candidate` rows in the order of evaluation."""
    rng = np.random.default_rng(seed)
    run, history = _evaluator(data, epochs, seed, cache, progress, budget)
    for _ in range(budget):
        run(sample_architecture(rng))
    return history


def regularized_evolution(data, budget, *, population=8, sample=3, epochs=3, seed=0,
                          cache=None, progress=True):
    """Regularized ("aging") evolution under a budget of `budget` evaluations (Real et al.,
    2019, Algorithm 1): evaluate `population` random architectures; then, until the budget is
    spent, pick `sample` members at random, mutate the most accurate of them, evaluate the
    child, add it and remove the **oldest** member (not the worst: an architecture survives
    only by having good children, which keeps lucky evaluations from ruling for ever).

    The first `population` draws are those of `random_search` with the same seed, so with a
    shared `cache` the two strategies start from the same architectures at no extra cost.
    Returns the `Candidate` rows in the order of evaluation."""
    if not 1 <= sample <= population <= budget:
        raise ValueError(f"need 1 <= sample <= population <= budget; got sample={sample}, "
                         f"population={population}, budget={budget}.")
    rng = np.random.default_rng(seed)
    run, history = _evaluator(data, epochs, seed, cache, progress, budget)
    alive = [run(sample_architecture(rng)) for _ in range(population)]
    while len(history) < budget:
        picked = rng.choice(len(alive), size=sample, replace=False)
        parent = max((alive[i] for i in picked), key=lambda c: c.accuracy)
        alive.append(run(mutate(parent.architecture, rng)))
        alive.pop(0)
    return history


def best_so_far(candidates) -> np.ndarray:
    """The highest validation accuracy among the first 1, 2, ... candidates evaluated."""
    return np.maximum.accumulate([c.accuracy for c in candidates])


def describe(arch: Architecture) -> str:
    """`arch` on three lines: each cell's blocks as `op(input) + op(input)`, then the sizes."""
    def cell(blocks):
        name = lambda i: "in" if i == 0 else f"b{i}"  # noqa: E731
        return "; ".join(f"b{j + 1} = {b.op_a}({name(b.input_a)}) + {b.op_b}({name(b.input_b)})"
                         for j, b in enumerate(blocks))

    return (f"normal:    {cell(arch.normal)}\nreduction: {cell(arch.reduction)}\n"
            f"width {arch.width}, {arch.repeats} normal cell(s) per stage")
