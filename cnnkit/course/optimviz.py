"""Optimizer paths on a 2-D test surface, and drawn over its contours (lesson 03).

Rosenbrock's function ("An automatic method for finding the greatest or least value of a
function", 1960) with its gradient in NumPy, and `trajectory`, which steps any Keras optimizer
over it with `apply_gradients`, as `model.fit` does, so it runs on every Keras backend.
"""

import matplotlib.pyplot as plt
import numpy as np

__all__ = ["plot_trajectories", "rosenbrock", "rosenbrock_gradient", "trajectory",
           "ROSENBROCK_START", "ROSENBROCK_MINIMUM"]

ROSENBROCK_START = np.array([-1.2, 1.0])  # Rosenbrock's own start
ROSENBROCK_MINIMUM = np.array([1.0, 1.0])


def rosenbrock(x, y):
    """f(x, y) = (1 − x)² + 100 (y − x²)²: a narrow curved valley, its minimum 0 at (1, 1)."""
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def rosenbrock_gradient(x, y):
    """(∂f/∂x, ∂f/∂y) of `rosenbrock`, written out by hand."""
    return np.array([-2 * (1 - x) - 400 * x * (y - x ** 2), 200 * (y - x ** 2)])


def trajectory(optimizer, steps, noise=0.0, seed=0, start=ROSENBROCK_START,
               gradient=rosenbrock_gradient):
    """The path of (x, y), an array of steps + 1 points, as the Keras `optimizer` descends the
    surface from `start`; `noise` adds Gaussian noise to every gradient (a mini-batch's)."""
    import keras

    rng = np.random.default_rng(seed)
    point = keras.Variable(np.asarray(start, dtype="float32"))
    path = [keras.ops.convert_to_numpy(point)]
    for _ in range(steps):
        g = gradient(*path[-1].astype("float64")) + noise * rng.normal(size=2)
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(g, "float32"), point)])
        path.append(keras.ops.convert_to_numpy(point))
    return np.array(path)


def plot_trajectories(surface, paths, minimum=None, xlim=(-2.0, 2.0), ylim=(-1.0, 3.0),
                      title=None, figsize=(6, 4)):
    """Contours of `surface(x, y)` with every path in `paths` ({label: (steps + 1, 2) array}).

    Levels are spaced logarithmically, since test surfaces such as Rosenbrock's span many orders
    of magnitude. Each path starts at its first point (a black circle) and ends in a dot of its own
    colour; `minimum` is a star.
    Returns the matplotlib Figure.
    """
    x, y = np.meshgrid(np.linspace(*xlim, 300), np.linspace(*ylim, 300))
    z = surface(x, y)
    low, high = max(z.min(), 1e-3), z.max()
    fig, ax = plt.subplots(figsize=figsize)
    ax.contour(x, y, z, levels=np.geomspace(low, high, 20), colors="0.75", linewidths=0.6)
    for i, (label, path) in enumerate(paths.items()):
        path = np.asarray(path)
        # Ten colours, then dashes, so twelve optimizers stay apart in one legend.
        style = dict(color=f"C{i % 10}", ls="-" if i < 10 else "--")
        ax.plot(path[:, 0], path[:, 1], lw=1.2, label=label, **style)
        ax.plot(*path[-1], "o", ms=4, color=style["color"], label="_end")  # where it stopped
    starts = np.array([np.asarray(p)[0] for p in paths.values()])
    ax.plot(starts[:, 0], starts[:, 1], "ko", ms=4, label="_start")
    if minimum is not None:
        ax.plot(*minimum, "k*", ms=10, label="_minimum")
    ax.set(xlim=xlim, ylim=ylim, xlabel="x", ylabel="y")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
