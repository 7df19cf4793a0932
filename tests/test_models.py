"""The model test pattern, run for every registered model.

Each architecture that registers itself is checked here without a line of new test code:
exact trainable parameters against tests/reference.py, forward shapes, headless pooling (checked
against pooling the feature maps by hand), the .keras round trip in safe mode, weights from a
file, a training step that moves every weight, the minimum input size, and a ValueError for
each kind of bad argument. All but the parameter count run at the model's minimum input size to
keep the suite fast; the checks of a builder's own code run once per builder (SAME_BUILDER_AS).
"""

import dataclasses
import inspect

import numpy as np
import pytest

import cnnkit
import keras
from cnnkit.analysis import count_params

from reference import REFERENCE_PARAMS

MODELS = cnnkit.list_models()
CLASSES = 3  # not the default, so the `classes` argument is exercised
to_numpy = keras.ops.convert_to_numpy  # works for every backend's tensors, on any device


def small_shape(name):
    info = cnnkit.model_info(name)
    return (info.min_size, info.min_size, info.input_shape[2])


def batch(name, n=2, seed=0):
    return np.random.default_rng(seed).random((n, *small_shape(name)), dtype=np.float32)


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
}


def builder_check(test):
    """Mark a check of the builder's code that runs on a base model, not on its table rows."""
    test.builder_check = True
    return test


# One test class per family, its models a class-scoped parameter: pytest runs every check of one
# model before the next, the models below are built once per architecture rather than once per
# test (building a 150-layer network takes seconds on two cores), and pytest-xdist's
# `--dist loadscope` sends whole families to its workers.
def pytest_generate_tests(metafunc):
    if metafunc.cls is not None and issubclass(metafunc.cls, ModelPattern):
        names = [name for name in cnnkit.list_models(metafunc.cls.family)
                 if cnnkit.model_info(name).task == "classification"]
        if getattr(metafunc.function, "builder_check", False):
            names = [name for name in names if name not in SAME_BUILDER_AS]
        metafunc.parametrize("name", names, scope="class")


def _builder(name):
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


class ModelPattern:
    """The checks every registered model passes; subclassed below once per family."""

    family = None

    @pytest.fixture(scope="class", autouse=True)
    def _free_memory(self, name):
        yield
        keras.backend.clear_session(free_memory=True)

    @pytest.fixture(scope="class")
    def small(self, name):
        """The model at its minimum input size with CLASSES classes (training runs last).

        Built from NumPy integers, as a learner's `x.shape[1:]` or `len(np.unique(y))` gives.
        """
        h, w, c = small_shape(name)
        return cnnkit.build(name, classes=np.int64(CLASSES),
                            input_shape=(np.int64(h), np.int32(w), np.int64(c)))

    @pytest.fixture(scope="class")
    def maps(self, name):
        """The headless model with pooling=None: its last feature maps."""
        return cnnkit.build(name, include_top=False, input_shape=small_shape(name))

    def test_every_model_has_an_independent_reference(self, name):
        assert name in REFERENCE_PARAMS, f"add {name}'s reference count to tests/reference.py"
        assert cnnkit.model_info(name).params == REFERENCE_PARAMS[name][0]


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
        out = to_numpy(small(batch(name, n=4)))
        assert out.shape == (4, CLASSES)
        assert np.all(np.isfinite(out))
        np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)


    def test_headless_model_without_pooling_returns_feature_maps(self, name, maps):
        out = to_numpy(maps(batch(name)))
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
        x = batch(name)
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
        x = batch(name)
        np.testing.assert_allclose(to_numpy(model(x)), to_numpy(maps(x)).mean(axis=(1, 2)),
                                   rtol=1e-5, atol=1e-6)


    @builder_check
    def test_keras_file_round_trip_in_safe_mode_gives_identical_outputs(self, name, small, tmp_path):
        path = tmp_path / f"{name}.keras"
        small.save(path)
        loaded = keras.saving.load_model(path, safe_mode=True)
        x = batch(name, seed=1)
        np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(small(x)))
        assert [layer.name for layer in loaded.layers] == [layer.name for layer in small.layers]


    def test_numpy_integers_are_accepted_for_classes_and_shape(self, name, small):
        assert small.output_shape == (None, CLASSES)
        assert small.input_shape == (None, *small_shape(name))


    @builder_check
    def test_weights_file_and_input_tensor_arguments(self, name, small, tmp_path):
        path = tmp_path / f"{name}.weights.h5"
        small.save_weights(path)
        keras.utils.set_random_seed(2)
        image = keras.Input(shape=small_shape(name), name="my_image")
        again = cnnkit.build(name, input_tensor=image, classes=CLASSES, weights=str(path))
        assert again.inputs[0] is image
        x = batch(name, seed=3)
        np.testing.assert_array_equal(to_numpy(again(x)), to_numpy(small(x)))


    @builder_check
    def test_one_training_step_changes_every_trainable_weight(self, name, small):
        keras.utils.set_random_seed(0)
        # Eagerly: tracing a 100-layer training step into a graph takes longer than running it.
        small.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy",
                      run_eagerly=True)
        before = [np.array(w) for w in small.trainable_weights]
        loss = small.train_on_batch(batch(name, n=4), np.array([0, 1, 2, 1]))
        assert np.isfinite(loss)
        unchanged = [w.path for w, b in zip(small.trainable_weights, before)
                     if np.array_equal(np.array(w), b)]
        assert unchanged == []
        assert int(small.optimizer.iterations) == 1


# Networks that output maps (segmentation, feature pyramids, heatmaps) have no class vector or
# pooling head: their family test files check shapes per level, counts, training and saving.
for _family in dict.fromkeys(cnnkit.model_info(m).family for m in MODELS
                             if cnnkit.model_info(m).task == "classification"):
    _cls = f"Test{_family.title().replace('_', '')}Models"
    globals()[_cls] = type(_cls, (ModelPattern,), {"family": _family})


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
