"""Graders of exercise 14 (detection building blocks): a mutation table per grader, each wrong
answer failing with the hint that names its mistake."""

import sys

import keras
import numpy as np
import pytest

from cnnkit import boxes, grading

from grading_harness import Table, assert_verdict, verdict_cases


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




# --- more answers, right and wrong -----------------------------------------------------------

def kit_encode(proposal, truth):  # a Keras tensor
    return boxes.encode(truth, proposal)


def loop_encode(proposal, truth):  # a list of lists, one box at a time
    rows = []
    for (p1, q1, p2, q2), (g1, h1, g2, h2) in zip(proposal, truth):
        pw, ph, gw, gh = p2 - p1, q2 - q1, g2 - g1, h2 - h1
        rows.append([((g1 + g2) - (p1 + p2)) / 2 / pw, ((h1 + h2) - (q1 + q2)) / 2 / ph,
                     float(np.log(gw / pw)), float(np.log(gh / ph))])
    return rows


def stacked_on_axis_0(proposal, truth):
    return right_encode(proposal, truth).T


def width_and_height_swapped(proposal, truth):
    px, py, pw, ph = centres(proposal)
    gx, gy, gw, gh = centres(truth)
    return np.stack([(gx - px) / ph, (gy - py) / pw, np.log(gw / pw), np.log(gh / ph)], axis=1)


def targets_in_another_order(proposal, truth):
    return right_encode(proposal, truth)[:, [0, 2, 1, 3]]


def ratio_minus_one(proposal, truth):
    t = right_encode(proposal, truth)
    t[:, 2:] = np.exp(t[:, 2:]) - 1
    return t


def encode_to_centres_in_place(proposal, truth):  # converts the caller's boxes, then answers
    t = right_encode(proposal, truth)
    proposal[:, 2:] -= proposal[:, :2]
    return t


def encode_returns_none(proposal, truth):
    right_encode(proposal, truth)


def encode_exits(proposal, truth):
    sys.exit("no boxes")


def kit_decode(deltas, proposal):
    return boxes.decode(deltas, proposal)


def decode_through_the_kit(deltas, proposal):  # the kit's corner conversion, as a list
    px, py, pw, ph = centres(proposal)
    centre_form = np.stack([pw * deltas[:, 0] + px, ph * deltas[:, 1] + py,
                            pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])], axis=1)
    return keras.ops.convert_to_numpy(boxes.centers_to_corners(centre_form)).tolist()


def decode_stacked_on_axis_0(deltas, proposal):
    return right_decode(deltas, proposal).T


def corners_in_another_order(deltas, proposal):
    return right_decode(deltas, proposal)[:, [0, 2, 1, 3]]


def one_plus_delta(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    cx, cy = pw * deltas[:, 0] + px, ph * deltas[:, 1] + py
    w, h = pw * (1 + deltas[:, 2]), ph * (1 + deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def shift_by_the_wrong_side(deltas, proposal):
    px, py, pw, ph = centres(proposal)
    cx, cy = ph * deltas[:, 0] + px, pw * deltas[:, 1] + py
    w, h = pw * np.exp(deltas[:, 2]), ph * np.exp(deltas[:, 3])
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def exp_in_place(deltas, proposal):
    deltas[:, 2:] = np.exp(deltas[:, 2:])
    px, py, pw, ph = centres(proposal)
    cx, cy = pw * deltas[:, 0] + px, ph * deltas[:, 1] + py
    w, h = pw * deltas[:, 2], ph * deltas[:, 3]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def decode_returns_none(deltas, proposal):
    return None


def decode_raises_system_exit(deltas, proposal):
    raise SystemExit(3)


def kit_iou(a, b):
    return boxes.iou(a, b)


def loop_iou(a, b):  # nested lists, pair by pair
    out = []
    for ax1, ay1, ax2, ay2 in a:
        row = []
        for bx1, by1, bx2, by2 in b:
            width = max(0.0, min(ax2, bx2) - max(ax1, bx1))
            inter = width * max(0.0, min(ay2, by2) - max(ay1, by1))
            union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
            row.append(inter / union)
        out.append(row)
    return out


def transposed_iou(a, b):
    return right_iou(b, a)


def union_over_intersection(a, b):
    with np.errstate(divide="ignore"):
        return 1 / right_iou(a, b)


def sorts_its_input(a, b):
    result = right_iou(a, b)
    a.sort(axis=0)
    return result


def iou_returns_none(a, b):
    right_iou(a, b)


def iou_returns_text(a, b):
    return "IoU"


def iou_exits(a, b):
    sys.exit(0)


TABLES = [
    Table(grading.check_encode_box, right_encode,
          right=[kit_encode, loop_encode],
          wrong=[(p_and_g_swapped, "you swapped P and G"),
                 (ratio_without_log, "not the ratio itself"),
                 (ratio_minus_one, "not the ratio minus 1"),
                 (log10_used, "natural logarithm"),
                 (divided_by_the_truths_size, "PROPOSAL's size"),
                 (pixel_offsets, "zooming the image does not change the targets"),
                 (width_and_height_swapped, "t_y by the height P_h; you swapped them"),
                 (corners_not_centres, "shift the CENTRES"),
                 (plus_one_pixels, "no + 1"),
                 (targets_in_another_order, "in the order (t_x, t_y, t_w, t_h)"),
                 (stacked_on_axis_0, "one ROW per box: stack the four columns along axis=1"),
                 (one_box_only, "one row (t_x, t_y, t_w, t_h) per proposal"),
                 (encode_to_centres_in_place, "changed its input argument 1 in place"),
                 (encode_returns_none, "returned None"),
                 (encode_exits, "sys.exit('no boxes')")]),
    Table(grading.check_decode_box, right_decode,
          right=[kit_decode, decode_through_the_kit],
          wrong=[(centre_form_returned, "return corners (x1, y1, x2, y2)"),
                 (exp_forgotten, "not P_w·d_w"),
                 (one_plus_delta, "not P_w·(1 + d_w)"),
                 (shift_not_scaled, "relative to the proposal's size"),
                 (shift_by_the_wrong_side, "(the height); you swapped them"),
                 (shifted_from_the_corner, "not its corner x1"),
                 (corners_in_another_order, "the corners in the order (x1, y1, x2, y2)"),
                 (decode_stacked_on_axis_0, "one ROW per box: stack the four columns"),
                 (exp_in_place, "changed its input argument 1 in place"),
                 (decode_returns_none, "returned None"),
                 (decode_raises_system_exit, "sys.exit(3)")]),
    Table(grading.check_iou, right_iou,
          right=[kit_iou, loop_iou],
          wrong=[(no_clamp, "SEPARATELY"),
                 (product_clamped, "clamping the product is too late"),
                 (intersection_counted_twice, "counts the intersection once"),
                 (over_the_smaller_box, "not by the smaller area"),
                 (plus_one_iou, "no + 1"),
                 (union_over_intersection, "not union / intersection"),
                 (pairwise_rows, "one IoU for EVERY pair"),
                 (transposed_iou, "the matrix is (N, M), not (M, N)"),
                 (sorts_its_input, "changed its input argument 1 in place"),
                 (iou_returns_none, "returned None"),
                 (iou_returns_text, "returned str, not an array of numbers"),
                 (iou_exits, "sys.exit(0)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)
