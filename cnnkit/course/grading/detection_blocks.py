"""Graders of exercise 14 · Detection blocks (solutions/14_detection_blocks.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, real_number, student

__all__ = ["check_encode_box", "check_decode_box", "check_iou", "check_precision_recall",
           "check_average_precision"]


def _random_corner_boxes(rng, n, low=0.0, high=200.0, smallest=2.0, largest=120.0):
    """n corner boxes (x1, y1, x2, y2) with widths and heights between `smallest` and `largest`."""
    xy = rng.uniform(low, high, size=(n, 2))
    wh = rng.uniform(smallest, largest, size=(n, 2))
    return np.concatenate([xy, xy + wh], axis=1)


def _centres(b):
    """(cx, cy, w, h) of corner boxes b (..., 4), continuous coordinates."""
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2,
                     b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]], axis=-1)


def _corners(c):
    return np.stack([c[..., 0] - c[..., 2] / 2, c[..., 1] - c[..., 3] / 2,
                     c[..., 0] + c[..., 2] / 2, c[..., 1] + c[..., 3] / 2], axis=-1)


_STACK = "one ROW per box: stack the four columns along axis=1, np.stack([...], axis=1)"


def _rows_of_four(got, call, n, what):
    """The student's (n, 4) array; a FAIL naming the layout when it has another shape."""
    got = array(got, call)
    hint = _STACK if got.shape == (4, n) else what
    expect(got.shape == (n, 4), f"{call} returned shape {got.shape}, expected {(n, 4)}: {hint}.")
    return got


def _hint(got, want, variants, fallback, **tolerance):
    """The hint of the slip in `variants` ({hint: value}) that `got` matches, else `fallback`."""
    return one_of(got, [(want.T, _STACK)] + [(value, hint) for hint, value in variants.items()],
                  fallback, **tolerance)


def _encode_variants(p, g):
    """The usual slips in R-CNN's targets, each with the hint that names it."""
    px, py, pw, ph = np.moveaxis(_centres(p), -1, 0)
    gx, gy, gw, gh = np.moveaxis(_centres(g), -1, 0)
    qx, qy, qw, qh = np.moveaxis(_centres(p + [0, 0, 1, 1]), -1, 0)  # pixel-count widths
    hx, hy, hw, hh = np.moveaxis(_centres(g + [0, 0, 1, 1]), -1, 0)
    t = np.stack
    return {
        "the targets move the PROPOSAL onto the ground truth: (G_x − P_x) / P_w and "
        "log(G_w / P_w); you swapped P and G":
            t([(px - gx) / gw, (py - gy) / gh, np.log(pw / gw), np.log(ph / gh)], -1),
        "t_w and t_h are logarithms: t_w = log(G_w / P_w), not the ratio itself":
            t([(gx - px) / pw, (gy - py) / ph, gw / pw, gh / ph], -1),
        "t_w and t_h are logarithms: t_w = log(G_w / P_w), not the ratio minus 1":
            t([(gx - px) / pw, (gy - py) / ph, gw / pw - 1, gh / ph - 1], -1),
        "t_w and t_h use the natural logarithm (np.log), not log10":
            t([(gx - px) / pw, (gy - py) / ph, np.log10(gw / pw), np.log10(gh / ph)], -1),
        "divide the shift by the PROPOSAL's size (P_w, P_h), not the ground truth's":
            t([(gx - px) / gw, (gy - py) / gh, np.log(gw / pw), np.log(gh / ph)], -1),
        "divide the shift by the proposal's width and height: t_x = (G_x − P_x) / P_w, so "
        "that zooming the image does not change the targets":
            t([gx - px, gy - py, np.log(gw / pw), np.log(gh / ph)], -1),
        "t_x divides by the width P_w and t_y by the height P_h; you swapped them":
            t([(gx - px) / ph, (gy - py) / pw, np.log(gw / pw), np.log(gh / ph)], -1),
        "shift the CENTRES: convert (x1, y1, x2, y2) to centre (x, y) = ((x1 + x2) / 2, "
        "(y1 + y2) / 2), width x2 − x1 and height y2 − y1 first":
            t([(g[:, 0] - p[:, 0]) / pw, (g[:, 1] - p[:, 1]) / ph, np.log(gw / pw),
               np.log(gh / ph)], -1),
        "use continuous coordinates, w = x2 − x1 (no + 1), as cnnkit.boxes does":
            t([(hx - qx) / qw, (hy - qy) / qh, np.log(hw / qw), np.log(hh / qh)], -1),
        "return the four targets in the order (t_x, t_y, t_w, t_h)":
            t([(gx - px) / pw, np.log(gw / pw), (gy - py) / ph, np.log(gh / ph)], -1),
    }


