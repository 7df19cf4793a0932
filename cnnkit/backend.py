"""What a lesson needs that Keras 3 has no backend-neutral API for: a gradient, and a way
around one backend's bug.

`gradient(f, x, upstream)` differentiates with whichever backend Keras runs on (TensorFlow's
GradientTape, jax.grad or torch.autograd), so a lesson that looks at a backward pass (pooling,
vanishing gradients) runs unchanged on all three. `without_onednn()` trains RepVGG on
PyTorch's CPU. Each backend is imported only when used.
"""

import contextlib

import keras
import numpy as np

__all__ = ["gradient", "without_onednn"]


def gradient(f, x, upstream=None):
    """d(sum(f(x) · upstream)) / dx as a NumPy array: the backward pass of f at x.

    `upstream` is the gradient arriving from the layers above (default: ones), so the result is
    exactly what backpropagation hands to the layer below f.
    """
    x = np.asarray(x, dtype="float32")
    if upstream is not None:
        upstream = np.asarray(upstream, dtype="float32")

    def objective(inputs):
        out = f(inputs)
        # A tensor of the backend's own: torch will not multiply its tensor by a NumPy array.
        weights = (keras.ops.ones_like(out) if upstream is None
                   else keras.ops.convert_to_tensor(upstream, dtype=out.dtype))
        return keras.ops.sum(out * weights)

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        tensor = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(tensor)
            value = objective(tensor)
        return tape.gradient(value, tensor).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(objective)(jax.numpy.asarray(x)))
    if backend == "torch":
        import torch

        tensor = torch.tensor(x, requires_grad=True, device=keras.ops.convert_to_tensor(x).device)
        objective(tensor).backward()
        return tensor.grad.detach().cpu().numpy()
    raise NotImplementedError(f"gradient() does not support the {backend!r} backend.")


@contextlib.contextmanager
def without_onednn():
    """Run the block with PyTorch's oneDNN (mkldnn) convolutions off; on other backends, as is.

    PyTorch 2.13.0's oneDNN corrupts the heap computing the weight gradient of a 1x1 convolution
    of stride 2 over a batch of few channels, as RepVGG's first block has on an RGB or gray
    image: the process aborts ("double free or corruption"; torch.nn.functional.conv2d alone,
    4 images of 3 channels, 2026-12-03). PyTorch's own convolutions are 1.5 to 5 times slower on
    a CPU, so only the cells that train RepVGG turn oneDNN off. On a GPU it is not used anyway.
    """
    if keras.backend.backend() != "torch":
        yield
        return
    import torch

    with torch.backends.mkldnn.flags(enabled=False):
        yield
