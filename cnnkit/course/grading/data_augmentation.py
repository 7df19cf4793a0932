"""Graders of exercise 05 · Data augmentation (solutions/05_data_augmentation.ipynb).

The student writes `random_crop(image, size, rng)`, `pca_color_shift(image, eigenvalues,
eigenvectors, alpha)` and `ten_crop_views(image, size)`; each grader runs it on random images of
odd, non-square sizes and compares it with cnnkit.augment (or, for the random crop, with every
window of the image).
"""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, student

__all__ = ["check_random_crop", "check_pca_color_shift", "check_ten_crop_views"]


def _window_at(image, patch):
    """The (top, left) at which `patch` is a window of `image` (distinct pixel values), or None."""
    h, w = patch.shape[:2]
    if patch.ndim != image.ndim or h > image.shape[0] or w > image.shape[1] or not patch.size:
        return None
    rows, cols = np.nonzero(np.isclose(image[..., 0], patch[0, 0, 0], rtol=0, atol=1e-6))
    for t, l in zip(rows.tolist(), cols.tolist()):
        if t + h <= image.shape[0] and l + w <= image.shape[1] and np.allclose(
                image[t:t + h, l:l + w], patch, rtol=0, atol=1e-6):
            return t, l
    return None


def check_random_crop(random_crop):
    """`random_crop(image, size, rng)` -> a (height, width) window of `image` (H, W, C) at a
    random position drawn from the NumPy Generator `rng`: AlexNet's random patches.

    Checked on random images: the output is a window of the input (pixels unchanged), every
    position (the corners included) comes up over many rngs, and the same seed gives the same
    crop.
    """
    random_crop = student(random_crop)

    def run():
        rng = np.random.default_rng(5)
        # (image height, width, channels, crop height, crop width): non-square on purpose, so
        # swapping height and width shows; (H, W) crops (one position) and 1x1 crops too.
        cases = [(10, 10, 3, 8, 8), (12, 9, 3, 7, 4), (6, 11, 1, 6, 5), (9, 7, 2, 9, 7),
                 (5, 4, 3, 1, 1)]
        for _ in range(3):  # at most 5 x 5 positions, so that every one can be seen to come up
            h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
            cases.append((h, w, int(rng.choice([1, 3])), h - int(rng.integers(0, min(h, 5))),
                          w - int(rng.integers(0, min(w, 5)))))
        for h, w, c, ch, cw in cases:
            image = rng.uniform(size=(h, w, c))  # distinct values: a window has one position
            call = f"random_crop(image of shape {(h, w, c)}, size={(ch, cw)}, rng)"
            seen = set()
            draws = 25 * (h - ch + 1) * (w - cw + 1)
            for i in range(draws):
                got = array(random_crop(image.copy(), (ch, cw), np.random.default_rng(1000 + i)),
                            call)
                if got.shape != (ch, cw, c):
                    hint = ("size is (height, width): the first number counts rows"
                            if got.shape == (cw, ch, c) else
                            "keep every channel and crop rows and columns only")
                    expect(False, f"{call} has shape {got.shape}, expected {(ch, cw, c)}: "
                           f"{hint}.")
                where = _window_at(image, got)
                if where is None:
                    hint = ("that is a window of the mirrored image: crop only, flipping is a "
                            "separate step" if _window_at(image[:, ::-1], got) else
                            "return image[top:top + height, left:left + width] with the "
                            "pixels unchanged")
                    expect(False, f"{call} is not a window of the image: {hint}.")
                seen.add(where)
            every = {(t, l) for t in range(h - ch + 1) for l in range(w - cw + 1)}
            missing = sorted(every - seen)
            if missing:
                # The off-by-one of rng.integers(0, H - height): every position but the last row
                # and the last column (max(..., 1): a full-size crop still has its one position).
                short = {(t, l) for t in range(max(h - ch, 1)) for l in range(max(w - cw, 1))}
                if seen == short:
                    hint = (f"the offsets run from 0 to {h - ch} (rows) and {w - cw} (columns) "
                            "inclusive: rng.integers(0, H - height + 1), whose upper bound is "
                            "excluded")
                elif len(seen) == 1:
                    hint = "draw the position from rng, anew for every call"
                else:
                    hint = ("draw the top and the left offsets separately, each over every "
                            "value where the window fits")
                expect(False, f"{call}: over {draws} calls with different rngs the windows at "
                       f"(top, left) {missing[:4]} never came up: {hint}.")
            for seed in (7, 8, 9):
                once = array(random_crop(image.copy(), (ch, cw), np.random.default_rng(seed)),
                             call)
                again = array(random_crop(image.copy(), (ch, cw), np.random.default_rng(seed)),
                              call)
                expect(np.array_equal(once, again),
                       f"{call}: two calls with np.random.default_rng({seed}) cropped "
                       "different windows: draw the position with the rng you are given "
                       "(rng.integers), not np.random, so a seed reproduces the crop.")
        return (f"{len(cases)} images: every crop is a window of its image, every position from "
                "corner to corner comes up, and a seed reproduces the crop.")

    return grade("random_crop", run)


