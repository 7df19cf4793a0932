"""Graders of exercise 13 (segmentation): a mutation table per grader, each wrong answer failing
with the hint that names its mistake."""

import sys

import keras
import numpy as np
import pytest

from cnnkit import segmentation

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases

# --- transposed_output_size ------------------------------------------------------------------


def right_size(size, kernel, stride, padding):
    if padding == "same":
        return size * stride
    return (size - 1) * stride + max(kernel, stride)


def size_plus_overhang(size, kernel, stride, padding):  # NumPy integers, another formula
    extra = 0 if padding == "same" else max(kernel - stride, 0)
    return np.int64(size) * stride + extra


def convolution_size(size, kernel, stride, padding):
    return (size - kernel) // stride + 1 if padding == "valid" else -(-size // stride)


def same_as_valid(size, kernel, stride, padding):  # padding ignored
    return (size - 1) * stride + kernel if kernel >= stride else size * stride


def valid_as_same(size, kernel, stride, padding):
    return size * stride


def kernel_below_stride_forgotten(size, kernel, stride, padding):
    return size * stride if padding == "same" else (size - 1) * stride + kernel


def stride_fixed(size, kernel, stride, padding):
    return right_size(size, kernel, 2, padding)


def off_by_one(size, kernel, stride, padding):
    return right_size(size, kernel, stride, padding) + (padding == "valid")


def as_float(size, kernel, stride, padding):
    return float(right_size(size, kernel, stride, padding))


def as_text(size, kernel, stride, padding):
    return str(right_size(size, kernel, stride, padding))


def as_a_pair(size, kernel, stride, padding):
    side = right_size(size, kernel, stride, padding)
    return side, side


def size_exits(size, kernel, stride, padding):
    sys.exit()


# --- center_crop -----------------------------------------------------------------------------


def right_crop(x, target):
    h, w = target
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return x[:, top:top + h, left:left + w, :]


def keras_cropping(x, target):  # a Keras tensor
    dh, dw = x.shape[1] - target[0], x.shape[2] - target[1]
    return keras.layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))(x)


def crop_from_the_end(x, target):  # bottom and right margins first, as a copy
    h, w = target
    bottom, right = x.shape[1] - h - (x.shape[1] - h) // 2, x.shape[2] - w - (x.shape[2] - w) // 2
    return np.array(x[:, x.shape[1] - h - bottom:x.shape[1] - bottom,
                      x.shape[2] - w - right:x.shape[2] - right])


def top_left_corner(x, target):
    return x[:, :target[0], :target[1], :]


def bottom_right_corner(x, target):
    return x[:, x.shape[1] - target[0]:, x.shape[2] - target[1]:, :]


def rounded_up(x, target):
    h, w = target
    top, left = -(-(x.shape[1] - h) // 2), -(-(x.shape[2] - w) // 2)
    return x[:, top:top + h, left:left + w, :]


def rounded_half_to_even(x, target):  # round(1.5) == 2, round(2.5) == 2
    h, w = target
    top, left = round((x.shape[1] - h) / 2), round((x.shape[2] - w) / 2)
    return x[:, top:top + h, left:left + w, :]


def minus_top_slice(x, target):
    top, left = (x.shape[1] - target[0]) // 2, (x.shape[2] - target[1]) // 2
    return x[:, top:-top, left:-left]


def square_target(x, target):  # uses h for the width too
    h = target[0]
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - h) // 2
    return x[:, top:top + h, left:left + h]


def offsets_swapped(x, target):
    h, w = target
    top, left = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
    return x[:, left:left + h, top:top + w]


def cropped_the_wrong_axes(x, target):
    h, w = target
    top, left = (x.shape[0] - h) // 2, (x.shape[1] - w) // 2
    return x[top:top + h, left:left + w]


def channels_dropped(x, target):
    return right_crop(x, target)[..., 0]


def crop_zeroes_the_rest(x, target):
    out = right_crop(x, target).copy()
    x[:] = 0
    return out


def crop_returns_none(x, target):
    right_crop(x, target)


def crop_raises_keyboard_interrupt(x, target):
    raise KeyboardInterrupt


# --- iou_per_class ---------------------------------------------------------------------------


