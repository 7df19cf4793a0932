"""Graders of exercise 14 · Detection blocks (solutions/14_detection_blocks.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student

__all__ = ["check_encode_box", "check_decode_box", "check_iou"]


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
