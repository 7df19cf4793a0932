"""Plots the lessons share; each returns the matplotlib Figure, small enough to store."""

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_images", "plot_history", "plot_iteration_losses", "block_model",
           "draw_model", "graphviz_missing", "layer_graph"]


def plot_images(images, labels=None, class_names=None, n=12, columns=12):
    """The first `n` images in a grid, titled with their class names (or labels)."""
    images = np.asarray(images)[:n]
    rows = -(-len(images) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(0.75 * columns, 0.95 * rows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= len(images):
            continue
        image = images[i]
        gray = image.shape[-1] == 1
        ax.imshow(image[..., 0] if gray else np.clip(image, 0, 1), cmap="gray" if gray else None)
        if labels is not None:
            label = labels[i]
            ax.set_title(class_names[label] if class_names is not None else str(label), fontsize=9)
    fig.tight_layout()
    return fig


def plot_history(history, metrics=("loss", "accuracy"), title=None):
    """Training (and validation, when present) curves of a Keras History, one panel a metric."""
    logs = history.history if hasattr(history, "history") else history
    metrics = [m for m in metrics if m in logs]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 2.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        epochs = np.arange(1, len(logs[metric]) + 1)
        ax.plot(epochs, logs[metric], "o-", label="train")
        if f"val_{metric}" in logs:
            ax.plot(epochs, logs[f"val_{metric}"], "s--", label="validation")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_iteration_losses(losses, iterations_per_epoch, title=None):
    """Loss after every iteration, with each epoch's mean drawn over the iterations it covers."""
    losses = np.asarray(losses, dtype=float)
    fig, ax = plt.subplots(figsize=(8, 3))
    steps = np.arange(1, len(losses) + 1)
    ax.plot(steps, losses, lw=0.8, alpha=0.7, label="loss of one iteration (one batch)")
    for start in range(0, len(losses), iterations_per_epoch):
        chunk = losses[start:start + iterations_per_epoch]
        ax.hlines(chunk.mean(), start + 1, start + len(chunk), colors="C3", lw=2.5,
                  label="mean over one epoch" if start == 0 else None)
        ax.axvline(start + 0.5, color="grey", lw=0.5, ls=":")
    ax.set_xlabel("iteration (optimizer step)")
    ax.set_ylabel("loss")
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def block_model(block, input_shape, /, *args, title=None, **kwargs):
    """A one-block `keras.Model`: `block(inputs, *args, **kwargs)` on an input of `input_shape`
    (a list of shapes for a block with several inputs), with the very layers and layer names the
    full network uses. The model is named `title`, else the block's `name` argument."""
    import keras

    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    inputs = [keras.Input(shape, name=f"input_{i}" if len(shapes) > 1 else "input")
              for i, shape in enumerate(shapes)]
    outputs = block(*inputs, *args, **kwargs)
    return keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs,
                       name=title or kwargs.get("name") or block.__name__)


def graphviz_missing() -> str | None:
    """Why `keras.utils.plot_model` cannot draw here, or None when pydot and Graphviz are both
    installed."""
    try:
        import pydot
    except ImportError:
        return "pydot is not installed (pip install pydot)"
    try:
        pydot.Dot.create(pydot.Dot())  # runs Graphviz's `dot` program
    except OSError:  # pydot's "dot" not found in path (a FileNotFoundError)
        return ("Graphviz's dot program is not installed (apt install graphviz, brew install "
                "graphviz or conda install graphviz)")
    return None


def layer_graph(model) -> str:
    """Every layer of `model` with its kind, output shape, parameters and the layers it reads
    from, one per line in graph order: the diagram as text."""
    from cnnkit.analysis import _nodes, format_table, layer_params
    from typing import NamedTuple

    class Row(NamedTuple):
        layer: str
        kind: str
        output_shape: tuple
        params: int
        inputs: str

    made_by = {id(t): t.name for t in model.inputs}
    rows = []
    for layer, node in _nodes(model):
        sources = ", ".join(made_by.get(id(t), "?") for t in node.input_tensors)
        for t in node.output_tensors:
            made_by[id(t)] = layer.name
        rows.append(Row(layer.name, type(layer).__name__, tuple(node.output_tensors[0].shape[1:]),
                        layer_params(layer), sources))
    return format_table(rows)


def draw_model(model, *, dpi=64, rankdir="TB"):
    """`keras.utils.plot_model` with every layer's output shape, as an image a notebook shows;
    rankdir="LR" lays a long chain out left to right.
    Where pydot or Graphviz is missing, one printed line says so and `layer_graph`'s table
    stands in (returns None)."""
    import os
    import tempfile

    import keras

    missing = graphviz_missing()
    if missing:
        print(f"No diagram: {missing}. The same graph as a table:")
        print(layer_graph(model))
        return None
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, f"{model.name}.png")
        keras.utils.plot_model(model, to_file=path, show_shapes=True, show_layer_names=True,
                               dpi=dpi, rankdir=rankdir)
        with open(path, "rb") as png:
            return Diagram(png.read(), model.name)


class Diagram:
    """A PNG image that a notebook shows as the value of a cell (its `_repr_png_`)."""

    def __init__(self, data: bytes, name: str):
        self.data, self.name = data, name

    def _repr_png_(self) -> bytes:
        return self.data

    def __repr__(self) -> str:  # what shows where an image cannot
        return f"<diagram of {self.name}: PNG, {len(self.data):,} bytes>"
