"""The model test patterns, run for every registered model.

Each architecture that registers itself is checked here without a line of new test code.
Classifiers (ModelPattern): exact trainable parameters against tests/reference.py, forward
shapes, headless pooling (checked against pooling the feature maps by hand), the .keras round
trip in safe mode, weights from a file, a training step that moves every weight, the minimum
input size, and a ValueError for each kind of bad argument. Networks that output maps
(MapPattern, task != "classification": segmentation maps, feature pyramids, heatmaps): the
exact count, the round trip, weights files, a training step with a loss on every output map
and the minimum size. Both: each declared tap is a layer of the model whose map has the size
its stride gives. The models are built small (the minimum size, or the least multiple of the
largest tap stride) to keep the suite fast; the checks of a builder's own code run once per
builder (SAME_BUILDER_AS).
"""

import dataclasses
import inspect
import re

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit._keras_internals import keras_history_operation
from cnnkit.analysis import count_params

from helpers import to_numpy, unchanged_after_one_step
from reference import REFERENCE_PARAMS, VARIANT_PARAMS

MODELS = cnnkit.list_models()
CLASSES = 3  # not the default, so the `classes` argument is exercised


def small_shape(name):
    """The minimum input size (the headless `maps` are built at it)."""
    info = cnnkit.model_info(name)
    return (info.min_size, info.min_size, info.input_shape[2])


