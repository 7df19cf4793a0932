"""Plots the lessons share; each returns the matplotlib Figure, small enough to store."""

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_images", "plot_history", "plot_iteration_losses"]


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
