"""Graders of exercise 04 (transfer learning): right passes, each typical slip fails with its
hint, the kit's own cnnkit.transfer.new_head passes."""

import keras
import numpy as np
import pytest
from keras import layers

from cnnkit import grading, transfer

from grader_verdicts import assert_verdicts


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


CASES = [
    (grading.check_freeze_all_but_last, right_freeze,
     [(slice_from_minus_n, "model.layers[-0:] is the WHOLE list"),
      (model_frozen_first, "the model itself is frozen"),
      (only_freezes, "must be made trainable too"),
      (only_unfreezes, "every layer before the last n must be frozen"),
      (one_too_many, "one layer off")]),
    (grading.check_fold_bias_into_bn, right_fold,
     [(folded_the_wrong_way, "the bias LOWERS the mean"),
      (bias_minus_mean, "not b − μ"),
      (bias_forgotten, "the bias must go somewhere")]),
    (grading.check_new_classifier, right_classifier,
     [(training_false_only, "base(x, training=False) neither freezes it"),
      (batchnorm_left_trainable, "BatchNorm layers of the base are still trainable"),
      (flattened, "GlobalAveragePooling2D"),
      (no_softmax, "probabilities that sum to 1"),
      (frozen_head, "(the head only)")]),
]


@pytest.mark.parametrize("check, right, wrongs", CASES, ids=lambda v: getattr(v, "__name__", ""))
def test_right_answer_passes_and_each_wrong_one_fails_with_a_hint(check, right, wrongs, capsys):
    assert_verdicts(check, right, wrongs, capsys)


def test_a_classifier_on_the_base_graph_and_the_kits_new_head_pass(capsys):
    assert grading.check_new_classifier(on_the_base_graph)
    assert grading.check_new_classifier(lambda base, classes: transfer.new_head(base, classes))
    assert capsys.readouterr().out.count("✅ PASS") == 2


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
