"""Graders of exercise 04 (transfer learning): every right answer passes (functional or
Sequential, the kit's own cnnkit.transfer), every wrong one fails with the hint that names its
mistake."""

import keras
import sys

import numpy as np
import pytest
from keras import layers

from cnnkit import transfer

from cnnkit.course import grading

from grading_harness import Table, assert_verdict, verdict_cases


def right_freeze(model, n):
    model.trainable = True
    size = len(model.layers)
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= size - n


def slice_from_minus_n(model, n):
    model.trainable = True
    for layer in model.layers:
        layer.trainable = False
    for layer in model.layers[-n:]:  # n = 0: the whole list
        layer.trainable = True


def model_frozen_first(model, n):
    model.trainable = False  # hides every weight, whatever the layers say afterwards
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= len(model.layers) - n


def only_freezes(model, n):
    model.trainable = True
    for layer in model.layers[:len(model.layers) - n]:
        layer.trainable = False


def only_unfreezes(model, n):
    model.trainable = True
    for layer in model.layers[len(model.layers) - n:]:
        layer.trainable = True


def one_too_many(model, n):
    right_freeze(model, min(n + 1, len(model.layers)))


def right_fold(bias, moving_mean):
    return moving_mean - bias


def folded_the_wrong_way(bias, moving_mean):
    return moving_mean + bias


def bias_minus_mean(bias, moving_mean):
    return bias - moving_mean


def bias_forgotten(bias, moving_mean):
    return moving_mean


def head(base, classes, pooling=layers.GlobalAveragePooling2D, activation="softmax",
         freeze=True, training=None, head_trainable=True):
    if freeze:
        base.trainable = False
    inputs = keras.Input(base.input_shape[1:])
    x = pooling()(base(inputs, training=training))
    dense = layers.Dense(classes, activation=activation)
    dense.trainable = head_trainable
    return keras.Model(inputs, dense(x))


def right_classifier(base, classes):
    return head(base, classes)


def on_the_base_graph(base, classes):  # also right: the base's own tensors, not a nested call
    base.trainable = False
    x = layers.GlobalAveragePooling2D()(base.output)
    return keras.Model(base.input, layers.Dense(classes, activation="softmax")(x))


def training_false_only(base, classes):  # the tf.keras 2 recipe, without freezing
    return head(base, classes, freeze=False, training=False)


def batchnorm_left_trainable(base, classes):
    for layer in base.layers:
        layer.trainable = isinstance(layer, layers.BatchNormalization)
    return head(base, classes, freeze=False)


def flattened(base, classes):
    return head(base, classes, pooling=layers.Flatten)


def no_softmax(base, classes):
    return head(base, classes, activation=None)


def frozen_head(base, classes):
    return head(base, classes, head_trainable=False)


def freeze_with_the_kit(model, n):
    transfer.freeze(model)
    if n:
        transfer.unfreeze(model, slice(len(model.layers) - n, None), train_bn=True)


def trainable_set_last(model, n):
    size = len(model.layers)
    for i, layer in enumerate(model.layers):
        layer.trainable = i >= size - n
    model.trainable = True  # can set every layer back to trainable


def one_too_few(model, n):
    right_freeze(model, max(n - 1, 0))


def n_frozen_instead(model, n):
    right_freeze(model, len(model.layers) - n)


def model_flag_only(model, n):
    model.trainable = n > 0


def freeze_exit(model, n):
    sys.exit(3)


def fold_with_numpy(bias, moving_mean):
    return np.subtract(moving_mean, bias).tolist()


def fold_in_place(bias, moving_mean):
    moving_mean -= bias
    return moving_mean


def fold_mean_of_channels(bias, moving_mean):
    return float(np.mean(moving_mean - bias))


def fold_with_variance(bias, moving_mean):
    return moving_mean - bias, np.ones_like(bias)


def fold_twice(bias, moving_mean):
    return moving_mean - 2 * bias


def fold_none(bias, moving_mean):
    moving_mean - bias


def fold_text(bias, moving_mean):
    return "moving_mean - bias"


def fold_exit(bias, moving_mean):
    sys.exit()


def sequential_with_input(base, classes):
    base.trainable = False
    return keras.Sequential([keras.Input(base.input_shape[1:]), base,
                             layers.GlobalAveragePooling2D(),
                             layers.Dense(classes, activation="softmax")])


