"""What a trained convolutional network has learned, looked at seven ways, on every backend.

- `filters_as_images`: a layer's kernels as small pictures (Krizhevsky et al., "ImageNet
  Classification with Deep Convolutional Neural Networks", 2012, figure 3);
- `feature_maps`: what chosen layers output for an image, stage by stage;
- `occlusion_map`: how much the class score drops while a grey square hides each region (Zeiler &
  Fergus, "Visualizing and Understanding Convolutional Networks", 2014);
- `saliency`: |d score / d pixel|, the largest over the colour channels (Simonyan et al., "Deep
  Inside Convolutional Networks: Visualising Image Classification Models and Saliency Maps",
  2014);
- `guided_backprop`: the same gradient with ReLU's backward pass changed: "guided" (Springenberg et
  al., "Striving for Simplicity: The All Convolutional Net", 2015) or "deconvnet" (Zeiler &
  Fergus's reconstruction, with the max-unpooling switches of the forward pass, which is what
  differentiating a max pool does);
- `class_activation_map` (Zhou et al., "Learning Deep Features for Discriminative Localization",
  2016) and `grad_cam` (Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
  Gradient-based Localization", 2017);
- `filter_ascent`: an input that one filter answers strongly to, by gradient ascent (Erhan et al.,
  "Visualizing Higher-Layer Features of a Deep Network", 2009).

Every gradient goes through `cnnkit.backend.gradient` and ReLU's changed backward pass through
`keras.ops.custom_gradient`, so all of this runs on TensorFlow, JAX and PyTorch. Images are one
image (height, width, channels) as NumPy, already preprocessed for the model; maps come back as
NumPy arrays. Simplified: the class score is whatever the model outputs (the papers use the score
before softmax; give a model without a final softmax to get it), and gradient ascent uses a plain
L2 decay and no jitter or blurring.
"""

from __future__ import annotations

import contextlib

import keras
import numpy as np

from cnnkit.analysis import tap
from cnnkit.backend import gradient

__all__ = ["split_at", "feature_maps", "filters_as_images", "occlusion_map", "saliency",
           "guided_backprop", "class_activation_map", "grad_cam", "normalize_map", "upsample",
           "filter_ascent", "overlay"]

to_numpy = keras.ops.convert_to_numpy


def _input(model):
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def split_at(model, layer):
    """(body, head): two Keras models, image -> `layer`'s output and that output -> the model's
    output, so head(body(x)) == model(x). Every path from the input to the output must pass
    through `layer` (true of the last convolution of a classifier)."""
    tensor = model.get_layer(layer).output
    return keras.Model(_input(model), tensor), keras.Model(tensor, model.output)


def feature_maps(model, image, layers):
    """{layer name: its output for `image`, (height, width, channels)}, in the order given
    (`cnnkit.analysis.tap` for one image)."""
    # A list, as tap's probe model was built on model.inputs (else Keras warns).
    outputs = tap(model, list(layers), [np.asarray(image, "float32")[None]])
    return {name: out[0] for name, out in zip(layers, outputs)}


def filters_as_images(kernel):
    """A Conv2D kernel (kh, kw, in, out) -> `out` images (kh, kw, in), each scaled to [0, 1]
    on its own (one filter's weights span a range of their own); a constant filter is 0.5."""
    kernel = np.asarray(kernel, "float64")
    images = np.moveaxis(kernel, -1, 0)
    low = images.min(axis=(1, 2, 3), keepdims=True)
    span = images.max(axis=(1, 2, 3), keepdims=True) - low
    return np.where(span > 0, (images - low) / np.where(span > 0, span, 1), 0.5)


def _score(model, class_index):
    """x -> the model's output for class `class_index`, one value per image."""
    return lambda x: model(x)[:, class_index]


def occlusion_map(model, image, class_index, patch=8, stride=4, fill=0.0, batch_size=64):
    """The drop of the class score when a `patch` x `patch` square of value `fill` hides the
    image at each position (the square moves by `stride`), shape (rows, columns): large where
    the evidence for the class lies. ZFNet's figure 7 plots the score itself; the drop reads
    the same way round as the other maps here."""
    image = np.asarray(image, "float32")
    height, width = image.shape[:2]
    tops, lefts = range(0, height - patch + 1, stride), range(0, width - patch + 1, stride)
    base = float(to_numpy(model(image[None]))[0, class_index])
    occluded = []
    for top in tops:
        for left in lefts:
            copy = image.copy()
            copy[top:top + patch, left:left + patch] = fill
            occluded.append(copy)
    occluded = np.stack(occluded)
    scores = np.concatenate([to_numpy(model(occluded[i:i + batch_size]))[:, class_index]
                             for i in range(0, len(occluded), batch_size)])
    return (base - scores).reshape(len(tops), len(lefts))


def saliency(model, image, class_index):
    """Simonyan et al.'s image-specific class saliency: max over channels of |d score / d x|,
    shape (height, width)."""
    grads = gradient(_score(model, class_index), np.asarray(image, "float32")[None])[0]
    return np.abs(grads).max(axis=-1)


