"""RepVGG: what the shared model tests cannot see.

The deployed parameter counts, that `reparameterize` computes the same function as the trained
multi-branch network (with non-trivial BatchNorm statistics), the three folding identities on
single layers, where the identity branch exists, and the stage outputs a detector taps.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import block_params, count_params
from cnnkit.models.repvgg import (REPVGG_CONFIGS, fuse_bn, identity_kernel, pad_1x1_to_3x3,
                                  reparameterize)

from helpers import to_numpy
from reference import VARIANT_PARAMS

SMALL = dict(input_shape=(32, 32, 3), classes=3, classifier_activation=None)  # logits


def as_after_training(model, seed):
    """Random BatchNorm scales and shifts, moving statistics measured on a batch of images.

    Fresh BatchNorm is the identity (mean 0, var 1, gamma 1, beta 0) and would hide a wrong fold;
    momentum 0 for one training-mode call sets every moving mean and variance to the statistics
    of the maps that layer really sees, as training does, without the cost of training.
    """
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        c = layer.moving_mean.shape[0]
        layer.set_weights([rng.normal(1, 0.2, c), rng.normal(0, 0.2, c),
                           *layer.get_weights()[2:]])
        layer.momentum = 0.0
    model(rng.normal(size=(16, *model.input_shape[1:])), training=True)
    for layer in norms:
        layer.momentum = 0.9
    return model


@pytest.fixture(scope="module")
def trained():
    """repvgg_a0 at 32x32, 3 classes, as after training: logits out."""
    keras.utils.set_random_seed(0)
    model = as_after_training(cnnkit.build("repvgg_a0", **SMALL), seed=0)
    assert np.abs(model.get_layer("stage4_block3_3x3_bn").moving_mean).max() > 0.1
    return model


@pytest.fixture(scope="module")
def deployed(trained):
    return reparameterize(trained)


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(1).normal(size=(4, 32, 32, 3)).astype("float32")


# --- Deployed counts and the fold --------------------------------------------------------------

@pytest.mark.parametrize("name", list(REPVGG_CONFIGS))
def test_deployed_counts_equal_timm_reparameterize_model(name):
    assert count_params(cnnkit.build(name, deploy=True)) == VARIANT_PARAMS[(name, "deploy")][0]


def test_reparameterize_computes_the_trained_networks_function(trained, deployed, images):
    logits, expected = to_numpy(deployed(images)), to_numpy(trained(images, training=False))
    scale = np.abs(expected).max()
    assert scale > 1.0  # far from zero: a wrong bias would show
    # float32 rounds differently along the two paths, in proportion to the logits' size.
    # Measured: 3.7e-5 on logits up to 42 (the softmax outputs differ by 8e-6). The fold itself
    # is exact: see the float64 test below.
    assert np.abs(logits - expected).max() < 1e-5 * scale


def test_after_real_training_steps_the_deployed_softmax_outputs_agree_to_1e_5(images):
    """The issue's acceptance: train a few steps, then the default (softmax) outputs of the
    deployed model equal the training-time model's to 1e-5."""
    keras.utils.set_random_seed(3)
    model = cnnkit.build("repvgg_a0", input_shape=(32, 32, 3), classes=3)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", run_eagerly=True)
    rng = np.random.default_rng(3)
    for _ in range(4):
        model.train_on_batch(rng.normal(size=(16, 32, 32, 3)).astype("float32"),
                             rng.integers(0, 3, 16))
    assert np.abs(model.get_layer("stage4_block3_3x3_bn").moving_mean).max() > 0.1
    deployed = reparameterize(model)
    difference = np.abs(to_numpy(deployed(images)) - to_numpy(model(images, training=False)))
    assert difference.max() < 1e-5


def test_the_fold_is_exact_in_float64_for_a_headless_model_with_pooling(images):
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float64")
    try:
        model = cnnkit.build("repvgg_a0", include_top=False, pooling="max",
                             input_shape=(32, 32, 3))
        plain = reparameterize(as_after_training(model, seed=2))
        x = images.astype("float64")
        ours, expected = to_numpy(plain(x)), to_numpy(model(x, training=False))
    finally:
        keras.config.set_dtype_policy(policy)
    assert plain.output_shape == (None, 1280) and plain.layers[-1].name == "max_pool"
    assert np.abs(expected).max() > 1.0
    assert np.abs(ours - expected).max() < 1e-10


def test_reparameterized_model_is_the_deploy_architecture(trained, deployed):
    plain = cnnkit.build("repvgg_a0", deploy=True, **SMALL)
    assert [(layer.name, tuple(layer.output.shape)) for layer in deployed.layers] == [
        (layer.name, tuple(layer.output.shape)) for layer in plain.layers]
    assert count_params(deployed) == count_params(plain) < count_params(trained)
    convs = [layer for layer in deployed.layers if isinstance(layer, keras.layers.Conv2D)]
    # RepVGG-A: 1 + 2 + 4 + 14 + 1 = 22 layers, each one 3x3 convolution with bias.
    assert len(convs) == 22
    assert all(c.kernel_size == (3, 3) and c.use_bias for c in convs)
    assert not any(isinstance(layer, (keras.layers.BatchNormalization, keras.layers.Add))
                   for layer in deployed.layers)


