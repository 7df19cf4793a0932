"""AlexNet, ZFNet and VGG: options, paper facts and the stage outputs later networks tap."""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params
from cnnkit.layers import LocalResponseNormalization

from helpers import to_numpy
from reference import VARIANT_PARAMS


def shapes(model, names):
    return {name: tuple(model.get_layer(name).output.shape[1:]) for name in names}


# ---- variant counts (default input, 1000 classes) ------------------------------------------

@pytest.mark.parametrize("name, option, kwargs", [("alexnet", "groups=2", dict(groups=2)),
                                                  ("vgg16", "batch_norm=True",
                                                   dict(batch_norm=True))])
def test_option_counts_equal_the_reference(name, option, kwargs):
    assert count_params(cnnkit.build(name, **kwargs)) == VARIANT_PARAMS[(name, option)][0]


# ---- local response normalization -----------------------------------------------------------

def lrn_by_the_formula(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """Krizhevsky et al. 2012, Section 3.3, one channel at a time, with explicit sums."""
    b = np.empty_like(a, dtype=np.float64)
    channels = a.shape[-1]
    for i in range(channels):
        lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
        energy = sum(a[..., j].astype(np.float64) ** 2 for j in range(lo, hi + 1))
        b[..., i] = a[..., i] / (k + alpha * energy) ** beta
    return b


@pytest.mark.parametrize("params", [dict(), dict(size=3, k=1.0, alpha=0.5, beta=0.5)])
def test_local_response_normalization_follows_the_papers_formula(params):
    a = np.random.default_rng(0).normal(0, 3, (2, 4, 5, 11)).astype("float32")
    expected = lrn_by_the_formula(a, **{("n" if key == "size" else key): value
                                        for key, value in params.items()})
    np.testing.assert_allclose(to_numpy(LocalResponseNormalization(**params)(a)), expected,
                               rtol=1e-5)


def test_alexnet_normalizes_after_conv1_and_conv2_with_the_papers_constants():
    model = cnnkit.build("alexnet", include_top=False, input_shape=(67, 67, 3))
    norms = [layer for layer in model.layers if isinstance(layer, LocalResponseNormalization)]
    assert [layer.name for layer in norms] == ["norm1", "norm2"]
    assert {(n.size, n.k, n.alpha, n.beta) for n in norms} == {(5, 2.0, 1e-4, 0.75)}
    names = [layer.name for layer in model.layers]
    # AlexNet normalizes before pooling; ZFNet pools, then normalizes (its Figure 3).
    assert names.index("norm1") < names.index("pool1")
    zf = [layer.name for layer in cnnkit.build("zfnet", include_top=False,
                                               input_shape=(53, 53, 3)).layers]
    assert zf.index("pool1") < zf.index("norm1")


# ---- the two-GPU split ----------------------------------------------------------------------

def kernels(groups):
    model = cnnkit.build("alexnet", include_top=False, input_shape=(67, 67, 3), groups=groups)
    return {name: tuple(model.get_layer(name).kernel.shape)
            for name in ("conv1", "conv2", "conv3", "conv4", "conv5")}


def test_grouped_alexnet_halves_the_kernels_of_conv2_conv4_conv5_only():
    one, two = kernels(1), kernels(2)
    assert one["conv2"] == (5, 5, 96, 256) and two["conv2"] == (5, 5, 48, 256)
    assert np.prod(one["conv2"]) == 614_400 and np.prod(two["conv2"]) == 307_200
    assert two["conv4"] == (3, 3, 192, 384) and two["conv5"] == (3, 3, 192, 256)
    # conv1 sees the whole image on both GPUs, conv3 is connected across them.
    assert one["conv1"] == two["conv1"] == (11, 11, 3, 96)
    assert one["conv3"] == two["conv3"] == (3, 3, 256, 384)
    saved = sum(np.prod(one[c]) - np.prod(two[c]) for c in ("conv2", "conv4", "conv5"))
    assert saved == 1_413_120 == 62_378_344 - 60_965_224


def test_each_half_of_a_grouped_convolution_sees_only_its_own_half_of_the_maps(tmp_path):
    model = cnnkit.build("alexnet", include_top=False, input_shape=(67, 67, 3), groups=2)
    model.save(tmp_path / "grouped.keras")
    model = keras.saving.load_model(tmp_path / "grouped.keras", safe_mode=True)
    conv2 = model.get_layer("conv2")
    x = np.random.default_rng(1).random((1, 7, 7, 96), dtype=np.float32)
    y = to_numpy(conv2(x))
    x_second_half_changed = x.copy()
    x_second_half_changed[..., 48:] += 1.0
    y2 = to_numpy(conv2(x_second_half_changed))
    np.testing.assert_array_equal(y2[..., :128], y[..., :128])  # GPU 1 did not notice
    assert not np.allclose(y2[..., 128:], y[..., 128:])


def test_grouped_alexnet_trains_on_this_backend():
    keras.utils.set_random_seed(0)
    model = cnnkit.build("alexnet", input_shape=(67, 67, 3), classes=3, groups=2)
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    before = model.get_layer("conv4").get_weights()[0].copy()
    x = np.random.default_rng(0).random((2, 67, 67, 3), dtype=np.float32)
    assert np.isfinite(model.train_on_batch(x, np.array([0, 2])))
    assert not np.array_equal(model.get_layer("conv4").get_weights()[0], before)


@pytest.mark.parametrize("groups", [3, 0, True, "2"])
def test_other_groups_are_refused(groups):
    with pytest.raises(ValueError, match=r"groups must be 1 \(one tower.*or 2 \(the paper's"):
        cnnkit.build("alexnet", groups=groups)


def test_zfnet_has_no_split():
    with pytest.raises(ValueError, match="zfnet does not take 'groups'"):
        cnnkit.build("zfnet", groups=2)


# ---- map sizes of the papers' figures -------------------------------------------------------

def test_alexnet_maps_are_those_of_figure_2():
    model = cnnkit.build("alexnet", include_top=False)  # 227x227
    assert shapes(model, ["conv1", "pool1", "conv2", "pool2", "conv5", "pool5"]) == {
        "conv1": (55, 55, 96), "pool1": (27, 27, 96), "conv2": (27, 27, 256),
        "pool2": (13, 13, 256), "conv5": (13, 13, 256), "pool5": (6, 6, 256)}


def test_zfnet_maps_are_those_of_figure_3():
    model = cnnkit.build("zfnet", include_top=False)
    assert shapes(model, ["conv1", "pool1", "conv2", "pool2", "conv5", "pool5"]) == {
        "conv1": (110, 110, 96), "pool1": (55, 55, 96), "conv2": (26, 26, 256),
        "pool2": (13, 13, 256), "conv5": (13, 13, 256), "pool5": (6, 6, 256)}
    # ZFNet only shrinks conv1: 7x7x3x96 + 96 instead of 11x11x3x96 + 96.
    assert (11 * 11 - 7 * 7) * 3 * 96 == 62_378_344 - 62_357_608


# ---- VGG --------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, weight_layers", [("vgg11", 11), ("vgg13", 13), ("vgg16", 16),
                                                 ("vgg19", 19)])
