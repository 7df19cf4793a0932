"""FCN-32s/16s/8s, U-Net and U-Net++: what the map-network pattern cannot see.

tests/test_models.py's MapPattern checks every model's count against tests/reference.py, the
`.keras` round trip, weights files, a training step and the minimum size. Here: the counts
derived from the papers' layer sizes (that reference.py holds), output shapes and strides per
level, the valid U-Net (its crops, its round trip), U-Net++ without deep supervision training
every weight, and the ValueErrors of each option. FCN holds 134M parameters whatever the input,
so it is built as few times as possible; everything runs at small sizes.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params, tap
from cnnkit.layers import BilinearUpsampling, bilinear_kernel
from cnnkit.models.fcn import bilinear_upsampling

from helpers import to_numpy, unchanged_after_one_step
from reference import VARIANT_PARAMS

CLASSES = 3  # not a default, so `classes` is exercised


def conv(k, c_in, c_out, bias=True):
    return k * k * c_in * c_out + (c_out if bias else 0)


def images(shape, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


# ---------------------------------------------------------------- FCN

VGG16_CONVS = sum(conv(3, c_in, c_out) for c_in, c_out in [
    (3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
    (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)])


def fcn_params(stride, classes=21):
    """(trainable, frozen) parameters of FCN-`stride`s from the paper's layer sizes."""
    trainable = VGG16_CONVS + conv(7, 512, 4096) + conv(1, 4096, 4096) + conv(1, 4096, classes)
    for skip_stride, channels in ((16, 512), (8, 256)):  # pool4, then pool3
        if stride <= skip_stride:
            trainable += conv(4, classes, classes, bias=False) + conv(1, channels, classes)
    return trainable, conv(2 * stride, classes, classes, bias=False)


