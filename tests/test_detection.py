"""cnnkit.detection: the shapes' boxes, anchors, matching, the loss, decoding and VOC's mAP."""

import math

import keras
import numpy as np
import pytest

from cnnkit import boxes, detection

# Three truths; five detections given out of score order. By score: 0.9 finds truth 0, 0.8 is a
# duplicate of truth 0, 0.7 finds truth 1, 0.6 overlaps nothing, 0.5 overlaps truth 2 by 0.25.
TRUTHS = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10]], "float32")
FOUND = np.array([[20, 21, 30, 31],   # 0.7: IoU 90/110 with truth 1
                  [0, 0, 10, 10],     # 0.9: truth 0 exactly
                  [60, 60, 70, 70],   # 0.6: nothing
                  [1, 0, 11, 10],     # 0.8: truth 0 again (IoU 90/110), already taken
                  [45, 0, 55, 10]],   # 0.5: IoU 50/150 with truth 2
                 "float32")
SCORES = np.array([0.7, 0.9, 0.6, 0.8, 0.5])


def test_precision_recall_by_hand():
    precision, recall = detection.precision_recall(FOUND, SCORES, TRUTHS)
    # hits by score: 1, 0 (duplicate), 1, 0, 0
    assert np.allclose(precision, [1, 1 / 2, 2 / 3, 2 / 4, 2 / 5])
    assert np.allclose(recall, [1 / 3, 1 / 3, 2 / 3, 2 / 3, 2 / 3])


def test_average_precision_by_hand():
    precision, recall = detection.precision_recall(FOUND, SCORES, TRUTHS)
    # all-point: recall 0 -> 1/3 at precision 1, 1/3 -> 2/3 at 2/3, nothing after: 5/9
    assert math.isclose(detection.average_precision(precision, recall), 5 / 9)
    # VOC 2007's 11 points would give (4 * 1 + 3 * 2/3) / 11 = 6/11: a different number
    assert not math.isclose(5 / 9, 6 / 11)


def test_envelope_lifts_a_dip():
    # FP then TP: raw precision 0.5 at recall 1/2 dips under a later 2/3 at recall 1
    ap = detection.average_precision([1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0])
    assert math.isclose(ap, 0.5 * 1 + 0.5 * 2 / 3)
    ap = detection.average_precision([0.0, 0.5, 2 / 3], [0.0, 0.5, 1.0])
    assert math.isclose(ap, 0.5 * 2 / 3 + 0.5 * 2 / 3)  # the first half lifted to 2/3


def test_perfect_detections_give_one_and_order_matters():
    precision, recall = detection.precision_recall(TRUTHS, [0.3, 0.2, 0.1], TRUTHS)
    assert detection.average_precision(precision, recall) == 1.0
    # a false positive ranked first costs; ranked last it costs nothing
    junk = np.array([[80, 80, 90, 90]], "float32")
    first = detection.precision_recall(np.concatenate([junk, TRUTHS]), [0.9, 0.3, 0.2, 0.1],
                                       TRUTHS)
    last = detection.precision_recall(np.concatenate([junk, TRUTHS]), [0.05, 0.3, 0.2, 0.1],
                                      TRUTHS)
    # precision 0, 1/2, 2/3, 3/4 at recall 0, 1/3, 2/3, 1: the envelope gives 3/4 everywhere
    assert math.isclose(detection.average_precision(*first), 3 / 4)
    assert detection.average_precision(*last) == 1.0


def test_iou_exactly_at_the_threshold_counts():
    truth = np.array([[0, 0, 2, 1]], "float32")
    half = np.array([[0, 0, 1, 1]], "float32")  # IoU exactly 1/2
    precision, recall = detection.precision_recall(half, [0.5], truth)
    assert recall.tolist() == [1.0]
    precision, recall = detection.precision_recall(half, [0.5], truth, iou_threshold=0.51)
    assert recall.tolist() == [0.0]


def _dets(b, s, c):
    return detection.Detections(np.asarray(b, "float32").reshape(-1, 4), np.asarray(s, "float32"),
                                np.asarray(c, "int32"))