def check_encode_box(encode_box):
    """`encode_box(proposal, truth)` -> R-CNN's targets (N, 4): (t_x, t_y, t_w, t_h) that move
    each proposal (N, 4) onto its ground-truth box (N, 4), both in corners (x1, y1, x2, y2).
    Checked against cnnkit.boxes.encode on random boxes."""
    encode_box = student(encode_box)
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(140)
        cases = [(np.array([[10.0, 20.0, 110.0, 70.0]]), np.array([[20.0, 10.0, 140.0, 90.0]])),
                 (np.array([[0.0, 0.0, 10.0, 20.0], [5.0, 5.0, 6.0, 9.0]]),
                  np.array([[-5.0, 0.0, 15.0, 10.0], [4.0, 6.0, 8.0, 7.0]]))]
        for _ in range(6):
            n = int(rng.integers(1, 9))
            cases.append((_random_corner_boxes(rng, n), _random_corner_boxes(rng, n)))
        for proposal, truth in cases:
            n = len(proposal)
            want = keras.ops.convert_to_numpy(boxes.encode(truth, proposal))
            call = f"encode_box(proposal, truth) on {n} pair(s) of boxes"
            got = _rows_of_four(encode_box(proposal.copy(), truth.copy()), call, n,
                                "one row (t_x, t_y, t_w, t_h) per proposal")
            if np.allclose(got, want, rtol=1e-4, atol=1e-5):
                continue
            hint = _hint(got, want, _encode_variants(proposal, truth),
                         "t_x = (G_x − P_x) / P_w, t_y = (G_y − P_y) / P_h, "
                         "t_w = log(G_w / P_w), t_h = log(G_h / P_h), with centres, "
                         "widths and heights", rtol=1e-4, atol=1e-5)
            row = int(np.abs(got - want).max(axis=1).argmax())
            expect(False, f"{call}: for proposal {proposal[row].round(2).tolist()} and truth "
                    f"{truth[row].round(2).tolist()} you returned {got[row].round(4).tolist()}, "
                    f"expected {want[row].round(4).tolist()}: {hint}.")
        pairs = sum(len(p) for p, _ in cases)
        return (f"{pairs} proposal / ground-truth pairs agree with cnnkit.boxes.encode; the "
                "lesson's P and G give (0.2, 0.1, 0.1823, 0.47).")

    return grade("encode_box", run)