def sequential_without_input(base, classes):
    base.trainable = False
    return keras.Sequential([base, layers.GlobalAveragePooling2D(), layers.Dense(classes),
                             layers.Softmax()])


def every_base_layer_frozen(base, classes):
    for layer in base.layers:
        layer.trainable = False
    return head(base, classes, freeze=False)


def kits_new_head(base, classes):
    return transfer.new_head(base, classes)


def max_pooled(base, classes):
    return head(base, classes, pooling=layers.GlobalMaxPooling2D)


def ten_classes(base, classes):
    return head(base, 10)


def a_copy_of_the_base(base, classes):
    return head(keras.models.clone_model(base), classes)


def whole_model_frozen(base, classes):
    model = head(base, classes)
    model.trainable = False
    return model


def returns_the_base(base, classes):
    base.trainable = False
    return base


def classifier_none(base, classes):
    head(base, classes)


def classifier_exit(base, classes):
    raise SystemExit(0)


TABLES = [
    Table(grading.check_freeze_all_but_last, right_freeze,
          right=[freeze_with_the_kit],
          wrong=[(slice_from_minus_n, "model.layers[-0:] is the WHOLE list"),
                 (model_frozen_first, "the model itself is frozen"),
                 (only_freezes, "must be made trainable too"),
                 (only_unfreezes, "every layer before the last n must be frozen"),
                 (one_too_many, "one layer off"),
                 (one_too_few, "one layer off"),
                 (trainable_set_last, "setting model.trainable can set every layer's flag too"),
                 (n_frozen_instead, "the last n layers are model.layers[-n:]"),
                 (model_flag_only, "must be made trainable too"),
                 (freeze_exit, "sys.exit(3)")]),
    Table(grading.check_fold_bias_into_bn, right_fold,
          right=[fold_with_numpy],
          wrong=[(folded_the_wrong_way, "the bias LOWERS the mean"),
                 (bias_minus_mean, "not b − μ"),
                 (bias_forgotten, "the bias must go somewhere"),
                 (fold_twice, "BN(conv(x) + b) = BN(conv(x)) with moving mean μ − b"),
                 (fold_in_place, "changed its input argument 2 in place"),
                 (fold_mean_of_channels, "expected shape (3,)"),
                 (fold_with_variance, "expected shape (3,)"),
                 (fold_none, "returned None"),
                 (fold_text, "not an array of numbers"),
                 (fold_exit, "sys.exit(None)")]),
    Table(grading.check_new_classifier, right_classifier,
          right=[on_the_base_graph, sequential_with_input, sequential_without_input,
                 every_base_layer_frozen, kits_new_head],
          wrong=[(training_false_only, "base(x, training=False) neither freezes it"),
                 (batchnorm_left_trainable, "BatchNorm layers of the base are still trainable"),
                 (flattened, "GlobalAveragePooling2D (one number per channel), not Flatten"),
                 (no_softmax, "probabilities that sum to 1"),
                 (frozen_head, "nothing trains: the new Dense layer must stay trainable"),
                 (whole_model_frozen, "nothing trains"),
                 (max_pooled, "not their maximum"),
                 (ten_classes, "one probability per class"),
                 (a_copy_of_the_base, "build on `base` itself"),
                 (returns_the_base, "one probability per class"),
                 (classifier_none, "returned NoneType: return a keras.Model"),
                 (classifier_exit, "sys.exit(0)")]),
]


@pytest.mark.parametrize("check, answer, expected", verdict_cases(TABLES))
def test_verdict(check, answer, expected, capsys):
    assert_verdict(check, answer, expected, capsys)


def test_a_frozen_batchnorm_keeps_its_statistics_where_training_false_does_not():
    """What check_new_classifier relies on, in Keras 3: freezing keeps BatchNorm's statistics in
    fit, a training=False call does not (keras-team/keras#20285)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(2, 3, (8, 6, 6, 3)).astype("float32"), rng.integers(0, 2, 8)
    for make, moves in ((right_classifier, False), (training_false_only, True)):
        inputs = keras.Input((6, 6, 3))
        base = keras.Model(inputs, layers.BatchNormalization(name="bn")(inputs))
        model = make(base, 2)
        model.compile("sgd", "sparse_categorical_crossentropy", run_eagerly=True)
        before = transfer.bn_statistics(model)
        model.fit(x, y, batch_size=4, verbose=0)
        assert (transfer.bn_drift(before, model).changed == 1) is moves
