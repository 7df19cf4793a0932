"""Graders of exercise 13 (segmentation): right passes, each typical slip fails with its hint,
the kit's own functions pass."""

import numpy as np
import pytest

from cnnkit import grading, segmentation

from grader_verdicts import assert_verdicts


def right_size(size, kernel, stride, padding):
    if padding == "same":
        return size * stride
    return (size - 1) * stride + max(kernel, stride)


def convolution_size(size, kernel, stride, padding):
    return (size - kernel) // stride + 1 if padding == "valid" else -(-size // stride)


def same_as_valid(size, kernel, stride, padding):
    return (size - 1) * stride + kernel if kernel >= stride else size * stride


def valid_as_same(size, kernel, stride, padding):
    return size * stride


def kernel_below_stride_forgotten(size, kernel, stride, padding):
    return size * stride if padding == "same" else (size - 1) * stride + kernel


def as_float(size, kernel, stride, padding):
    return float(right_size(size, kernel, stride, padding))


def right_crop(x, target):
    h, w = target
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return x[:, top:top + h, left:left + w, :]


def top_left_corner(x, target):
    return x[:, :target[0], :target[1], :]


def rounded_up(x, target):
    h, w = target
    top, left = -(-(x.shape[1] - h) // 2), -(-(x.shape[2] - w) // 2)
    return x[:, top:top + h, left:left + w, :]


def cropped_the_wrong_axes(x, target):
    h, w = target
    top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[top:top + h, left:left + w]


def channels_dropped(x, target):
    return right_crop(x, target)[..., 0]


def right_iou(y_true, y_pred, classes):
    iou = np.full(classes, np.nan)
    for c in range(classes):
        union = np.sum((y_true == c) | (y_pred == c))
        if union:
            iou[c] = np.sum((y_true == c) & (y_pred == c)) / union
    return iou


def _counts(y_true, y_pred, classes):
    t = np.array([np.sum(y_true == c) for c in range(classes)], float)
    p = np.array([np.sum(y_pred == c) for c in range(classes)], float)
    tp = np.array([np.sum((y_true == c) & (y_pred == c)) for c in range(classes)], float)
    return t, p, tp


def recall(y_true, y_pred, classes):
    t, p, tp = _counts(y_true, y_pred, classes)
    with np.errstate(invalid="ignore"):
        return tp / t


def precision(y_true, y_pred, classes):
    t, p, tp = _counts(y_true, y_pred, classes)
    with np.errstate(invalid="ignore"):
        return tp / p


def dice(y_true, y_pred, classes):
    t, p, tp = _counts(y_true, y_pred, classes)
    with np.errstate(invalid="ignore"):
        return 2 * tp / (t + p)


def intersection_counted_twice(y_true, y_pred, classes):
    t, p, tp = _counts(y_true, y_pred, classes)
    with np.errstate(invalid="ignore"):
        return tp / (t + p)


def absent_as_zero(y_true, y_pred, classes):
    return np.nan_to_num(right_iou(y_true, y_pred, classes), nan=0.0)


def only_the_mean(y_true, y_pred, classes):
    return np.nanmean(right_iou(y_true, y_pred, classes))


CASES = [
    (grading.check_transposed_output_size, right_size,
     [(convolution_size, "that is a convolution's output size"),
      (same_as_valid, "with padding='same' the output is exactly size · stride"),
      (valid_as_same, "with padding='valid' nothing is cropped"),
      (kernel_below_stride_forgotten, "smaller than the stride (2)"),
      (as_float, "return a whole number (int)")]),
    (grading.check_center_crop, right_crop,
     [(top_left_corner, "not the top-left corner"),
      (rounded_up, "the extra pixel comes off the bottom"),
      (cropped_the_wrong_axes, "crop axes 1 and 2"),
      (channels_dropped, "keep the channels")]),
    (grading.check_iou_per_class, right_iou,
     [(recall, "that is the recall"),
      (precision, "that is the precision"),
      (dice, "that is the Dice coefficient"),
      (intersection_counted_twice, "the union counts the intersection once"),
      (absent_as_zero, "return NaN (np.nan)"),
      (only_the_mean, "return one IoU per class")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_the_kits_own_functions_pass(capsys):
    assert grading.check_iou_per_class(segmentation.class_iou)
    assert grading.check_center_crop(
        lambda x, target: right_crop(np.asarray(x), target).copy())
    assert capsys.readouterr().out.count("✅ PASS") == 2


def test_a_wrong_return_type_fails_clearly(capsys):
    with pytest.raises(grading.GradeFailure, match="returned None"):
        grading.check_center_crop(lambda x, target: None)
    with pytest.raises(grading.GradeFailure, match="return a whole number"):
        grading.check_transposed_output_size(lambda *args: None)
