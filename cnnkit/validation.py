"""The one validator for the keras.applications signature that every builder calls.

Every builder in `cnnkit.models` takes `include_top, weights, input_tensor, input_shape,
pooling, classes, classifier_activation` and starts with `check_args(...)`, so a mistake
gives the same clear ValueError whichever architecture a learner builds.
"""

from __future__ import annotations

import numbers
import os
from typing import NamedTuple

import keras

from cnnkit.registry import model_info

__all__ = ["Args", "check_args", "check_multiple", "model_inputs", "load_weights",
           "POOLING_CHOICES"]

POOLING_CHOICES = (None, "avg", "max")


def _check_weights(info, weights, include_top, classes):
    if weights is None:
        return
    if weights == "imagenet":
        if not info.imagenet:
            raise ValueError(
                f"No ImageNet weights exist for {info.name}. Use weights=None to train it "
                "from scratch, or the path of a weights file you saved yourself.")
        if include_top and classes != 1000:
            raise ValueError(
                f"weights='imagenet' with include_top=True needs classes=1000 (got {classes}). "
                "For another number of classes use include_top=False and add your own head.")
        return
    if isinstance(weights, (str, os.PathLike)):
        if not os.path.isfile(weights):
            raise ValueError(f"No weights file at {os.fspath(weights)!r}. Pass weights=None, "
                             "'imagenet', or the path of an existing .weights.h5 file.")
        return
    raise ValueError(f"weights must be None, 'imagenet' or the path of a weights file; "
                     f"got {weights!r}.")


def _check_head(info, pooling, classes, classifier_activation):
    if pooling not in POOLING_CHOICES:
        raise ValueError(f"pooling must be None, 'avg' or 'max'; got {pooling!r}.")
    if isinstance(classes, bool) or not isinstance(classes, numbers.Integral) or classes < 1:
        raise ValueError(f"classes must be a whole number >= 1; got {classes!r}.")
    if classifier_activation is None or callable(classifier_activation):
        return
    try:
        keras.activations.get(classifier_activation)
    except (ValueError, TypeError):
        raise ValueError(
            f"Unknown classifier_activation {classifier_activation!r}. Use 'softmax', "
            "None for logits, or any other Keras activation name.") from None


def _resolve_shape(info, input_tensor, input_shape):
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise ValueError("input_tensor must be a Keras tensor, such as the output of "
                             f"keras.Input(...); got {type(input_tensor).__name__}.")
        tensor_shape = tuple(input_tensor.shape[1:])
        if input_shape is not None and tuple(input_shape) != tensor_shape:
            raise ValueError(f"input_shape {tuple(input_shape)} does not match the shape "
                             f"{tensor_shape} of input_tensor; pass only one of them.")
        input_shape = tensor_shape
    if input_shape is None:
        return info.input_shape
    shape = tuple(None if d is None else d for d in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape must be (height, width, channels), channels last; "
                         f"got {shape}.")
    for dim in shape:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, numbers.Integral)
                                or dim < 1):
            raise ValueError(f"input_shape must hold positive whole numbers or None; got {shape}.")
    if shape[2] is None:
        raise ValueError(f"the number of channels must be known; got input_shape={shape}.")
    return tuple(None if d is None else int(d) for d in shape)


class Args(NamedTuple):
    """What a builder builds with, once `check_args` has validated it."""

    input_shape: tuple  # (height, width, channels); height and width may be None
    classes: int


def check_args(name, *, include_top=True, weights=None, input_tensor=None, input_shape=None,
               pooling=None, classes=None, classifier_activation="softmax") -> Args:
    """Validate a builder's arguments and return the input shape and classes to build with."""
    info = model_info(name)
    if not isinstance(include_top, bool):
        raise ValueError(f"include_top must be True or False; got {include_top!r}.")
    _check_head(info, pooling, classes, classifier_activation)
    _check_weights(info, weights, include_top, classes)
    shape = _resolve_shape(info, input_tensor, input_shape)
    height, width, channels = shape
    if weights == "imagenet" and channels != 3:
        raise ValueError(f"ImageNet weights expect 3 input channels; input_shape has {channels}.")
    if (weights == "imagenet" and include_top and info.fixed_size_top
            and shape[:2] != info.input_shape[:2]):
        raise ValueError(
            f"{name}'s ImageNet classifier flattens the maps of {info.input_shape[0]}x"
            f"{info.input_shape[1]} images: weights='imagenet' with include_top=True needs "
            f"input_shape={info.input_shape}. For other sizes use include_top=False.")
    if include_top and info.fixed_size_top and (height is None or width is None):
        default = info.input_shape
        raise ValueError(
            f"{name}'s classifier flattens its feature maps, so include_top=True needs a fixed "
            f"input size; got {shape}. Give input_shape={default}, or use include_top=False "
            "with pooling='avg' for inputs of any size.")
    for dim in (height, width):
        if dim is not None and dim < info.min_size:
            raise ValueError(
                f"{name} needs inputs of at least {info.min_size}x{info.min_size} pixels; "
                f"got {height}x{width}. Resize the images or choose a larger input_shape.")
    return Args(input_shape=shape, classes=int(classes))


def check_multiple(name, input_shape, multiple, why, *, offset=0, smallest=None, hint=""):
    """Refuse a known height or width that is not `multiple`·k + `offset` pixels (at least
    `smallest`), saying `why` and naming the nearest sizes that would do; `hint` ends the message.

    Dense-prediction networks add upsampled coarse maps to finer ones, which line up only when
    every stride divides the image (offset 0); an unpadded U-Net loses a fixed border on top
    (offset 12).
    """
    smallest = multiple if smallest is None else smallest
    first = offset - (offset - smallest) // multiple * multiple  # the least size that fits
    height, width = input_shape[:2]
    for dim in (height, width):
        if dim is None or (dim >= smallest and (dim - offset) % multiple == 0):
            continue
        low = (dim - offset) // multiple * multiple + offset
        sizes = " or ".join(str(s) for s in (low, low + multiple) if s >= first) or str(first)
        rule = (f"divisible by {multiple}" if offset == 0 else
                f"of {multiple}k + {offset} pixels, at least {smallest}")
        raise ValueError(
            f"{name} needs a height and width {rule} ({why}); got {height}x{width}. Resize or "
            f"pad the images, e.g. {dim} to {sizes}." + (f" {hint}" if hint else ""))


def model_inputs(input_tensor, input_shape):
    """Return (model inputs, first tensor): a new keras.Input, or the tensor the caller gave."""
    if input_tensor is None:
        image = keras.Input(shape=input_shape, name="image")
        return image, image
    sources = keras.utils.get_source_inputs(input_tensor)
    # One source input is passed bare, so the model takes a tensor, not a one-element list.
    return (sources[0] if len(sources) == 1 else sources), input_tensor


def load_weights(model, weights, *, arch=None, include_top=True, **options):
    """Load `weights` (None, 'imagenet' or a file path) into `model` and return it.

    'imagenet' ports the official weights of `arch`'s keras.applications twin
    (`cnnkit.weights`), built with `include_top` and the width `options` (e.g. alpha).
    """
    if weights is None:
        return model
    if weights == "imagenet":
        from cnnkit.weights import load_imagenet  # imports keras.applications only when needed
        return load_imagenet(model, arch, include_top=include_top, **options)
    model.load_weights(os.fspath(weights))
    return model
