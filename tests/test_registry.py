"""The registry, its metadata and the command line."""

import subprocess
import sys

import pytest

import cnnkit
from cnnkit.__main__ import main


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


def test_registering_a_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        cnnkit.registry.register("lenet5", family="x", paper="x", year=1, input_shape=(1, 1, 1),
                                 min_size=1)(lambda: None)


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