def right_iou(y_true, y_pred, classes):
    iou = np.full(classes, np.nan)
    for c in range(classes):
        union = np.sum((y_true == c) | (y_pred == c))
        if union:
            iou[c] = np.sum((y_true == c) & (y_pred == c)) / union
    return iou


def confusion_iou(y_true, y_pred, classes):  # a confusion matrix, returned as a list
    matrix = np.bincount(y_true.ravel() * classes + y_pred.ravel(),
                         minlength=classes * classes).reshape(classes, classes)
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    return [float(t / u) if u else float("nan") for t, u in zip(tp, union)]


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


def never_right_as_nan(y_true, y_pred, classes):
    iou = right_iou(y_true, y_pred, classes)
    return np.where(iou > 0, iou, np.nan)


def nan_unless_in_the_truth(y_true, y_pred, classes):
    iou = right_iou(y_true, y_pred, classes)
    return np.where([np.any(y_true == c) for c in range(classes)], iou, np.nan)


def only_the_mean(y_true, y_pred, classes):
    return np.nanmean(right_iou(y_true, y_pred, classes))


def classes_from_the_labels(y_true, y_pred, classes):  # ignores `classes`
    return right_iou(y_true, y_pred, int(max(y_true.max(), y_pred.max())) + 1)


def background_skipped(y_true, y_pred, classes):
    return right_iou(y_true, y_pred, classes)[1:]


def relabels_in_place(y_true, y_pred, classes):
    iou = right_iou(y_true, y_pred, classes)
    y_pred[y_pred == y_true] = 0
    return iou


def iou_exits(y_true, y_pred, classes):
    sys.exit(2)


TABLES = [
    Table(grading.check_transposed_output_size, right_size,
          right=[size_plus_overhang],
          wrong=[(convolution_size, "that is a convolution's output size"),
                 (same_as_valid, "with padding='same' the output is exactly size · stride"),
                 (valid_as_same, "with padding='valid' nothing is cropped"),
                 (kernel_below_stride_forgotten, "smaller than the stride (2)"),
                 (stride_fixed, "with padding='same' the output is exactly size · stride"),
                 (off_by_one, "'valid': (size − 1) · stride + kernel"),
                 (as_float, "of type float: return a whole number (int)"),
                 (as_text, "of type str: return a whole number (int)"),
                 (as_a_pair, "of type tuple: return a whole number (int)"),
                 (size_exits, "sys.exit(None)")]),
    Table(grading.check_center_crop, right_crop,
          right=[keras_cropping, crop_from_the_end],
          wrong=[(top_left_corner, "not the top-left corner"),
                 (bottom_right_corner, "not the bottom-right corner"),
                 (rounded_up, "the extra pixel comes off the bottom"),
                 (rounded_half_to_even, "the extra pixel comes off the bottom"),
                 (minus_top_slice, "x[:, top:-top] keeps a pixel too many"),
                 (square_target, "target is (h, w): crop the height (axis 1) to h"),
                 (offsets_swapped, "height with h, width with w"),
                 (cropped_the_wrong_axes, "crop axes 1 and 2"),
                 (channels_dropped, "keep the channels"),
                 (crop_zeroes_the_rest, "changed its input argument 1 in place"),
                 (crop_returns_none, "returned None"),
                 (crop_raises_keyboard_interrupt, "interrupted before it returned")]),
    Table(grading.check_iou_per_class, right_iou,
          right=[segmentation.class_iou, confusion_iou],
          wrong=[(recall, "that is the recall"),
                 (precision, "that is the precision"),
                 (dice, "that is the Dice coefficient"),
                 (intersection_counted_twice, "the union counts the intersection once"),
                 (absent_as_zero, "return NaN (np.nan)"),
                 (never_right_as_nan, "a class in either map that is never right"),
                 (nan_unless_in_the_truth, "never at the same pixels) has IoU 0"),
                 (only_the_mean, "returned shape (); return one IoU for every class"),
                 (classes_from_the_labels, "NaN for those in neither map"),
                 (background_skipped, "return one IoU for every class 0 to"),
                 (relabels_in_place, "changed its input argument 2 in place"),
                 (iou_exits, "sys.exit(2)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)
