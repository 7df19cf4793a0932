"""Plots draw what they say: one panel per image or metric, titles from the class names."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from cnnkit import plots  # noqa: E402


def test_image_grid_titles_come_from_class_names():
    images = np.random.default_rng(0).random((5, 8, 8, 1))
    fig = plots.plot_images(images, np.array([0, 1, 2, 1, 0]), ["cat", "dog", "eel"], columns=3)
    titles = [ax.get_title() for ax in fig.axes]
    assert len(fig.axes) == 6  # two rows of three; the sixth panel is left empty
    assert titles == ["cat", "dog", "eel", "dog", "cat", ""]
    assert sum(bool(ax.images) for ax in fig.axes) == 5


def test_history_has_train_and_validation_curves():
    history = {"loss": [1.0, 0.5, 0.3], "val_loss": [1.1, 0.7, 0.6], "accuracy": [0.5, 0.8, 0.9]}
    fig = plots.plot_history(history)
    loss_ax, acc_ax = fig.axes
    assert [line.get_label() for line in loss_ax.lines] == ["train", "validation"]
    np.testing.assert_array_equal(loss_ax.lines[1].get_ydata(), [1.1, 0.7, 0.6])
    assert [line.get_label() for line in acc_ax.lines] == ["train"]


def test_iteration_losses_draw_one_mean_per_epoch():
    losses = [3.0, 1.0, 2.0, 0.5, 1.5, 0.4, 0.2]  # 3 iterations per epoch, the last epoch partial
    fig = plots.plot_iteration_losses(losses, iterations_per_epoch=3)
    means = [c for c in fig.axes[0].collections]
    ys = [segment[0][1] for c in means for segment in c.get_segments()]
    np.testing.assert_allclose(ys, [2.0, 0.8, 0.2])
