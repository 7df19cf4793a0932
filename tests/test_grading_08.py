"""Graders of exercise 08 (ResNet): the right answer passes, typical wrong ones fail with hints."""

import pytest
from keras import layers

from cnnkit import grading

from grader_verdicts import assert_verdicts
from cnnkit.models.resnet import basic_block


def right_residual_block(x, filters, strides=1):
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


def kit_block(x, filters, strides=1):
    return basic_block(x, filters, strides=strides, shortcut=True, name="mine", epsilon=1e-3)


def with_operator_plus(x, filters, strides=1):  # `+` on Keras tensors is a fine addition too
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.Activation("relu")(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    if strides != 1 or x.shape[-1] != filters:
        x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides,
                                                      use_bias=False)(x))
    return layers.Activation("relu")(x + y)


def plain_block(x, filters, strides=1):  # shapes and parameters right, no shortcut
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    if strides != 1 or x.shape[-1] != filters:
        s = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides,
                                                      use_bias=False)(x))
        return layers.ReLU()(layers.Add()([s, y]))
    return layers.ReLU()(y)


def _without_last_relu(x, filters, strides):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    if strides != 1 or x.shape[-1] != filters:
        x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides,
                                                      use_bias=False)(x))
    return layers.Add()([x, y])


def always_projects(x, filters, strides=1):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    s = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides,
                                                  use_bias=False)(x))
    return layers.ReLU()(layers.Add()([s, y]))


def never_projects(x, filters, strides=1):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    return layers.ReLU()(layers.Add()([x, y]))


def with_biases(x, filters, strides=1):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same")(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same")(y))
    if strides != 1 or x.shape[-1] != filters:
        x = layers.BatchNormalization()(layers.Conv2D(filters, 1, strides=strides)(x))
    return layers.ReLU()(layers.Add()([x, y]))


def projection_without_bn(x, filters, strides=1):
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False)(x)
    y = layers.ReLU()(layers.BatchNormalization()(y))
    y = layers.BatchNormalization()(layers.Conv2D(filters, 3, padding="same", use_bias=False)(y))
    if strides != 1 or x.shape[-1] != filters:
        x = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
    return layers.ReLU()(layers.Add()([x, y]))


def stride_forgotten(x, filters, strides=1):
    return right_residual_block(x, filters, 1) if x.shape[-1] != filters else \
        right_residual_block(x, filters, strides)


def right_bottleneck_params(c_in, width, c_out, groups=1):
    convs = c_in * width + 9 * width * width // groups + width * c_out
    bns = 2 * (width + width + c_out)
    projection = c_in * c_out + 2 * c_out if c_in != c_out else 0
    return convs + bns + projection


def projection_forgotten(c_in, width, c_out, groups=1):
    return right_bottleneck_params(c_in, width, c_out, groups) - (
        c_in * c_out + 2 * c_out if c_in != c_out else 0)


def bn_moving_stats_counted(c_in, width, c_out, groups=1):
    extra = 2 * (width + width + c_out) + (2 * c_out if c_in != c_out else 0)
    return right_bottleneck_params(c_in, width, c_out, groups) + extra


def groups_ignored(c_in, width, c_out, groups=1):
    return right_bottleneck_params(c_in, width, c_out, 1)


def bn_forgotten(c_in, width, c_out, groups=1):
    extra = 2 * (width + width + c_out) + (2 * c_out if c_in != c_out else 0)
    return right_bottleneck_params(c_in, width, c_out, groups) - extra


def as_float(c_in, width, c_out, groups=1):
    return c_in * width + 9 * width * width / groups + width * c_out + 2 * (
        2 * width + c_out) + (c_in * c_out + 2 * c_out if c_in != c_out else 0)



CASES = [
    (grading.check_residual_block, right_residual_block,
     [(plain_block, "it has no shortcut"),
      (_without_last_relu, "apply the ReLU after the addition"),
      (always_projects, "the shortcut is the identity"),
      (never_projects, "the shortcut must be projected: a 1x1 Conv2D"),
      (with_biases, "use_bias=False"),
      (projection_without_bn, "needs its own BatchNormalization"),
      (stride_forgotten, "the first 3x3 convolution has the stride")]),
    (grading.check_bottleneck_params, right_bottleneck_params,
     [(projection_forgotten, "the shortcut is projected"),
      (bn_moving_stats_counted, "moving mean and variance are not trainable"),
      (groups_ignored, "split into"),
      (bn_forgotten, "γ and β per channel"),
      (as_float, "return a whole number")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


@pytest.mark.parametrize("block", [kit_block, with_operator_plus])
def test_other_correct_blocks_pass(block, capsys):
    assert grading.check_residual_block(block)
    assert "with F = 0 the identity blocks return ReLU(x)" in capsys.readouterr().out


def test_bottleneck_summary_names_resnet50_and_resnext50(capsys):
    grading.check_bottleneck_params(right_bottleneck_params)
    out = capsys.readouterr().out
    assert "ResNet-50's block has 70,400 parameters" in out
    assert "ResNeXt-50's (32 groups, twice as wide) 71,168" in out


def test_a_block_that_returns_nothing_fails_clearly():
    with pytest.raises(grading.GradeFailure, match="return the block's output tensor"):
        grading.check_residual_block(lambda x, filters, strides=1: None)
