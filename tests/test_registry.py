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