def pattern_shape(name):
    """The input size `small` is built at: the minimum, raised to a multiple of the largest
    declared tap stride, where a tap of stride s in a padded network has exactly size / s
    pixels."""
    info = cnnkit.model_info(name)
    step = max((tap.stride for tap in info.taps), default=1)
    size = max(-(-info.min_size // step) * step, LARGER.get(name, 0))
    return (size, size, info.input_shape[2])


# At its minimum 32, thundernet_features's stride-32 units see 1x1 maps, where the betas of their
# depthwise BatchNorms get a gradient of exactly 0 (the BatchNorm after the next 1x1 convolution
# subtracts any constant they add); at 64 they move by rounding (1e-10), as the family test had it.
LARGER = {"thundernet_features": 64}


def batch(shape, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def outputs(model, x):
    """Every output of `model` on x, as NumPy arrays (one for a single-output model)."""
    return [to_numpy(o) for o in keras.tree.flatten(model(x))]


def weights_file_and_input_tensor_give_the_same_model(name, small, tmp_path, **options):
    """Build `name` again on a tensor of the caller's and with `small`'s weights file (under
    another seed): the input is that tensor, and every output equals small's."""
    path = tmp_path / f"{name}.weights.h5"
    small.save_weights(path)
    keras.utils.set_random_seed(2)
    image = keras.Input(shape=pattern_shape(name), name="my_image")
    again = cnnkit.build(name, input_tensor=image, weights=str(path), **options)
    assert again.inputs[0] is image
    x = batch(pattern_shape(name), seed=3)
    for a, b in zip(outputs(again, x), outputs(small, x), strict=True):
        np.testing.assert_array_equal(a, b)


def all_layers(model):
    """The layers of `model`, nested models opened."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from all_layers(layer)
        else:
            yield layer


def trim_and_jump(layer):
    """(T, J) of the path from the input to `layer`'s output (along each layer's first input;
    a merge's inputs all have one size): J, the product of the strides on it, and T, the input
    pixels its unpadded layers trim. A "valid" k x k window with dilation d, at jump j (the
    product of the strides before it), trims (k - 1) * d * j input pixels, a zero padding of p
    rows gives p * j back, and a "same" layer trims nothing (it gives ceil(n / s)). Then each
    layer gives floor((n - 1 - trim) / s) + 1 pixels of n, and the path floor((H - 1 - T) / J)
    + 1 of an input of H: floor(floor(x / a) / b) = floor(x / (a * b)) for whole a, b."""
    path = []
    while not isinstance(layer, keras.layers.InputLayer):
        path.append(layer)
        layer = keras_history_operation(keras.tree.flatten(layer.input)[0])
    trim, jump = 0, 1
    for layer in reversed(path):  # heights only: the pattern's inputs are square
        if isinstance(layer, keras.layers.ZeroPadding2D):
            trim -= sum(layer.padding[0]) * jump
            continue
        assert not isinstance(layer, (keras.layers.Cropping2D, keras.layers.UpSampling2D,
                                      keras.layers.Conv2DTranspose)), layer.name
        if not hasattr(layer, "strides"):
            continue  # element-wise, normalisation, merges
        window = layer.kernel_size if hasattr(layer, "kernel_size") else layer.pool_size
        dilation = getattr(layer, "dilation_rate", (1, 1))[0]
        if layer.padding == "valid":
            trim += (window[0] - 1) * dilation * jump
        jump *= layer.strides[0]
    return trim, jump


# Models that are another row of the same builder's table: the same function builds them with
# other depths or widths (checked below), so they run no code path their base has not run. They
# pass every check that depends on the table row (the exact count, forward pass, headless maps,
# minimum size, the formula on every layer); the checks of the builder's code alone (pooling
# options, saving, weights files, a training step that reaches every weight) run on the base.
# This keeps the suite inside CI's time budget: a 700-layer network takes about 8 s of CPU to
# build, and those checks build it four more times and train it once.
SAME_BUILDER_AS = {
    **dict.fromkeys(["vgg13", "vgg16", "vgg19"], "vgg11"),
    "resnet34": "resnet18", "resnet101": "resnet50", "resnet152": "resnet50",
    "resnet101_v2": "resnet50_v2", "resnet152_v2": "resnet50_v2",
    "resnext101_32x8d": "resnext50_32x4d",
    "densenet169": "densenet121", "densenet201": "densenet121",
    **dict.fromkeys(["dpn92", "dpn98", "dpn107", "dpn131"], "dpn68"),
    "vovnet57": "vovnet39", "sk_resnet34": "sk_resnet18",
    "resnest26": "resnest14", "resnest50": "resnest14",
    "mobilenet_v3_large": "mobilenet_v3_small",
    **dict.fromkeys(["shufflenet_v2_x1_0", "shufflenet_v2_x1_5", "shufflenet_v2_x2_0"],
                    "shufflenet_v2_x0_5"),
    **{f"efficientnet_b{i}": "efficientnet_b0" for i in range(1, 8)},
    **dict.fromkeys(["repvgg_a1", "repvgg_a2", "repvgg_b0", "repvgg_b1"], "repvgg_a0"),
    "snet146": "snet49", "snet535": "snet49",
    # fcn8s runs every path of the FCN builder (both skips); saving a 134M-parameter FCN takes
    # seconds, so its two shallower heads are not saved, loaded and trained again.
    "fcn32s": "fcn8s", "fcn16s": "fcn8s", "dfanet_b": "dfanet",
}

# Map networks (MapPattern) are built with their registry defaults at their minimum size, except
# these options. NETWORK_OPTIONS choose the network min_size describes: U-Net's 16 is the padded
# one's (the valid U-Net needs 16k + 12 pixels, at least 188: tests/test_fcn_unet.py).
NETWORK_OPTIONS = {"unet": dict(padding="same")}
# MAP_OPTIONS give the builder's own checks every optional head (so every weight is saved and
# trained) or the same code on fewer layers; each has its count in VARIANT_PARAMS.
MAP_OPTIONS = {
    "unet_plusplus": dict(deep_supervision=True),  # three more heads
    "bisenet": dict(aux_heads=True),  # two auxiliary heads
    "fpn": dict(backbone="resnet18"),  # the same pyramid on a third of resnet50's layers
    "hourglass": dict(stacks=2, order=2),  # one stack feeding the next: a fifth of the layers
}


def map_options(name):
    return {**NETWORK_OPTIONS.get(name, {}), **MAP_OPTIONS.get(name, {})}


def option_key(options):
    """VARIANT_PARAMS's key for options: "stacks=2, order=2"."""
    return ", ".join(f"{key}={value!r}" for key, value in options.items())


def builder_check(test):
    """Mark a check of the builder's code that runs on a base model, not on its table rows."""
    test.builder_check = True
    return test


def taps_check(test):
    """Mark a check that runs on the models that declare taps (DeclaredTaps)."""
    test.taps_check = True
    return test


# One test class per family and pattern, its models a class-scoped parameter: pytest runs every
# check of one model before the next, the models below are built once per architecture rather
# than once per test (building a 150-layer network takes seconds on two cores), and
# pytest-xdist's `--dist loadscope` sends whole families to its workers.
def pytest_generate_tests(metafunc):
    if metafunc.cls is not None and issubclass(metafunc.cls, EveryModel):
        names = [name for name in cnnkit.list_models(metafunc.cls.family)
                 if (cnnkit.model_info(name).task == "classification")
                 == metafunc.cls.classifiers]
        if getattr(metafunc.function, "builder_check", False):
            names = [name for name in names if name not in SAME_BUILDER_AS]
        if getattr(metafunc.function, "taps_check", False):
            names = [name for name in names if cnnkit.model_info(name).taps]
        metafunc.parametrize("name", names, scope="class")


def _builder(name):
    """(the family's builder, the keywords bound to it) of a registered model: a
    functools.partial's, or those of the function cnnkit.registry.register binds the model's
    table row to (its `func`, with the row's key in `args`)."""
    builder = cnnkit.model_info(name).builder
    return getattr(builder, "func", builder), getattr(builder, "keywords", {})


@pytest.mark.parametrize("name, base", SAME_BUILDER_AS.items())
def test_table_rows_share_their_base_builder(name, base):
    """A model listed in SAME_BUILDER_AS is built by its base's function, with only table data
    (an architecture key) changed; its family and options are the base's."""
    (func, kwargs), (base_func, base_kwargs) = _builder(name), _builder(base)
    assert func is base_func and kwargs == base_kwargs
    assert cnnkit.model_info(name).family == cnnkit.model_info(base).family
    assert base not in SAME_BUILDER_AS


class EveryModel:
    """The checks of both patterns; a subclass's `small` fixture is the model they inspect."""

    family = None
    classifiers = None  # True: task == "classification" (ModelPattern); False: MapPattern

    @pytest.fixture(scope="class", autouse=True)
    def _free_memory(self, name):
        yield
        keras.backend.clear_session(free_memory=True)

    def test_every_model_has_an_independent_reference(self, name):
        assert name in REFERENCE_PARAMS, f"add {name}'s reference count to tests/reference.py"
        assert cnnkit.model_info(name).params == REFERENCE_PARAMS[name][0]


class DeclaredTaps:
    """The check of the taps a model declares, mixed into a family's classes where a model of
    the family declares some."""

    @taps_check
    def test_each_tap_is_a_layer_whose_map_has_the_size_its_stride_gives(self, name, small):
        """Each tap is a layer of the model, later than the tap before it, with a stride that
        never falls (equal strides: ResNet's conv1 and conv2 are both at 4, DetNet's last three
        stages at 16). Its stride s is the product J of the strides before it, and an input of
        H pixels gives it exactly floor((H - 1 - T) / s) + 1, where T is what unpadded layers
        trim (trim_and_jump). `small` is built at H a multiple of the largest stride, so in a
        padded network (T = 0) that is H / s; LeNet, AlexNet, ZFNet, Inception v3/v4,
        Inception-ResNet, Xception's entry and airbench's whitening are unpadded."""
        taps = cnnkit.model_info(name).taps
        strides = [tap.stride for tap in taps]
        assert strides == sorted(strides), f"strides fall: {strides}"
        layers = {layer.name: layer for layer in all_layers(small)}
        assert [tap.layer for tap in taps if tap.layer not in layers] == []
        order = [list(layers).index(tap.layer) for tap in taps]
        assert order == sorted(set(order)), "taps go from input to output"
        size = small.input_shape[1]
        assert size == small.input_shape[2] and size % strides[-1] == 0
        got, expected = {}, {}
        for tap in taps:
            trim, jump = trim_and_jump(layers[tap.layer])
            got[tap.layer] = (jump, tuple(layers[tap.layer].output.shape[1:3]))
            n = (size - 1 - trim) // tap.stride + 1
            expected[tap.layer] = (tap.stride, (n, n))
            if trim == 0:
                assert n == size // tap.stride
        assert got == expected


class ModelPattern(EveryModel):
    """The checks every registered classifier passes; subclassed below once per family."""

    classifiers = True

    @pytest.fixture(scope="class")
    def small(self, name):
        """The model at pattern_shape with CLASSES classes (training runs last).

        Built from NumPy integers, as a learner's `x.shape[1:]` or `len(np.unique(y))` gives.
        """
        h, w, c = pattern_shape(name)
        return cnnkit.build(name, classes=np.int64(CLASSES),
                            input_shape=(np.int64(h), np.int32(w), np.int64(c)))

    @pytest.fixture(scope="class")
    def maps(self, name):
        """The headless model with pooling=None at the minimum size: its last feature maps."""
        return cnnkit.build(name, include_top=False, input_shape=small_shape(name))


    def test_trainable_parameters_equal_the_reference(self, name):
        model = cnnkit.build(name)
        assert model.input_shape[1:] == cnnkit.model_info(name).input_shape
        assert count_params(model) == REFERENCE_PARAMS[name][0]


    def test_parameter_formula_agrees_with_keras_on_every_layer(self, name, small):
        """cnnkit.analysis counts each layer by its formula; it must agree with Keras everywhere."""
        from cnnkit.analysis import layer_params
        assert [(layer.name, layer_params(layer)) for layer in small.layers] == [
            (layer.name, layer.count_params()) for layer in small.layers]


    def test_forward_pass_gives_one_probability_vector_per_image(self, name, small):
        out = to_numpy(small(batch(pattern_shape(name), n=4)))
        assert out.shape == (4, CLASSES)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


    def test_headless_model_without_pooling_returns_feature_maps(self, name, maps):
        out = to_numpy(maps(batch(small_shape(name))))
        assert out.ndim == 4 and out.shape[1:] == tuple(maps.output.shape[1:])
        assert min(out.shape[1:3]) >= 1


    def test_min_size_is_the_smallest_input_whose_feature_maps_are_not_empty(self, name, maps,
                                                                             monkeypatch):
        """`maps` is built at min_size and is not empty (above); one pixel less empties it."""
        info = cnnkit.model_info(name)
        assert min(maps.output.shape[1:3]) >= 1
        # Lift the validator's limit to see what one pixel less does to the network itself.
        monkeypatch.setitem(cnnkit.registry._REGISTRY, name,
                            dataclasses.replace(info, min_size=1))
        smaller = (info.min_size - 1, info.min_size - 1, info.input_shape[2])
        try:
            fewer = cnnkit.build(name, include_top=False, input_shape=smaller)
        except ValueError:
            return  # Keras itself refuses: a negative size somewhere, or no pixels at all
        assert min(fewer.output.shape[1:3]) < 1


    @builder_check
    def test_max_pooling_pools_the_last_feature_maps(self, name, maps):
        model = cnnkit.build(name, include_top=False, pooling="max", input_shape=small_shape(name))
        model.set_weights(maps.get_weights())
        x = batch(small_shape(name))
        np.testing.assert_allclose(to_numpy(model(x)), to_numpy(maps(x)).max(axis=(1, 2)),
                                   rtol=1e-5, atol=1e-6)


    @builder_check
    def test_average_pooling_accepts_any_size(self, name, maps):
        channels = cnnkit.model_info(name).input_shape[2]
        model = cnnkit.build(name, include_top=False, pooling="avg", input_shape=(None, None, channels))
        size = cnnkit.model_info(name).min_size
        a = to_numpy(model(np.zeros((1, size, size, channels), "float32")))
        b = to_numpy(model(np.zeros((1, 2 * size, size + 3, channels), "float32")))
        assert a.shape == b.shape == (1, maps.output.shape[-1])
        model.set_weights(maps.get_weights())
        x = batch(small_shape(name))
        np.testing.assert_allclose(to_numpy(model(x)), to_numpy(maps(x)).mean(axis=(1, 2)),
                                   rtol=1e-5, atol=1e-6)


    @builder_check
    def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(self, name, small, tmp_path):
        path = tmp_path / f"{name}.keras"
        small.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        x = batch(pattern_shape(name), seed=1)
        np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(small(x)))
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in small.layers]


    def test_numpy_integers_are_accepted_for_classes_and_shape(self, name, small):
        assert small.output_shape == (None, CLASSES)
        assert small.input_shape == (None, *pattern_shape(name))


    @builder_check
    def test_weights_file_and_input_tensor_arguments(self, name, small, tmp_path):
        weights_file_and_input_tensor_give_the_same_model(name, small, tmp_path,
                                                          classes=CLASSES)


    @builder_check
    def test_one_training_step_changes_every_trainable_weight(self, name, small):
        assert unchanged_after_one_step(small, batch(pattern_shape(name), n=4),
                                        [np.array([0, 1, 2, 1])],
                                        "sparse_categorical_crossentropy") == []


class MapPattern(EveryModel):
    """The checks every registered network that outputs maps passes (task != "classification":
    segmentation maps, feature pyramids, heatmaps); subclassed below once per family. Their
    family test files check the maps of each level, the counts' derivations and the options."""

    classifiers = False

    @pytest.fixture(scope="class")
    def small(self, name):
        """The model at pattern_shape with its default classes and map_options (training runs
        last)."""
        return cnnkit.build(name, input_shape=pattern_shape(name), **map_options(name))

    def test_trainable_parameters_equal_the_reference(self, name, small):
        """Maps have no size-dependent layer: the count at any size is the default's."""
        options = MAP_OPTIONS.get(name)
        expected = VARIANT_PARAMS[(name, option_key(options))] if options else (
            REFERENCE_PARAMS[name])
        assert count_params(small) == expected[0]

    def test_parameter_formula_agrees_with_keras_on_every_layer(self, name, small):
        from cnnkit.analysis import layer_params
        assert [(layer.name, layer_params(layer)) for layer in small.layers] == [
            (layer.name, layer.count_params()) for layer in small.layers]

    def test_min_size_is_the_smallest_input_whose_maps_are_not_empty(self, name, small,
                                                                     monkeypatch):
        """At min_size (where `small` is, or a multiple of it) every output map has pixels;
        with the validator's limit lifted, one pixel less is refused by the network itself as
        not a multiple of min_size, or empties a map."""
        info = cnnkit.model_info(name)
        assert small.input_shape[1] % info.min_size == 0
        assert all(min(o.shape[1:3]) >= 1 for o in small.outputs)
        monkeypatch.setitem(cnnkit.registry._REGISTRY, name,
                            dataclasses.replace(info, min_size=1))
        smaller = (info.min_size - 1, info.min_size - 1, info.input_shape[2])
        try:
            fewer = cnnkit.build(name, input_shape=smaller, **NETWORK_OPTIONS.get(name, {}))
        except ValueError as refused:
            assert re.search(rf"divisible by {info.min_size}\b", str(refused)), refused
            return
        assert min(min(o.shape[1:3]) for o in fewer.outputs) < 1

    @builder_check
    def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(self, name, small,
                                                                        tmp_path):
        path = tmp_path / f"{name}.keras"
        small.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        x = batch(pattern_shape(name), seed=1)
        for a, b in zip(outputs(loaded, x), outputs(small, x), strict=True):
            np.testing.assert_array_equal(a, b)
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in small.layers]
        # FCN's fixed bilinear upsampling stays frozen
        assert [layer.trainable for layer in loaded.layers] == [
            layer.trainable for layer in small.layers]

    @builder_check
    def test_weights_file_and_input_tensor_arguments(self, name, small, tmp_path):
        weights_file_and_input_tensor_give_the_same_model(name, small, tmp_path,
                                                          **map_options(name))

    @builder_check
    def test_one_training_step_changes_every_trainable_weight(self, name, small):
        """Segmentation: per-pixel cross-entropy on every map; feature maps and heatmaps: mean
        squared error on every output (FPN's every level, the hourglass's every stack)."""
        rng = np.random.default_rng(0)
        if cnnkit.model_info(name).task == "segmentation":
            targets = [rng.integers(0, o.shape[-1], (2, *o.shape[1:3])) for o in small.outputs]
            loss = "sparse_categorical_crossentropy"
        else:
            targets = [rng.random((2, *o.shape[1:]), dtype=np.float32) for o in small.outputs]
            loss = "mse"
        assert unchanged_after_one_step(small, batch(pattern_shape(name)), targets, loss) == []


