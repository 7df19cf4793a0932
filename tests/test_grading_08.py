"""Graders of exercise 08 (ResNet): every right answer passes, each wrong one fails with its
hint."""

import sys

import keras
import numpy as np
import pytest
from keras import layers

from cnnkit.course import grading
from cnnkit.models.resnet import basic_block
from grading_harness import Table, assert_verdict, verdict_cases


def unit(x, filters, strides, bias=False):
    """conv 3x3 + BN, the right way round."""
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=bias)(x)
    return layers.BatchNormalization()(y)


def projection(x, filters, strides, bn=True, stride=True):
    s = layers.Conv2D(filters, 1, strides=strides if stride else 1, use_bias=False)(x)
    return layers.BatchNormalization()(s) if bn else s


def needs_projection(x, filters, strides):
    return strides != 1 or x.shape[-1] != filters


def right_residual_block(x, filters, strides=1):  # the solution
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    shortcut = x
    if strides != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([shortcut, y]))


def kit_block(x, filters, strides=1):  # explicit padding, other epsilon, named layers
    return basic_block(x, filters, strides=strides, shortcut=True, name="mine", epsilon=1e-5)


def with_ops_and_shortcut_first(x, filters, strides=1):
    shortcut = projection(x, filters, strides) if needs_projection(x, filters, strides) else x
    y = layers.Activation("relu")(unit(x, filters, strides))
    y = unit(y, filters, 1)
    return keras.ops.relu(shortcut + y)


def sequential_branch(x, filters, strides=1):
    f = keras.Sequential([
        layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False),
        layers.BatchNormalization(epsilon=1e-5, momentum=0.9), layers.ReLU(),
        layers.Conv2D(filters, 3, padding="same", use_bias=False),
        layers.BatchNormalization(epsilon=1e-5, momentum=0.9)])
    s = projection(x, filters, strides) if needs_projection(x, filters, strides) else x
    return layers.ReLU()(layers.Add()([f(x), s]))


def wrong_block(mistake):
    """The solution with one `mistake` that keeps the block's shapes and parameters."""
    def block(x, filters, strides=1):
        first, second = (1, strides) if mistake == "stride_second" else (strides, 1)
        y = layers.Conv2D(filters, 3, strides=first, padding="same", use_bias=False)(x)
        if mistake == "relu_before_bn":
            y = layers.BatchNormalization()(layers.ReLU()(y))
        elif mistake == "no_inner_relu":
            y = layers.BatchNormalization()(y)
        else:
            y = layers.ReLU()(layers.BatchNormalization()(y))
        y = unit(y, filters, second)
        s = projection(x, filters, strides) if needs_projection(x, filters, strides) else x
        if mistake == "no_final_relu":
            return layers.Add()([s, y])
        if mistake == "relu_before_add":
            return layers.Add()([s, layers.ReLU()(y)])
        if mistake == "relu_in_f":
            return layers.ReLU()(layers.Add()([s, layers.ReLU()(y)]))
        if mistake == "no_shortcut" and s is x:
            return layers.ReLU()(y)
        return layers.ReLU()(layers.Add()([s, y]))
    block.__name__ = mistake
    return block


def always_projects(x, filters, strides=1):
    y = unit(layers.ReLU()(unit(x, filters, strides)), filters, 1)
    return layers.ReLU()(layers.Add()([projection(x, filters, strides), y]))


def never_projects(x, filters, strides=1):
    y = unit(layers.ReLU()(unit(x, filters, strides)), filters, 1)
    return layers.ReLU()(layers.Add()([x, y]))


def projection_without_stride(x, filters, strides=1):
    y = unit(layers.ReLU()(unit(x, filters, strides)), filters, 1)
    s = projection(x, filters, strides, stride=False) if needs_projection(x, filters, strides) \
        else x
    return layers.ReLU()(layers.Add()([s, y]))


def with_biases(x, filters, strides=1):
    y = unit(layers.ReLU()(unit(x, filters, strides, bias=True)), filters, 1, bias=True)
    if needs_projection(x, filters, strides):
        x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides)(x))
    return layers.ReLU()(layers.Add()([x, y]))


def biases_instead_of_gammas(x, filters, strides=1):  # same count: conv biases, BN(scale=False)
    def conv_bn(t, size, stride):
        t = layers.Conv2D(filters, size, strides=stride, padding="same")(t)
        return layers.BatchNormalization(scale=False)(t)
    y = conv_bn(layers.ReLU()(conv_bn(x, 3, strides)), 3, 1)
    s = conv_bn(x, 1, strides) if needs_projection(x, filters, strides) else x
    return layers.ReLU()(layers.Add()([s, y]))


def projection_without_bn(x, filters, strides=1):
    y = unit(layers.ReLU()(unit(x, filters, strides)), filters, 1)
    s = projection(x, filters, strides, bn=False) if needs_projection(x, filters, strides) else x
    return layers.ReLU()(layers.Add()([s, y]))


