"""ShuffleNet V2's guideline experiments: equal MACs by construction, memory access as counted."""

import numpy as np
import pytest

from cnnkit import analysis

from cnnkit.course import guidelines

SIDE = 4


@pytest.mark.parametrize("build, macs", [
    (guidelines.g1_models, 10 * 2 * SIDE * SIDE * 140 * 140),
    (guidelines.g2_models, 10 * SIDE * SIDE * 140 * 140),
    (guidelines.g3_models, 10 * SIDE * SIDE * 140 * 140),
    (guidelines.g4_models, 10 * SIDE * SIDE * (128 * 32 + 9 * 32 * 32 + 32 * 128)),
], ids=lambda v: getattr(v, "__name__", ""))
def test_every_configuration_of_an_experiment_has_exactly_the_same_macs(build, macs):
    models = build(side=SIDE)
    assert len(models) >= 4
    assert {label: analysis.model_macs(m) for label, m in models.items()} == dict.fromkeys(
        models, macs)


def test_g1_memory_access_is_the_papers_formula_and_least_at_equal_widths():
    models = guidelines.g1_models(side=SIDE)
    hw = SIDE * SIDE
    want = [10 * 2 * (hw * (c1 + c2) + c1 * c2) for c1, c2 in guidelines.G1_CHANNELS]
    assert [analysis.memory_access(m) for m in models.values()] == want
    assert want == sorted(want)
    ratios = [c2 / c1 for c1, c2 in guidelines.G1_CHANNELS]
    assert np.allclose(ratios, [1, 2, 6, 12], rtol=0.05)  # the paper's 1:1, 1:2, 1:6, 1:12


def test_g2_layers_are_grouped_and_widen_with_the_groups():
    models = list(guidelines.g2_models(side=SIDE).values())
    groups = [m.get_layer("layer1_conv").groups for m in models]
    assert groups == [1, 2, 4, 8]
    memory = [analysis.memory_access(m) for m in models]
    assert memory == sorted(memory) and len(set(memory)) == 4


def test_g3_parallel_fragments_compute_one_convolution_cut_in_pieces():
    models = guidelines.g3_models(side=SIDE, blocks=1)
    one, four = models["1-fragment"], models["4-fragment-parallel"]
    kernels = [four.get_layer(f"block1_branch{i}").kernel for i in range(1, 5)]
    one.get_layer("block1_conv1").kernel.assign(np.concatenate(
        [np.asarray(k) for k in kernels], axis=-1))
    x = np.random.default_rng(0).normal(size=(2, SIDE, SIDE, 140)).astype("float32")
    np.testing.assert_allclose(np.asarray(one(x)), np.asarray(four(x)), rtol=1e-4, atol=1e-4)
    series = models["2-fragment-series"]
    assert [series.get_layer(f"block1_conv{i}").filters for i in (1, 2)] == [100, 98]


def test_g4_elementwise_operations_add_memory_access_and_nothing_else():
    models = list(guidelines.g4_models(side=SIDE).values())
    assert len({analysis.count_params(m) for m in models}) == 1
    maps = SIDE * SIDE * 128
    inner = SIDE * SIDE * 32
    relu = 2 * (2 * inner) + 2 * maps  # two ReLUs inside, one after: read and write each
    add = 3 * maps  # read two maps, write one
    full, relu_only, shortcut_only, bare = (analysis.memory_access(m) for m in models)
    assert full - relu_only == shortcut_only - bare == 10 * add
    assert full - shortcut_only == relu_only - bare == 10 * relu


def test_compare_times_every_model_and_the_first_row_is_the_baseline():
    models = dict(list(guidelines.g1_models(side=2, blocks=1).items())[:2])
    rows = guidelines.compare(models, batch_size=2, repeats=1)
    assert [r.config for r in rows] == list(models)
    assert rows[0].speed == 1.0 and all(r.seconds > 0 for r in rows)
    table = guidelines.format_rows(rows)
    assert table.splitlines()[0].startswith("configuration") and "1.00x" in table
    with pytest.raises(ValueError, match="repeats"):
        guidelines.time_forward(next(iter(models.values())), 2, repeats=0)