def _decode_variants(d, p):
    px, py, pw, ph = np.moveaxis(_centres(p), -1, 0)
    dx, dy, dw, dh = np.moveaxis(d, -1, 0)
    t = np.stack
    right = t([pw * dx + px, ph * dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)
    return {
        "return corners (x1, y1, x2, y2), not (centre x, centre y, width, height): "
        "x1 = Ĝ_x − Ĝ_w / 2, x2 = Ĝ_x + Ĝ_w / 2": right,
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w·d_w":
            _corners(t([pw * dx + px, ph * dy + py, pw * dw, ph * dh], -1)),
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w·(1 + d_w)":
            _corners(t([pw * dx + px, ph * dy + py, pw * (1 + dw), ph * (1 + dh)], -1)),
        "the scales are logarithms: Ĝ_w = P_w·exp(d_w), not P_w + d_w":
            _corners(t([pw * dx + px, ph * dy + py, pw + dw, ph + dh], -1)),
        "the shift is relative to the proposal's size: Ĝ_x = P_w·d_x + P_x":
            _corners(t([dx + px, dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)),
        "Ĝ_x moves by P_w·d_x (the width) and Ĝ_y by P_h·d_y (the height); you swapped them":
            _corners(t([ph * dx + px, pw * dy + py, pw * np.exp(dw), ph * np.exp(dh)], -1)),
        "shift the proposal's CENTRE (P_x = (x1 + x2) / 2), not its corner x1":
            _corners(t([pw * dx + p[:, 0], ph * dy + p[:, 1], pw * np.exp(dw),
                        ph * np.exp(dh)], -1)),
        "return the corners in the order (x1, y1, x2, y2)":
            _corners(right)[:, [0, 2, 1, 3]],
        "the deltas are in the order (d_x, d_y, d_w, d_h)":
            _corners(t([pw * dx + px, ph * dw + py, pw * np.exp(dy), ph * np.exp(dh)], -1)),
    }


def check_decode_box(decode_box):
    """`decode_box(deltas, proposal)` -> corner boxes (N, 4) that the deltas (N, 4), (d_x, d_y,
    d_w, d_h), make of the proposals (N, 4). Checked against cnnkit.boxes.decode (clip=None) on
    random boxes, and as the inverse of cnnkit.boxes.encode."""
    decode_box = student(decode_box)
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(141)
        cases = [(np.array([[0.2, 0.1, np.log(1.2), np.log(1.6)]]),
                  np.array([[10.0, 20.0, 110.0, 70.0]])),
                 (np.array([[0.0, -0.25, np.log(2), -np.log(2)], [0.0, 0.0, 0.0, 0.0]]),
                  np.array([[0.0, 0.0, 10.0, 20.0], [3.0, 4.0, 5.0, 9.0]]))]
        for _ in range(6):
            n = int(rng.integers(1, 9))
            cases.append((rng.normal(0, 0.4, size=(n, 4)), _random_corner_boxes(rng, n)))
        for deltas, proposal in cases:
            n = len(proposal)
            want = keras.ops.convert_to_numpy(boxes.decode(deltas, proposal, clip=None))
            call = f"decode_box(deltas, proposal) on {n} box(es)"
            got = _rows_of_four(decode_box(deltas.copy(), proposal.copy()), call, n,
                                "one corner box (x1, y1, x2, y2) per proposal")
            if np.allclose(got, want, rtol=1e-4, atol=1e-3):
                continue
            hint = _hint(got, want, _decode_variants(deltas, proposal),
                         "Ĝ_x = P_w·d_x + P_x, Ĝ_y = P_h·d_y + P_y, Ĝ_w = P_w·exp(d_w), "
                         "Ĝ_h = P_h·exp(d_h); then back to corners", rtol=1e-4, atol=1e-3)
            row = int(np.abs(got - want).max(axis=1).argmax())
            expect(False, f"{call}: for deltas {deltas[row].round(4).tolist()} and proposal "
                    f"{proposal[row].round(2).tolist()} you returned "
                    f"{got[row].round(3).tolist()}, expected {want[row].round(3).tolist()}: "
                    f"{hint}.")
        proposal, truth = _random_corner_boxes(rng, 8), _random_corner_boxes(rng, 8)
        targets = keras.ops.convert_to_numpy(boxes.encode(truth, proposal))
        back = _rows_of_four(decode_box(targets, proposal.copy()), "decode_box(encode(G, P), P)",
                             8, "one corner box (x1, y1, x2, y2) per proposal")
        expect(np.allclose(back, truth, rtol=1e-4, atol=1e-3),
                "decode_box(encode(G, P), P) should give G back; on random boxes it does not.")
        boxes_seen = sum(len(p) for _, p in cases) + 8
        return (f"{boxes_seen} boxes agree with cnnkit.boxes.decode, and decoding "
                "cnnkit.boxes.encode's targets gives the ground truth back.")

    return grade("decode_box", run)


def _iou_variants(a, b):
    a, b = a[:, None], b[None]
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    w = np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0])
    h = np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = area_a + area_b - inter
    plus = (a + [0, 0, 1, 1], b + [0, 0, 1, 1])
    w1 = np.minimum(plus[0][..., 2], plus[1][..., 2]) - np.maximum(plus[0][..., 0],
                                                                   plus[1][..., 0])
    h1 = np.minimum(plus[0][..., 3], plus[1][..., 3]) - np.maximum(plus[0][..., 1],
                                                                   plus[1][..., 1])
    inter1 = np.maximum(w1, 0) * np.maximum(h1, 0)
    area1_a, area1_b = ((q[..., 2] - q[..., 0]) * (q[..., 3] - q[..., 1]) for q in plus)
    clamp = ("clamp the intersection's width and height at 0 SEPARATELY, before multiplying: "
             "for boxes apart in both x and y the two negative sides multiply to a positive "
             "'area'")
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            clamp: (w * h) / (area_a + area_b - w * h),
            clamp + " (clamping the product is too late)":
                np.maximum(w * h, 0) / (area_a + area_b - np.maximum(w * h, 0)),
            "the union counts the intersection once: area(a) + area(b) − intersection":
                inter / (area_a + area_b),
            "divide by the UNION, area(a) + area(b) − intersection, not by the smaller area":
                inter / np.minimum(area_a, area_b),
            "use continuous coordinates, w = x2 − x1 (no + 1), as cnnkit.boxes does":
                inter1 / (area1_a + area1_b - inter1),
            "IoU is intersection / union, not union / intersection": union / inter,
        }