def strides_ignored(x, filters, strides=1):  # the default stride hard-coded
    return right_residual_block(x, filters, 1)


def filters_ignored(x, filters, strides=1):  # the input's channels instead of `filters`
    return right_residual_block(x, x.shape[-1], strides)


def returns_none(x, filters, strides=1):
    right_residual_block(x, filters, strides)


def returns_a_model(x, filters, strides=1):
    return keras.Model(x, right_residual_block(x, filters, strides))


def builds_on_its_own_input(x, filters, strides=1):
    return right_residual_block(keras.Input(x.shape[1:]), filters, strides)


def exits(x, filters, strides=1):
    sys.exit(1)


def right_bottleneck_params(c_in, width, c_out, groups=1):  # the solution
    convs = c_in * width + 3 * 3 * (width // groups) * width + width * c_out
    batch_norms = 2 * (width + width + c_out)
    projection = c_in * c_out + 2 * c_out if c_in != c_out else 0
    return convs + batch_norms + projection


def bottleneck_params_numpy(c_in, width, c_out, groups=1):  # a NumPy integer is a whole number
    kernels = np.array([c_in * width, 9 * width * width // groups, width * c_out])
    shortcut = (c_in * c_out + 2 * c_out) * (c_in != c_out)
    return kernels.sum() + 2 * (2 * width + c_out) + shortcut


def projection_forgotten(c_in, width, c_out, groups=1):
    return right_bottleneck_params(c_in, width, c_out, groups) - (
        c_in * c_out + 2 * c_out if c_in != c_out else 0)


def always_projected(c_in, width, c_out, groups=1):
    return projection_forgotten(c_in, width, c_out, groups) + c_in * c_out + 2 * c_out


def bn_moving_stats_counted(c_in, width, c_out, groups=1):
    extra = 2 * (width + width + c_out) + (2 * c_out if c_in != c_out else 0)
    return right_bottleneck_params(c_in, width, c_out, groups) + extra


def groups_ignored(c_in, width, c_out, groups=1):  # the default groups hard-coded
    return right_bottleneck_params(c_in, width, c_out, 1)


def groups_multiplied(c_in, width, c_out, groups=1):
    return right_bottleneck_params(c_in, width, c_out, 1) + 9 * width * width * (groups - 1)


def bn_forgotten(c_in, width, c_out, groups=1):
    extra = 2 * (width + width + c_out) + (2 * c_out if c_in != c_out else 0)
    return right_bottleneck_params(c_in, width, c_out, groups) - extra


def as_float(c_in, width, c_out, groups=1):
    return c_in * width + 9 * width * width / groups + width * c_out + 2 * (
        2 * width + c_out) + (c_in * c_out + 2 * c_out if c_in != c_out else 0)


def as_string(c_in, width, c_out, groups=1):
    return str(right_bottleneck_params(c_in, width, c_out, groups))


def bottleneck_returns_none(c_in, width, c_out, groups=1):
    right_bottleneck_params(c_in, width, c_out, groups)


def bottleneck_exits(c_in, width, c_out, groups=1):
    raise SystemExit(0)


# bottleneck_block: buggy_bottleneck with its two bugs fixed ------------------------------------

def fixed_bottleneck(x, width, strides=1, *, relu_last=False, project=needs_projection,
                     first=None, middle_relu=True, first_relu=True, bias=False, bn_proj=True,
                     expansion=4, final_relu=True):
    """The solution; each keyword away from its default is one mistake."""
    filters = expansion * width
    first, middle = (strides, 1) if first is None else first
    y = layers.Conv2D(width, 1, strides=first, use_bias=bias)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y) if first_relu else y
    y = layers.Conv2D(width, 3, strides=middle, padding="same", use_bias=bias)(y)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y) if middle_relu else y
    y = layers.Conv2D(filters, 1, use_bias=bias)(y)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y) if relu_last else y
    shortcut = x
    if project(x, filters, strides):
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut) if bn_proj else shortcut
    y = layers.Add()([y, shortcut])
    return layers.ReLU()(y) if final_relu else y


def right_bottleneck_block(x, width, strides=1):
    return fixed_bottleneck(x, width, strides)


def bottleneck_with_ops_and_shortcut_first(x, width, strides=1):
    filters = 4 * width
    shortcut = x
    if strides > 1 or x.shape[-1] != filters:
        shortcut = layers.BatchNormalization()(
            layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x))
    y = x
    for size, n, s in ((1, width, strides), (3, width, 1), (1, filters, 1)):
        y = layers.BatchNormalization()(
            layers.Conv2D(n, size, strides=s, padding="same", use_bias=False)(y))
        y = layers.Activation("relu")(y) if n == width else y
    return layers.Activation("relu")(keras.ops.add(shortcut, y))


