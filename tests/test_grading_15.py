"""Grader of exercise 15 (what networks learn): a mutation table for Grad-CAM, each wrong answer
failing with the hint that names its mistake. Backend-neutral: it also runs with
KERAS_BACKEND=jax or torch."""

import sys

import keras
import numpy as np
import pytest

from cnnkit import visualize

from cnnkit.course import grading
from cnnkit.backend import gradient

from grading_harness import Table, assert_verdict, verdict_cases
from helpers import to_numpy


def _parts(features, head, image, class_index, score=None):
    maps = to_numpy(features(image[None]))
    score = score or (lambda a: head(a)[:, class_index])
    return maps, gradient(score, maps)


def right_grad_cam(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    alpha = grads.mean(axis=(1, 2))
    heat = np.maximum((maps * alpha[:, None, None, :]).sum(axis=-1)[0], 0)
    return heat / heat.max()


def summed_gradients_keras_ops(features, head, image, class_index):
    # The gradient summed over space (a constant factor the scaling removes), einsum, and a
    # Keras tensor returned.
    maps, grads = _parts(features, head, image, class_index)
    heat = keras.ops.relu(keras.ops.einsum("bhwk,bk->hw", maps, grads.sum(axis=(1, 2))))
    return heat / keras.ops.max(heat)


def map_by_map_as_lists(features, head, image, class_index):
    # A loop over the maps, a weight each, and nested Python lists returned.
    maps, grads = _parts(features, head, image, class_index)
    heat = np.zeros(maps.shape[1:3])
    for k in range(maps.shape[-1]):
        heat += float(np.mean(grads[0, :, :, k])) * maps[0, :, :, k]
    heat[heat < 0] = 0
    return (heat / heat.max()).tolist()


def no_relu(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    heat = (maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0]
    return heat / heat.max()


def absolute_value(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    heat = np.abs((maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0])
    return heat / heat.max()


def not_averaged_over_space(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    heat = np.maximum((maps * grads).sum(-1)[0], 0)
    return heat / heat.max()


def relu_on_the_gradients(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    heat = (maps * np.maximum(grads, 0).mean(axis=(1, 2), keepdims=True)).sum(-1)[0]
    return heat / heat.max()


def averaged_over_the_maps(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    heat = np.maximum((maps * grads.mean(axis=-1, keepdims=True)).sum(-1)[0], 0)
    return heat / heat.max()


def class_zero(features, head, image, class_index):
    return right_grad_cam(features, head, image, 0)


def top_class(features, head, image, class_index):
    scores = to_numpy(head(features(image[None])))
    return right_grad_cam(features, head, image, int(scores.argmax()))


def every_class_summed(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index, score=head)
    heat = np.maximum((maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0], 0)
    return heat / heat.max()


def gradient_of_the_image(features, head, image, class_index):
    maps = to_numpy(features(image[None]))
    grads = gradient(lambda x: head(features(x))[:, class_index], image[None])
    heat = np.maximum((maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0], 0)
    return heat / heat.max()


def not_scaled(features, head, image, class_index):
    maps, grads = _parts(features, head, image, class_index)
    return np.maximum((maps * grads.mean(axis=(1, 2), keepdims=True)).sum(-1)[0], 0)


def scaled_by_the_sum(features, head, image, class_index):
    heat = right_grad_cam(features, head, image, class_index)
    return heat / heat.sum()


def min_max_scaled(features, head, image, class_index):
    heat = right_grad_cam(features, head, image, class_index)
    return (heat - heat.min()) / (heat.max() - heat.min())


def transposed(features, head, image, class_index):
    return right_grad_cam(features, head, image, class_index).T


def batch_axis_kept(features, head, image, class_index):
    return right_grad_cam(features, head, image, class_index)[None]


def upsampled(features, head, image, class_index):
    return visualize.upsample(right_grad_cam(features, head, image, class_index),
                              image.shape[:2])


def alpha_returned(features, head, image, class_index):
    return _parts(features, head, image, class_index)[1].mean(axis=(0, 1, 2))


def image_zeroed(features, head, image, class_index):
    heat = right_grad_cam(features, head, image, class_index)
    image[:] = 0
    return heat


def returns_none(features, head, image, class_index):
    right_grad_cam(features, head, image, class_index)


def exits(features, head, image, class_index):
    sys.exit(1)


TABLES = [
    Table(grading.check_grad_cam, right_grad_cam,
          right=[summed_gradients_keras_ops, map_by_map_as_lists],
          wrong=[(no_relu, "apply a ReLU to the weighted sum"),
                 (absolute_value, "a ReLU, not the absolute value"),
                 (not_averaged_over_space, "one weight per map, not one per pixel"),
                 (relu_on_the_gradients, "the ReLU goes on the weighted sum of the maps"),
                 (averaged_over_the_maps, "not over the maps (the last axis)"),
                 (class_zero, "not class 0"),
                 (top_class, "differentiate the score of class_index"),
                 (every_class_summed, "adds up the scores of every class"),
                 (gradient_of_the_image, "with respect to the feature maps A"),
                 (not_scaled, "divide by heat.max()"),
                 (scaled_by_the_sum, "divide by the maximum, not the sum"),
                 (min_max_scaled, "subtracting the minimum"),
                 (transposed, "yours came out transposed"),
                 (batch_axis_kept, "drop the batch axis"),
                 (upsampled, "at the feature maps' resolution"),
                 (alpha_returned, "those are the weights alpha_k"),
                 (image_zeroed, "changed its input argument 3 in place"),
                 (returns_none, "returned None"),
                 (exits, "sys.exit(1)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_the_cases_are_what_the_docstring_says():
    # Every case has a map with a positive maximum (so "divide by the maximum" is defined), the
    # cases that are not positive everywhere have negative locations for ReLU to cut, and no
    # class is 0 or the top class where another serves.
    cases = grading.what_networks_learn._cases()
    assert len(cases) == 6
    shapes = []
    for i, (features, head, image, class_index) in enumerate(cases):
        _, raw, _ = grading.what_networks_learn._grad_cam_parts(features, head, image,
                                                                class_index)
        shapes.append(raw.shape)
        assert raw.max() > 0
        assert (raw.min() > 0) == (i == 5)
        assert class_index != 0
    assert shapes == [(6, 8), (7, 5), (5, 5), (8, 6), (6, 7), (5, 7)]
