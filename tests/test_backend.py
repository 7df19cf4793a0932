"""cnnkit.backend.gradient: backward passes a lesson can look at, on any backend."""

import keras
import numpy as np

from cnnkit.backend import gradient


def test_gradient_of_a_square_is_twice_x_times_upstream():
    x = np.array([[1.0, -2.0, 3.0]])
    np.testing.assert_allclose(gradient(keras.ops.square, x), 2 * x)
    np.testing.assert_allclose(gradient(keras.ops.square, x, upstream=[[1.0, 0.5, 0.0]]),
                               [[2.0, -2.0, 0.0]])


def test_pooling_backward_passes():
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    upstream = np.array([1.0, 2.0, 3.0, 4.0], "float32").reshape(1, 2, 2, 1)
    mean = gradient(keras.layers.AveragePooling2D(2), x, upstream)[0, :, :, 0]
    np.testing.assert_allclose(mean, np.kron([[1, 2], [3, 4]], np.ones((2, 2))) / 4)
    top = gradient(keras.layers.MaxPooling2D(2), x, upstream)[0, :, :, 0]
    want = np.zeros((4, 4))
    want[1, 1], want[1, 3], want[3, 1], want[3, 3] = 1, 2, 3, 4  # each window's maximum
    np.testing.assert_allclose(top, want)
