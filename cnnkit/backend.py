"""The one thing a lesson needs that Keras 3 has no backend-neutral API for: a gradient.

`gradient(f, x, upstream)` differentiates with whichever backend Keras runs on (TensorFlow's
GradientTape, jax.grad or torch.autograd), so a lesson that looks at a backward pass (pooling,
vanishing gradients) runs unchanged on all three. Each backend is imported only when used.
"""

import keras
import numpy as np

__all__ = ["gradient"]


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
