"""A one-stage detector trained end to end: shapes with exact boxes, anchors, matching, a loss,
decoding with NMS, and PASCAL VOC's mean average precision.

The parts follow RetinaNet (Lin, Goyal, Girshick, He and Dollár, "Focal Loss for Dense Object
Detection", ICCV 2017), shrunk to one feature map: a small backbone down to stride 8, a shared
3x3 layer, and two sibling 3x3 convolutions that give, for every anchor, C sigmoid class scores
and the four R-CNN box deltas of `cnnkit.boxes.encode`. Simplified: one pyramid level instead of
P3-P7, square anchors of three sizes instead of three sizes by three aspect ratios, and the
head's four 3x3 layers per branch cut to one shared layer.

- `shapes(n, ...)`: images of one to four non-overlapping circles, squares and triangles; each
  box is the extent of the object's exact mask (the pixels it painted), so every box is right.
- `anchors(image_size, stride, sizes)`: square anchors centred on every cell of the grid.
- `assign(anchors, truth_boxes, truth_labels)`: each anchor takes the object it overlaps most
  (IoU >= 0.5: that object's class and encoded box; < 0.4: background; between: ignored), and
  every object keeps its best anchor even below 0.5 (Faster R-CNN's rule, so none is left out).
- `DetectionLoss`: RetinaNet's focal loss on the classes plus Fast R-CNN's smooth L1 on the
  deltas of the positive anchors, both divided by the number of positive anchors.
- `build_detector(...)`: the functional model; `detect(...)` turns its output into boxes,
  scores and labels (sigmoid, score threshold, decode, per-class NMS).
- `precision_recall`, `average_precision`, `evaluate`: PASCAL VOC's AP at IoU 0.5 with all-point
  interpolation (VOC 2010 onwards, Everingham et al., "The PASCAL Visual Object Classes (VOC)
  Challenge", IJCV 2010; the devkit's VOCevaldet and VOCap), and mAP over the classes.

Matching a detection to the ground truth is the devkit's: detections in descending score order,
each compared with the truth it overlaps most; a true positive when that IoU is at least the
threshold (the devkit's `ovmax >= minoverlap`; COCO's rule is also >=) and that truth is not yet
taken, else a false positive (a duplicate of a found object counts against the detector).
Unlike VOC, no box is marked "difficult" here. A class without ground truth has no AP (NaN) and
is left out of the mean, as COCO does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import keras
import numpy as np
from keras import layers, ops

from cnnkit import boxes as box_ops
from cnnkit.blocks import conv_bn
from cnnkit.data.segmentation import _colour_against, _shape, _textured_background

__all__ = ["CLASS_NAMES", "BOX_WEIGHTS", "DetectionData", "Detections", "Evaluation", "shapes",
           "anchors", "assign", "DetectionLoss", "build_detector", "detect",
           "precision_recall", "average_precision", "evaluate"]

CLASS_NAMES = ("circle", "square", "triangle")  # labels 0, 1, 2 (segmentation's 1, 2, 3)
# Faster R-CNN's second-stage weights (SSD's variances 0.1 and 0.2): targets of spread about 1.
BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


@dataclass
class DetectionData:
    """Images (n, S, S, 3) float32 in [0, 1]; per image, corner boxes (k, 4) and labels (k,)."""

    images: np.ndarray
    boxes: list
    labels: list
    class_names: tuple = CLASS_NAMES

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        """The examples at `index` (a slice or an array of indices) as another DetectionData."""
        picked = np.arange(len(self))[index]
        return DetectionData(self.images[picked], [self.boxes[i] for i in picked],
                             [self.labels[i] for i in picked], self.class_names)


class Detections(NamedTuple):
    """One image's detections: corner boxes (k, 4), scores (k,), labels (k,)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray


