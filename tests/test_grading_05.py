"""Graders of exercise 05 (data augmentation): right passes, each typical slip fails with its
hint, the kit's own ten_crop and PCA colour shift pass."""

import keras
import numpy as np
import pytest

from cnnkit import grading
from cnnkit.augment import PCAColorAugmentation, ten_crop

from grader_verdicts import assert_verdicts


def right_crop(image, size, rng):
    height, width = size
    top = rng.integers(0, image.shape[0] - height + 1)
    left = rng.integers(0, image.shape[1] - width + 1)
    return image[top:top + height, left:left + width]


def never_the_last_row_or_column(image, size, rng):
    height, width = size
    top = rng.integers(0, max(image.shape[0] - height, 1))
    left = rng.integers(0, max(image.shape[1] - width, 1))
    return image[top:top + height, left:left + width]


def size_read_as_width_height(image, size, rng):
    return right_crop(image, size[::-1], rng)


def always_the_centre(image, size, rng):
    height, width = size
    top, left = (image.shape[0] - height) // 2, (image.shape[1] - width) // 2
    return image[top:top + height, left:left + width]


def global_random_state(image, size, rng):
    return right_crop(image, size, np.random.default_rng(np.random.randint(1 << 30)))


def crop_and_flip(image, size, rng):
    crop = right_crop(image, size, rng)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def crop_without_channels(image, size, rng):
    return right_crop(image, size, rng)[..., 0]


def right_shift(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ (alpha * eigenvalues)


def rows_not_columns(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors.T @ (alpha * eigenvalues)


def eigenvalues_left_out(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ alpha


def square_root_of_eigenvalues(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ (alpha * np.sqrt(eigenvalues))


def shift_alone(image, eigenvalues, eigenvectors, alpha):
    return eigenvectors @ (alpha * eigenvalues) + 0 * image


def subtracted(image, eigenvalues, eigenvectors, alpha):
    return image - eigenvectors @ (alpha * eigenvalues)


def multiplied(image, eigenvalues, eigenvectors, alpha):
    return image * (1 + eigenvectors @ (alpha * eigenvalues))


def right_views(image, size):
    h, w = size
    height, width = image.shape[:2]
    corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               ((height - h) // 2, (width - w) // 2)]
    crops = [image[t:t + h, l:l + w] for t, l in corners]
    return np.stack(crops + [crop[:, ::-1] for crop in crops])


def cropped_the_mirrored_image(image, size):
    return np.concatenate([right_views(image, size)[:5], right_views(image[:, ::-1], size)[:5]])


def mirrored_upside_down(image, size):
    views = right_views(image, size)[:5]
    return np.concatenate([views, views[:, ::-1]])


def centre_rounded_up(image, size):
    views = right_views(image, size)
    h, w = size
    top, left = -(-(image.shape[0] - h) // 2), -(-(image.shape[1] - w) // 2)
    views[4] = image[top:top + h, left:left + w]
    views[9] = views[4][:, ::-1]
    return views


def mirrored_first(image, size):
    views = right_views(image, size)
    return np.concatenate([views[5:], views[:5]])


def size_swapped(image, size):
    return right_views(image, size[::-1])


def five_views(image, size):
    return right_views(image, size)[:5]


CASES = [
    (grading.check_random_crop, right_crop,
     [(never_the_last_row_or_column, "upper bound is excluded"),
      (size_read_as_width_height, "size is (height, width)"),
      (always_the_centre, "draw the position from rng"),
      (global_random_state, "with the rng you are given"),
      (crop_and_flip, "window of the mirrored image"),
      (crop_without_channels, "keep every channel")]),
    (grading.check_pca_color_shift, right_shift,
     [(rows_not_columns, "COLUMNS"),
      (eigenvalues_left_out, "scaled by its eigenvalue"),
      (square_root_of_eigenvalues, "not its square root"),
      (shift_alone, "not the shift alone"),
      (subtracted, "ADD the shift"),
      (multiplied, "the same for every pixel")]),
    (grading.check_ten_crop_views, right_views,
     [(cropped_the_mirrored_image, "swaps the left and right corners"),
      (mirrored_upside_down, "upside down"),
      (centre_rounded_up, "round the offsets down"),
      (mirrored_first, "in another order"),
      (size_swapped, "size is (height, width)"),
      (five_views, "ten views")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_the_kits_own_functions_pass(capsys):
    def kit_shift(image, eigenvalues, eigenvectors, alpha):
        layer = PCAColorAugmentation(eigenvalues, eigenvectors)
        return image + keras.ops.convert_to_numpy(layer.color_shift(alpha))

    def kit_views(image, size):
        return keras.ops.convert_to_numpy(ten_crop(image[None], size))[:, 0]

    assert grading.check_pca_color_shift(kit_shift)
    assert grading.check_ten_crop_views(kit_views)
    assert capsys.readouterr().out.count("✅ PASS") == 2


def test_a_wrong_return_type_fails_clearly(capsys):
    with pytest.raises(grading.GradeFailure, match="returned None"):
        grading.check_random_crop(lambda image, size, rng: None)
    with pytest.raises(grading.GradeFailure, match="not an array of numbers"):
        grading.check_pca_color_shift(lambda *args: {"image": args[0]})
