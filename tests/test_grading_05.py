"""Graders of exercise 05 (data augmentation): one mutation table per grader, right answers
pass, each typical slip fails with the hint that names it."""

import sys

import keras
import numpy as np
import pytest

from cnnkit.course import grading
from cnnkit.augment import PCAColorAugmentation, ten_crop

from grading_harness import Table, assert_verdict, verdict_cases

# --- random_crop ----------------------------------------------------------------------------


def right_crop(image, size, rng):
    height, width = size
    top = rng.integers(0, image.shape[0] - height + 1)
    left = rng.integers(0, image.shape[1] - width + 1)
    return image[top:top + height, left:left + width]


def crop_left_first_as_a_tensor(image, size, rng):  # other draw order, endpoint=True, Keras out
    left = int(rng.integers(image.shape[1] - size[1], endpoint=True))
    top = int(rng.integers(image.shape[0] - size[0] + 1))
    return keras.ops.convert_to_tensor(image[top:top + size[0], left:left + size[1]])


def crop_as_nested_lists(image, size, rng):
    return right_crop(image, tuple(size), rng).tolist()


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


def own_fixed_seed(image, size, rng):  # ignores the rng argument
    return right_crop(image, size, np.random.default_rng(0))


def global_random_state(image, size, rng):
    return right_crop(image, size, np.random.default_rng(np.random.randint(1 << 30)))


def one_offset_for_both(image, size, rng):
    height, width = size
    top = left = rng.integers(0, min(image.shape[0] - height, image.shape[1] - width) + 1)
    return image[top:top + height, left:left + width]


def crop_and_flip(image, size, rng):
    crop = right_crop(image, size, rng)
    return crop[:, ::-1] if rng.random() < 0.5 else crop


def crop_without_channels(image, size, rng):
    return right_crop(image, size, rng)[..., 0]


def crop_rescaled(image, size, rng):
    return right_crop(image, size, rng) / 255.0


def crop_blanked_in_place(image, size, rng):
    crop = right_crop(image, size, rng).copy()
    image[:size[0], :size[1]] = 0
    return crop


def crop_returning_none(image, size, rng):
    right_crop(image, size, rng)


def crop_exits(image, size, rng):
    sys.exit(1)


# --- pca_color_shift ------------------------------------------------------------------------


