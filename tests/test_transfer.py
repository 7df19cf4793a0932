"""cnnkit.transfer: freezing by name, index and stage, exact counts, regimes, BatchNorm's modes."""

import functools
import math

import keras
import numpy as np
import pytest
from keras import layers

import cnnkit
from cnnkit import transfer as T


def size(weights):
    return sum(math.prod(w.shape) for w in weights)


def params(layer_list, bn=True):
    """The layers' weights but BatchNorm's moving statistics, whatever is frozen; bn=False
    also leaves out BatchNorm's gamma and beta."""
    return sum(size([w for w in layer.weights if w.name not in ("moving_mean", "moving_variance")])
               for layer in layer_list if bn or not isinstance(layer, layers.BatchNormalization))


def trainable(model):
    return size(model.trainable_weights)


@functools.cache
def built(name, **kwargs):
    """Stage tests only read the graph: one build per model and options for the whole file."""
    return cnnkit.build(name, **kwargs)


@pytest.fixture(scope="module")
def resnet18_base():
    return cnnkit.build("resnet18", include_top=False, input_shape=(32, 32, 3))


@pytest.fixture
def base(resnet18_base):
    T.unfreeze(resnet18_base, train_bn=True)  # every test starts with everything trainable
    return resnet18_base


def tiny(momentum=0.5):
    """Two conv-BN-ReLU stages named like cnnkit's ResNets, fast enough to train in a test."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3), name="image")
    x = inputs
    for i, filters in [(1, 4), (2, 8)]:
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{i}_conv")(x)
        x = layers.BatchNormalization(momentum=momentum, name=f"conv{i}_bn")(x)
        x = layers.ReLU(name=f"conv{i}_relu")(x)
    return keras.Model(inputs, x, name="tiny")


def batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(2.0, 3.0, size=(n, 8, 8, 3)).astype("float32"), np.arange(n) % 2


def snapshot(model):
    return [keras.ops.convert_to_numpy(w).copy() for w in model.weights]


def one_step(model, lr=0.1):
    model.compile(keras.optimizers.SGD(lr), "sparse_categorical_crossentropy")
    model.train_on_batch(*batch())


# --- stages --------------------------------------------------------------------------------

def test_resnet50_stages_are_conv1_to_conv5_then_the_head_in_graph_order():
    model = cnnkit.build("resnet50", input_shape=(32, 32, 3), classes=10)
    table = T.stages(model)
    assert list(table) == ["conv1", "conv2", "conv3", "conv4", "conv5", "head"]
    assert [layer.name for layer in table["conv1"]] == [
        "conv1_pad", "conv1_conv", "conv1_bn", "conv1_relu", "pool1_pad", "pool1_pool"]
    assert table["conv5"][-1].name == "conv5_block3_out"
    assert [layer.name for layer in table["head"]] == ["avg_pool", "predictions"]
    assert [layer for group in table.values() for layer in group] == model.layers[1:]


@pytest.mark.parametrize("name, kwargs, expected", [
    ("lenet5", {}, ["c1", "c3", "head"]),
    ("vgg16", dict(include_top=False, pooling="avg"),
     ["block1", "block2", "block3", "block4", "block5", "head"]),
    ("mobilenet_v2", dict(input_shape=(32, 32, 3)),
     ["conv1", "block_0", "block_1..2", "block_3..5", "block_6..9", "block_10..12",
      "block_13..15", "block_16", "top", "head"]),
    ("densenet121", dict(include_top=False, input_shape=(32, 32, 3)),
     ["conv1", "conv2", "conv3", "conv4", "conv5"]),
    ("efficientnet_b0", dict(input_shape=(32, 32, 3)),
     ["stem", "block1", "block2", "block3", "block4", "block5", "block6", "block7", "top",
      "head"]),
])
def test_stages_of_the_models_a_lesson_transfers(name, kwargs, expected):
    model = built(name, **kwargs)
    table = T.stages(model)
    assert list(table) == expected
    non_input = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    assert [layer for group in table.values() for layer in group] == non_input


@pytest.mark.parametrize("name, kwargs", [
    ("lenet5", {}), ("vgg16", dict(include_top=False, pooling="avg")),
    ("mobilenet_v2", dict(input_shape=(32, 32, 3))),
    ("densenet121", dict(include_top=False, input_shape=(32, 32, 3))),
    ("efficientnet_b0", dict(input_shape=(32, 32, 3))),
])
def test_a_cnnkit_models_stages_end_at_its_registered_taps(name, kwargs):
    table = T.stages(built(name, **kwargs))
    assert [(stage, group[-1].name) for stage, group in table.items() if stage != "head"] == [
        (tap.stage, tap.layer) for tap in cnnkit.model_info(name).taps]


def test_a_missing_tap_layer_raises_instead_of_regrouping_by_names():
    """A model that carries a registered name but not the layers its taps declare (a layer
    renamed in the model file, and not in its taps) is an error, in the summary too."""
    base = tiny()
    impostor = T.new_head(keras.Model(base.input, base.output, name="resnet18"), 2)
    with pytest.raises(ValueError, match="resnet18 declares taps whose layers 'resnet18' lacks: "
                                         "conv1 -> 'pool1_pool', conv2 -> 'conv2_block2_out'"):
        T.stages(impostor)
    with pytest.raises(ValueError, match="pool1_pool"):
        T.trainable_summary(impostor)
    # Its own naming can still be read on request:
    assert list(T.stages(impostor, pattern=r"^(conv\d)_")) == ["conv1", "conv2", "head"]


def test_pattern_reads_a_cnnkit_model_by_names_instead_of_taps():
    model = built("resnet50", input_shape=(32, 32, 3), classes=10)
    table = T.stages(model, pattern=r"^(conv\d)_")
    assert {k: len(v) for k, v in table.items()} == {
        k: len(v) for k, v in T.stages(model).items()}


def test_densenet_transitions_and_final_norm_belong_to_their_stage():
    table = T.stages(built("densenet121", include_top=False, input_shape=(32, 32, 3)))
    assert [layer.name for layer in table["conv2"][-4:]] == [
        "pool2_bn", "pool2_relu", "pool2_conv", "pool2_pool"]
    assert [layer.name for layer in table["conv5"][-2:]] == ["bn", "relu"]


def test_keras_applications_mobilenet_v2_reads_like_cnnkits():
    model = keras.applications.MobileNetV2(weights=None, include_top=False,
                                           input_shape=(32, 32, 3))
    assert list(T.stages(model)) == [
        "conv1", "block_0", "block_1..2", "block_3..5", "block_6..9", "block_10..12",
        "block_13..15", "block_16", "top"]


def test_unknown_naming_raises_and_pattern_names_the_stages():
    model = keras.Sequential([keras.Input((8, 8, 3)), layers.Conv2D(4, 3, name="a1_conv"),
                              layers.Conv2D(4, 3, name="a2_conv"), layers.Flatten(),
                              layers.Dense(2)])
    with pytest.raises(ValueError, match="pattern="):
        T.stages(model)
    table = T.stages(model, pattern=r"^(a\d)_")
    # The head's layers carry Keras's automatic names, whose numbers depend on what this
    # process built before ("flatten_1", "dense_6"): compare the layers themselves.
    assert {k: list(v) for k, v in table.items()} == {
        "a1": [model.layers[0]], "a2": [model.layers[1]], "head": model.layers[2:]}


# --- freeze and unfreeze: exact counts -----------------------------------------------------

def test_freeze_by_name_leaves_exactly_the_other_layers_trainable(base):
    total = params(base.layers)
    assert trainable(base) == total == 11_176_512
    assert [layer.name for layer in T.select(base, ["conv1_conv", "conv1_bn"])] == [
        "conv1_conv", "conv1_bn"]
    T.freeze(base, ["conv1_conv", "conv1_bn"])
    frozen = [base.get_layer("conv1_conv"), base.get_layer("conv1_bn")]
    assert params(frozen) == 7 * 7 * 3 * 64 + 2 * 64
    assert trainable(base) == total - params(frozen)


def test_freeze_by_index_slice_and_negative_index(base):
    T.freeze(base, slice(0, 10))
    assert trainable(base) == params(base.layers[10:])
    T.unfreeze(base, train_bn=True)
    T.freeze(base, [-4, -3])  # conv5_block2_2_conv and _bn
    assert [layer.name for layer in base.layers[-4:-2]] == ["conv5_block2_2_conv",
                                                           "conv5_block2_2_bn"]
    assert trainable(base) == params(base.layers) - 3 * 3 * 512 * 512 - 2 * 512


def test_upto_before_and_stages_select_the_same_layers(base):
    upto = T.select(base, upto="conv2_block2_out")
    assert T.select(base, before="conv3_block1_1_pad") == upto
    assert T.select(base, stages=["conv1", "conv2"]) == upto[1:]  # upto also has the input
    T.freeze(base, stages=["conv1", "conv2"])
    later = base.layers[base.layers.index(base.get_layer("conv2_block2_out")) + 1:]
    assert trainable(base) == params(later)


def test_last_stages_counts_stages_before_the_head(base):
    conv5 = [layer for layer in base.layers if layer.name.startswith("conv5_")]
    T.freeze(base)
    assert trainable(base) == 0
    T.unfreeze(base, last_stages=1, train_bn=True)
    assert trainable(base) == params(conv5)
    T.freeze(base)
    T.unfreeze(base, last_stages=1)  # BatchNorm stays frozen by default
    assert trainable(base) == params(conv5, bn=False) == params(conv5) - 5 * 2 * 512
    T.freeze(base)
    T.unfreeze(base, last_stages=2, train_bn=True)
    assert trainable(base) == params([layer for layer in base.layers
                                      if layer.name.startswith(("conv4_", "conv5_"))])


def test_unfreeze_restores_and_by_default_keeps_batchnorm_frozen(base):
    total = params(base.layers)
    bn = [layer for layer in base.layers if isinstance(layer, layers.BatchNormalization)]
    T.freeze(base)
    T.unfreeze(base)
    assert trainable(base) == total - params(bn)
    assert not any(layer.trainable for layer in bn)
    T.unfreeze(base, train_bn=True)
    assert trainable(base) == total
    assert all(layer.trainable for layer in base.layers)


# --- regimes -------------------------------------------------------------------------------

def test_the_three_regimes_train_head_then_last_stage_then_everything(base):
    model = T.new_head(base, 7)
    head = 512 * 7 + 7
    conv5 = [layer for layer in base.layers if layer.name.startswith("conv5_")]
    everything = params(base.layers)
    assert trainable(model) == head  # new_head freezes the base
    assert T.regime(model, "small") == 1e-3
    assert trainable(model) == head
    assert T.regime(model, "medium") == 1e-4
    assert trainable(model) == head + params(conv5, bn=False)
    assert T.regime(model, "medium", last_stages=2, base_lr=2e-3) == 2e-4
    assert trainable(model) == head + params(
        [layer for layer in base.layers if layer.name.startswith(("conv4_", "conv5_"))], bn=False)
    assert T.regime(model, "large") == 1e-5
    assert trainable(model) == head + params(base.layers, bn=False)
    T.regime(model, "large", train_bn=True)
    assert trainable(model) == head + everything
    T.regime(model, "small")
    assert trainable(model) == head


def test_trainable_summary_of_the_small_regime(base):
    model = T.new_head(base, 7)
    summary = T.trainable_summary(model)
    bn = [layer for layer in base.layers if isinstance(layer, layers.BatchNormalization)]
    stats = sum(2 * layer.moving_mean.shape[0] for layer in bn)
    assert (summary.trainable, summary.frozen, summary.bn_statistics) == (
        3591, params(base.layers), stats)
    assert stats == 9600 and len(bn) == summary.bn_layers == 20
    assert summary.total == size(model.weights)
    assert summary.bn_updating == 0
    assert [(r.stage, r.state) for r in summary.rows] == [
        ("conv1", "frozen"), ("conv2", "frozen"), ("conv3", "frozen"), ("conv4", "frozen"),
        ("conv5", "frozen"), ("head", "trainable")]
    assert summary.rows[-1] == T.StageRow("head", "trainable", 3, 3591, 0, 0)
    text = str(summary)
    assert "trainable 3,591" in text and "BN statistics 9,600" in text


def test_regime_needs_a_head_and_a_known_size(base):
    with pytest.raises(ValueError, match="new_head"):
        T.regime(base, "small")
    with pytest.raises(ValueError, match="'medium'"):
        T.regime(T.new_head(base, 3), "meduim")


# --- BatchNorm: frozen means inference mode ------------------------------------------------

def test_a_training_step_with_a_frozen_base_changes_no_base_weight_nor_bn_statistics():
    base = tiny()
    model = T.new_head(base, 2, dropout=0)
    x, _ = batch()
    np.testing.assert_array_equal(model(x, training=True), model(x, training=False))
    before, head_before = snapshot(base), snapshot(model.get_layer("head_predictions"))
    one_step(model)
    for old, new in zip(before, snapshot(base)):
        np.testing.assert_array_equal(old, new)
    assert not np.array_equal(head_before[0], snapshot(model.get_layer("head_predictions"))[0])


def test_an_unfrozen_batchnorm_in_training_mode_moves_its_statistics():
    base = tiny()
    model = T.new_head(base, 2, dropout=0)
    T.regime(model, "large", train_bn=True)
    assert T.trainable_summary(model).bn_updating == 2
    before = T.bn_statistics(model)
    one_step(model)
    drift = T.bn_drift(before, model)
    assert drift.changed == 2 and drift.max_mean_shift > 0.1
    assert [row.layer for row in drift.rows] == ["conv1_bn", "conv2_bn"]
    assert "2 of 2 BatchNorm layers changed" in str(drift)


def test_fine_tuning_with_frozen_batchnorm_keeps_statistics_while_the_rest_trains():
    base = tiny()
    model = T.new_head(base, 2, dropout=0)
    assert T.regime(model, "large") == 1e-5  # train_bn=False: BN stays frozen
    summary = T.trainable_summary(model)
    assert summary.bn_updating == 0 and summary.trainable == 108 + 288 + 18
    assert summary.frozen == 8 + 16 and summary.bn_statistics == 8 + 16
    before, kernel = T.bn_statistics(model), snapshot(base.get_layer("conv1_conv"))[0]
    one_step(model)
    assert T.bn_drift(before, model).changed == 0
    assert not np.array_equal(kernel, snapshot(base.get_layer("conv1_conv"))[0])


def test_in_keras_3_a_training_false_call_does_not_protect_statistics_in_fit():
    """The tf.keras 2 recipe base(x, training=False): fit's training=True overrides it, which is
    why transfer relies on trainable=False (if this fails, Keras changed: update the docstring)."""
    base = tiny()
    inputs = keras.Input((8, 8, 3))
    x = layers.GlobalAveragePooling2D()(base(inputs, training=False))
    model = keras.Model(inputs, layers.Dense(2, activation="softmax")(x))
    before = T.bn_statistics(model)
    one_step(model)
    assert T.bn_drift(before, model).changed == 2


def test_bn_drift_measures_the_shift_in_old_standard_deviations():
    base = tiny(momentum=0.0)  # the moving statistics become the last batch's
    model = T.new_head(base, 2, dropout=0, freeze_base=False)
    before = T.bn_statistics(model)
    one_step(model, lr=0.0)
    x, _ = batch()
    conv1 = keras.ops.convert_to_numpy(base.get_layer("conv1_conv")(x))
    mean, var = conv1.mean(axis=(0, 1, 2)), conv1.var(axis=(0, 1, 2))
    row = T.bn_drift(before, model).rows[0]
    assert row.mean_shift == pytest.approx(np.mean(np.abs(mean)), rel=1e-4)  # old std 1
    assert row.var_ratio == pytest.approx(np.mean(var), rel=1e-4)  # old variance 1


# --- selection errors and helpers ----------------------------------------------------------

def test_typos_raise_with_suggestions(base):
    with pytest.raises(ValueError, match="Did you mean 'conv1_conv'"):
        T.freeze(base, "conv1_cnv")
    with pytest.raises(ValueError, match="Did you mean 'conv5'.*Stages: conv1, conv2"):
        T.freeze(base, stages="conv6")
    with pytest.raises(ValueError, match="out of range"):
        T.freeze(base, 1000)
    with pytest.raises(ValueError, match="not upto and stages"):
        T.freeze(base, upto="conv1_conv", stages="conv1")
    with pytest.raises(ValueError, match="from 0 to 5"):
        T.unfreeze(base, last_stages=6)
    assert trainable(base) == params(base.layers)  # nothing changed on the way


def test_a_nested_base_is_selected_by_its_name_and_warns_after_compile():
    base = tiny()
    model = T.new_head(base, 2, freeze_base=False)
    assert [layer.name for layer in T.select(model, "tiny")] == [
        "image", "conv1_conv", "conv1_bn", "conv1_relu", "conv2_conv", "conv2_bn", "conv2_relu"]
    assert T.layers_of(model)[-3:] == model.layers[-3:]
    model.compile("sgd", "sparse_categorical_crossentropy")
    with pytest.warns(UserWarning, match="compile again"):
        T.freeze(model, "tiny")
    assert trainable(model) == 18 and not base.trainable


def test_headless_copies_the_trained_body_up_to_the_last_feature_map():
    source = cnnkit.build("lenet5")
    base = T.headless(source)
    assert base.output.shape == (None, 5, 5, 16) and base.layers[-1].name == "s4_pool"
    for old, new in zip(source.weights[:4], base.weights):
        np.testing.assert_array_equal(old, new)
    source.get_layer("c1_conv").kernel.assign(np.zeros((5, 5, 1, 6), "float32"))
    assert np.abs(keras.ops.convert_to_numpy(base.get_layer("c1_conv").kernel)).sum() > 0
    shared = T.headless(source, "c3_conv", copy=False)
    assert shared.get_layer("c1_conv") is source.get_layer("c1_conv")
    model = T.new_head(base, 5, pooling="flatten")
    assert trainable(model) == 5 * 5 * 16 * 5 + 5
    assert list(T.stages(model)) == ["c1", "c3", "head"]


def test_a_transfer_model_saves_and_loads_in_safe_mode_with_its_frozen_layers(tmp_path):
    model = T.new_head(tiny(), 2)
    T.regime(model, "medium")  # head and conv2 train, BatchNorm frozen
    path = tmp_path / "transfer.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    x, _ = batch()
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0),
                               rtol=1e-6)
    assert trainable(loaded) == trainable(model) == 288 + 18
    assert [(r.stage, r.state) for r in T.trainable_summary(loaded).rows] == [
        ("conv1", "frozen"), ("conv2", "partly frozen"), ("head", "trainable")]