def _relu_with_backward(rule):
    """ReLU whose backward pass follows `rule`: "guided" lets a gradient through where both the
    input and the gradient are positive, "deconvnet" where the gradient is (the input is not
    looked at: ZFNet's deconvnet rectifies the signal going down)."""

    @keras.ops.custom_gradient
    def relu(x):
        def backward(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream  # torch passes it by position
            passed = keras.ops.cast(upstream > 0, upstream.dtype)
            if rule == "guided":
                passed = passed * keras.ops.cast(x > 0, upstream.dtype)
            return upstream * passed

        return keras.ops.relu(x), backward

    return relu


@contextlib.contextmanager
def _relu_backward(model, rule):
    """Within the block, every ReLU of `model` (a layer's `activation="relu"` or an
    Activation("relu") layer) backpropagates by `rule`; the model is restored after."""
    changed = [layer for layer in model.layers
               if getattr(layer, "activation", None) is keras.activations.relu]
    if not changed:
        raise ValueError(f"{model.name} has no ReLU given as activation='relu' or "
                         "Activation('relu'): nothing for guided backpropagation to change.")
    replacement = _relu_with_backward(rule)
    for layer in changed:
        layer.activation = replacement
    try:
        yield
    finally:
        for layer in changed:
            layer.activation = keras.activations.relu


def guided_backprop(model, image, class_index, rule="guided"):
    """d score / d x with every ReLU's backward pass changed by `rule` ("guided": Springenberg et
    al.; "deconvnet": Zeiler & Fergus), shape of `image`. The forward pass is unchanged."""
    if rule not in ("guided", "deconvnet"):
        raise ValueError(f"rule must be 'guided' or 'deconvnet', not {rule!r}.")
    with _relu_backward(model, rule):
        return gradient(_score(model, class_index), np.asarray(image, "float32")[None])[0]


def class_activation_map(model, image, class_index, feature_layer, dense_layer):
    """Zhou et al.'s CAM: sum_k w_k^c f_k(x, y), the last feature maps f_k (before global average
    pooling) weighted by the class's row of the dense layer after it, shape (h, w) of the maps;
    not rectified or scaled (`normalize_map` does that for a picture)."""
    maps = feature_maps(model, image, [feature_layer])[feature_layer]
    kernel = to_numpy(model.get_layer(dense_layer).kernel)
    if kernel.shape[0] != maps.shape[-1]:
        raise ValueError(f"{dense_layer} reads {kernel.shape[0]} features but {feature_layer} "
                         f"has {maps.shape[-1]} channels: CAM needs the dense layer right after "
                         "the global average pooling of those maps.")
    return maps @ kernel[:, class_index]


def normalize_map(heatmap):
    """`heatmap` scaled so that its largest value is 1 (zeros stay zero; all zeros if nothing is
    positive)."""
    heatmap = np.asarray(heatmap, "float64")
    top = heatmap.max()
    return heatmap / top if top > 0 else np.zeros_like(heatmap)


def grad_cam(model, image, class_index, layer, normalize=True):
    """Selvaraju et al.'s Grad-CAM at `layer`: the maps A_k weighted by alpha_k = the spatial mean
    of d score / d A_k, summed over k and rectified, shape (h, w) of the maps; scaled to a
    largest value of 1 unless `normalize` is False."""
    body, head = split_at(model, layer)
    maps = to_numpy(body(np.asarray(image, "float32")[None]))
    grads = gradient(_score(head, class_index), maps)
    alpha = grads.mean(axis=(1, 2))  # (1, k): one weight per map
    heatmap = np.maximum((maps * alpha[:, None, None, :]).sum(axis=-1)[0], 0)
    return normalize_map(heatmap) if normalize else heatmap


def upsample(heatmap, size):
    """A (h, w) map resized bilinearly to `size` (height, width), to lay over the image."""
    resized = keras.ops.image.resize(np.asarray(heatmap, "float32")[None, ..., None], size,
                                     interpolation="bilinear")
    return to_numpy(resized)[0, ..., 0]


def overlay(image, heatmap, alpha=0.5, cmap="jet"):
    """An RGB picture: `image` (values in [0, 1], grey or colour) under `heatmap` (values in
    [0, 1], any size; resized to the image) coloured by `cmap`."""
    from matplotlib import colormaps

    image = np.asarray(image, "float64")
    image = np.repeat(image, 3, axis=-1) if image.ndim == 3 and image.shape[-1] == 1 else image
    image = np.stack([image] * 3, axis=-1) if image.ndim == 2 else image
    heat = upsample(heatmap, image.shape[:2]) if np.shape(heatmap) != image.shape[:2] else heatmap
    coloured = colormaps[cmap](np.clip(heat, 0, 1))[..., :3]
    return (1 - alpha) * image + alpha * coloured


def filter_ascent(model, layer, filter_index, steps=50, step_size=1.0, decay=0.0, seed=0,
                  start=None, scale=0.1):
    """An input that makes filter `filter_index` of `layer` answer strongly: from `start` (else
    small random noise of the model's input shape, std `scale`), `steps` steps of
    x <- (1 - decay) x + step_size · g / rms(g), g = d mean(activation) / d x.
    Dividing by the gradient's root mean square keeps the step size the same in every layer."""
    body = keras.Model(_input(model), model.get_layer(layer).output)
    if start is None:
        shape = tuple(model.inputs[0].shape[1:])
        start = np.random.default_rng(seed).normal(0, scale, (1, *shape))
    x = np.array(start, "float32")
    x = x[None] if x.ndim == len(model.inputs[0].shape) - 1 else x

    def objective(inputs):
        return keras.ops.mean(body(inputs)[..., filter_index])

    for _ in range(steps):
        g = gradient(objective, x)
        rms = float(np.sqrt(np.mean(np.square(g))))
        x = (1 - decay) * x + step_size * g / (rms + 1e-8)
    return x[0]
