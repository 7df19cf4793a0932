"""cnnkit.course.nas: the toy architecture search of lesson 11 (NASNet-style cells, regularized
evolution against random search)."""

import keras
import numpy as np
import pytest

from cnnkit import analysis

from cnnkit.course import nas
from cnnkit.course.nas import Architecture, Block

# Every op appears once: conv3x3, identity, sepconv3x3, maxpool3x3 in the Normal cell;
# conv3x3, maxpool3x3, identity, avgpool3x3 in the Reduction cell.
FIXED = Architecture(
    normal=(Block(0, "conv3x3", 0, "identity"), Block(1, "sepconv3x3", 0, "maxpool3x3")),
    reduction=(Block(0, "conv3x3", 0, "maxpool3x3"), Block(1, "identity", 1, "avgpool3x3")),
    width=8, repeats=1)


def test_a_fixed_architecture_has_the_hand_counted_weights_and_macs():
    model = nas.build_model(FIXED)
    # Trainable weights (a BatchNorm has 2C: gamma and beta); 8x8 maps, then 4x4:
    #   stem 3x3 conv 1->8: 72 + 16                                               =    88
    #   cell 1, Normal, width 8: 1x1 pre 8*8 + 16 = 80; b1 conv3x3 9*8*8 + 16 = 592;
    #     b2 sepconv3x3 9*8 + 8*8 + 16 = 152 (identity and max pool have none)   =   824
    #   cell 2, Reduction, width 16: 1x1 pre 8*16 + 32 = 160; b1 stride-2 conv3x3
    #     9*16*16 + 32 = 2,336; b2 identity + average pool                       = 2,496
    #   cell 3, Normal, width 16: pre 16*16 + 32 = 288; conv 2,336; sepconv
    #     9*16 + 16*16 + 32 = 432                                                 = 3,056
    #   classifier 16*10 + 10                                                     =   170
    assert analysis.count_params(model) == 88 + 824 + 2_496 + 3_056 + 170 == 6_634
    # 8 BatchNorms, each with a moving mean and variance: 2*(8 + 3*8 + 2*16 + 3*16)
    assert analysis.count_params(model, trainable=False) == 224
    # MACs: stem 64 px*8*9 = 4,608; cell 1: pre 64*8*8 = 4,096, conv 64*8*72 = 36,864,
    # sepconv 64*(72 + 64) = 8,704; cell 2: pre 64*8*16 = 8,192, stride-2 conv 16*16*144
    # = 36,864; cell 3: pre 16*16*16 = 4,096, conv 36,864, sepconv 16*(144 + 256) = 6,400;
    # classifier 160.
    assert analysis.model_macs(model) == (4_608 + 4_096 + 36_864 + 8_704 + 8_192 + 36_864
                                          + 4_096 + 36_864 + 6_400 + 160) == 146_848
    # b1 is read by b2 in every cell, so each cell's output is b2 alone (no concatenation).
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]


def test_unread_blocks_are_concatenated_and_the_next_cell_brings_them_back_to_its_width():
    both_loose = FIXED._replace(normal=(Block(0, "conv3x3", 0, "identity"),
                                        Block(0, "maxpool3x3", 0, "avgpool3x3")))
    model = nas.build_model(both_loose)
    assert tuple(model.get_layer("cell1_normal_concat").output.shape) == (None, 8, 8, 16)
    assert model.get_layer("cell2_reduction_pre_conv").kernel.shape == (1, 1, 16, 16)


@pytest.mark.parametrize("op", nas.OPS)
def test_every_operation_builds_in_both_cells_with_the_right_shapes(op):
    cell = (Block(0, op, 0, op), Block(1, op, 0, op))
    model = nas.build_model(Architecture(cell, cell, width=16, repeats=2))
    assert tuple(model.output.shape) == (None, 10)
    shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers
              if layer.name.endswith("block2_add")}
    assert shapes == {"cell1_normal_block2_add": (8, 8, 16), "cell2_normal_block2_add": (8, 8, 16),
                      "cell3_reduction_block2_add": (4, 4, 32),
                      "cell4_normal_block2_add": (4, 4, 32), "cell5_normal_block2_add": (4, 4, 32)}
    out = keras.ops.convert_to_numpy(model(np.zeros((2, 8, 8, 1), "float32")))
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