def test_evaluate_pools_images_and_skips_classes_without_truth():
    # image 0: class 0 as FOUND/TRUTHS; class 2 detected but absent everywhere
    # image 1: one class-0 truth missed entirely, one class-1 truth found
    dets = [_dets(np.concatenate([FOUND, [[5, 5, 9, 9]]]), np.concatenate([SCORES, [0.95]]),
                  [0, 0, 0, 0, 0, 2]),
            _dets([[0, 0, 8, 8]], [0.4], [1])]
    truth_boxes = [TRUTHS, np.array([[30, 30, 40, 40], [0, 0, 8, 8]], "float32")]
    truth_labels = [np.array([0, 0, 0]), np.array([0, 1])]
    result = detection.evaluate(dets, truth_boxes, truth_labels, num_classes=4)
    assert result.truths.tolist() == [4, 1, 0, 0]
    # class 0: hits 1, 0, 1, 0, 0 over 4 truths: 1/4 * 1 + 1/4 * 2/3
    assert math.isclose(result.ap[0], 0.25 + 0.25 * 2 / 3)
    assert result.ap[1] == 1.0
    assert np.isnan(result.ap[2]) and np.isnan(result.ap[3])
    assert math.isclose(result.mAP, (0.25 + 0.25 * 2 / 3 + 1.0) / 2)
    assert result.precision[2].tolist() == [0.0] and np.isnan(result.recall[2]).all()


def test_class_with_truth_but_no_detection_scores_zero():
    result = detection.evaluate([_dets(np.zeros((0, 4)), [], [])], [TRUTHS[:1]], [[1]], 2)
    assert result.ap[1] == 0.0 and math.isclose(result.mAP, 0.0)


def test_shapes_boxes_are_the_painted_extent():
    data = detection.shapes(12, image_size=48, seed=5, objects=(2, 3))
    assert data.images.shape == (12, 48, 48, 3) and data.images.dtype == np.float32
    counts = [len(b) for b in data.boxes]
    assert min(counts) >= 1 and max(counts) <= 3
    for image, b, labels in zip(data.images, data.boxes, data.labels):
        assert b.shape == (len(labels), 4) and set(labels.tolist()) <= {0, 1, 2}
        assert np.all(b[:, 2:] > b[:, :2]) and b.min() >= 0 and b.max() <= 48
        assert np.all(b == np.round(b))  # pixel edges
        overlaps = keras.ops.convert_to_numpy(boxes.iou(b, b))
        assert np.allclose(overlaps, np.eye(len(b)))  # objects never overlap


def test_anchors_order_and_sizes():
    a = detection.anchors(32, 8, (8, 16))
    assert a.shape == (4 * 4 * 2, 4)
    assert a[0].tolist() == [0, 0, 8, 8] and a[1].tolist() == [-4, -4, 12, 12]
    assert a[2].tolist() == [8, 0, 16, 8]  # next column, same row
    assert a[8].tolist() == [0, 8, 8, 16]  # next row


def test_assign_positive_ignored_negative_and_forced_best():
    a = np.array([[0, 0, 10, 10], [0, 0, 12, 10], [0, 0, 20, 10], [50, 50, 60, 60],
                  [30, 30, 34, 34]], "float32")
    truth = [np.array([[0, 0, 11, 10], [31, 29, 41, 39]], "float32")]
    y = detection.assign(a, truth, [np.array([2, 1])])
    # IoUs with truth 0: 100/110, 110/120 -> positive class 2 (+1); 110/200 -> positive; anchor 3:
    # 0 -> background; anchor 4 overlaps truth 1 by 9/107, but it is truth 1's best: forced
    assert y.shape == (1, 5, 5)
    assert y[0, :, 0].tolist() == [3, 3, 3, 0, 2]
    want = keras.ops.convert_to_numpy(boxes.encode(truth[0][0], a[0],
                                                   weights=detection.BOX_WEIGHTS))
    assert np.allclose(y[0, 0, 1:], want) and np.all(y[0, 3, 1:] == 0)
    y = detection.assign(a, truth, [np.array([2, 1])], positive=0.95, negative=0.9)
    # 100/110 is between: ignored; 110/120 too, but it is truth 0's best anchor: forced
    assert y[0, :, 0].tolist() == [-1, 3, 0, 0, 2]