def shapes(n, image_size=64, seed=0, objects=(1, 4), radius=(0.08, 0.16), gap=2):
    """`n` images of circles, squares and triangles with one box and one label per object.

    The painting is `cnnkit.data.segmentation.shapes`'s (textured background, equal areas so
    size does not give the class away, random colours and rotations, Gaussian noise), but
    objects do not overlap: each image draws a number of objects in `objects` (inclusive), and
    an object is placed only where its box, grown by `gap` pixels, meets no earlier box (up to
    50 tries, after which the image has fewer objects). The box is the extent of the pixels
    painted: x1 = the first column, x2 = the last column + 1 (pixel edges, continuous
    coordinates), so it is exact. Labels 0 circle, 1 square, 2 triangle (`CLASS_NAMES`).
    """
    low, high = objects
    if not 1 <= low <= high:
        raise ValueError(f"objects must be (fewest, most) with 1 <= fewest <= most; got "
                         f"{objects!r}.")
    rng = np.random.default_rng(seed)
    s = int(image_size)
    y, x = np.mgrid[0:s, 0:s] + 0.5  # pixel centres
    images = np.empty((n, s, s, 3), "float32")
    all_boxes, all_labels = [], []
    for i in range(n):
        image, background = _textured_background(rng, x, y)
        found, labels = [], []
        for _ in range(rng.integers(low, high + 1)):
            label = int(rng.integers(0, len(CLASS_NAMES)))
            for _ in range(50):
                r = rng.uniform(*radius) * s
                cx, cy = rng.uniform(r, s - r, 2)
                inside = _shape(label + 1, x, y, cx, cy, r, rng.uniform(0, 2 * np.pi))
                rows, cols = np.flatnonzero(inside.any(axis=1)), np.flatnonzero(inside.any(axis=0))
                box = np.array([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1], "float32")
                if all(_apart(box, other, gap) for other in found):
                    image[inside] = _colour_against(rng, background)
                    found.append(box)
                    labels.append(label)
                    break
        image += rng.normal(0, 0.04, image.shape)
        images[i] = np.clip(image, 0, 1)
        all_boxes.append(np.array(found, "float32").reshape(-1, 4))
        all_labels.append(np.array(labels, "int32"))
    return DetectionData(images, all_boxes, all_labels)


def _apart(a, b, gap):
    return (a[0] >= b[2] + gap or b[0] >= a[2] + gap or a[1] >= b[3] + gap
            or b[1] >= a[3] + gap)


def anchors(image_size, stride, sizes):
    """Square corner anchors of every size in `sizes`, centred on each cell of the stride grid.

    Shape (cells * len(sizes), 4), ordered row by row, then column, then size: the order of a
    head's (H, W, A * k) output reshaped to (H * W * A, k).
    """
    cells = image_size // stride
    centre = (np.arange(cells) + 0.5) * stride
    cy, cx = np.meshgrid(centre, centre, indexing="ij")
    half = np.asarray(sizes, "float32") / 2
    cx, cy = cx[..., None], cy[..., None]  # (H, W, 1) against (A,)
    return np.stack([cx - half, cy - half, cx + half, cy + half], -1).reshape(-1, 4).astype(
        "float32")


