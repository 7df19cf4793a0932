"""cnnkit.backend: backward passes a lesson can look at, on any backend, and without_onednn."""

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


def test_without_onednn_gives_a_strided_1x1_convolutions_exact_weight_gradient():
    """The backward pass PyTorch 2.13.0's oneDNN aborts on (RepVGG's first 1x1 of stride 2, on
    4 images of 3 channels), inside without_onednn(), against NumPy; oneDNN is back after it."""
    from cnnkit.backend import without_onednn

    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 16, 16, 3)).astype("float32")
    kernel = rng.normal(size=(1, 1, 3, 8)).astype("float32")
    upstream = rng.normal(size=(4, 8, 8, 8)).astype("float32")
    with without_onednn():
        if keras.backend.backend() == "torch":
            import torch

            assert not torch.backends.mkldnn.enabled
        got = gradient(lambda k: keras.ops.conv(keras.ops.convert_to_tensor(x), k, strides=2),
                       kernel, upstream)
    # Each output pixel (i, j) reads input pixel (2i, 2j): dL/dK[c, o] = sum x[.., c] * up[.., o]
    expected = np.einsum("nijc,nijo->co", x[:, ::2, ::2, :], upstream)[None, None]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    if keras.backend.backend() == "torch":
        import torch

        assert torch.backends.mkldnn.enabled
