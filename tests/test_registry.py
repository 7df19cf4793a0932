"""The registry, its metadata and the command line."""

import inspect
import subprocess
import sys

import keras
import pytest

import cnnkit
from cnnkit.__main__ import main
from cnnkit.analysis import count_params
from cnnkit.registry import Tap
from reference import REFERENCE_PARAMS


def test_list_models_in_course_order_and_by_family():
    assert cnnkit.list_models()[0] == "lenet5"
    assert cnnkit.list_models(family="lenet") == ["lenet5"]
    assert "lenet" in cnnkit.list_families()


def test_unknown_family_names_the_families():
    with pytest.raises(ValueError, match="Unknown family 'lenett'.*'lenet'"):
        cnnkit.list_models(family="lenett")


@pytest.mark.parametrize("typo, suggestion", [("lenet", "lenet5"), ("LeNet5", "lenet5"),
                                              ("lenet-5", "lenet5")])
def test_unknown_name_raises_value_error_naming_close_matches(typo, suggestion):
    with pytest.raises(ValueError, match=f"Unknown model '{typo}'. Did you mean '{suggestion}'"):
        cnnkit.build(typo)


def test_metadata_of_lenet5():
    info = cnnkit.model_info("lenet5")
    assert (info.family, info.year, info.input_shape, info.min_size, info.classes) == (
        "lenet", 1998, (32, 32, 1), 16, 10)
    assert info.paper == "Gradient-Based Learning Applied to Document Recognition"
    assert info.fixed_size_top and not info.imagenet
    assert info.twin is None and info.stages == ("c1", "c3")


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        cnnkit.registry.register("lenet5", lambda: None, family="x", paper="x", year=1,
                                 input_shape=(1, 1, 1), min_size=1)


@pytest.mark.parametrize("name, taps, message", [
    ("not-a-name", (), "must be a Python name"),
    ("bad_tap", (("conv1", "pool1_pool", 4),), "taps must be Tap"),
    ("bad_stride", (Tap("conv1", "pool1_pool", 0),), "whole stride >= 1"),
    ("twice", (Tap("conv1", "a", 2), Tap("conv1", "b", 4)), "tapped twice"),
])
def test_register_refuses_what_would_break_a_module_function_or_a_tap(name, taps, message):
    with pytest.raises(ValueError, match=message):
        cnnkit.registry.register(name, lambda: None, family="x", paper="x", year=1,
                                 input_shape=(1, 1, 1), min_size=1, taps=taps)
    assert name not in cnnkit.list_models()


def test_every_model_is_a_function_of_its_module_under_its_own_name():
    """One registration style: `resnet50 = register("resnet50", resnet, "resnet50", ...)` makes
    `cnnkit.models.resnet.resnet50`, the function `cnnkit.build("resnet50")` calls."""
    for name in cnnkit.list_models():
        info = cnnkit.model_info(name)
        module = sys.modules[info.builder.__module__]
        assert module.__name__.startswith("cnnkit.models."), name
        assert getattr(module, name) is info.builder, name
        # The row is bound: what is left is the keras.applications-style signature.
        assert "weights" in inspect.signature(info.builder).parameters, name
    resnet50 = cnnkit.models.resnet.resnet50
    assert resnet50.__name__ == "resnet50" and resnet50.__module__ == "cnnkit.models.resnet"
    assert list(inspect.signature(resnet50).parameters)[:2] == ["include_top", "weights"]
    assert resnet50.__doc__.startswith("resnet50: `resnet('resnet50', ...)`.")
    assert cnnkit.models.lenet.lenet5 is cnnkit.model_info("lenet5").builder  # nothing bound


def test_a_module_function_builds_what_build_builds():
    small = dict(input_shape=(32, 32, 3), classes=10)
    model = cnnkit.models.resnet.resnet18(**small)
    assert model.name == "resnet18" and count_params(model) == count_params(
        cnnkit.build("resnet18", **small)) == 11_181_642
    with pytest.raises(ValueError, match="resnet18 does not take 'arch'"):  # the row is bound
        cnnkit.build("resnet18", arch="resnet34")


def test_build_names_what_a_model_takes_for_an_unknown_keyword():
    with pytest.raises(ValueError, match="resnet50 does not take 'foo'. It takes: include_top, "
                                         "weights, input_tensor"):
        cnnkit.build("resnet50", foo=1)
    with pytest.raises(ValueError, match="Did you mean 'weights'"):
        cnnkit.build("vgg16", weigths=None)