def right_shift(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ (alpha * eigenvalues)


def shift_as_row_vector(image, eigenvalues, eigenvectors, alpha):
    return image + (alpha * eigenvalues) @ eigenvectors.T


def shift_summed_in_float32_keras(image, eigenvalues, eigenvectors, alpha):
    terms = [alpha[i] * eigenvalues[i] * eigenvectors[:, i] for i in range(3)]
    return keras.ops.add(keras.ops.convert_to_tensor(image, "float32"), sum(terms))


def kit_shift(image, eigenvalues, eigenvectors, alpha):
    layer = PCAColorAugmentation(eigenvalues, eigenvectors)
    return image + keras.ops.convert_to_numpy(layer.color_shift(alpha))


def rows_not_columns(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors.T @ (alpha * eigenvalues)


def eigenvalues_left_out(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ alpha


def alpha_left_out(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ eigenvalues


def square_root_of_eigenvalues(image, eigenvalues, eigenvectors, alpha):
    return image + eigenvectors @ (alpha * np.sqrt(eigenvalues))


def shift_alone(image, eigenvalues, eigenvectors, alpha):
    return eigenvectors @ (alpha * eigenvalues) + 0 * image


def shift_vector_only(image, eigenvalues, eigenvectors, alpha):
    return eigenvectors @ (alpha * eigenvalues)


def subtracted(image, eigenvalues, eigenvectors, alpha):
    return image - eigenvectors @ (alpha * eigenvalues)


def multiplied(image, eigenvalues, eigenvectors, alpha):
    return image * (1 + eigenvectors @ (alpha * eigenvalues))


def shifted_in_place(image, eigenvalues, eigenvectors, alpha):
    image += eigenvectors @ (alpha * eigenvalues)
    return image


def shift_as_a_dict(image, eigenvalues, eigenvectors, alpha):
    return {"image": right_shift(image, eigenvalues, eigenvectors, alpha)}


def shift_exits(image, eigenvalues, eigenvectors, alpha):
    raise SystemExit("done")


# --- ten_crop_views -------------------------------------------------------------------------


def right_views(image, size):
    h, w = size
    height, width = image.shape[:2]
    corners = [(0, 0), (0, width - w), (height - h, 0), (height - h, width - w),
               ((height - h) // 2, (width - w) // 2)]
    crops = [image[t:t + h, l:l + w] for t, l in corners]
    return np.stack(crops + [crop[:, ::-1] for crop in crops])


def kit_views(image, size):
    return ten_crop(image[None], size)[:, 0]


def views_as_a_list_flipped_with_numpy(image, size):
    h, w = size
    top, left = int((image.shape[0] - h) / 2), int((image.shape[1] - w) / 2)
    crops = [image[:h, :w], image[:h, -w:], image[image.shape[0] - h:, :w],
             image[image.shape[0] - h:, image.shape[1] - w:], image[top:top + h, left:left + w]]
    return crops + [np.fliplr(crop) for crop in crops]


def cropped_the_mirrored_image(image, size):
    return np.concatenate([right_views(image, size)[:5], right_views(image[:, ::-1], size)[:5]])


def mirrored_upside_down(image, size):
    views = right_views(image, size)[:5]
    return np.concatenate([views, views[:, ::-1]])


def mirrored_in_reverse_order(image, size):
    views = right_views(image, size)
    return np.concatenate([views[:5], views[5:][::-1]])


def centre_rounded_up(image, size):
    views = right_views(image, size)
    h, w = size
    top, left = -(-(image.shape[0] - h) // 2), -(-(image.shape[1] - w) // 2)
    views[4] = image[top:top + h, left:left + w]
    views[9] = views[4][:, ::-1]
    return views


def centre_rounded_with_round(image, size):
    views = right_views(image, size)
    h, w = size
    top, left = round((image.shape[0] - h) / 2), round((image.shape[1] - w) / 2)
    views[4] = image[top:top + h, left:left + w]
    views[9] = views[4][:, ::-1]
    return views


def centre_from_the_height_only(image, size):
    views = right_views(image, size)
    h, w = size
    top = left = (image.shape[0] - h) // 2
    views[4] = image[top:top + h, left:left + w]
    views[9] = views[4][:, ::-1]
    return views


def bottom_corners_one_row_up(image, size):  # the known bug: right centre, wrong corners
    views = right_views(image, size)
    h, w = size
    bottom = max(image.shape[0] - h - 1, 0)
    views[2], views[3] = image[bottom:bottom + h, :w], image[bottom:bottom + h, -w:]
    views[7], views[8] = views[2][:, ::-1], views[3][:, ::-1]
    return views


def top_right_and_bottom_left_swapped(image, size):
    return right_views(image, size)[[0, 2, 1, 3, 4, 5, 7, 6, 8, 9]]


def mirrored_first(image, size):
    views = right_views(image, size)
    return np.concatenate([views[5:], views[:5]])


def size_swapped(image, size):
    return right_views(image, size[::-1])


def five_views(image, size):
    return right_views(image, size)[:5]


def views_mirroring_the_image_in_place(image, size):
    views = right_views(image, size).copy()
    image[:] = image[:, ::-1].copy()
    return views


def views_returning_none(image, size):
    right_views(image, size)


TABLES = [
    Table(grading.check_random_crop, solution=right_crop,
          right=[crop_left_first_as_a_tensor, crop_as_nested_lists],
          wrong=[(never_the_last_row_or_column, "upper bound is excluded"),
                 (size_read_as_width_height, "size is (height, width)"),
                 (always_the_centre, "draw the position from rng, anew for every call"),
                 (own_fixed_seed, "draw the position from rng, anew for every call"),
                 (global_random_state, "with the rng you are given"),
                 (one_offset_for_both, "draw the top and the left offsets separately"),
                 (crop_and_flip, "window of the mirrored image"),
                 (crop_without_channels, "keep every channel"),
                 (crop_rescaled, "with the pixels unchanged"),
                 (crop_blanked_in_place, "changed its input argument 1 in place"),
                 (crop_returning_none, "returned None"),
                 (crop_exits, "sys.exit(1)")]),
    Table(grading.check_pca_color_shift, solution=right_shift,
          right=[shift_as_row_vector, shift_summed_in_float32_keras, kit_shift],
          wrong=[(rows_not_columns, "COLUMNS"),
                 (eigenvalues_left_out, "scaled by its eigenvalue"),
                 (alpha_left_out, "the alpha you are given"),
                 (square_root_of_eigenvalues, "not its square root"),
                 (shift_alone, "not the shift alone"),
                 (shift_vector_only, "return the whole image"),
                 (subtracted, "ADD the shift"),
                 (multiplied, "the same for every pixel"),
                 (shifted_in_place, "changed its input argument 1 in place"),
                 (shift_as_a_dict, "not an array of numbers"),
                 (shift_exits, "sys.exit('done')")]),
    Table(grading.check_ten_crop_views, solution=right_views,
          right=[kit_views, views_as_a_list_flipped_with_numpy],
          wrong=[(cropped_the_mirrored_image, "swaps the left and right corners"),
                 (mirrored_upside_down, "upside down"),
                 (mirrored_in_reverse_order, "views 6 to 10 are views 1 to 5 mirrored"),
                 (centre_rounded_up, "round the offsets down"),
                 (centre_rounded_with_round, "round the offsets down"),
                 (centre_from_the_height_only, "the mirrored centre is that crop mirrored"),
                 (bottom_corners_one_row_up, "view 3 (bottom-left) differs from cnnkit.augment."
                  "ten_crop's: the four corners are"),
                 (top_right_and_bottom_left_swapped, "in another order"),
                 (mirrored_first, "in another order"),
                 (size_swapped, "size is (height, width)"),
                 (five_views, "ten views"),
                 (views_mirroring_the_image_in_place, "changed its input argument 1 in place"),
                 (views_returning_none, "returned None")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_a_wrong_corner_with_a_right_centre_gets_no_centre_hint(capsys):
    with pytest.raises(grading.GradeFailure) as failure:
        grading.check_ten_crop_views(bottom_corners_one_row_up)
    assert "centre" not in str(failure.value) and "round" not in str(failure.value)


def test_ten_crop_summary(capsys):
    grading.check_ten_crop_views(right_views)
    assert "your ten views equal cnnkit.augment.ten_crop's, in its order" in (
        capsys.readouterr().out)