def test_vgg_name_counts_its_weight_layers_and_every_kernel_is_3x3(name, weight_layers):
    model = cnnkit.build(name, include_top=False, input_shape=(32, 32, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) + 3 == weight_layers  # and fc1, fc2, predictions
    assert {layer.kernel_size for layer in convs} == {(3, 3)}
    assert {layer.strides for layer in convs} == {(1, 1)}


def test_vgg_blocks_halve_the_maps_and_block3_block4_pools_are_stride_8_and_16():
    model = cnnkit.build("vgg16", include_top=False)  # 224x224
    assert shapes(model, [f"block{b}_pool" for b in range(1, 6)]) == {
        "block1_pool": (112, 112, 64), "block2_pool": (56, 56, 128),
        "block3_pool": (28, 28, 256), "block4_pool": (14, 14, 512),
        "block5_pool": (7, 7, 512)}
    assert shapes(model, ["block3_conv3", "block5_conv3"]) == {
        "block3_conv3": (56, 56, 256), "block5_conv3": (14, 14, 512)}
    # an FCN builds on any size: the taps keep strides 8 and 16
    free = cnnkit.build("vgg16", include_top=False, input_shape=(None, None, 3))
    taps = keras.Model(free.input, [free.get_layer("block3_pool").output,
                                    free.get_layer("block4_pool").output])
    a, b = taps(np.zeros((1, 64, 96, 3), "float32"))
    assert a.shape == (1, 8, 12, 256) and b.shape == (1, 4, 6, 512)


@pytest.mark.parametrize("name, widths", [("vgg11", 2752), ("vgg13", 2944), ("vgg16", 4224),
                                          ("vgg19", 5504)])
def test_batch_norm_adds_a_scale_and_a_shift_per_convolution_map(name, widths):
    # torchvision's vgg11_bn ... vgg19_bn: 132,868,840 / 133,053,736 / 138,365,992 / 143,678,248
    plain = cnnkit.build(name, include_top=False, input_shape=(32, 32, 3))
    normed = cnnkit.build(name, include_top=False, input_shape=(32, 32, 3), batch_norm=True)
    assert count_params(normed) - count_params(plain) == 2 * widths
    assert count_params(normed, trainable=False) == 2 * widths  # moving mean and variance
    names = [layer.name for layer in normed.layers]
    assert names[1:4] == ["block1_conv1", "block1_conv1_bn", "block1_conv1_relu"]
    assert normed.get_layer("block1_conv1").use_bias  # kept, as torchvision keeps it


def test_batch_norm_must_be_a_bool():
    with pytest.raises(ValueError, match="batch_norm must be True .* or False"):
        cnnkit.build("vgg16", batch_norm="yes")