def _reference_color_shift(eigenvalues, eigenvectors, alpha):
    """cnnkit's PCAColorAugmentation.color_shift: sum_i alpha_i * lambda_i * p_i."""
    import keras

    from cnnkit.augment import PCAColorAugmentation

    layer = PCAColorAugmentation(eigenvalues, eigenvectors)
    return keras.ops.convert_to_numpy(layer.color_shift(np.asarray(alpha, "float32"))).astype(
        "float64")


def check_pca_color_shift(pca_color_shift):
    """`pca_color_shift(image, eigenvalues, eigenvectors, alpha)` -> the image (H, W, 3) plus
    AlexNet's colour shift sum_i alpha_i * lambda_i * p_i at every pixel, with p_i the COLUMNS
    of `eigenvectors`. Checked against cnnkit.augment.PCAColorAugmentation.color_shift on random
    images, rotations of RGB space, eigenvalues and alphas."""
    pca_color_shift = student(pca_color_shift)

    def run():
        rng = np.random.default_rng(6)
        cases = [(4, 5), (1, 1), (8, 3), (6, 6)] + [
            (int(rng.integers(1, 9)), int(rng.integers(1, 9))) for _ in range(4)]
        for h, w in cases:
            image = rng.uniform(size=(h, w, 3))
            # A random rotation of RGB space: its rows are not its columns.
            vectors = np.linalg.qr(rng.normal(size=(3, 3)))[0]
            values = np.sort(rng.uniform(0.01, 0.5, 3))[::-1]
            alpha = rng.normal(0, 0.3, 3)
            want = image + _reference_color_shift(values, vectors, alpha)
            call = f"pca_color_shift(image of shape {(h, w, 3)}, eigenvalues, eigenvectors, alpha)"
            got = array(pca_color_shift(image.copy(), values.copy(), vectors.copy(),
                                        alpha.copy()), call)
            expect(got.shape == want.shape, f"{call} has shape {got.shape}, expected "
                   f"{want.shape}: add the shift to every pixel and return the whole image.")
            if np.allclose(got, want, rtol=0, atol=1e-5):
                continue
            variants = {
                "the eigenvectors are the COLUMNS of `eigenvectors` (p_i = eigenvectors[:, i]); "
                "you used its rows": vectors.T @ (alpha * values),
                "each term is scaled by its eigenvalue too: alpha_i * lambda_i * p_i":
                    vectors @ alpha,
                "each term is scaled by the alpha you are given: alpha_i * lambda_i * p_i":
                    vectors @ values,
                "the paper multiplies by the eigenvalue lambda_i itself, not its square root":
                    vectors @ (alpha * np.sqrt(values)),
                "return the shifted image, not the shift alone": vectors @ (alpha * values) - image,
                "ADD the shift to the image (image + shift)": -(vectors @ (alpha * values)),
            }
            hint = next((h_ for h_, v in variants.items()
                         if np.allclose(got, image + v, rtol=0, atol=1e-5)), None)
            if hint is None and np.ptp((got - image).reshape(-1, 3), axis=0).max() > 1e-6:
                hint = ("the shift is the same for every pixel of the image (alpha is drawn once "
                        "per image): compute the 3-vector once and add it everywhere")
            elif hint is None:
                hint = ("shift = eigenvectors @ (alpha * eigenvalues), the same 3 numbers added "
                        "to every pixel")
            expect(False, f"{call} differs from cnnkit's PCA colour shift by up to "
                   f"{float(np.abs(got - want).max()):.3g}: {hint}.")
        return (f"{len(cases)} images shifted exactly as cnnkit.augment.PCAColorAugmentation "
                "shifts them.")

    return grade("pca_color_shift", run)


_VIEW_NAMES = ["top-left", "top-right", "bottom-left", "bottom-right", "centre"]
_VIEW_NAMES += [f"mirrored {n}" for n in _VIEW_NAMES]