for _family in dict.fromkeys(cnnkit.model_info(m).family for m in MODELS):
    for _pattern, _kind in ((ModelPattern, "Models"), (MapPattern, "Maps")):
        _infos = [cnnkit.model_info(m) for m in cnnkit.list_models(_family)]
        _infos = [i for i in _infos if (i.task == "classification") == _pattern.classifiers]
        if _infos:
            _cls = f"Test{_family.title().replace('_', '')}{_kind}"
            _bases = (_pattern, DeclaredTaps) if any(i.taps for i in _infos) else (_pattern,)
            globals()[_cls] = type(_cls, _bases, {"family": _family})


def bad_arguments(name):
    info = cnnkit.model_info(name)
    h, w, c = info.input_shape
    cases = [
        (dict(pooling="sum", include_top=False), "pooling must be None, 'avg' or 'max'"),
        (dict(classes=0), "classes must be a whole number >= 1"),
        (dict(classes=2.5), "classes must be a whole number >= 1"),
        (dict(input_shape=(info.min_size - 1, info.min_size - 1, c)),
         f"at least {info.min_size}x{info.min_size}" if info.min_size > 1
         else "positive whole numbers"),
        (dict(input_shape=(h, w)), "(height, width, channels)"),
        (dict(input_shape=(h, w, None)), "number of channels must be known"),
        (dict(input_shape=(h, w, c), input_tensor=keras.Input((h + 1, w, c))), "does not match"),
        (dict(input_tensor=np.zeros((1, h, w, c))), "must be a Keras tensor"),
        (dict(weights="no/such/file.weights.h5"), "No weights file at"),
        (dict(weights=42), "weights must be None, 'imagenet' or the path"),
        (dict(classifier_activation="sofmax"), "Unknown classifier_activation 'sofmax'"),
        (dict(clases=10), "Did you mean 'classes'"),
        (dict(include_top="yes"), "include_top must be True or False"),
    ]
    if info.fixed_size_top:
        cases.append((dict(input_shape=(None, None, c)), "needs a fixed input size"))
    if not info.imagenet:
        cases.append((dict(weights="imagenet"), f"No ImageNet weights exist for {name}"))
    else:
        cases.append((dict(weights="imagenet", classes=10), "needs classes=1000"))
    # A builder rejects only the arguments it takes (a segmentation network has no `pooling`);
    # the registry answers any other with "does not take", checked in tests/test_registry.py.
    accepted = set(inspect.signature(info.builder).parameters)
    accepted |= {"clases"} if "classes" in accepted else set()
    return [pytest.param(name, kwargs, message, id=f"{name}-{'-'.join(kwargs)}")
            for kwargs, message in cases if set(kwargs) <= accepted]


@pytest.mark.parametrize("name, kwargs, message",
                         [case for name in MODELS for case in bad_arguments(name)])
def test_bad_argument_raises_a_value_error_that_says_what_to_do(name, kwargs, message):
    with pytest.raises(ValueError) as raised:
        cnnkit.build(name, **kwargs)
    assert message in str(raised.value)