def test_imagenet_weights_are_having_a_keras_applications_twin():
    for name in cnnkit.list_models():
        info = cnnkit.model_info(name)
        assert info.imagenet == (info.twin is not None), name
    assert cnnkit.model_info("resnet50").twin == "ResNet50"
    assert cnnkit.model_info("efficientnet_b7").twin == "EfficientNetB7"


def test_the_reference_count_has_one_home_that_the_reference_table_checks():
    """`params` is what lessons and `python -m cnnkit summary` read; tests/reference.py, copied
    from outside sources, checks it (and names each source: the registry keeps none)."""
    assert {name: cnnkit.model_info(name).params for name in cnnkit.list_models()} == {
        name: REFERENCE_PARAMS[name][0] for name in cnnkit.list_models()}
    assert not hasattr(cnnkit.model_info("lenet5"), "params_source")


# --- taps ----------------------------------------------------------------------------------

def test_taps_of_resnet50_are_conv1_to_conv5_with_their_strides():
    info = cnnkit.model_info("resnet50")
    assert info.taps == (Tap("conv1", "pool1_pool", 4), Tap("conv2", "conv2_block3_out", 4),
                         Tap("conv3", "conv3_block4_out", 8), Tap("conv4", "conv4_block6_out", 16),
                         Tap("conv5", "conv5_block3_out", 32))
    assert info.tap("conv4").layer == "conv4_block6_out"
    assert [t.stride for t in cnnkit.model_info("resnet50_v2").taps] == [4, 8, 16, 32, 32]
    with pytest.raises(ValueError, match="resnet50 has no tap 'conv6'. Did you mean 'conv5'"):
        info.tap("conv6")


def test_every_classifier_declares_taps_and_the_others_say_why_not():
    missing = [name for name in cnnkit.list_models()
               if not cnnkit.model_info(name).taps and cnnkit.model_info(name).task ==
               "classification"]
    assert missing == []
    assert [name for name in cnnkit.list_models() if not cnnkit.model_info(name).taps] == [
        "bisenet", "fpn", "hourglass"]


def test_tap_layers_finds_the_declared_layers_and_refuses_a_missing_one():
    model = cnnkit.build("lenet5")
    assert {stage: layer.name for stage, layer in cnnkit.registry.tap_layers(model).items()} == {
        "c1": "s2_pool", "c3": "s4_pool"}
    assert list(cnnkit.registry.tap_layers(model, "lenet5", ["c3"])) == ["c3"]
    inputs = keras.Input((32, 32, 1))
    other = keras.Model(inputs, keras.layers.Conv2D(2, 5, name="c1_conv")(inputs), name="lenet5")
    with pytest.raises(ValueError, match="lenet5 declares taps whose layers 'lenet5' lacks: "
                                         "c1 -> 's2_pool', c3 -> 's4_pool'"):
        cnnkit.registry.tap_layers(other)
    with pytest.raises(ValueError, match="fpn declares no taps"):
        cnnkit.registry.tap_layers(model, "fpn")


def test_cli_list_prints_every_model_with_its_reference(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lenet5" in out and "61,706" in out and "1998" in out
    assert out.strip().endswith(f"{len(cnnkit.list_models())} models")


def test_cli_summary_compares_with_the_reference(capsys):
    assert main(["summary", "lenet5"]) == 0
    out = capsys.readouterr().out
    assert "c1_conv" in out and "f6_dense" in out
    assert "lenet5: 61,706 trainable parameters" in out
    assert "reference: 61,706" in out and ": equal" in out


def test_cli_reports_unknown_model_as_an_error():
    result = subprocess.run([sys.executable, "-m", "cnnkit", "summary", "lenet"],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "Did you mean 'lenet5'" in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["list", "--help"], ["summary", "--help"]])
def test_cli_help_answers_without_importing_keras(args):
    """`python -m cnnkit --help` loads neither Keras nor TensorFlow, so it answers at once."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "cnnkit", *args],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "usage: python -m cnnkit" in result.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                if line.startswith("import time:")]
    assert "argparse" in imported
    assert not [m for m in imported if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch")]


def test_plain_import_registers_every_model_and_layer():
    """Any import other than the command line's loads Keras and registers the custom layers, so
    `keras.saving.load_model` finds them."""
    result = subprocess.run([sys.executable, "-c", "import sys, cnnkit, keras; "
                             "print(len(cnnkit.list_models()), 'keras' in sys.modules, "
                             "keras.saving.get_registered_object('cnnkit>GroupConv2D') is not None)"],
                            capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == [str(len(cnnkit.list_models())), "True", "True"], result.stderr