def _ten_crop_hint(got, want, image, size):
    """The hint for ten views `got` that differ from cnnkit's `want`: the one naming the slip."""
    (h, w), (ch, cw) = image.shape[:2], size
    top, left = (h - ch) // 2, (w - cw) // 2
    same = [np.allclose(got[i], want[i]) for i in range(10)]
    if all(same[:5]):  # the five crops are right: the mirrored ones are not
        mirrored = image[:, ::-1]
        views = [(0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw), (top, left)]
        if all(np.allclose(got[5 + i], mirrored[t:t + ch, l:l + cw])
               for i, (t, l) in enumerate(views)):
            return ("mirror each of the five crops (crop[:, ::-1]); cropping the mirrored image "
                    "swaps the left and right corners")
        if all(np.allclose(got[5 + i], want[i][::-1]) for i in range(5)):
            return ("mirror left to right, the WIDTH axis (crop[:, ::-1]); crop[::-1] turns the "
                    "image upside down")
        return "views 6 to 10 are views 1 to 5 mirrored left to right, in that order"
    if all(same[i] for i in (0, 1, 2, 3, 5, 6, 7, 8)):  # only the centre (and its mirror)
        rounded_up = {(t, l) for t in (top, h - ch - top) for l in (left, w - cw - left)}
        if any(np.allclose(got[4], image[t:t + ch, l:l + cw]) for t, l in rounded_up - {(
                top, left)}):
            return (f"the centre crop starts at ((H - height) // 2, (W - width) // 2) = "
                    f"{(top, left)}: round the offsets down")
        return (f"the centre crop starts at ((H - height) // 2, (W - width) // 2) = "
                f"{(top, left)}, the mirrored centre is that crop mirrored")
    if all(any(np.allclose(g, v) for v in want) for g in got) and all(
            any(np.allclose(g, v) for g in got) for v in want):
        return ("the views are right but in another order: top-left, top-right, bottom-left, "
                "bottom-right, centre, then the same five mirrored")
    return ("the four corners are image[:height, :width], image[:height, W - width:], "
            "image[H - height:, :width], image[H - height:, W - width:]")


def check_ten_crop_views(ten_crop_views):
    """`ten_crop_views(image, size)` -> (10, height, width, C): AlexNet's ten test views of one
    image (H, W, C): the top-left, top-right, bottom-left, bottom-right and centre crops, then
    the same five mirrored left to right. Checked against cnnkit.augment.ten_crop on random
    images, odd room for the centre and non-square crops among them."""
    ten_crop_views = student(ten_crop_views)
    import keras

    from cnnkit.augment import ten_crop

    def run():
        rng = np.random.default_rng(8)
        cases = [(8, 8, 3, 6, 6), (9, 12, 3, 6, 7), (7, 5, 1, 4, 4), (6, 6, 2, 6, 6),
                 (11, 10, 3, 8, 5), (10, 13, 3, 5, 8)]
        for _ in range(3):
            h, w = int(rng.integers(3, 14)), int(rng.integers(3, 14))
            cases.append((h, w, int(rng.choice([1, 3])), int(rng.integers(1, h + 1)),
                          int(rng.integers(1, w + 1))))
        for h, w, c, ch, cw in cases:
            image = rng.uniform(size=(h, w, c)).astype("float32")
            want = keras.ops.convert_to_numpy(ten_crop(image[None], (ch, cw)))[:, 0]
            call = f"ten_crop_views(image of shape {(h, w, c)}, size={(ch, cw)})"
            got = array(ten_crop_views(image.copy(), (ch, cw)), call)
            if got.shape != want.shape:
                hint = ("size is (height, width): the first number counts rows"
                        if got.shape == (10, cw, ch, c) else
                        "ten views, each a (height, width, channels) crop, stacked on a new first "
                        "axis (np.stack)")
                expect(False, f"{call} has shape {got.shape}, expected {want.shape}: {hint}.")
            if np.allclose(got, want):
                continue
            first = next(i for i in range(10) if not np.allclose(got[i], want[i]))
            expect(False, f"{call}: view {first + 1} ({_VIEW_NAMES[first]}) differs from "
                   f"cnnkit.augment.ten_crop's: {_ten_crop_hint(got, want, image, (ch, cw))}.")
        return (f"{len(cases)} images: your ten views equal cnnkit.augment.ten_crop's, in its "
                "order.")

    return grade("ten_crop_views", run)
