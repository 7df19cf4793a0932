"""Bounding boxes for detection: R-CNN's box regression, intersection over union and greedy
non-maximum suppression, written in `keras.ops` so they run on the TensorFlow, JAX and PyTorch
backends alike.

Box regression (Girshick, Donahue, Darrell, Malik, "Rich feature hierarchies for accurate object
detection and semantic segmentation", CVPR 2014, Appendix C). A proposal P = (Px, Py, Pw, Ph)
(centre, width, height) is moved towards its ground-truth box G by four numbers, the targets

    tx = (Gx − Px) / Pw        ty = (Gy − Py) / Ph
    tw = log(Gw / Pw)          th = log(Gh / Ph)

and a prediction d = (dx, dy, dw, dh) is turned back into a box by the inverse

    Ĝx = Pw·dx + Px            Ĝy = Ph·dy + Py
    Ĝw = Pw·exp(dw)            Ĝh = Ph·exp(dh).

The shifts are relative to the box's size and the scales are logarithmic, so the targets do not
depend on the box's size or position in the image (R-CNN learns them by ridge regression on pool5
features, from proposals with IoU > 0.6 with their ground truth). Faster R-CNN (Ren et al., 2015)
uses the same parameterisation with anchors in place of proposals.

- `encode(boxes, anchors, weights=None)` gives the targets t, `decode(deltas, anchors, ...)` the
  boxes back. `weights` (wx, wy, ww, wh) multiply the targets: Faster R-CNN's second stage uses
  (10, 10, 5, 5) (torchvision's BoxCoder; py-faster-rcnn divided by the standard deviations
  (0.1, 0.1, 0.2, 0.2), which is the same), its RPN (1, 1, 1, 1); SSD's "variances" v are
  weights 1/v. `decode` divides by them first, then clamps dw and dh at log(1000/16) ≈ 4.135 as
  torchvision does, so an untrained network's wild prediction cannot overflow exp (a box grows
  at most 62.5 times its anchor); `clip=None` turns that off.
- `corners_to_centers` / `centers_to_corners`: (x1, y1, x2, y2) <-> (cx, cy, w, h).
- `iou(a, b)`: the (N, M) matrix of intersection over union.
- `nms(boxes, scores, ...)`: greedy non-maximum suppression; the kept indices, best score first.

Convention: every function takes boxes in corner form (x1, y1, x2, y2) unless its name says
otherwise, in continuous coordinates: w = x2 − x1 and cx = (x1 + x2) / 2, as torchvision and
Detectron2 do. R-CNN's original code (and py-faster-rcnn) counted pixels, w = x2 − x1 + 1, for
boxes given as inclusive pixel indices; add 1 to x2 and y2 of such boxes before using them here.

A box with zero or negative width or height (or NaN) is rejected with a ValueError naming it,
whenever the values are known (eager execution); inside a traced function (keras.Input,
tf.function, jax.jit) only the shape (..., 4) is checked.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

__all__ = ["BBOX_XFORM_CLIP", "corners_to_centers", "centers_to_corners", "encode", "decode",
           "iou", "nms"]

# torchvision's bound on dw and dh in decode: exp(4.135) = 62.5 = 1000 / 16, i.e. a 16-pixel
# anchor can grow to a 1000-pixel box and no further.
BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def _concrete(x):
    """x's values as a NumPy array, or None while symbolic (keras.Input, tf.function, jax.jit)."""
    if isinstance(x, keras.KerasTensor):
        return None
    try:
        return np.asarray(ops.convert_to_numpy(x))
    except Exception:  # each backend raises its own error type for a traced tensor
        return None


def _as_boxes(x, name, *, centers=False, min_rank=1):
    """x as a floating tensor of shape (..., 4), after checking that its boxes are not empty."""
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(x.dtype):
        x = ops.cast(x, keras.config.floatx())
    if len(x.shape) < min_rank or x.shape[-1] != 4:
        want = "(..., 4)" if min_rank == 1 else "(N, 4)" if min_rank == 2 else "(batch, N, 4)"
        raise ValueError(f"{name} must have shape {want}, one row of four coordinates per box; "
                         f"got shape {tuple(x.shape)}.")
    values = _concrete(x)
    if values is not None:
        sizes = values[..., 2:] if centers else values[..., 2:] - values[..., :2]
        bad = ~np.all(sizes > 0, axis=-1)  # written so that NaN counts as bad
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            label = f"{name}[{', '.join(map(str, where))}]" if where else name
            form = ("(cx, cy, w, h) needs w > 0 and h > 0" if centers else
                    "(x1, y1, x2, y2) needs x2 > x1 and y2 > y1")
            raise ValueError(
                f"{label} = {values[where].tolist()} has width {sizes[where][0]:g} and height "
                f"{sizes[where][1]:g} ({int(bad.sum())} empty box(es) in all): a box {form}. "
                "Drop empty boxes (e.g. ones clipped to nothing) before this call, and check the "
                "format: boxes in (x, y, w, h) or (y1, x1, y2, x2) order often fail here; convert "
                "(cx, cy, w, h) boxes with centers_to_corners.")
    return x


