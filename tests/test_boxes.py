"""cnnkit.boxes: R-CNN's box regression, IoU and NMS against hand-computed values and NumPy."""

import math

import keras
import numpy as np
import pytest

from cnnkit import boxes as B
from helpers import to_numpy as np_  # short: nearly every assertion reads one


def random_boxes(rng, n, dtype="float64"):
    xy = rng.uniform(0, 100, size=(n, 2))
    wh = rng.uniform(1, 50, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1).astype(dtype)


# --- conversions and R-CNN's regression (Appendix C) ------------------------------------------

def test_corner_center_conversion_by_hand():
    # (1, 2, 5, 10): cx = (1 + 5)/2 = 3, cy = (2 + 10)/2 = 6, w = 5 − 1 = 4, h = 10 − 2 = 8.
    np.testing.assert_allclose(np_(B.corners_to_centers([1, 2, 5, 10])), [3, 6, 4, 8])
    np.testing.assert_allclose(np_(B.centers_to_corners([3, 6, 4, 8])), [1, 2, 5, 10])


def test_encode_by_hand():
    # P = (0, 0, 10, 20): Px = 5, Py = 10, Pw = 10, Ph = 20.
    # G = (2, 4, 12, 28): Gx = 7, Gy = 16, Gw = 10, Gh = 24.
    # tx = (7 − 5)/10 = 0.2, ty = (16 − 10)/20 = 0.3,
    # tw = log(10/10) = 0, th = log(24/20) = log 1.2.
    P, G = [0, 0, 10, 20], [2, 4, 12, 28]
    np.testing.assert_allclose(np_(B.encode(G, P)), [0.2, 0.3, 0.0, math.log(1.2)], atol=1e-7)
    # Faster R-CNN's weights (10, 10, 5, 5): (10·0.2, 10·0.3, 5·0, 5·log 1.2) = (2, 3, 0, 0.9116).
    np.testing.assert_allclose(np_(B.encode(G, P, weights=(10, 10, 5, 5))),
                               [2.0, 3.0, 0.0, 5 * math.log(1.2)], rtol=1e-6, atol=1e-6)
    # G = (−5, 0, 15, 10): Gx = 5, Gy = 5, Gw = 20, Gh = 10.
    # tx = (5 − 5)/10 = 0, ty = (5 − 10)/20 = −0.25,
    # tw = log(20/10) = log 2, th = log(10/20) = −log 2.
    np.testing.assert_allclose(np_(B.encode([-5, 0, 15, 10], P)),
                               [0.0, -0.25, math.log(2), -math.log(2)], atol=1e-7)


def test_decode_by_hand():
    # Inverse of the first case above: Ĝx = 10·0.2 + 5 = 7, Ĝy = 20·0.3 + 10 = 16,
    # Ĝw = 10·e⁰ = 10, Ĝh = 20·1.2 = 24,
    # so corners (7 − 5, 16 − 12, 7 + 5, 16 + 12) = (2, 4, 12, 28).
    P = [0, 0, 10, 20]
    np.testing.assert_allclose(np_(B.decode([0.2, 0.3, 0.0, math.log(1.2)], P)), [2, 4, 12, 28],
                               atol=1e-5)
    weighted = B.decode([2, 3, 0, 5 * math.log(1.2)], P, weights=(10, 10, 5, 5))
    np.testing.assert_allclose(np_(weighted), [2, 4, 12, 28], atol=1e-5)


def test_decode_clamps_scale_at_log_1000_over_16():
    assert B.BBOX_XFORM_CLIP == pytest.approx(math.log(62.5))
    # Anchor (0, 0, 16, 16), dw = 100 clamped to log(1000/16): w = 16·62.5 = 1000 around cx = 8,
    # i.e. x from 8 − 500 = −492 to 8 + 500 = 508; dh = 0 keeps (0, 16).
    np.testing.assert_allclose(np_(B.decode([0, 0, 100, 0], [0, 0, 16, 16])), [-492, 0, 508, 16],
                               rtol=1e-5)
    # Without the clamp: w = 16·e⁵ = 2374.5...
    out = np_(B.decode([0, 0, 5, 0], [0, 0, 16, 16], clip=None))
    assert out[2] - out[0] == pytest.approx(16 * math.exp(5), rel=1e-5)


@pytest.mark.parametrize("weights", [None, (10, 10, 5, 5)])
def test_decode_inverts_encode_on_random_boxes(weights):
    rng = np.random.default_rng(0)
    G, P = random_boxes(rng, 200), random_boxes(rng, 200)
    t = B.encode(G, P, weights=weights)
    assert tuple(t.shape) == (200, 4)
    # JAX computes in float32 unless jax_enable_x64 is set: then only the float32 check applies.
    if keras.backend.standardize_dtype(t.dtype) == "float64":
        np.testing.assert_allclose(np_(B.decode(t, P, weights=weights)), G, rtol=0, atol=1e-6)
    # float32 too, at float32 precision for coordinates up to 150.
    G32, P32 = G.astype("float32"), P.astype("float32")
    np.testing.assert_allclose(np_(B.decode(B.encode(G32, P32, weights), P32, weights)), G32,
                               rtol=0, atol=1e-4)


