"""What RepVGG's training-time branches buy (lesson 12): the deep, narrow RepVGG network and its
plain twin (cnnkit.course.experiments.deep_repvgg), their path counts (ensemble_paths), and
that both fold into the same deployed network, computing what they computed."""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.course.experiments import deep_repvgg, ensemble_paths
from cnnkit.models.repvgg import reparameterize, repvgg_block

to_numpy = keras.ops.convert_to_numpy
SMALL = dict(width=8, input_shape=(8, 8, 1), classes=10)  # depth 4 below


def layout(model):
    return [(layer.name, type(layer).__name__, tuple(layer.output.shape))
            for layer in model.layers]


def with_random_statistics(model, seed):
    """Every BatchNorm given a random scale, shift, moving mean and moving variance, as after
    training: a fresh BatchNorm is nearly the identity and would hide a wrong fold."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.normal(1, 0.3, c), rng.normal(0, 0.3, c),
                               rng.normal(0, 0.5, c), rng.uniform(0.2, 3.0, c)])
    return model


def test_parameter_counts_of_both_twins_and_their_fold():
    # Depth 4, width 8, 1 input channel, 10 classes; trainable parameters (BatchNorm: 2 per
    # channel), convolutions of the branches without bias.
    # block 1 (1 -> 8, no identity): 3x3 9*1*8 = 72, its BN 16, 1x1 1*8 = 8, its BN 16 = 112
    # blocks 2-4 (8 -> 8): 3x3 9*8*8 = 576 + 16, 1x1 64 + 16, identity BN 16 = 688, x3 = 2,064
    # head: dense 8*10 + 10 = 90.                      With branches: 112 + 2,064 + 90 = 2,266
    # plain: block 1 72 + 16 = 88; blocks 2-4 (576 + 16) x 3 = 1,776; head 90:        = 1,954
    # deployed: block 1 72 + 8 bias = 80; blocks 2-4 (576 + 8) x 3 = 1,752; head 90:   = 1,922
    branched, plain = deep_repvgg(4, **SMALL), deep_repvgg(4, ("3x3",), **SMALL)
    assert (branched.name, plain.name) == ("repvgg4", "plain4")
    assert count_params(branched) == 2_266
    assert count_params(plain) == 1_954
    assert count_params(reparameterize(branched)) == count_params(reparameterize(plain)) == 1_922

    def kinds(m):
        return [sum(type(layer).__name__ == k for layer in m.layers)
                for k in ("Conv2D", "BatchNormalization", "Add")]

    assert kinds(branched) == [8, 4 + 4 + 3, 4]
    assert kinds(plain) == [4, 4, 0]
    assert [layer.name for layer in plain.layers][1:5] == [
        "block1_3x3_conv", "block1_3x3_bn", "block1_relu", "block2_3x3_conv"]


@pytest.mark.parametrize("branches", [("3x3", "1x1", "identity"), ("3x3",), ("3x3", "1x1"),
                                      ("3x3", "identity")])
def test_every_ablation_folds_into_the_same_deployed_network_computing_the_same(branches):
    keras.utils.set_random_seed(1)
    model = with_random_statistics(deep_repvgg(4, branches, **SMALL), seed=2)
    deployed = reparameterize(model)
    assert layout(deployed) == layout(reparameterize(deep_repvgg(4, **SMALL)))
    images = np.random.default_rng(3).normal(size=(6, 8, 8, 1)).astype("float32")
    expected = to_numpy(model(images, training=False))
    scale = np.abs(expected).max()
    assert scale > 0.5  # far from zero: a wrong bias would show
    assert np.abs(to_numpy(deployed(images)) - expected).max() < 1e-5 * scale


def test_path_counts():
    # one 3x3-only path per plain block; a RepVGG block with identity offers 3 routes, the
    # first (1 channel -> width) 2: 2 * 3^(depth - 1)
    for depth in (1, 2, 5, 30):
        assert ensemble_paths(deep_repvgg(depth, width=4)) == 2 * 3 ** (depth - 1)
    assert ensemble_paths(deep_repvgg(30, width=4)) == 137_260_754_729_766
    assert ensemble_paths(deep_repvgg(5, ("3x3",), width=4)) == 1
    assert ensemble_paths(deep_repvgg(5, ("3x3", "1x1"), width=4)) == 2 ** 5
    assert ensemble_paths(deep_repvgg(5, ("3x3", "identity"), width=4)) == 2 ** 4
    # RepVGG-A0: 22 blocks, the first of each of its 5 stages without identity
    a0 = cnnkit.build("repvgg_a0", input_shape=(32, 32, 3), classes=10)
    assert ensemble_paths(a0) == 2 ** 5 * 3 ** 17 == 4_132_485_216


def test_refusals():
    with pytest.raises(ValueError, match="no RepVGG blocks"):
        ensemble_paths(reparameterize(deep_repvgg(2, width=4)))
    inputs = keras.Input((8, 8, 4))
    for branches in [("1x1", "identity"), ("3x3", "5x5"), ()]:
        with pytest.raises(ValueError, match="branches must hold '3x3'"):
            repvgg_block(inputs, 4, name="b", branches=branches)
    for depth in (0, 2.0, True):
        with pytest.raises(ValueError, match="depth must be a whole number"):
            deep_repvgg(depth)