def check_iou(iou):
    """`iou(a, b)` -> the (N, M) matrix of intersection over union of every corner box in a
    (N, 4) with every corner box in b (M, 4). Checked against cnnkit.boxes.iou on random boxes:
    nested, overlapping, touching and apart (in x, in y, and in both)."""
    iou = student(iou)
    import keras

    from cnnkit import boxes

    def run():
        rng = np.random.default_rng(142)
        lesson = np.array([[1, 1, 5, 5], [3, 2, 8, 6], [2, 2, 4, 4], [7, 7, 9, 9]], float)
        cases = [(lesson, lesson), (lesson[:1], lesson[3:]),  # A and D: apart in x and in y
                 (np.array([[0.0, 0.0, 2.0, 2.0]]), np.array([[2.0, 0.0, 4.0, 2.0],
                                                              [0.0, 3.0, 2.0, 5.0]]))]
        for _ in range(6):
            n, m = int(rng.integers(1, 8)), int(rng.integers(1, 8))
            cases.append((_random_corner_boxes(rng, n, high=100, largest=60),
                          _random_corner_boxes(rng, m, high=100, largest=60)))
        for a, b in cases:
            n, m = len(a), len(b)
            want = keras.ops.convert_to_numpy(boxes.iou(a, b))
            call = f"iou(a, b) with {n} box(es) in a and {m} in b"
            got = array(iou(a.copy(), b.copy()), call)
            rows = "row i holds box a[i] against every box of b: the matrix is (N, M), not (M, N)"
            hint = rows if got.shape == (m, n) else (
                "one IoU for EVERY pair: broadcast a[:, None, :] (N, 1, 4) against "
                "b[None, :, :] (1, M, 4)")
            expect(got.shape == (n, m), f"{call} returned shape {got.shape}, expected {(n, m)}: "
                   f"{hint}.")
            if np.allclose(got, want, rtol=1e-4, atol=1e-6):
                continue
            variants = [(want.T, rows)] + [(v, h) for h, v in _iou_variants(a, b).items()]
            hint = one_of(got, variants,
                          "intersection = max(0, min(x2) − max(x1)) · max(0, min(y2) − "
                          "max(y1)); IoU = intersection / (area(a) + area(b) − "
                          "intersection)", rtol=1e-4, atol=1e-6, equal_nan=True)
            i, j = np.unravel_index(int(np.abs(np.nan_to_num(got, nan=1e9) - want).argmax()),
                                    want.shape)
            expect(False, f"{call}: for a[{i}] = {a[i].round(2).tolist()} and b[{j}] = "
                    f"{b[j].round(2).tolist()} you returned {got[i, j]:.4f}, expected "
                    f"{want[i, j]:.4f}: {hint}.")
        pairs = sum(len(a) * len(b) for a, b in cases)
        return (f"{pairs} pairs of boxes agree with cnnkit.boxes.iou, boxes that only touch or "
                "lie apart included.")

    return grade("iou", run)


# ---- precision, recall and average precision (PASCAL VOC) ---------------------------------------

def _pairwise_iou(a, b):
    """IoU (N, M) in float64, so that a case's ties with the threshold are exact."""
    a, b = a[:, None], b[None]
    w = np.maximum(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0)
    h = np.maximum(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0)
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return w * h / (area_a + area_b - w * h)