def test_encode_broadcasts_leading_dimensions():
    rng = np.random.default_rng(1)
    G, P = random_boxes(rng, 6).reshape(2, 3, 4), random_boxes(rng, 3)
    t = np_(B.encode(G, P))
    assert t.shape == (2, 3, 4)
    np.testing.assert_allclose(t[1, 2], np_(B.encode(G[1, 2], P[2])), atol=1e-12)


def test_symbolic_inputs_build_without_values():
    x = keras.Input((5, 4))
    assert tuple(B.decode(x, x).shape) == (None, 5, 4)
    assert tuple(B.encode(x, x).shape) == (None, 5, 4)


# --- IoU --------------------------------------------------------------------------------------

def test_iou_by_hand():
    a = [[0, 0, 2, 2], [0, 0, 2, 1], [0, 0, 4, 4], [0, 0, 2, 2], [0, 0, 1, 1]]
    b = [[0, 0, 2, 2],   # identical: 1
         [1, 0, 3, 1],   # half of each overlaps: 1 / (2 + 2 − 1) = 1/3
         [1, 1, 3, 3],   # inside: 4/16 = 1/4
         [1, 1, 3, 3],   # corner overlap: 1 / (4 + 4 − 1) = 1/7
         [1, 0, 2, 1]]   # touching edges only: 0
    got = np_(B.iou(a, b))
    assert got.shape == (5, 5)
    np.testing.assert_allclose(np.diag(got), [1, 1 / 3, 1 / 4, 1 / 7, 0], atol=1e-7)
    assert np_(B.iou([[0, 0, 1, 1]], [[5, 5, 6, 6]]))[0, 0] == 0  # disjoint


def test_iou_matches_numpy_and_is_symmetric():
    rng = np.random.default_rng(2)
    a, b = random_boxes(rng, 7), random_boxes(rng, 5)
    ref = np.zeros((7, 5))
    for i in range(7):
        for j in range(5):
            w = max(0.0, min(a[i, 2], b[j, 2]) - max(a[i, 0], b[j, 0]))
            h = max(0.0, min(a[i, 3], b[j, 3]) - max(a[i, 1], b[j, 1]))
            area = lambda r: (r[2] - r[0]) * (r[3] - r[1])  # noqa: E731
            ref[i, j] = w * h / (area(a[i]) + area(b[j]) - w * h)
    got = B.iou(a, b)
    atol = 1e-12 if keras.backend.standardize_dtype(got.dtype) == "float64" else 1e-6
    np.testing.assert_allclose(np_(got), ref, rtol=0, atol=atol)
    np.testing.assert_allclose(np_(B.iou(b, a)), ref.T, rtol=0, atol=atol)
    batched = np_(B.iou(np.stack([a, a]), np.stack([b, b])))
    assert batched.shape == (2, 7, 5)
    np.testing.assert_allclose(batched[1], ref, rtol=0, atol=atol)


# --- NMS --------------------------------------------------------------------------------------

def nms_reference(boxes, scores, iou_threshold, max_outputs=None, score_threshold=None):
    """Textbook greedy NMS in NumPy; ties in score go in index order."""
    order = np.argsort(-scores, kind="stable")
    if score_threshold is not None:
        order = order[scores[order] > score_threshold]
    keep = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    for i in order:
        ok = True
        for k in keep:
            w = max(0.0, min(boxes[i, 2], boxes[k, 2]) - max(boxes[i, 0], boxes[k, 0]))
            h = max(0.0, min(boxes[i, 3], boxes[k, 3]) - max(boxes[i, 1], boxes[k, 1]))
            if w * h / (area[i] + area[k] - w * h) > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(int(i))
    return keep[:max_outputs]


# A (0.9) and B (0.8): IoU 70/130 = 0.54 > 0.5, so B goes. C (0.7) overlaps B by 0.54 but A only
# by 40/160 = 0.25, and B, already suppressed, suppresses nothing: C stays. D (0.95) is far away.
HAND_BOXES = [[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10], [50, 50, 60, 60]]
HAND_SCORES = [0.9, 0.8, 0.7, 0.95]


@pytest.mark.parametrize("kwargs, expected", [
    ({}, [3, 0, 2]),
    ({"max_outputs": 2}, [3, 0]),
    ({"score_threshold": 0.85}, [3, 0]),
    ({"score_threshold": 0.92}, [3]),
    ({"iou_threshold": 0.6}, [3, 0, 1, 2]),   # 0.54 < 0.6: nothing overlaps enough
    ({"iou_threshold": 0.2}, [3, 0]),         # 0.25 > 0.2: A now removes C as well
])
def test_nms_by_hand(kwargs, expected):
    kept = B.nms(HAND_BOXES, HAND_SCORES, **kwargs)
    assert keras.backend.standardize_dtype(kept.dtype) == "int32"
    assert np_(kept).tolist() == expected