def test_deployed_model_round_trips_in_safe_mode(deployed, images, tmp_path):
    deployed.save(tmp_path / "deployed.keras")
    loaded = keras.saving.load_model(tmp_path / "deployed.keras", safe_mode=True)
    np.testing.assert_array_equal(to_numpy(loaded(images)), to_numpy(deployed(images)))


# --- The three identities of Fig. 4, on single layers -----------------------------------------

def test_fuse_bn_folds_batchnorm_into_the_convolution_before_it():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 6, 6, 4)).astype("float32")
    conv = keras.layers.Conv2D(5, 3, padding="same", use_bias=False)
    bn = keras.layers.BatchNormalization(epsilon=1e-3)
    bn(conv(x))  # builds both layers
    bn.set_weights([rng.normal(1, .2, 5), rng.normal(0, .2, 5), rng.normal(0, .2, 5),
                    rng.uniform(.5, 2, 5)])
    kernel, bias = fuse_bn(conv.get_weights()[0], bn.get_weights(), bn.epsilon)
    fused = keras.layers.Conv2D(5, 3, padding="same")
    fused.build(x.shape)
    fused.set_weights([kernel, bias])
    y = to_numpy(bn(conv(x), training=False))
    np.testing.assert_allclose(to_numpy(fused(x)), y, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("strides", [1, 2])
def test_a_1x1_kernel_padded_to_3x3_gives_the_same_output(strides):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 8, 8, 3)).astype("float32")
    kernel = rng.normal(size=(1, 1, 3, 4)).astype("float32")
    padded = pad_1x1_to_3x3(kernel)
    assert padded.shape == (3, 3, 3, 4) and np.count_nonzero(padded[1, 1]) == 12
    one = keras.ops.conv(x, kernel, strides=strides)
    # As repvgg_block places them: stride 2 pads 1 pixel on every side, stride 1 is "same".
    if strides == 2:
        three = keras.ops.conv(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))), padded, strides=2)
    else:
        three = keras.ops.conv(x, padded, padding="same")
    np.testing.assert_allclose(to_numpy(three), to_numpy(one), rtol=1e-6, atol=1e-6)


def test_the_identity_is_a_3x3_convolution_with_a_centred_one():
    kernel = identity_kernel(5)
    assert kernel.shape == (3, 3, 5, 5) and kernel.sum() == 5
    np.testing.assert_array_equal(kernel[1, 1], np.eye(5))
    x = np.random.default_rng(5).normal(size=(2, 7, 7, 5)).astype("float32")
    np.testing.assert_allclose(to_numpy(keras.ops.conv(x, kernel.astype("float32"),
                                                       padding="same")), x, atol=1e-6)


# --- The block layout and the stage outputs ----------------------------------------------------

def test_identity_branch_only_where_the_shape_is_kept(trained):
    names = {layer.name for layer in trained.layers}
    assert "stage1_block1_identity_bn" not in names  # stride 2, 3 -> 48 channels
    assert "stage2_block1_identity_bn" not in names  # stride 2
    assert {"stage2_block2_identity_bn", "stage4_block14_identity_bn"} <= names
    assert "stage5_block1_identity_bn" not in names
    assert sum(name.endswith("_identity_bn") for name in names) == 1 + 3 + 13


def test_a_block_counted_by_hand(trained, deployed):
    c = 96  # repvgg_a0 stage3: 128a with a = 0.75
    # 3x3 conv + BN (gamma, beta), 1x1 conv + BN, identity BN; deployed: one 3x3 conv with bias.
    assert block_params(trained, "stage3_block2_") == (
        9 * c * c + 2 * c + c * c + 2 * c + 2 * c) == 92_736
    assert block_params(deployed, "stage3_block2_") == 9 * c * c + c == 83_040


@pytest.mark.parametrize("which", ["trained", "deployed"])
def test_stage_outputs_have_stride_two_to_the_stage(which, request):
    model = request.getfixturevalue(which)
    last = {1: 1, 2: 2, 3: 4, 4: 14, 5: 1}
    shapes = [tuple(model.get_layer(f"stage{s}_block{b}_relu").output.shape)
              for s, b in last.items()]
    # 32x32 input; widths min(64, 64a), 64a, 128a, 256a, 512b with a = 0.75, b = 2.5.
    assert shapes == [(None, 16, 16, 48), (None, 8, 8, 48), (None, 4, 4, 96),
                      (None, 2, 2, 192), (None, 1, 1, 1280)]


def test_odd_sizes_halve_rounding_up_as_in_pytorch():
    model = cnnkit.build("repvgg_a0", include_top=False, deploy=True, input_shape=(33, 33, 3))
    assert model.get_layer("stage3_block4_relu").output.shape[1:3] == (5, 5)  # 33/2/2/2 -> 5


# --- Bad options -------------------------------------------------------------------------------

def test_deploy_must_be_a_bool():
    with pytest.raises(ValueError, match="deploy must be True .* or False"):
        cnnkit.build("repvgg_a0", deploy="yes")


def test_reparameterize_refuses_models_without_repvgg_blocks(deployed):
    for model in (deployed, cnnkit.build("lenet5")):
        with pytest.raises(ValueError, match="no RepVGG blocks.*deploy=False"):
            reparameterize(model)