def _voc_curve(found, scores, truths, threshold, order="descending", strict=False,
               once=True, by="truths", pairwise=False, cumulative=True):
    """VOC's precision and recall, or one of the usual slips when an option says so."""
    overlaps = _pairwise_iou(found, truths)
    if pairwise:  # detection i against truth i only
        keep = np.eye(len(found), len(truths), dtype=bool)
        overlaps = np.where(keep, overlaps, 0.0)
    rank = {"descending": np.argsort(-scores, kind="stable"),
            "ascending": np.argsort(scores, kind="stable"),
            "input": np.arange(len(scores))}[order]
    taken = np.zeros(len(truths), bool)
    hit = np.zeros(len(found))
    for k, d in enumerate(rank):
        j = int(overlaps[d].argmax())
        good = overlaps[d, j] > threshold if strict else overlaps[d, j] >= threshold
        if good and not (once and taken[j]):
            hit[k], taken[j] = 1, True
    tp = np.cumsum(hit) if cumulative else hit
    seen = np.arange(1, len(found) + 1)
    precision = tp / seen
    recall = tp / (len(found) if by == "detections" else len(truths))
    return precision, recall


_RANK = ("rank the detections by score, highest first (np.argsort(-scores)), and count TP and "
         "FP in that order")
_PR_FALLBACK = ("sort by score (highest first); each detection is a TP when its best IoU with a "
                "ground truth is >= iou_threshold and that truth is not yet taken, else a FP; "
                "precision = cumulative TP / detections so far, recall = cumulative TP / number "
                "of ground truths")


def _pr_variants(found, scores, truths, threshold):
    v = lambda **k: _voc_curve(found, scores, truths, threshold, **k)  # noqa: E731
    return [
        (v(order="input"), _RANK + "; you kept the order they came in"),
        (v(order="ascending"), _RANK + "; you ranked the lowest score first"),
        (v(once=False), "each ground truth can be found only ONCE: a second detection of an "
                        "object already taken is a false positive (a duplicate)"),
        (v(strict=True), "a detection whose IoU EQUALS the threshold is a true positive: "
                         "IoU >= iou_threshold, not >"),
        (v(by="detections"), "recall divides by the number of GROUND-TRUTH boxes, not by the "
                             "number of detections"),
        (v(cumulative=False), "precision and recall after the k best detections count the "
                              "true positives among ALL of them: a cumulative sum (np.cumsum)"),
        (v(pairwise=True), "compare each detection with EVERY ground truth (its best IoU), not "
                           "only with the truth at the same index"),
        (_voc_curve(found, scores, truths, 0.5), "use the iou_threshold argument, not a fixed "
                                                 "0.5"),
    ]


def _truths_apart(rng, m):
    """m ground-truth boxes in different cells of a 4x4 grid of 50-pixel cells: none overlap."""
    cells = rng.choice(16, size=m, replace=False)
    corner = np.stack([cells % 4, cells // 4], 1) * 50.0 + rng.uniform(1, 10, size=(m, 2))
    return np.concatenate([corner, corner + rng.uniform(15, 38, size=(m, 2))], 1).round(1)


def _pr_case(rng, threshold):
    """Truths apart, near copies of them (some above, some below the threshold, duplicates),
    boxes elsewhere, and distinct scores; no IoU within 1e-6 of the threshold."""
    while True:
        m = int(rng.integers(2, 7))
        truths = _truths_apart(rng, m)
        found = []
        for t in truths[rng.permutation(m)[: int(rng.integers(1, m + 1))]]:
            size = t[2:] - t[:2]
            for _ in range(int(rng.integers(1, 4))):
                shift = rng.normal(0, 0.18, 2) * size
                found.append(np.concatenate([t[:2] + shift, t[2:] + shift]))
        for _ in range(int(rng.integers(0, 4))):
            corner = rng.uniform(0, 180, 2)
            found.append(np.concatenate([corner, corner + rng.uniform(10, 40, 2)]))
        found = np.array(found).round(1)
        found = found[rng.permutation(len(found))]
        best = _pairwise_iou(found, truths).max(axis=1)
        if np.all(np.abs(best - threshold) > 1e-6) and len(found) >= 3:
            scores = rng.permutation(len(found)) / len(found) + rng.uniform(0.001, 0.009)
            return found, scores.round(4), truths


def _pr_cases():
    rng = np.random.default_rng(143)
    truths = np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 0, 50, 10]], float)
    found = np.array([[20, 21, 30, 31], [0, 0, 10, 10], [60, 60, 70, 70], [1, 0, 11, 10],
                      [45, 0, 55, 10]], float)
    cases = [(found, np.array([0.7, 0.9, 0.6, 0.8, 0.5]), truths, 0.5)]  # the lesson's
    # IoU exactly 1/2 and exactly 3/4 (1 x 1 inside 2 x 1; 3 x 1 inside 4 x 1): at the threshold
    tie = np.array([[0, 0, 2, 1], [10, 0, 14, 1]], float)
    cases.append((np.array([[10, 0, 13, 1], [0, 0, 1, 1], [20, 20, 25, 25]], float),
                  np.array([0.2, 0.9, 0.5]), tie, 0.75))
    cases.append((np.array([[0, 0, 1, 1], [10, 0, 13, 1]], float), np.array([0.3, 0.6]), tie, 0.5))
    for threshold in (0.5, 0.6, 0.75, 0.5, 0.7, 0.55):
        cases.append((*_pr_case(rng, threshold), threshold))
    return cases


