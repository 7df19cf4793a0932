"""ImageNet weights ported into cnnkit's own models: every keras.applications twin, offline.

Each twin is built with weights=None and random biases and BatchNorm statistics; its weights
are ported into the cnnkit model with and without the classifier, and the outputs compared.
The download path itself runs with Keras's `get_file` stubbed: online it returns the cached
official file, here a file saved from a random twin, and offline it fails as Keras fails.
"""

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit import weights as cw
from cnnkit._keras_internals import file_utils

from helpers import to_numpy

# 40 -> 20 -> 10 -> 5 -> 3 -> 2: strided layers meet even and odd sizes. Keras's Inception and
# Xception refuse less than 75 and 71 pixels.
SIZES = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}


def test_the_registry_flags_exactly_the_twins_as_having_imagenet_weights():
    flagged = [name for name in cnnkit.list_models() if cnnkit.model_info(name).imagenet]
    assert sorted(flagged) == sorted(cw.TWINS) and len(flagged) == 26
    assert sorted(cw.PREPROCESSING) == sorted(cw.TWINS)


@pytest.mark.parametrize("name", list(cw.TWINS))
def test_ported_weights_give_the_twins_outputs_with_and_without_the_classifier(name):
    size = SIZES.get(name, 40)
    results = cw.port_differences(name, input_shape=(size, size, 3))
    for head, (difference, largest) in results.items():
        assert largest > 0.1, f"{head}: outputs too small to show a difference"
        assert difference <= 1e-4, f"{name} {head}: max |difference| {difference:.2e}"
    keras.backend.clear_session(free_memory=True)


def test_a_dropped_bias_is_folded_into_the_batch_norms_moving_mean():
    """Keras's conv1_conv has a bias, cnnkit's has none; conv1_bn's mean absorbs it."""
    twin = cw.randomise(keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3)))
    model = cnnkit.build("resnet50", input_shape=(32, 32, 3))
    cw.port_weights(twin, model)
    bias = to_numpy(twin.get_layer("conv1_conv").bias)
    assert np.abs(bias).min() > 0 and not model.get_layer("conv1_conv").use_bias
    np.testing.assert_allclose(to_numpy(model.get_layer("conv1_bn").moving_mean),
                               to_numpy(twin.get_layer("conv1_bn").moving_mean) - bias,
                               rtol=1e-6)


def test_a_port_into_another_layout_is_refused_with_what_to_do():
    twin = keras.applications.MobileNetV2(weights=None, input_shape=(32, 32, 3), alpha=0.5)
    model = cnnkit.build("mobilenet_v2", input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match="fit only the layout keras.applications"):
        cw.port_weights(twin, model)


def test_resnet_with_the_3x3_downsample_refuses_imagenet_weights():
    with pytest.raises(ValueError, match="downsample='1x1'"):
        cnnkit.build("resnet50", weights="imagenet", downsample="3x3")


def test_vgg_classifier_with_imagenet_weights_needs_224_pixels():
    with pytest.raises(ValueError, match="input_shape=.224, 224, 3."):
        cnnkit.build("vgg16", weights="imagenet", input_shape=(64, 64, 3))


# --- The download path, with Keras's get_file stubbed ----------------------------------------

@pytest.fixture
def cached_weights(monkeypatch, tmp_path):
    """Make keras.applications find `twin`'s weights as if Keras had downloaded them."""
    def install(twin):
        path = tmp_path / "official.weights.h5"
        twin.save_weights(path)
        monkeypatch.setattr(file_utils(), "get_file",
                            lambda *args, **kwargs: str(path))
    return install


@pytest.mark.parametrize("name, include_top, options", [
    ("resnet50_v2", True, {}),  # stream biases folded through the additions
    ("mobilenet_v3_small", False, dict(alpha=0.75)),  # a width with official weights
])
def test_weights_imagenet_builds_the_cnnkit_model_with_keras_official_file(
        name, include_top, options, cached_weights):
    size = cnnkit.model_info(name).input_shape if include_top else (None, None, 3)
    twin_options = dict(include_preprocessing=False) if name.startswith("mobilenet_v3") else {}
    twin = cw.randomise(cw.keras_twin(name, include_top=include_top, weights=None,
                                      input_shape=size, **twin_options, **options))
    cached_weights(twin)
    model = cnnkit.build(name, weights="imagenet", include_top=include_top, input_shape=size,
                         **options)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 64, 64, 3)).astype("float32")
    if include_top:
        x = np.random.default_rng(0).uniform(-1, 1, (1, *size)).astype("float32")
    np.testing.assert_allclose(to_numpy(model(x)), to_numpy(twin(x)), rtol=1e-4, atol=1e-5)


def test_offline_weights_imagenet_raises_an_error_that_says_so(monkeypatch):
    def offline(fname, origin, **kwargs):  # what keras.utils.get_file raises without a network
        raise Exception(f"URL fetch failure on {origin}: None -- [Errno -3] Temporary failure "
                        "in name resolution")
    monkeypatch.setattr(file_utils(), "get_file", offline)
    with pytest.raises(ConnectionError, match="needs the internet once") as raised:
        cnnkit.build("mobilenet_v2", weights="imagenet", include_top=False)
    assert "keras.applications.MobileNetV2" in str(raised.value)
    assert "weights=None" in str(raised.value)


def test_a_width_without_official_weights_says_so():
    with pytest.raises(ValueError, match="no ImageNet weights for"):
        cnnkit.build("mobilenet_v2", weights="imagenet", alpha=0.6, include_top=False)


# --- Preprocessing: what each model expects with ImageNet weights -------------------------------

def test_preprocess_input_follows_each_twins_mode():
    pixel = np.array([[[[255.0, 128.0, 0.0]]]])  # one RGB pixel
    # torch: /255, then minus ImageNet's mean and over its deviation, per channel
    expected = (np.array([1.0, 128 / 255, 0.0]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    for name in ("efficientnet_b0", "densenet121"):
        np.testing.assert_allclose(cw.preprocess_input(name, pixel)[0, 0, 0], expected, rtol=1e-5)
    # tf: to [-1, 1]
    for name in ("mobilenet_v3_small", "resnet50_v2", "inception_v3"):
        np.testing.assert_allclose(cw.preprocess_input(name, pixel)[0, 0, 0],
                                   [1.0, 128 / 127.5 - 1, -1.0], rtol=1e-5, atol=1e-6)
    # caffe: RGB to BGR, minus the ImageNet mean in BGR, no scaling
    np.testing.assert_allclose(cw.preprocess_input("resnet50", pixel)[0, 0, 0],
                               [0 - 103.939, 128 - 116.779, 255 - 123.68], rtol=1e-6)
    assert pixel[0, 0, 0, 0] == 255.0  # the caller's array is left alone
    with pytest.raises(ValueError, match="has no ImageNet weights"):
        cw.preprocess_input("lenet5", pixel)
