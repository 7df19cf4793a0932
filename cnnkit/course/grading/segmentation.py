"""Graders of exercise 13 · Segmentation (solutions/13_segmentation.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student, whole_number

__all__ = ["check_transposed_output_size", "check_center_crop", "check_iou_per_class"]


def _transposed_hint(got, size, kernel, stride, padding):
    valid = (size - 1) * stride + kernel
    if got == (size - kernel) // stride + 1 or got == -(-size // stride):
        return ("that is a convolution's output size; a transposed convolution goes the other "
                "way and enlarges: about size · stride")
    if padding == "same":
        return "with padding='same' the output is exactly size · stride, whatever the kernel"
    if kernel < stride and got == valid:
        return (f"with a kernel ({kernel}) smaller than the stride ({stride}) Keras still gives "
                "every input pixel its own stride x stride block: size · stride + max(kernel − "
                "stride, 0)")
    if got == size * stride:
        return ("with padding='valid' nothing is cropped: the last pixel's kernel reaches "
                "kernel − stride pixels further, (size − 1) · stride + kernel")
    return ("'valid': (size − 1) · stride + kernel (size · stride when the kernel is smaller "
            "than the stride); 'same': size · stride")


def check_transposed_output_size(transposed_output_size):
    """`transposed_output_size(size, kernel, stride, padding)` -> the output side of a
    Conv2DTranspose. Checked against real keras.layers.Conv2DTranspose layers."""
    transposed_output_size = student(transposed_output_size)
    import keras

    def run():
        rng = np.random.default_rng(13)
        cases = [(2, 2, 2, "valid"), (2, 4, 2, "same"), (3, 3, 2, "valid"), (4, 1, 2, "valid"),
                 (5, 3, 1, "same"), (7, 16, 8, "same"), (1, 3, 3, "valid"), (6, 4, 2, "valid")]
        cases += [(int(rng.integers(1, 33)), int(rng.integers(1, 9)), int(rng.integers(1, 5)),
                   str(rng.choice(["valid", "same"]))) for _ in range(16)]
        for size, kernel, stride, padding in cases:
            layer = keras.layers.Conv2DTranspose(1, kernel, strides=stride, padding=padding)
            out = layer(np.zeros((1, size, size, 1), "float32"))
            want = int(out.shape[1])
            call = (f"transposed_output_size({size}, kernel={kernel}, stride={stride}, "
                    f"padding={padding!r})")
            got = whole_number(transposed_output_size(size, kernel, stride, padding), call)
            expect(got == want, f"{call} returned {got}; Conv2DTranspose gives {want}: "
                    f"{_transposed_hint(got, size, kernel, stride, padding)}.")
        return (f"{len(cases)} cases agree with keras.layers.Conv2DTranspose, 'valid' and 'same', "
                "kernels smaller and larger than the stride.")

    return grade("transposed_output_size", run)


def _crop_hint(got, x, h, w):
    batch, height, width, channels = x.shape
    top, left = (height - h) // 2, (width - w) // 2
    if got.shape == (batch, h, w, channels):
        return one_of(got, [
            (x[:, :h, :w], "crop the centre, not the top-left corner: start at (H − h) // 2"),
            (x[:, height - h:, width - w:], "crop the centre, not the bottom-right corner: "
                                            "start at (H − h) // 2"),
            *((x[:, top + dy:top + dy + h, left + dx:left + dx + w],
               "when H − h is odd the extra pixel comes off the bottom (or W − w: the right): "
               "start at (H − h) // 2, rounding down")
              for dy, dx in ((1, 0), (0, 1), (1, 1))
              if top + dy + h <= height and left + dx + w <= width),
            (x[:, left:left + h, top:top + w],
             "the window starts at row (H − h) // 2 and column (W − w) // 2: height with h, "
             "width with w")],
            "the window starts at row (H − h) // 2 and column (W − w) // 2")
    if got.shape == (batch, h, w):
        return "keep the channels: the result is (batch, h, w, channels)"
    if got.shape == x[:, top:-top, left:-left].shape:
        return ("slice x[:, top:top + h, left:left + w]: x[:, top:-top] keeps a pixel too many "
                "when H − h is odd, and nothing at all when top is 0")
    if h != w and got.shape in ((batch, h, h, channels), (batch, w, w, channels)):
        return "target is (h, w): crop the height (axis 1) to h and the width (axis 2) to w"
    if got.shape[:3] == (h, w, channels) or got.shape[1:3] != (h, w):
        return ("x is (batch, height, width, channels): crop axes 1 and 2, keep the batch and "
                "the channels")
    return f"the result must be (batch, h, w, channels) = {(batch, h, w, channels)}"


def check_center_crop(center_crop):
    """`center_crop(x, target)` -> the central (h, w) window of every map of x (batch, H, W, C).

    Checked against keras.layers.Cropping2D, U-Net's crops (64 -> 56, 136 -> 104, 280 -> 200,
    568 -> 392) and random sizes, odd differences included (the extra pixel off the bottom and
    right, as tf.image.resize_with_crop_or_pad).
    """
    center_crop = student(center_crop)
    import keras

    def run():
        rng = np.random.default_rng(14)
        cases = [((1, 64, 64, 2), (56, 56)), ((1, 136, 136, 1), (104, 104)),
                 ((1, 280, 280, 1), (200, 200)), ((1, 568, 568, 1), (392, 392)),
                 ((2, 9, 12, 3), (4, 7)), ((2, 6, 6, 2), (6, 6)), ((3, 10, 8, 1), (1, 1))]
        for _ in range(8):
            height, width = (int(v) for v in rng.integers(2, 30, 2))
            cases.append(((int(rng.integers(1, 4)), height, width, int(rng.integers(1, 5))),
                          (int(rng.integers(1, height + 1)), int(rng.integers(1, width + 1)))))
        for shape, (h, w) in cases:
            x = rng.normal(size=shape).astype("float32")
            dh, dw = shape[1] - h, shape[2] - w
            crop = keras.layers.Cropping2D(((dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)))
            want = keras.ops.convert_to_numpy(crop(x))
            call = f"center_crop(x of shape {shape}, target={(h, w)})"
            got = array(center_crop(x.copy(), (h, w)), call)
            expect(got.shape == want.shape, f"{call} returned shape {got.shape}, expected "
                   f"{want.shape}: {_crop_hint(got, x, h, w)}.")
            expect(np.array_equal(got, want), f"{call} is not the central window that "
                   f"keras.layers.Cropping2D crops: {_crop_hint(got, x, h, w)}.")
        return (f"{len(cases)} crops equal keras.layers.Cropping2D's, U-Net's four skips "
                "(64 -> 56 up to 568 -> 392) and odd differences included.")

    return grade("center_crop", run)


def _iou_hint(got, truth, pred, classes):
    t = np.bincount(truth.ravel(), minlength=classes).astype(float)
    p = np.bincount(pred.ravel(), minlength=classes).astype(float)
    tp = np.bincount(truth[truth == pred].ravel(), minlength=classes).astype(float)
    present = (t + p) > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(present, tp / (t + p - tp), np.nan)
        if np.any(~present) and np.allclose(got[present], iou[present]):
            return ("a class in neither map has no IoU: return NaN (np.nan) for it, so that "
                    "the mean over the classes present leaves it out")
        zero = ("a class in either map that is never right (only predicted, only true, or "
                "never at the same pixels) has IoU 0; NaN only where the class is in neither map")
        slips = [(np.where(tp > 0, iou, np.nan), zero), (np.where(t > 0, iou, np.nan), zero),
                 (tp / t, "that is the recall (right pixels over TRUE pixels): IoU divides by "
                          "the union, TP + FP + FN"),
                 (tp / p, "that is the precision (right pixels over PREDICTED pixels): IoU "
                          "divides by the union, TP + FP + FN"),
                 (2 * tp / (t + p), "that is the Dice coefficient (F1), 2·TP / (|truth| + "
                                    "|prediction|); IoU is TP / (TP + FP + FN)"),
                 (tp / (t + p), "the union counts the intersection once: |truth| + "
                                "|prediction| − TP")]
        return one_of(got[present], [(value[present], hint) for value, hint in slips],
                      "per class: TP / (TP + FP + FN), NaN where the class is in neither map",
                      equal_nan=True)


def check_iou_per_class(iou_per_class):
    """`iou_per_class(y_true, y_pred, classes)` -> the IoU of each class (NaN where absent).

    Checked against cnnkit.segmentation.class_iou on random label maps, with classes that are
    in neither map, only predicted, only true, or never right.
    """
    iou_per_class = student(iou_per_class)
    from cnnkit import segmentation

    def run():
        rng = np.random.default_rng(15)
        cases = []
        for i in range(12):
            classes = int(rng.integers(3 if i % 3 == 0 else 2, 7))
            shape = (int(rng.integers(1, 4)), int(rng.integers(2, 12)), int(rng.integers(2, 12)))
            used = classes - 1 if i % 3 == 0 else classes  # the last class in neither map
            truth = rng.integers(0, used, shape)
            pred = np.where(rng.random(shape) < 0.6, truth, rng.integers(0, used, shape))
            cases.append((truth, pred, classes))
        truth = np.zeros((1, 4, 4), int)
        truth[0, :2] = 1
        pred = truth.copy()
        pred[0, 3, 3] = 2  # class 2 only predicted: IoU 0
        pred[0, 0] = 0  # class 3 only in the truth: IoU 0
        truth[0, 0, :2] = 3
        cases.append((truth, pred, 4))
        for truth, pred, classes in cases:
            want = segmentation.class_iou(truth, pred, classes)
            call = (f"iou_per_class(y_true, y_pred, classes={classes}) on maps of shape "
                    f"{truth.shape}")
            got = array(iou_per_class(truth.copy(), pred.copy(), classes), call)
            expect(got.shape == (classes,), f"{call} returned shape {got.shape}; return one "
                   f"IoU for every class 0 to {classes - 1}, shape ({classes},), NaN for those "
                   "in neither map.")
            expect(np.allclose(got, want, equal_nan=True),
                   f"{call} returned {np.round(got, 3)}, expected {np.round(want, 3)}: "
                   f"{_iou_hint(got, truth, pred, classes)}.")
        return (f"{len(cases)} label maps agree with cnnkit.segmentation.class_iou, absent "
                "classes NaN and a class only predicted 0.")

    return grade("iou_per_class", run)