def _pair_of_curves(got, call, n):
    expect(isinstance(got, (tuple, list)) and len(got) == 2,
           f"{call} returned {type(got).__name__} {got!r:.80}: return a pair (precision, "
           "recall), two arrays with one value per detection.")
    precision, recall = (array(value, call) for value in got)
    for what, value in (("precision", precision), ("recall", recall)):
        expect(value.shape == (n,), f"{call} returned {what} of shape {value.shape}; expected "
               f"({n},): one value per detection, after the 1st, 2nd, ... best.")
    return precision, recall


def check_precision_recall(precision_recall):
    """`precision_recall(boxes, scores, truths, iou_threshold=0.5)` -> (precision, recall), each
    (N,) in descending score order, for N detections of one class in one image against its M
    ground truths (PASCAL VOC's matching). Checked on the lesson's example, IoUs exactly at the
    threshold, duplicates, and random cases at thresholds 0.5 to 0.75."""
    precision_recall = student(precision_recall)

    def run():
        cases = _pr_cases()
        for found, scores, truths, threshold in cases:
            n, m = len(found), len(truths)
            call = (f"precision_recall(boxes, scores, truths, iou_threshold={threshold}) with "
                    f"{n} detections and {m} ground truths")
            got = _pair_of_curves(precision_recall(found.copy(), scores.copy(), truths.copy(),
                                                   iou_threshold=threshold), call, n)
            want = _voc_curve(found, scores, truths, threshold)
            if all(np.allclose(g, w, atol=1e-9) for g, w in zip(got, want)):
                continue
            stacked = np.stack(got)
            hint = one_of(stacked, [(np.stack(want[::-1]), "return (precision, recall) in that "
                                     "order")] + [(np.stack(value), h) for value, h in
                                                  _pr_variants(found, scores, truths, threshold)],
                          _PR_FALLBACK, atol=1e-9)
            k = int(np.abs(stacked - np.stack(want)).max(axis=0).argmax())
            expect(False, f"{call}: after the {k + 1} best detection(s) you returned precision "
                   f"{got[0][k]:.4f} and recall {got[1][k]:.4f}, expected {want[0][k]:.4f} and "
                   f"{want[1][k]:.4f}: {hint}.")
        return (f"{len(cases)} cases agree with PASCAL VOC's matching, duplicates and IoUs "
                "exactly at the threshold included.")

    return grade("precision_recall", run)


def _voc_ap(precision, recall, points="all", envelope="right", at="end", start=0.0):
    """VOC's all-point AP, or one of the usual slips when an option says so."""
    p = np.concatenate([[0.0], precision, [0.0]])
    r = np.concatenate([[0.0], recall, [1.0]])
    if start is None:  # no point at recall 0: the curve starts at the first detection
        p, r = p[1:], r[1:]
    if envelope == "right":
        p = np.maximum.accumulate(p[::-1])[::-1]
    elif envelope == "left":
        p = np.maximum.accumulate(p)
    if points == 11:
        return float(np.mean([p[r >= t].max() if (r >= t).any() else 0.0
                              for t in np.linspace(0, 1, 11)]))
    rises = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[rises + 1] - r[rises]) * p[rises + (1 if at == "end" else 0)]))