def _weights(weights):
    if weights is None:
        return (1.0, 1.0, 1.0, 1.0)
    w = tuple(float(v) for v in np.ravel(weights))
    if len(w) != 4 or not all(v > 0 for v in w):
        raise ValueError(f"weights must be four positive numbers (wx, wy, ww, wh), e.g. Faster "
                         f"R-CNN's (10, 10, 5, 5); got {weights!r}.")
    return w


def corners_to_centers(boxes):
    """(x1, y1, x2, y2) -> (cx, cy, w, h), with w = x2 − x1 (continuous coordinates)."""
    boxes = _as_boxes(boxes, "boxes")
    x1, y1, x2, y2 = ops.unstack(boxes, 4, axis=-1)
    return ops.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], axis=-1)


def centers_to_corners(boxes):
    """(cx, cy, w, h) -> (x1, y1, x2, y2); the inverse of corners_to_centers."""
    boxes = _as_boxes(boxes, "boxes", centers=True)
    cx, cy, w, h = ops.unstack(boxes, 4, axis=-1)
    return ops.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def encode(boxes, anchors, weights=None):
    """R-CNN's regression targets (tx, ty, tw, th) that move `anchors` (P) onto `boxes` (G).

    Both are corner boxes of shape (..., 4) whose leading dimensions broadcast; the result has
    their broadcast shape. tx = wx·(Gx − Px)/Pw, ty = wy·(Gy − Py)/Ph, tw = ww·log(Gw/Pw),
    th = wh·log(Gh/Ph), with weights (wx, wy, ww, wh) = (1, 1, 1, 1) unless given.
    """
    wx, wy, ww, wh = _weights(weights)
    gx, gy, gw, gh = ops.unstack(corners_to_centers(_as_boxes(boxes, "boxes")), 4, axis=-1)
    px, py, pw, ph = ops.unstack(corners_to_centers(_as_boxes(anchors, "anchors")), 4, axis=-1)
    return ops.stack([wx * (gx - px) / pw, wy * (gy - py) / ph,
                      ww * ops.log(gw / pw), wh * ops.log(gh / ph)], axis=-1)