def test_nms_ties_go_in_index_order_and_empty_input():
    same = [[0, 0, 1, 1]] * 3
    assert np_(B.nms(same, [0.5, 0.7, 0.7])).tolist() == [1]
    assert np_(B.nms([[0, 0, 1, 1], [5, 5, 6, 6]], [0.5, 0.5])).tolist() == [0, 1]
    assert np_(B.nms(np.zeros((0, 4)), np.zeros((0,)))).shape == (0,)


@pytest.mark.parametrize("seed", range(4))
def test_nms_matches_bruteforce_on_random_boxes(seed):
    rng = np.random.default_rng(seed)
    boxes = random_boxes(rng, 120, "float32")
    scores = rng.integers(0, 20, size=120).astype("float32") / 20  # many ties on purpose
    for thr in (0.3, 0.5, 0.7):
        assert np_(B.nms(boxes, scores, thr)).tolist() == nms_reference(boxes, scores, thr)
    assert (np_(B.nms(boxes, scores, 0.5, max_outputs=5, score_threshold=0.4)).tolist()
            == nms_reference(boxes, scores, 0.5, 5, 0.4))


def test_nms_long_suppression_chain():
    # Boxes shifted by 1, 2, 3 overlap by 90/110, 80/120, 70/130 > 0.5 and by 4 by 60/140 < 0.5, so
    # greedy keeps boxes 0, 4, 8, ...; each decision hangs on the one before, which makes the
    # fixed-point iteration take many passes.
    boxes = np.array([[i, 0, i + 10, 10] for i in range(40)], "float32")
    scores = np.linspace(1, 0.5, 40, dtype="float32")
    assert np_(B.nms(boxes, scores, 0.5)).tolist() == list(range(0, 40, 4))


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares with tf.image")
def test_nms_agrees_with_tf_image():
    import tensorflow as tf

    rng = np.random.default_rng(7)
    boxes = random_boxes(rng, 200, "float32")
    scores = rng.permutation(200).astype("float32") / 200  # distinct: tf does not order ties
    for thr in (0.3, 0.5):
        ref = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, 200, thr)
        assert np_(B.nms(boxes, scores, thr)).tolist() == ref.numpy().tolist()


# --- bad boxes and shapes ---------------------------------------------------------------------

@pytest.mark.parametrize("call, match", [
    (lambda: B.encode([[0, 0, 1, 1], [2, 2, 2, 5]], [0, 0, 1, 1]), r"boxes\[1\] = .* width 0 "),
    (lambda: B.encode([0, 0, 1, 1], [[0, 0, 1, 1], [0, 4, 3, 1]]), r"anchors\[1\] .* height -3"),
    (lambda: B.decode([0, 0, 0, 0], [5, 0, 1, 1]), r"anchors = .* width -4"),
    (lambda: B.iou([[0, 0, 1, 1]], [[0, 0, 1, 1], [1, 1, 0, 0]]), r"b\[1\]"),
    (lambda: B.nms([[0, 0, 1, 1], [0, 0, np.nan, 1]], [1, 2]), r"boxes\[1\]"),
    (lambda: B.corners_to_centers([[[0, 0, 1, 1], [3, 3, 3, 3]]]), r"boxes\[0, 1\]"),
    (lambda: B.centers_to_corners([5, 5, 0, 2]), r"needs w > 0 and h > 0"),
])
def test_empty_boxes_are_rejected_with_what_to_do(call, match):
    with pytest.raises(ValueError, match=match) as info:
        call()
    assert "Drop empty boxes" in str(info.value)


@pytest.mark.parametrize("call, match", [
    (lambda: B.encode([[0, 0, 1]], [0, 0, 1, 1]), r"boxes must have shape \(\.\.\., 4\)"),
    (lambda: B.decode([[0, 0, 0, 0, 0]], [0, 0, 1, 1]), r"deltas must have shape \(\.\.\., 4\)"),
    (lambda: B.iou([0, 0, 1, 1], [[0, 0, 1, 1]]), r"a must have shape \(N, 4\)"),
    (lambda: B.nms([[0, 0, 1, 1]], [1.0, 2.0]), r"scores of shape \(N,\)"),
    (lambda: B.nms([[0, 0, 1, 1]], [1.0], iou_threshold=1.5), r"iou_threshold"),
    (lambda: B.nms([[0, 0, 1, 1]], [1.0], max_outputs=-1), r"max_outputs"),
    (lambda: B.encode([0, 0, 1, 1], [0, 0, 1, 1], weights=(10, 10, 5)), r"four positive numbers"),
    (lambda: B.decode([0, 0, 1, 1], [0, 0, 1, 1], weights=(10, 0, 5, 5)), r"four positive numbers"),
])
def test_bad_shapes_and_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