def bottleneck_sequential_units(x, width, strides=1):
    def unit(n, size, s, relu):
        return keras.Sequential([layers.Conv2D(n, size, strides=s, padding="same",
                                               use_bias=False), layers.BatchNormalization()]
                                + ([layers.ReLU()] if relu else []))
    y = unit(width, 1, strides, True)(x)
    y = unit(width, 3, 1, True)(y)
    y = unit(4 * width, 1, 1, False)(y)
    s = unit(4 * width, 1, strides, False)(x) if needs_projection(x, 4 * width, strides) else x
    return layers.ReLU()(layers.Add()([y, s]))


def only_the_relu_fixed(x, width, strides=1):
    return fixed_bottleneck(x, width, strides, project=lambda x, f, s: s != 1)


def only_the_shortcut_fixed(x, width, strides=1):
    return fixed_bottleneck(x, width, strides, relu_last=True)


def bottleneck_returns_model(x, width, strides=1):
    return keras.Model(x, right_bottleneck_block(x, width, strides))


def bottleneck_crashes_on_its_own(x, width, strides=1):
    return {}["width"]


TABLES = [
    Table(grading.check_residual_block, right_residual_block,
          right=[kit_block, with_ops_and_shortcut_first, sequential_branch],
          wrong=[(wrong_block("no_shortcut"), "it has no shortcut"),
                 (wrong_block("no_final_relu"), "apply the ReLU after the addition"),
                 (wrong_block("relu_before_add"), "add first, then apply the ReLU"),
                 (wrong_block("relu_in_f"), "F(x) ends with BatchNormalization, no ReLU"),
                 (wrong_block("stride_second"), "the first 3x3 convolution has the stride"),
                 (wrong_block("relu_before_bn"), "BatchNormalization comes before the ReLU"),
                 (wrong_block("no_inner_relu"), "a ReLU between its two convolutions"),
                 (always_projects, "the shortcut is the identity"),
                 (never_projects, "the shortcut must be projected: a 1x1 Conv2D"),
                 (projection_without_stride, "and strides=2"),
                 (with_biases, "use_bias=False"),
                 (biases_instead_of_gammas, "BatchNormalization layers (with γ and β)"),
                 (projection_without_bn, "needs its own BatchNormalization"),
                 (strides_ignored, "the first 3x3 convolution has the stride"),
                 (filters_ignored, "the block outputs filters = "),
                 (returns_none, "return the block's output tensor"),
                 (returns_a_model, "return the block's output tensor"),
                 (builds_on_its_own_input, "not computed from x"),
                 (exits, "sys.exit(1)")]),
    Table(grading.check_bottleneck_block, right_bottleneck_block,
          right=[bottleneck_with_ops_and_shortcut_first, bottleneck_sequential_units],
          wrong=[(grading.buggy_bottleneck, "whenever the stride OR the number of channels"),
                 (only_the_relu_fixed, "whenever the stride OR the number of channels"),
                 (only_the_shortcut_fixed, "the last ReLU comes only after the addition"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, first=(1, strides)),
                  "strides its first 1x1 convolution"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, final_relu=False),
                  "apply the ReLU after the addition"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, middle_relu=False),
                  "the 3x3 convolution's BatchNormalization is followed by a ReLU"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, first_relu=False),
                  "the first 1x1 convolution's BatchNormalization is followed by a ReLU"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, bn_proj=False),
                  "the projection needs its BatchNormalization"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides,
                                                           project=lambda *a: True),
                  "the shortcut is the identity here"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, bias=True),
                  "use_bias=False"),
                 (lambda x, w, strides=1: fixed_bottleneck(x, w, strides, expansion=2),
                  "widens to 4·width"),
                 (bottleneck_returns_model, "return the block's output tensor"),
                 (bottleneck_crashes_on_its_own, "your code raised KeyError")]),
    Table(grading.check_bottleneck_params, right_bottleneck_params,
          right=[bottleneck_params_numpy],
          wrong=[(projection_forgotten, "the shortcut is projected"),
                 (always_projected, "the shortcut is the identity"),
                 (bn_moving_stats_counted, "moving mean and variance are not trainable"),
                 (groups_ignored, "split into"),
                 (groups_multiplied, "9·width·width/groups"),
                 (bn_forgotten, "γ and β per channel"),
                 (as_float, "return a whole number"),
                 (as_string, "of type str"),
                 (bottleneck_returns_none, "of type NoneType"),
                 (bottleneck_exits, "sys.exit(0)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_bottleneck_summary_names_resnet50_and_resnext50(capsys):
    grading.check_bottleneck_params(right_bottleneck_params)
    out = capsys.readouterr().out
    assert "ResNet-50's block has 70,400 parameters" in out
    assert "ResNeXt-50's (32 groups, twice as wide) 71,168" in out