def test_an_architecture_outside_the_space_is_refused():
    with pytest.raises(ValueError, match="inputs 0..0"):
        nas.build_model(FIXED._replace(normal=(Block(1, "conv3x3", 0, "identity"),
                                               FIXED.normal[1])))
    with pytest.raises(ValueError, match="unknown operation"):
        nas.build_model(FIXED._replace(normal=(Block(0, "conv7x7", 0, "identity"),
                                               FIXED.normal[1])))
    with pytest.raises(ValueError, match="width"):
        nas.build_model(FIXED._replace(width=12))


def test_the_sampler_is_determined_by_its_seed_and_covers_the_space():
    archs = _many(0, 300)
    assert archs == _many(0, 300) and archs[0] != _many(1, 1)[0]
    ops = {op for a in archs for cell in (a.normal, a.reduction) for b in cell
           for op in (b.op_a, b.op_b)}
    assert ops == set(nas.OPS)
    assert {a.width for a in archs} == set(nas.WIDTHS)
    assert {a.repeats for a in archs} == set(nas.REPEATS)
    assert {a.normal[1].input_a for a in archs} == {0, 1}
    assert all(a.normal[0].input_a == a.normal[0].input_b == 0 for a in archs)


def _many(seed, n):
    rng = np.random.default_rng(seed)
    return [nas.sample_architecture(rng) for _ in range(n)]


def _differences(a, b):
    flat = lambda arch: [*arch.normal[0], *arch.normal[1], *arch.reduction[0],  # noqa: E731
                         *arch.reduction[1], arch.width, arch.repeats]
    return sum(x != y for x, y in zip(flat(a), flat(b)))


def test_a_mutation_changes_exactly_one_choice_and_stays_in_the_space():
    rng = np.random.default_rng(0)
    arch = FIXED
    for _ in range(200):
        child = nas.mutate(arch, rng)
        assert _differences(arch, child) == 1
        nas._check(child)
        arch = child
    a, b = (nas.mutate(FIXED, np.random.default_rng(3)) for _ in range(2))
    assert a == b


def _fake_evaluate(arch, data, *, epochs, seed):
    # A reward with a known optimum (every operation a 3x3 convolution) and no training, so the
    # search's own logic is tested in milliseconds.
    convs = sum(op == "conv3x3" for cell in (arch.normal, arch.reduction) for b in cell
                for op in (b.op_a, b.op_b))
    return nas.Candidate(arch, convs, convs, convs / 8)


def test_both_searches_spend_their_budget_share_their_start_and_evolution_climbs(monkeypatch):
    monkeypatch.setattr(nas, "evaluate", _fake_evaluate)
    cache = {}
    random = nas.random_search(None, 200, cache=cache, progress=False)
    evolution = nas.regularized_evolution(None, 200, population=20, sample=5, cache=cache,
                                          progress=False)
    assert len(random) == len(evolution) == 200
    assert [c.architecture for c in evolution[:20]] == [c.architecture for c in random[:20]]
    for history in (random, evolution):
        curve = nas.best_so_far(history)
        assert np.all(np.diff(curve) >= 0) and curve[-1] == max(c.accuracy for c in history)
    # Mutating the best of a sample climbs the fake reward (7 of 8 convolutions with this
    # seed); 200 random draws find 3 (each operation is a 3x3 convolution with p = 1/7).
    assert nas.best_so_far(evolution)[-1] >= 6 / 8 > 4 / 8 > nas.best_so_far(random)[-1]
    assert len(cache) == len({c.architecture for c in random + evolution})


def test_regularized_evolution_checks_its_sizes():
    with pytest.raises(ValueError, match="sample <= population"):
        nas.regularized_evolution(None, 10, population=3, sample=4, progress=False)


def test_a_real_evaluation_trains_the_candidate_on_digits():
    data = nas.digits_splits()
    assert [len(a) for a in data] == [1_077, 1_077, 360, 360]
    assert data[0].shape[1:] == (8, 8, 1)
    result = nas.evaluate(FIXED, data, epochs=1)
    assert (result.params, result.macs) == (6_634, 146_848)
    assert 0.5 < result.accuracy <= 1  # one epoch on 1,024 digits: far above chance (0.1)


def test_the_space_size_counts_every_choice():
    # Per cell: block 1 has 1 input choice and 7 ops per side, block 2 has 2 inputs and 7 ops:
    # (1*7)^2 * (2*7)^2 = 9,604; two cells, 3 widths, 2 repeats.
    assert nas.space_size() == 9_604 ** 2 * 3 * 2 == 553_420_896