def test_loss_by_hand():
    # one image, two anchors, two classes: anchor 0 positive of class 1 (label 2), anchor 1
    # background, anchor 2 ignored
    y_true = np.array([[[2, 0.5, -0.2, 0.0, 3.0], [0, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]], "float32")
    logits = np.array([[0.3, -1.2], [2.0, -0.4], [5.0, 5.0]], "float32")
    deltas = np.array([[0.0, 0.0, 0.5, 1.0], [9, 9, 9, 9], [9, 9, 9, 9]], "float32")
    y_pred = np.concatenate([logits, deltas], axis=1)[None]
    got = float(detection.DetectionLoss()(y_true, y_pred))

    def fl(logit, target):
        p = 1 / (1 + math.exp(-logit))
        p_t = p if target else 1 - p
        return -(0.25 if target else 0.75) * (1 - p_t) ** 2 * math.log(p_t)

    focal = fl(0.3, 0) + fl(-1.2, 1) + fl(2.0, 0) + fl(-0.4, 0)
    smooth = 0.5 * 0.5 ** 2 + 0.5 * 0.2 ** 2 + 0.5 * 0.5 ** 2 + (2.0 - 0.5)
    assert math.isclose(got, focal + smooth, rel_tol=1e-5)
    got = float(detection.DetectionLoss(gamma=0.0, alpha=0.5, beta=0.1)(y_true, y_pred))
    ce = sum(-math.log(q) for q in (1 - 1 / (1 + math.exp(-0.3)), 1 / (1 + math.exp(1.2)),
                                    1 - 1 / (1 + math.exp(-2.0)), 1 - 1 / (1 + math.exp(0.4))))
    smooth = (0.5 - 0.05) + (0.2 - 0.05) + (0.5 - 0.05) + (2.0 - 0.05)
    assert math.isclose(got, 0.5 * ce + smooth, rel_tol=1e-5)


def test_detector_shape_count_and_detect_round_trip():
    model = detection.build_detector(image_size=32, num_classes=3, anchors_per_cell=2,
                                     widths=(4, 8, 8))
    assert tuple(model.output.shape) == (None, 4 * 4 * 2, 3 + 4)
    conv = 3 * 3 * 3 * 4 + 3 * 3 * 4 * 8 + 3 * 3 * 8 * 8 * 4  # bias-free convolutions
    bn = 4 * (4 + 8 * 5)  # gamma, beta, mean, variance per channel
    heads = 3 * 3 * 8 * 6 + 6 + 3 * 3 * 8 * 8 + 8
    assert model.count_params() == conv + bn + heads
    bias = model.get_layer("head_classes").get_weights()[1]
    assert np.allclose(1 / (1 + np.exp(-bias)), 0.01)
    # outputs that say "anchor 5 is a square (class 1) with this box", anchor 4 "a square one
    # pixel to the right, less sure" and anchor 6 "a triangle, same box": NMS drops anchor 4's
    # (IoU 110/130 with the better box) and keeps the triangle (another class)
    a = detection.anchors(32, 8, (8, 16))
    box = np.array([9.0, 1.0, 19.0, 13.0], "float32")

    def deltas(b, k):
        return keras.ops.convert_to_numpy(boxes.encode(b, a[k], weights=detection.BOX_WEIGHTS))

    out = np.full((1, len(a), 7), -9.0, "float32")
    out[0, :, 3:] = 0
    out[0, 5, 1], out[0, 5, 3:] = 3.0, deltas(box, 5)
    out[0, 4, 1], out[0, 4, 3:] = 2.0, deltas((box + [1, 0, 1, 0]).astype("float32"), 4)
    out[0, 6, 2], out[0, 6, 3:] = 1.0, deltas(box, 6)
    found = detection.detect(out, a, 32)[0]
    assert found.labels.tolist() == [1, 2]
    assert np.allclose(found.boxes, [box, box], atol=1e-4)
    assert np.allclose(found.scores, 1 / (1 + np.exp(-np.array([3.0, 1.0]))), rtol=1e-6)
    found = detection.detect(out, a, 32, iou_threshold=0.9)[0]
    assert found.labels.tolist() == [1, 1, 2]  # 0.846 < 0.9: kept