def _ap_variants(precision, recall):
    hits = np.diff(np.concatenate([[0.0], recall])) > 0
    trapezoid = float(np.sum(np.diff(np.concatenate([[0.0], recall]))
                             * (np.concatenate([[1.0], precision[:-1]]) + precision) / 2))
    return [
        (_voc_ap(precision, recall, points=11), "use ALL-POINT interpolation (a step at every "
                                                "recall where it rises), not VOC 2007's 11 "
                                                "recall points 0, 0.1, ..., 1"),
        (_voc_ap(precision, recall, envelope=None), "interpolate first: replace each "
         "precision by the BEST precision at any recall >= its own (the monotone envelope, "
         "taken from the right) before summing"),
        (_voc_ap(precision, recall, envelope="left"), "the envelope looks to the RIGHT: the "
         "best precision at recall >= r (a running maximum from the end), not from the start"),
        (_voc_ap(precision, recall, at="start"), "each recall step r_i -> r_(i+1) takes the "
         "interpolated precision at its END, r_(i+1), not at its start (which credits the "
         "last precision up to recall 1, where the curve's sentinel has precision 0)"),
        (_voc_ap(precision, recall, start=None), "the curve starts at recall 0: add a point "
         "(recall 0, precision 0) before the first, so the first step counts too"),
        (trapezoid, "AP is a sum of rectangles under the interpolated curve, not the "
                    "trapezoid rule"),
        (float(np.mean(precision)), "AP is the area under the precision-recall curve, not the "
                                    "mean of the precisions"),
        (float(precision[hits].mean()) if hits.any() else 0.0,
         "without interpolation, averaging the precision at each true positive divides by the "
         "number FOUND; AP weights each step by how far recall rises"),
        (100 * _voc_ap(precision, recall), "return a fraction between 0 and 1, not a "
                                           "percentage"),
    ]


def _ap_cases():
    rng = np.random.default_rng(144)
    cases = [(np.array([1, 1 / 2, 2 / 3, 2 / 4, 2 / 5]), np.array([1, 1, 2, 2, 2]) / 3),
             (np.array([0.0, 0.5, 2 / 3, 0.75]), np.array([0.0, 1, 2, 3]) / 3)]
    for _ in range(7):
        n, m = int(rng.integers(4, 16)), int(rng.integers(2, 9))
        hit = rng.random(n) < rng.uniform(0.3, 0.8)
        hit[np.cumsum(hit) > m] = False  # at most m true positives
        tp = np.cumsum(hit)
        cases.append((tp / np.arange(1, n + 1), tp / m))
    return cases


def check_average_precision(average_precision):
    """`average_precision(precision, recall)` -> PASCAL VOC's AP, all-point interpolation, from
    a precision-recall curve (each (N,), detections in descending score order). Checked on the
    lesson's example and random curves, some ending below recall 1."""
    average_precision = student(average_precision)

    def run():
        cases = _ap_cases()
        answers = []
        for precision, recall in cases:
            call = f"average_precision(precision, recall) on a curve of {len(recall)} points"
            answers.append(real_number(average_precision(precision.copy(), recall.copy()), call))
        wants = [_voc_ap(p, r) for p, r in cases]
        wrong = [i for i, (got, want) in enumerate(zip(answers, wants)) if abs(got - want) > 1e-9]
        if wrong:
            # A slip can agree with another on one curve by chance: name the one that explains
            # every answer, else the one that explains the first wrong answer.
            table = [_ap_variants(p, r) for p, r in cases]
            hints = [h for k, (_, h) in enumerate(table[0])
                     if all(abs(answers[i] - table[i][k][0]) <= 1e-9 for i in range(len(cases)))]
            i = wrong[0]
            precision, recall = cases[i]
            hint = hints[0] if hints else one_of(
                answers[i], [(v, h) for v, h in table[i] if abs(v - wants[i]) > 1e-9],
                "AP = Σ (r_(i+1) − r_i) · p_interp(r_(i+1)) over the points where recall "
                "rises, from recall 0, with p_interp(r) the best precision at recall >= r",
                atol=1e-9, rtol=0)
            expect(False, f"average_precision(precision, recall) on a curve of {len(recall)} "
                   f"points (precision {precision.round(3).tolist()}, recall "
                   f"{recall.round(3).tolist()}): you returned {answers[i]:.6f}, expected "
                   f"{wants[i]:.6f}: {hint}.")
        return f"{len(cases)} precision-recall curves agree with VOC's all-point AP."

    return grade("average_precision", run)