def check_fcn_maps(model, stride, height, width):
    """Each level's map has the size of its stride; only the final upsampling is fixed."""
    levels = {"block3_pool": 8, "block4_pool": 16, "block5_pool": 32, "fc7": 32, "score_fr": 32}
    if stride <= 16:
        levels |= {"upscore2": 16, "score_pool4": 16, "fuse_pool4": 16}
    if stride == 8:
        levels |= {"upscore_pool4": 8, "score_pool3": 8, "fuse_pool3": 8}
    final = {32: "upscore", 16: "upscore16", 8: "upscore8"}[stride]
    levels |= {final: 1, "predictions": 1}
    assert {n: tuple(model.get_layer(n).output.shape[1:3]) for n in levels} == {
        n: (height // s, width // s) for n, s in levels.items()}
    assert model.layers[-1].name == "predictions"
    skips = [layer.name for layer in model.layers if layer.name.startswith("score_pool")]
    assert skips == {32: [], 16: ["score_pool4"], 8: ["score_pool4", "score_pool3"]}[stride]
    # The paper's Section 4.3: the final upsampling is fixed bilinear, intermediate ones learned.
    ups = {layer.name: layer for layer in model.layers
           if isinstance(layer, keras.layers.Conv2DTranspose)}
    assert {n: (u.trainable, u.kernel_size, u.strides, u.use_bias) for n, u in ups.items()} == {
        n: (n != final, (2 * s,) * 2, (s,) * 2, False)
        for n, s in {"upscore2": 2, "upscore_pool4": 2, final: stride}.items() if n in ups}


@pytest.fixture(scope="module")
def fcn32s():
    return cnnkit.build("fcn32s")  # the default: 224x224x3, 21 classes


@pytest.fixture(scope="module")
def fcn8s_small():
    return cnnkit.build("fcn8s", input_shape=(32, 64, 3))  # 21 classes


def test_fcn_registry_entries_hold_the_derived_counts():
    for name, stride in (("fcn32s", 32), ("fcn16s", 16), ("fcn8s", 8)):
        info = cnnkit.model_info(name)
        assert (info.task, info.family, info.classes, info.min_size, info.input_shape) == (
            "segmentation", "fcn", 21, 32, (224, 224, 3))
        assert info.params == fcn_params(stride)[0]
    assert [fcn_params(s)[0] for s in (32, 16, 8)] == [134_346_581, 134_364_410, 134_376_863]


def test_fcn32s_count_and_maps_at_the_default_size(fcn32s):
    assert (count_params(fcn32s), count_params(fcn32s, trainable=False)) == fcn_params(32)
    assert fcn32s.output_shape == (None, 224, 224, 21)
    check_fcn_maps(fcn32s, 32, 224, 224)


def test_fcn16s_count_and_maps_with_other_classes():
    model = cnnkit.build("fcn16s", classes=CLASSES)
    assert (count_params(model), count_params(model, trainable=False)) == fcn_params(16, CLASSES)
    assert model.output_shape == (None, 224, 224, CLASSES)
    check_fcn_maps(model, 16, 224, 224)


def test_fcn8s_count_and_maps_at_a_small_size(fcn8s_small):
    assert (count_params(fcn8s_small), count_params(fcn8s_small, trainable=False)) == (
        fcn_params(8))
    check_fcn_maps(fcn8s_small, 8, 32, 64)


def test_fc6_and_fc7_are_vgg16s_fc1_and_fc2_convolutionalized(fcn32s):
    """fc6 holds exactly fc1's 25088*4096 + 4096 weights; reshaped to 7x7x512x4096 they give,
    at fc6's centre for a 224x224 image, exactly what VGG16's fc1 gives (and fc7 what fc2 gives)."""
    vgg, fcn = cnnkit.build("vgg16"), fcn32s
    assert vgg.get_layer("fc1").count_params() == fcn.get_layer("fc6").count_params() == (
        25088 * 4096 + 4096)
    assert vgg.get_layer("fc2").count_params() == fcn.get_layer("fc7").count_params() == (
        4096 * 4096 + 4096)
    for layer in vgg.layers:
        if layer.name.startswith("block") and layer.weights:
            fcn.get_layer(layer.name).set_weights(layer.get_weights())
    for dense, conv_name, k in (("fc1", "fc6", 7), ("fc2", "fc7", 1)):
        kernel, bias = vgg.get_layer(dense).get_weights()
        fcn.get_layer(conv_name).set_weights([kernel.reshape(k, k, -1, 4096), bias])
    x = images((224, 224, 3), n=1) * 255
    fc1, fc2 = tap(vgg, ["fc1", "fc2"], x)
    fc6, fc7 = tap(fcn, ["fc6", "fc7"], x)
    assert fc6.shape == fc7.shape == (1, 7, 7, 4096)
    np.testing.assert_allclose(fc6[:, 3, 3], fc1, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(fc7[:, 3, 3], fc2, rtol=1e-4, atol=1e-3)


def test_bilinear_kernel_matches_the_caffe_release():
    np.testing.assert_allclose(bilinear_kernel(4)[0], [0.0625, 0.1875, 0.1875, 0.0625])
    np.testing.assert_allclose(bilinear_kernel(4)[1], [0.1875, 0.5625, 0.5625, 0.1875])
    kernel = to_numpy(BilinearUpsampling()((16, 16, 3, 3)))
    assert np.count_nonzero(kernel[:, :, 0, 1]) == 0  # one kernel per class, no mixing
    np.testing.assert_allclose(kernel[:, :, 2, 2], bilinear_kernel(16))


def test_fixed_upsampling_interpolates_bilinearly_between_pixel_centres():
    """Away from the border, the 8x transposed convolution is half-pixel bilinear resizing."""
    inputs = keras.Input((5, 6, 2))
    up = keras.Model(inputs, bilinear_upsampling(inputs, 8, name="up", trainable=False))
    x = images((5, 6, 2), n=1)
    out = to_numpy(up(x))
    assert out.shape == (1, 40, 48, 2)

    def resize_1d(n, factor):  # interpolation matrix of half-pixel-centred bilinear resizing
        u = (np.arange(n * factor) + 0.5) / factor - 0.5
        i0 = np.clip(np.floor(u).astype(int), 0, n - 2)
        m = np.zeros((n * factor, n))
        m[np.arange(n * factor), i0] = 1 - (u - i0)
        m[np.arange(n * factor), i0 + 1] = u - i0
        return m

    expected = np.einsum("ai,bj,ijc->abc", resize_1d(5, 8), resize_1d(6, 8), x[0])
    np.testing.assert_allclose(out[0, 4:-4, 4:-4], expected[4:-4, 4:-4], rtol=1e-5, atol=1e-6)


def test_fcn8s_forward_gives_a_probability_map_the_size_of_the_image(fcn8s_small):
    out = to_numpy(fcn8s_small(images((32, 64, 3))))
    assert out.shape == (2, 32, 64, 21)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    for name in ("score_pool4", "score_pool3"):  # the paper's zero start: 32s predictions kept
        assert not np.any(fcn8s_small.get_layer(name).get_weights()[0])


@pytest.mark.parametrize("size, message", [
    (100, r"divisible by 32 \(the stride of block5_pool, "), (100, "to 96 or 128"),
    (40, "to 32 or 64")])
def test_fcn_sizes_that_do_not_line_up_are_refused(size, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("fcn16s", input_shape=(size, 64, 3))


# ---------------------------------------------------------------- U-Net

def unet_params(channels=1, classes=2, filters=(64, 128, 256, 512, 1024)):
    """Figure 1: two 3x3 convolutions per level; 2x2 up-convolution, concatenation, two more."""
    total, c_in = 0, channels
    for f in filters:
        total += conv(3, c_in, f) + conv(3, f, f)
        c_in = f
    for f in reversed(filters[:-1]):
        total += conv(2, c_in, f) + conv(3, 2 * f, f) + conv(3, f, f)
        c_in = f
    return total + conv(1, c_in, classes)


def test_unet_has_the_papers_31_030_658_parameters_and_388x388_output():
    model = cnnkit.build("unet")
    assert unet_params() == count_params(model) == cnnkit.model_info("unet").params == 31_030_658
    assert model.input_shape == (None, 572, 572, 1) and model.output_shape == (None, 388, 388, 2)
    convs = [layer for layer in model.layers
             if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose))]
    assert len(convs) == 23  # "In total the network has 23 convolutional layers"
    maps = {f"down{k}_conv2": s for k, s in zip(range(1, 6), (568, 280, 136, 64, 28))}
    maps |= {f"up{k}_conv2": s for k, s in zip(range(4, 0, -1), (52, 100, 196, 388))}
    assert {n: model.get_layer(n).output.shape[1] for n in maps} == maps
    assert [model.get_layer(f"up{k}_crop").cropping for k in (4, 3, 2, 1)] == [
        ((c, c), (c, c)) for c in (4, 16, 40, 88)]
    assert [model.get_layer(f"down{k}_conv2").output.shape[-1] for k in range(1, 6)] == [
        64, 128, 256, 512, 1024]


@pytest.mark.parametrize("shape, out", [((188, 252), (4, 68)), ((None, None), (None, None))])
def test_unet_valid_output_is_184_pixels_smaller(shape, out):
    model = cnnkit.build("unet", input_shape=(*shape, 3), classes=CLASSES)
    assert model.output_shape == (None, *out, CLASSES)


@pytest.fixture(scope="module")
def unet_same():
    """Padded, at the smallest height (16: the bottom level is 1 pixel high)."""
    return cnnkit.build("unet", padding="same", input_shape=(16, 32, 1), classes=CLASSES)


def test_unet_same_padding_keeps_the_size_and_the_count(unet_same):
    assert count_params(unet_same) == unet_params(classes=CLASSES)
    assert unet_same.output_shape == (None, 16, 32, CLASSES)
    maps = [unet_same.get_layer(f"down{k}_conv2").output.shape[1:3] for k in range(1, 6)]
    assert [tuple(m) for m in maps] == [(16, 32), (8, 16), (4, 8), (2, 4), (1, 2)]  # /1 .. /16
    assert not [layer for layer in unet_same.layers if "crop" in layer.name]


def test_unet_valid_forward_and_round_trip_with_its_crops(tmp_path):
    """The pattern saves the padded U-Net; the valid one (the default) adds the crops."""
    model = cnnkit.build("unet", input_shape=(188, 188, 1), classes=CLASSES)
    x = images((188, 188, 1), n=1)
    out = to_numpy(model(x))
    assert out.shape == (1, 4, 4, CLASSES)
    np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    model.save(tmp_path / "unet.keras")
    loaded = keras.saving.load_model(tmp_path / "unet.keras", safe_mode=True)
    np.testing.assert_array_equal(to_numpy(loaded(x)), out)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]


def test_unet_filters_sets_the_first_width_and_each_level_doubles_it():
    """The UNet++ paper's U-Net baseline (7.76M) is filters=32 with one sigmoid map."""
    model = cnnkit.build("unet", filters=16, padding="same", input_shape=(32, 32, 3),
                         classes=CLASSES)
    assert count_params(model) == unet_params(channels=3, classes=CLASSES,
                                              filters=(16, 32, 64, 128, 256))
    assert [model.get_layer(f"down{k}_conv2").output.shape[-1] for k in range(1, 6)] == [
        16, 32, 64, 128, 256]
    assert [model.get_layer(f"up{k}_conv2").output.shape[-1] for k in (4, 3, 2, 1)] == [
        128, 64, 32, 16]
    assert unet_params(classes=1, filters=(32, 64, 128, 256, 512)) == 7_759_521
    narrow = cnnkit.build("unet", filters=4, input_shape=(188, 188, 1))  # valid: crops kept
    assert count_params(narrow) == unet_params(filters=(4, 8, 16, 32, 64))
    assert [narrow.get_layer(f"up{k}_crop").cropping[0][0] for k in (4, 3, 2, 1)] == [
        4, 16, 40, 88]


@pytest.mark.parametrize("options, message", [
    (dict(filters=0), "filters must be a positive whole number.*paper's 64"),
    (dict(filters=16.0), "filters must be a positive whole number"),
    (dict(filters=True), "got True"),
    (dict(input_shape=(500, 500, 1)), r"16k \+ 12 pixels, at least 188.*492 or 508"),
    (dict(input_shape=(572, 100, 1)), r"e\.g\. 100 to 188\. Or use padding='same'"),
    (dict(input_shape=(100, 100, 1), padding="same"), "divisible by 16.*96 or 112"),
    (dict(padding="full"), "padding must be 'valid'"),
    (dict(input_shape=(15, 15, 1), padding="same"), "at least 16x16"),
])
def test_unet_bad_options_say_what_to_do(options, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("unet", **options)


# ---------------------------------------------------------------- U-Net++

FILTERS = (32, 64, 128, 256, 512)


def unet_plusplus_params(channels=1, classes=2, heads=1, filters=FILTERS):
    """X^{i,0} = H(pool X^{i-1,0}); X^{i,j} = H([X^{i,0..j-1}, U(X^{i+1,j-1})]), H two 3x3 convs."""
    total = 0
    for i in range(5):
        for j in range(5 - i):
            c_in = (channels if i == 0 else filters[i - 1]) if j == 0 else (j + 1) * filters[i]
            total += conv(3, c_in, filters[i]) + conv(3, filters[i], filters[i])
            if j > 0:
                total += conv(2, filters[i + 1], filters[i])
    return total + heads * conv(1, filters[0], classes)


def test_unet_plusplus_count_and_the_authors_9_041_601():
    model = cnnkit.build("unet_plusplus")
    assert count_params(model) == unet_plusplus_params() == cnnkit.model_info(
        "unet_plusplus").params
    assert model.input_shape == (None, 96, 96, 1) and model.output_shape == (None, 96, 96, 2)
    # The authors' Nest_Net: one sigmoid map; the paper's results table rounds it to 9.04M.
    binary = cnnkit.build("unet_plusplus", classes=1, classifier_activation="sigmoid")
    assert count_params(binary) == unet_plusplus_params(classes=1) == 9_041_601


@pytest.fixture(scope="module")
def deep():
    return cnnkit.build("unet_plusplus", deep_supervision=True, input_shape=(32, 48, 3),
                        classes=CLASSES)


def test_unet_plusplus_nodes_have_the_level_size_and_filters(deep):
    nodes = {(i, j): deep.get_layer(f"x{i}{j}_conv2").output.shape for i in range(5)
             for j in range(5 - i)}
    assert len(nodes) == 15
    assert all(shape[1:] == (32 // 2**i, 48 // 2**i, FILTERS[i]) for (i, j), shape in nodes.items())
    # Dense skips: X^{0,4} sees X^{0,0..3} and the up-convolved X^{1,3}.
    assert deep.get_layer("x04_concat").output.shape[-1] == 5 * 32
    sources = deep.get_layer("x04_concat").input
    names = ("x00_dropout2", "x01_dropout2", "x02_dropout2", "x03_dropout2", "x04_upconv")
    assert len(sources) == 5
    assert all(t is deep.get_layer(n).output for t, n in zip(sources, names))
    assert sum(isinstance(layer, keras.layers.Dropout) for layer in deep.layers) == 30
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in deep.layers)


def test_unet_plusplus_deep_supervision_gives_four_probability_maps(deep):
    assert count_params(deep) == unet_plusplus_params(channels=3, classes=CLASSES, heads=4)
    assert unet_plusplus_params(heads=4) == VARIANT_PARAMS[
        ("unet_plusplus", "deep_supervision=True")][0]
    heads = ("x01_predictions", "x02_predictions", "x03_predictions", "predictions")
    assert all(o is deep.get_layer(n).output for o, n in zip(deep.outputs, heads, strict=True))
    outs = [to_numpy(o) for o in deep(images((32, 48, 3)))]
    assert [o.shape for o in outs] == [(2, 32, 48, CLASSES)] * 4
    for out in outs:
        np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)


def test_unet_plusplus_without_deep_supervision_trains_every_weight_through_one_head():
    """The pattern trains U-Net++ with its four heads; one head must reach every node too."""
    model = cnnkit.build("unet_plusplus", dropout=0.0, input_shape=(16, 16, 3), classes=CLASSES)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    labels = np.random.default_rng(0).integers(0, CLASSES, (2, 16, 16))
    assert unchanged_after_one_step(model, images((16, 16, 3)), [labels],
                                    "sparse_categorical_crossentropy") == []


def test_unet_plusplus_filters_sets_the_first_width():
    model = cnnkit.build("unet_plusplus", filters=8, deep_supervision=True,
                         input_shape=(16, 16, 3), classes=CLASSES)
    assert count_params(model) == unet_plusplus_params(channels=3, classes=CLASSES, heads=4,
                                                       filters=(8, 16, 32, 64, 128))
    assert model.get_layer("x40_conv2").output.shape[-1] == 128


@pytest.mark.parametrize("options, message", [
    (dict(filters=-32), "filters must be a positive whole number.*paper's 32"),
    (dict(deep_supervision="yes"), "deep_supervision must be True"),
    (dict(dropout=1.0), "dropout must be a rate from 0"),
    (dict(input_shape=(40, 96, 1)), "divisible by 16.*32 or 48"),
    (dict(padding="valid"), "does not take 'padding'"),
])
def test_unet_plusplus_bad_options_say_what_to_do(options, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.build("unet_plusplus", **options)
