"""Trajectory plots draw every path, in order, over the surface's contours."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from cnnkit.course.optimviz import plot_trajectories  # noqa: E402


def bowl(x, y):
    return x ** 2 + 10 * y ** 2


def test_every_path_is_a_labelled_line_with_its_own_points():
    paths = {f"opt{i}": np.array([[1.0, 1.0], [0.5, 0.4 - 0.01 * i], [0.0, 0.0]])
             for i in range(12)}
    fig = plot_trajectories(bowl, paths, minimum=(0, 0), xlim=(-1, 2), ylim=(-1, 2))
    ax = fig.axes[0]
    lines = [line for line in ax.lines if not line.get_label().startswith("_")]
    assert [line.get_label() for line in lines] == list(paths)
    np.testing.assert_array_equal(lines[11].get_ydata(), paths["opt11"][:, 1])
    assert lines[11].get_linestyle() == "--" and lines[0].get_linestyle() == "-"
    ends = [line for line in ax.lines if line.get_label() == "_end"]
    assert len(ends) == 12 and ends[11].get_color() == lines[11].get_color()
    np.testing.assert_array_equal(ends[11].get_xydata(), [paths["opt11"][-1]])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(paths)
    assert ax.collections, "the surface's contours are drawn"
    assert ax.get_xlim() == (-1, 2) and ax.get_ylim() == (-1, 2)


def test_contour_levels_are_log_spaced_over_the_surface_range():
    fig = plot_trajectories(bowl, {"a": np.zeros((2, 2))}, xlim=(-1, 1), ylim=(-1, 1))
    levels = fig.axes[0].collections[0].levels
    ratios = levels[1:] / levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    np.testing.assert_allclose(levels[-1], bowl(1, 1))
