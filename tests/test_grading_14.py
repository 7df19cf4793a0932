"""Graders of exercise 14 (detection building blocks): a mutation table per grader, each wrong
answer failing with the hint that names its mistake."""

import sys

import keras
import numpy as np
import pytest

from cnnkit import boxes, detection

from cnnkit.course import grading

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


# --- precision_recall --------------------------------------------------------------------------

def _iou_matrix(a, b):
    a, b = np.asarray(a, float)[:, None], np.asarray(b, float)[None]
    w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def _curve(boxes_, scores, truths, iou_threshold=0.5, order=None, strict=False, once=True,
           by_detections=False, cumulative=True, same_index=False):
    overlaps = _iou_matrix(boxes_, truths)
    if same_index:
        overlaps = overlaps * np.eye(*overlaps.shape)
    order = np.argsort(-scores) if order is None else order
    taken, tp = np.zeros(len(truths), bool), np.zeros(len(order))
    for k, d in enumerate(order):
        j = overlaps[d].argmax()
        above = overlaps[d, j] > iou_threshold if strict else overlaps[d, j] >= iou_threshold
        if above and (not taken[j] or not once):
            tp[k], taken[j] = 1, True
    tp = np.cumsum(tp) if cumulative else tp
    return tp / np.arange(1, len(tp) + 1), tp / (len(tp) if by_detections else len(truths))


def right_pr(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold)


def kit_pr(boxes_, scores, truths, iou_threshold=0.5):
    return detection.precision_recall(boxes_, scores, truths, iou_threshold)


def coco_pr(boxes_, scores, truths, iou_threshold=0.5):  # best FREE truth, lists out
    overlaps = _iou_matrix(boxes_, truths)
    free = [True] * len(truths)
    tp, precision, recall = 0, [], []
    for k, d in enumerate(sorted(range(len(scores)), key=lambda i: -scores[i])):
        candidates = [(overlaps[d, j], j) for j in range(len(truths)) if free[j]
                      and overlaps[d, j] >= iou_threshold]
        if candidates:
            free[max(candidates)[1]] = False
            tp += 1
        precision.append(tp / (k + 1))
        recall.append(tp / len(truths))
    return precision, recall


def input_order(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, order=np.arange(len(scores)))


def ascending(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, order=np.argsort(scores))


def duplicates_count(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, once=False)


def strictly_above(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, strict=True)


def recall_by_detections(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, by_detections=True)


def no_cumsum(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, cumulative=False)


def same_index_only(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold, same_index=True)


def fixed_half(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, 0.5)


def recall_then_precision(boxes_, scores, truths, iou_threshold=0.5):
    return _curve(boxes_, scores, truths, iou_threshold)[::-1]


def one_array(boxes_, scores, truths, iou_threshold=0.5):
    return np.stack(_curve(boxes_, scores, truths, iou_threshold), axis=1)


def totals_only(boxes_, scores, truths, iou_threshold=0.5):
    precision, recall = _curve(boxes_, scores, truths, iou_threshold)
    return precision[-1:], recall[-1:]


def sorts_scores_in_place(boxes_, scores, truths, iou_threshold=0.5):
    result = _curve(boxes_, scores, truths, iou_threshold)
    scores.sort()
    return result


def pr_exits(boxes_, scores, truths, iou_threshold=0.5):
    sys.exit(1)


# --- average_precision -------------------------------------------------------------------------

def right_ap(precision, recall):
    p = np.concatenate([[0.0], precision, [0.0]])
    r = np.concatenate([[0.0], recall, [1.0]])
    for i in range(len(p) - 2, -1, -1):
        p[i] = max(p[i], p[i + 1])
    i = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[i] - r[i - 1]) * p[i]))


def kit_ap(precision, recall):
    return detection.average_precision(precision, recall)


def unique_recall_ap(precision, recall):  # a loop over the distinct recalls, as a NumPy scalar
    area, previous = 0.0, 0.0
    for r in np.unique(recall):
        if r > 0:
            area += (r - previous) * precision[recall >= r].max()
            previous = r
    return np.float64(area)


def eleven_point(precision, recall):
    return float(np.mean([precision[recall >= t].max() if (recall >= t).any() else 0.0
                          for t in np.linspace(0, 1, 11)]))


def no_envelope(precision, recall):
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