def assign(anchor_boxes, truth_boxes, truth_labels, positive=0.5, negative=0.4,
           weights=BOX_WEIGHTS):
    """Training targets (n, N, 5) for N anchors in n images: a label and four box targets each.

    Column 0: the class + 1 for a positive anchor, 0 for background, -1 for an anchor the loss
    ignores (its best IoU is in [negative, positive)); columns 1-4: `cnnkit.boxes.encode` of the
    anchor's object (zeros unless positive). `truth_boxes` and `truth_labels` are per image.
    """
    n = len(truth_boxes)
    padded, labels = _padded(truth_boxes, truth_labels, chunk=_CHUNK)
    overlaps = np.concatenate([ops.convert_to_numpy(box_ops.iou(anchor_boxes[None], part))
                               for part in np.split(padded, len(padded) // _CHUNK)])
    padded, labels, overlaps = padded[:n], labels[:n], overlaps[:n]  # (n, N, most)
    best = overlaps.argmax(axis=2)
    best_iou = np.take_along_axis(overlaps, best[..., None], axis=2)[..., 0]
    # Every object keeps the anchor it overlaps most, whatever that IoU.
    images, objects = np.nonzero(labels >= 0)
    top = overlaps[images, :, objects].argmax(axis=1)
    best[images, top], best_iou[images, top] = objects, 1.0
    target_class = np.where(best_iou >= positive, np.take_along_axis(labels, best, 1) + 1, -1)
    target_class[best_iou < negative] = 0
    matched = np.take_along_axis(padded, best[..., None], axis=1)  # (n, N, 4)
    parts = np.split(_fill(matched, _CHUNK, _FAR), len(_fill(matched, _CHUNK, _FAR)) // _CHUNK)
    deltas = np.concatenate([ops.convert_to_numpy(box_ops.encode(part, anchor_boxes[None],
                                                                 weights=weights))
                             for part in parts])[:n]
    deltas[target_class <= 0] = 0.0
    return np.concatenate([target_class[..., None], deltas], axis=-1).astype("float32")


# Box arrays go to keras.ops in chunks of fixed shapes: JAX compiles each new shape again.
_CHUNK = 256
_FAR = np.array([-20.0, -20.0, -10.0, -10.0], "float32")  # outside every image: IoU 0


def _fill(x, chunk, value):
    """x with its first axis padded up to a multiple of `chunk` with `value` (a row of x)."""
    extra = -len(x) % chunk
    return np.concatenate([x, np.full((extra, *x.shape[1:]), value, x.dtype)]) if extra else x


def _padded(box_list, label_list, chunk=1, multiple=4):
    """Per-image boxes and labels as arrays (n', most, 4) and (n', most), padded with far boxes
    and label -1; `most` is a multiple of `multiple` and n' of `chunk` (fewer shapes)."""
    most = max(1, max((len(b) for b in box_list), default=1))
    most += -most % multiple
    n = len(box_list) + (-len(box_list) % chunk)
    padded = np.tile(_FAR, (n, most, 1))
    labels = np.full((n, most), -1, "int64")
    for i, (b, c) in enumerate(zip(box_list, label_list)):
        padded[i, : len(b)], labels[i, : len(b)] = np.reshape(b, (-1, 4)), np.reshape(c, -1)
    return padded, labels


@keras.saving.register_keras_serializable(package="cnnkit")
class DetectionLoss(keras.losses.Loss):
    """RetinaNet's focal loss on the class scores plus smooth L1 on the positive anchors' boxes.

    y_true (batch, N, 5) from `assign`; y_pred (batch, N, C + 4): C class logits, then the
    deltas. Focal loss (Lin et al., 2017): FL(p_t) = −α_t (1 − p_t)^γ log p_t per anchor and
    class, α = 0.25 for the object and 0.75 for background, γ = 2, summed over every anchor but
    the ignored ones. Smooth L1 (Fast R-CNN, Girshick, ICCV 2015): 0.5 x² / β for |x| < β, else
    |x| − 0.5 β, summed over the positive anchors' four deltas. Both sums are divided by the
    number of positive anchors in the batch (at least 1) and added with weight 1; the "sum"
    reduction makes that the batch's loss.
    """

    def __init__(self, alpha=0.25, gamma=2.0, beta=1.0, name="detection_loss",
                 reduction="sum", **kwargs):
        super().__init__(name=name, reduction=reduction, **kwargs)
        self.alpha, self.gamma, self.beta = float(alpha), float(gamma), float(beta)

    def call(self, y_true, y_pred):
        classes = ops.shape(y_pred)[-1] - 4
        label = ops.cast(y_true[..., 0], "int32")
        logits, deltas = y_pred[..., :classes], y_pred[..., classes:]
        target = ops.one_hot(ops.maximum(label - 1, 0), classes) * ops.cast(
            ops.expand_dims(label > 0, -1), logits.dtype)
        p = ops.sigmoid(logits)
        ce = ops.binary_crossentropy(target, logits, from_logits=True)
        p_t = target * p + (1 - target) * (1 - p)
        alpha_t = target * self.alpha + (1 - target) * (1 - self.alpha)
        focal = alpha_t * (1 - p_t) ** self.gamma * ce
        kept = ops.cast(label >= 0, logits.dtype)
        positive = ops.cast(label > 0, logits.dtype)
        error = ops.abs(deltas - y_true[..., 1:])
        smooth = ops.where(error < self.beta, 0.5 * error ** 2 / self.beta,
                           error - 0.5 * self.beta)
        count = ops.maximum(ops.sum(positive), 1.0)
        per_image = (ops.sum(focal, axis=-1) * kept + ops.sum(smooth, axis=-1) * positive)
        return ops.sum(per_image, axis=-1) / count

    def get_config(self):
        return {**super().get_config(), "alpha": self.alpha, "gamma": self.gamma,
                "beta": self.beta}


def build_detector(image_size=64, num_classes=3, anchors_per_cell=3, widths=(16, 32, 64),
                   prior=0.01, name="one_stage_detector"):
    """A small one-stage detector: a backbone to stride 8, then RetinaNet's two sibling heads.

    Backbone: `conv_bn` 3x3 layers, stage1 (widths[0], stride 2), stage2 (widths[1], stride 2,
    then one more), stage3 (widths[2], stride 2, then one more). Head: a shared 3x3 `conv_bn`,
    then 3x3 convolutions to A·C class logits and A·4 deltas per cell, reshaped to one row per
    anchor and concatenated: output (batch, (S/8)² · A, C + 4). The class bias starts at
    −log((1 − π)/π), π = `prior`, so that every anchor first scores π (RetinaNet's
    initialisation: otherwise the background's many anchors swamp the first steps).
    """
    inputs = keras.Input((image_size, image_size, 3))
    x = conv_bn(inputs, widths[0], 3, strides=2, name="stage1")
    x = conv_bn(x, widths[1], 3, strides=2, name="stage2_down")
    x = conv_bn(x, widths[1], 3, name="stage2_conv")
    x = conv_bn(x, widths[2], 3, strides=2, name="stage3_down")
    x = conv_bn(x, widths[2], 3, name="stage3_conv")
    x = conv_bn(x, widths[2], 3, name="head")
    bias = keras.initializers.Constant(-np.log((1 - prior) / prior))
    scores = layers.Conv2D(anchors_per_cell * num_classes, 3, padding="same",
                           bias_initializer=bias, name="head_classes")(x)
    deltas = layers.Conv2D(anchors_per_cell * 4, 3, padding="same", name="head_boxes")(x)
    cells = (image_size // 8) ** 2 * anchors_per_cell
    scores = layers.Reshape((cells, num_classes), name="classes_per_anchor")(scores)
    deltas = layers.Reshape((cells, 4), name="boxes_per_anchor")(deltas)
    return keras.Model(inputs, layers.Concatenate(name="detections")([scores, deltas]),
                       name=name)


def detect(outputs, anchor_boxes, image_size, score_threshold=0.05, iou_threshold=0.5,
           max_detections=100, weights=BOX_WEIGHTS):
    """The detections of every image from the model's outputs (n, N, C + 4): a list of
    `Detections`.

    Per image: sigmoid scores; every (anchor, class) pair above `score_threshold`, at most the
    1,000 best (RetinaNet's rule); their anchors' deltas decoded and clipped to the image; NMS
    per class at `iou_threshold` (one `cnnkit.boxes.nms` call, each class's boxes shifted apart
    so that boxes of different classes never suppress each other); the `max_detections` best.
    """
    outputs = np.asarray(outputs, "float32")
    classes = outputs.shape[-1] - 4
    scores = 1 / (1 + np.exp(-outputs[..., :classes]))
    n = len(outputs)
    deltas = _fill(outputs[..., classes:], _CHUNK, 0.0)
    decoded = np.clip(np.concatenate([
        ops.convert_to_numpy(box_ops.decode(part, anchor_boxes[None], weights=weights))
        for part in np.split(deltas, len(deltas) // _CHUNK)])[:n], 0, image_size)
    found = []
    for score, box in zip(scores, decoded):
        anchor, label = np.nonzero(score > score_threshold)
        value = score[anchor, label]
        best = np.argsort(-value, kind="stable")[:1000]
        anchor, label, value = anchor[best], label[best], value[best]
        picked = box[anchor]
        size = picked[:, 2:] - picked[:, :2]
        keep = np.all(size > 0, axis=1)  # a box clipped to nothing
        anchor, label, value, picked = anchor[keep], label[keep], value[keep], picked[keep]
        if len(value):
            shifted = picked + (label * 2.0 * image_size)[:, None]
            # Padded to a power of two, at least 128, with far boxes scoring -1 that the
            # threshold drops: a few shapes, each compiled once on JAX.
            bucket = 1 << max(7, (len(value) - 1).bit_length())
            kept = ops.convert_to_numpy(box_ops.nms(
                _fill(shifted, bucket, _FAR), _fill(value, bucket, -1.0), iou_threshold,
                max_outputs=max_detections, score_threshold=-0.5))
            picked, value, label = picked[kept], value[kept], label[kept]
        found.append(Detections(picked.reshape(-1, 4), value.astype("float32"),
                                label.astype("int32")))
    return found


# ---- PASCAL VOC's average precision -----------------------------------------------------------

def _true_positives(overlaps, order, iou_threshold):
    """TP flags, in `order`, of detections against truths given their IoU matrix (N, M)."""
    taken = np.zeros(overlaps.shape[1], bool)
    hit = np.zeros(len(order), bool)
    if overlaps.shape[1] == 0:
        return hit
    for k, d in enumerate(order):
        j = int(overlaps[d].argmax())
        if overlaps[d, j] >= iou_threshold and not taken[j]:
            hit[k] = taken[j] = True
    return hit


def _iou(a, b):
    a, b = np.asarray(a, "float32").reshape(-1, 4), np.asarray(b, "float32").reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), "float64")
    return ops.convert_to_numpy(box_ops.iou(a, b)).astype("float64")


def precision_recall(boxes, scores, truths, iou_threshold=0.5):
    """Precision and recall (each (N,), in descending score order) of one class's detections
    `boxes` (N, 4) with `scores` (N,) against its ground-truth boxes `truths` (M, 4) in one
    image: after the k best detections, precision = TP / k and recall = TP / M."""
    scores = np.asarray(scores, "float64").reshape(-1)
    order = np.argsort(-scores, kind="stable")
    hit = _true_positives(_iou(boxes, truths), order, iou_threshold)
    return _curve(hit, len(np.asarray(truths).reshape(-1, 4)))


def _curve(hit, truths):
    tp = np.cumsum(hit)
    precision = tp / np.arange(1, len(hit) + 1)
    recall = tp / truths if truths else np.full(len(hit), np.nan)
    return precision, recall


def average_precision(precision, recall):
    """The area under the precision-recall curve with all-point interpolation (VOC 2010 on).

    The curve runs from recall 0 (a sentinel) to its last recall. Precision at recall r is
    replaced by the best precision at any recall >= r (the monotone envelope, so that a later,
    better point is not hidden by a dip), then AP = Σ (r_{i+1} − r_i) · p_interp(r_{i+1}) over
    the points where recall rises. (VOC 2007 averaged the envelope at the 11 recalls 0, 0.1,
    ..., 1 instead.)
    """
    precision = np.concatenate([[0.0], np.asarray(precision, "float64").reshape(-1), [0.0]])
    recall = np.concatenate([[0.0], np.asarray(recall, "float64").reshape(-1), [1.0]])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    rises = np.flatnonzero(recall[1:] != recall[:-1])
    return float(np.sum((recall[rises + 1] - recall[rises]) * envelope[rises + 1]))


@dataclass
class Evaluation:
    """Per class: AP (NaN without ground truth), the precision-recall curve, the number of
    ground-truth boxes; `mAP` is the mean AP over the classes that have ground truth."""

    ap: np.ndarray
    precision: list
    recall: list
    truths: np.ndarray
    iou_threshold: float

    @property
    def mAP(self) -> float:
        present = self.truths > 0
        return float(np.mean(self.ap[present])) if present.any() else float("nan")


def evaluate(detections, truth_boxes, truth_labels, num_classes, iou_threshold=0.5):
    """VOC's mAP of `detections` (one `Detections` per image) against the ground truth (per
    image, boxes (k, 4) and labels (k,)).

    Each class's detections of all images are pooled and ranked by score; each is matched
    within its own image (best-IoU truth, at least `iou_threshold`, not yet taken).
    """
    if len(detections) != len(truth_boxes):
        raise ValueError(f"{len(detections)} images of detections but {len(truth_boxes)} of "
                         "ground truth.")
    pooled = [([], []) for _ in range(num_classes)]
    counts = np.zeros(num_classes, "int64")
    # One IoU call for every image, padded to the most detections and truths of any image.
    found_boxes, _ = _padded([f.boxes for f in detections], [f.labels for f in detections],
                             multiple=16)
    truths_padded, _ = _padded(truth_boxes, truth_labels)
    all_overlaps = np.zeros((len(detections), found_boxes.shape[1], truths_padded.shape[1]))
    if len(detections):
        all_overlaps = ops.convert_to_numpy(box_ops.iou(found_boxes, truths_padded))
    for found, t_boxes, t_labels, overlaps in zip(detections, truth_boxes, truth_labels,
                                                  all_overlaps):
        t_labels = np.asarray(t_labels).reshape(-1)
        labels = np.asarray(found.labels).reshape(-1)
        overlaps = overlaps[: len(labels), : len(t_labels)].astype("float64")
        scores = np.asarray(found.scores, "float64").reshape(-1)
        for c in range(num_classes):
            mine, theirs = np.flatnonzero(labels == c), np.flatnonzero(t_labels == c)
            counts[c] += len(theirs)
            order = np.argsort(-scores[mine], kind="stable")
            hit = _true_positives(overlaps[np.ix_(mine, theirs)], order, iou_threshold)
            pooled[c][0].append(scores[mine][order])
            pooled[c][1].append(hit)
    ap, precisions, recalls = np.full(num_classes, np.nan), [], []
    for c, (scores, hits) in enumerate(pooled):
        scores, hits = np.concatenate(scores), np.concatenate(hits)
        order = np.argsort(-scores, kind="stable")
        precision, recall = _curve(hits[order], int(counts[c]))
        precisions.append(precision)
        recalls.append(recall)
        if counts[c]:
            ap[c] = average_precision(precision, recall)
    return Evaluation(ap, precisions, recalls, counts, iou_threshold)