def decode(deltas, anchors, weights=None, clip=BBOX_XFORM_CLIP):
    """The corner boxes that `deltas` (dx, dy, dw, dh) of shape (..., 4) make of `anchors` (P).

    Ĝx = Pw·dx/wx + Px, Ĝy = Ph·dy/wy + Py, Ĝw = Pw·exp(min(dw/ww, clip)),
    Ĝh = Ph·exp(min(dh/wh, clip)): the inverse of `encode` with the same weights, as long as the
    scales stay under exp(clip) = 62.5 times the anchor. `clip=None` leaves dw and dh unclamped.
    """
    wx, wy, ww, wh = _weights(weights)
    deltas = ops.convert_to_tensor(deltas)
    if len(deltas.shape) < 1 or deltas.shape[-1] != 4:
        raise ValueError(f"deltas must have shape (..., 4), (dx, dy, dw, dh) per box; got shape "
                         f"{tuple(deltas.shape)}.")
    px, py, pw, ph = ops.unstack(corners_to_centers(_as_boxes(anchors, "anchors")), 4, axis=-1)
    dx, dy, dw, dh = ops.unstack(ops.cast(deltas, px.dtype), 4, axis=-1)
    dw, dh = dw / ww, dh / wh
    if clip is not None:
        dw, dh = ops.minimum(dw, clip), ops.minimum(dh, clip)
    cx, cy = pw * dx / wx + px, ph * dy / wy + py
    w, h = pw * ops.exp(dw), ph * ops.exp(dh)
    return ops.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def iou(a, b):
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4): (N, M).

    Leading batch dimensions are allowed, (B, N, 4) with (B, M, 4) gives (B, N, M). Boxes that
    only touch (share an edge) have IoU 0.
    """
    a = _as_boxes(a, "a", min_rank=2)
    b = _as_boxes(b, "b", min_rank=2)
    a, b = ops.expand_dims(a, -2), ops.expand_dims(b, -3)  # (..., N, 1, 4) and (..., 1, M, 4)
    top_left = ops.maximum(a[..., :2], b[..., :2])
    bottom_right = ops.minimum(a[..., 2:], b[..., 2:])
    overlap = ops.maximum(bottom_right - top_left, 0.0)
    inter = overlap[..., 0] * overlap[..., 1]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / (area_a + area_b - inter)


def nms(boxes, scores, iou_threshold=0.5, max_outputs=None, score_threshold=None):
    """Greedy non-maximum suppression: the indices of the boxes kept, highest score first.

    Take the best remaining box, drop every box whose IoU with it is above `iou_threshold`, and
    repeat. Boxes scoring at or below `score_threshold` are dropped first, and at most
    `max_outputs` indices are returned. Equal scores go in index order. `boxes` (N, 4) are corner
    boxes, `scores` (N,); the result is an int32 tensor of shape (K,). Needs concrete values
    (eager execution), since K depends on them.

    Rather than a Python loop over boxes, it iterates the whole greedy rule at once: box j is kept
    iff no kept box ranked above it overlaps it by more than the threshold. Starting from "all
    kept", each pass settles at least the next box in score order, and a pass that changes nothing
    has reached greedy NMS's answer, so the (Python, eager) loop stops after at most N + 1 passes,
    usually a handful. Each pass costs an (N, N) comparison; the (N, N) IoU matrix is meant for
    the few thousand boxes of a course detector (tf.image.non_max_suppression or
    torchvision.ops.nms scale further).
    """
    boxes = _as_boxes(boxes, "boxes", min_rank=2)
    scores = ops.convert_to_tensor(scores)
    n = boxes.shape[0]
    if len(boxes.shape) != 2 or tuple(scores.shape) != (n,):
        raise ValueError(f"nms needs boxes of shape (N, 4) and scores of shape (N,); got "
                         f"{tuple(boxes.shape)} and {tuple(scores.shape)}.")
    if not 0 <= iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in [0, 1]; got {iou_threshold}.")
    if max_outputs is not None and (int(max_outputs) != max_outputs or max_outputs < 0):
        raise ValueError(f"max_outputs must be a non-negative integer or None; got "
                         f"{max_outputs!r}.")
    if n == 0:
        return ops.zeros((0,), dtype="int32")
    # Rank by score, ties by index: an explicit comparison, as argsort is not stable everywhere.
    s_i, s_j = ops.expand_dims(scores, 1), ops.expand_dims(scores, 0)
    index = ops.arange(n)
    earlier = ops.expand_dims(index, 0) < ops.expand_dims(index, 1)  # [i, j]: j < i
    beaten = ops.logical_or(s_j > s_i, ops.logical_and(s_j == s_i, earlier))
    rank = ops.sum(ops.cast(beaten, "int32"), axis=1)  # 0 for the best box; all distinct
    # suppresses[i, j]: box i ranks above box j and overlaps it too much.
    suppresses = ops.logical_and(ops.expand_dims(rank, 1) < ops.expand_dims(rank, 0),
                                 iou(boxes, boxes) > iou_threshold)
    candidate = ops.ones((n,), dtype="bool")
    if score_threshold is not None:
        candidate = scores > score_threshold

    keep = candidate
    for _ in range(n + 1):  # a Python loop over eager tensors; it breaks by pass n + 1 at worst
        hit = ops.any(ops.logical_and(ops.expand_dims(keep, 1), suppresses), axis=0)
        new = ops.logical_and(candidate, ops.logical_not(hit))
        if not ops.convert_to_numpy(ops.any(ops.not_equal(new, keep))):
            break
        keep = new
    order = ops.argsort(rank)  # ranks are distinct, so any sort gives the same order
    # K depends on the values: pick on the host, so that no op sees a shape that depends on
    # them (JAX compiles every op again for each new shape; ops.nonzero compiles slowly too).
    order, keep = ops.convert_to_numpy(order), ops.convert_to_numpy(ops.take(keep, order))
    kept = order[keep.astype(bool)].astype("int32")
    if max_outputs is not None:
        kept = kept[: int(max_outputs)]
    return ops.convert_to_tensor(kept, dtype="int32")
