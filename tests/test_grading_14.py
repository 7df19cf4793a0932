"""Graders of exercise 14 (detection building blocks): right passes, each typical slip fails with
its hint, cnnkit.boxes itself passes."""

import keras
import numpy as np
import pytest

from cnnkit import boxes, grading

from grader_verdicts import assert_verdicts


def centres(b):
    b = np.asarray(b, dtype="float64")
    return ((b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, b[:, 2] - b[:, 0],
            b[:, 3] - b[:, 1])


# --- encode_box ------------------------------------------------------------------------------

def right_encode(proposal, truth):
    px, py, pw, ph = centres(proposal)
    gx, gy, gw, gh = centres(truth)
    return np.stack([(gx - px) / pw, (gy - py) / ph, np.log(gw / pw), np.log(gh / ph)], axis=1)


def p_and_g_swapped(proposal, truth):
    return right_encode(truth, proposal)


def ratio_without_log(proposal, truth):
    t = right_encode(proposal, truth)
    t[:, 2:] = np.exp(t[:, 2:])
    return t


def log10_used(proposal, truth):
    t = right_encode(proposal, truth)
    t[:, 2:] /= np.log(10)
    return t


def divided_by_the_truths_size(proposal, truth):
    px, py, pw, ph = centres(proposal)
    gx, gy, gw, gh = centres(truth)
    return np.stack([(gx - px) / gw, (gy - py) / gh, np.log(gw / pw), np.log(gh / ph)], axis=1)


def pixel_offsets(proposal, truth):
    px, py, pw, ph = centres(proposal)
    gx, gy, gw, gh = centres(truth)
    return np.stack([gx - px, gy - py, np.log(gw / pw), np.log(gh / ph)], axis=1)


def corners_not_centres(proposal, truth):
    _, _, pw, ph = centres(proposal)
    _, _, gw, gh = centres(truth)
    return np.stack([(truth[:, 0] - proposal[:, 0]) / pw, (truth[:, 1] - proposal[:, 1]) / ph,
                     np.log(gw / pw), np.log(gh / ph)], axis=1)


def plus_one_pixels(proposal, truth):
    return right_encode(proposal + [0, 0, 1, 1], truth + [0, 0, 1, 1])


def one_box_only(proposal, truth):
    return right_encode(proposal, truth)[0]


# --- decode_box ------------------------------------------------------------------------------

def right_decode(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    cx, cy = pw * deltas[:, 0] + px, ph * deltas[:, 1] + py
    w, h = pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def centre_form_returned(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    return np.stack([pw * deltas[:, 0] + px, ph * deltas[:, 1] + py, pw * np.exp(deltas[:, 2]),
                     ph * np.exp(deltas[:, 3])], axis=1)


def exp_forgotten(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    cx, cy = pw * deltas[:, 0] + px, ph * deltas[:, 1] + py
    w, h = pw * deltas[:, 2], ph * deltas[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def shift_not_scaled(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    cx, cy = deltas[:, 0] + px, deltas[:, 1] + py
    w, h = pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def shifted_from_the_corner(deltas, proposal):
    _, _, pw, ph = centres(proposal)
    cx, cy = pw * deltas[:, 0] + proposal[:, 0], ph * deltas[:, 1] + proposal[:, 1]
    w, h = pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


# --- iou -------------------------------------------------------------------------------------

def _parts(a, b, plus=0):
    a, b = a[:, None] + [0, 0, plus, plus], b[None] + [0, 0, plus, plus]
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return w, h, area_a, area_b


def right_iou(a, b):
    w, h, area_a, area_b = _parts(a, b)
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    return inter / (area_a + area_b - inter)


def no_clamp(a, b):
    w, h, area_a, area_b = _parts(a, b)
    return w * h / (area_a + area_b - w * h)


def product_clamped(a, b):
    w, h, area_a, area_b = _parts(a, b)
    inter = np.maximum(w * h, 0)
    return inter / (area_a + area_b - inter)


def intersection_counted_twice(a, b):
    w, h, area_a, area_b = _parts(a, b)
    return np.maximum(w, 0) * np.maximum(h, 0) / (area_a + area_b)


def over_the_smaller_box(a, b):
    w, h, area_a, area_b = _parts(a, b)
    return np.maximum(w, 0) * np.maximum(h, 0) / np.minimum(area_a, area_b)


def plus_one_iou(a, b):
    w, h, area_a, area_b = _parts(a, b, plus=1)
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    return inter / (area_a + area_b - inter)


def pairwise_rows(a, b):  # box i of a with box i of b only
    k = min(len(a), len(b))
    return np.diag(right_iou(a[:k], b[:k]))


CASES = [
    (grading.check_encode_box, right_encode,
     [(p_and_g_swapped, "you swapped P and G"),
      (ratio_without_log, "not the ratio itself"),
      (log10_used, "natural logarithm"),
      (divided_by_the_truths_size, "PROPOSAL's size"),
      (pixel_offsets, "zooming the image does not change the targets"),
      (corners_not_centres, "shift the CENTRES"),
      (plus_one_pixels, "no + 1"),
      (one_box_only, "one row (t_x, t_y, t_w, t_h) per proposal")]),
    (grading.check_decode_box, right_decode,
     [(centre_form_returned, "return corners (x1, y1, x2, y2)"),
      (exp_forgotten, "not P_w·d_w"),
      (shift_not_scaled, "relative to the proposal's size"),
      (shifted_from_the_corner, "not its corner x1")]),
    (grading.check_iou, right_iou,
     [(no_clamp, "SEPARATELY"),
      (product_clamped, "clamping the product is too late"),
      (intersection_counted_twice, "counts the intersection once"),
      (over_the_smaller_box, "not by the smaller area"),
      (plus_one_iou, "no + 1"),
      (pairwise_rows, "one IoU for EVERY pair")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_cnnkit_boxes_itself_passes(capsys):
    to_numpy = keras.ops.convert_to_numpy
    assert grading.check_encode_box(lambda p, g: to_numpy(boxes.encode(g, p)))
    assert grading.check_decode_box(lambda d, p: to_numpy(boxes.decode(d, p)))
    assert grading.check_iou(lambda a, b: to_numpy(boxes.iou(a, b)))
    assert capsys.readouterr().out.count("✅ PASS") == 3


def test_the_learners_arrays_are_not_the_graders(capsys):
    def scribbles(proposal, truth):  # changes its inputs, then answers right
        t = right_encode(proposal, truth)
        proposal[:] = 0
        return t

    assert grading.check_encode_box(scribbles)
    with pytest.raises(grading.GradeFailure, match="returned None"):
        grading.check_iou(lambda a, b: None)
    with pytest.raises(grading.GradeFailure, match="your code raised ZeroDivisionError"):
        grading.check_decode_box(lambda d, p: 1 / 0)