def envelope_from_the_start(precision, recall):
    p = np.maximum.accumulate(np.concatenate([[0.0], precision, [0.0]]))
    r = np.concatenate([[0.0], recall, [1.0]])
    i = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[i] - r[i - 1]) * p[i]))


def precision_at_step_start(precision, recall):
    p = np.maximum.accumulate(np.concatenate([[0.0], precision, [0.0]])[::-1])[::-1]
    r = np.concatenate([[0.0], recall, [1.0]])
    i = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[i] - r[i - 1]) * p[i - 1]))


def no_zero_sentinel(precision, recall):
    p = np.maximum.accumulate(np.concatenate([precision, [0.0]])[::-1])[::-1]
    r = np.concatenate([recall, [1.0]])
    i = np.flatnonzero(r[1:] != r[:-1]) + 1
    return float(np.sum((r[i] - r[i - 1]) * p[i]))


def extended_to_recall_one(precision, recall):  # on a VOC curve, the same as the step's start
    return right_ap(np.concatenate([precision, precision[-1:]]),
                    np.concatenate([recall, [1.0]]))


def trapezoid(precision, recall):
    r = np.concatenate([[0.0], recall])
    p = np.concatenate([[1.0], precision])
    return float(np.sum(np.diff(r) * (p[1:] + p[:-1]) / 2))


def mean_precision(precision, recall):
    return float(np.mean(precision))


def mean_over_found(precision, recall):
    rises = np.diff(np.concatenate([[0.0], recall])) > 0
    return float(precision[rises].mean())


def percentage(precision, recall):
    return 100 * right_ap(precision, recall)


def ap_as_array(precision, recall):
    return np.array([right_ap(precision, recall)])


def ap_returns_none(precision, recall):
    right_ap(precision, recall)


def envelope_in_place(precision, recall):
    for i in range(len(precision) - 2, -1, -1):
        precision[i] = max(precision[i], precision[i + 1])
    return right_ap(precision, recall)


TABLES += [
    Table(grading.check_precision_recall, right_pr,
          right=[kit_pr, coco_pr],
          wrong=[(input_order, "you kept the order they came in"),
                 (ascending, "you ranked the lowest score first"),
                 (duplicates_count, "a duplicate"),
                 (strictly_above, "IoU >= iou_threshold, not >"),
                 (recall_by_detections, "not by the number of detections"),
                 (no_cumsum, "a cumulative sum"),
                 (same_index_only, "not only with the truth at the same index"),
                 (fixed_half, "use the iou_threshold argument"),
                 (recall_then_precision, "return (precision, recall) in that order"),
                 (one_array, "return a pair (precision, recall)"),
                 (totals_only, "one value per detection"),
                 (sorts_scores_in_place, "changed its input argument 2 in place"),
                 (pr_exits, "sys.exit(1)")]),
    Table(grading.check_average_precision, right_ap,
          right=[kit_ap, unique_recall_ap],
          wrong=[(eleven_point, "not VOC 2007's 11 recall points"),
                 (no_envelope, "the monotone envelope"),
                 (envelope_from_the_start, "a running maximum from the end"),
                 (precision_at_step_start, "at its END"),
                 (extended_to_recall_one, "credits the last precision up to recall 1"),
                 (no_zero_sentinel, "the curve starts at recall 0"),
                 (trapezoid, "not the trapezoid rule"),
                 (mean_precision, "not the mean of the precisions"),
                 (mean_over_found, "divides by the number FOUND"),
                 (percentage, "not a percentage"),
                 (ap_as_array, "return a number"),
                 (ap_returns_none, "return a number"),
                 (envelope_in_place, "changed its input argument 1 in place")]),
]


def test_voc_reference_of_the_grader_is_the_kits():
    """The grader's float64 reference agrees with cnnkit.detection on its own cases."""
    from cnnkit.course.grading.detection_blocks import _ap_cases, _pr_cases, _voc_ap, _voc_curve

    for found, scores, truths, threshold in grading.detection_blocks._pr_cases():
        want = _voc_curve(found, scores, truths, threshold)
        got = detection.precision_recall(found, scores, truths, threshold)
        assert all(np.allclose(g, w) for g, w in zip(got, want))
    for precision, recall in _ap_cases():
        assert _voc_ap(precision, recall) == pytest.approx(
            detection.average_precision(precision, recall), abs=1e-12)


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)
