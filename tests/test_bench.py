"""`cnnkit bench`: the arithmetic of TFLOP/s and MFU, the peak table, and a measured run whose
every field agrees with the others (on whichever backend the tests run)."""

import contextlib
import io
import json

import keras
import pytest

import cnnkit
from cnnkit import bench as B
from cnnkit.__main__ import main
from cnnkit.analysis import model_macs


def test_achieved_tflops_counts_two_flops_a_mac_and_three_passes_a_training_step():
    assert B.achieved_tflops(10**9, 100.0, "infer") == pytest.approx(0.2)
    assert B.achieved_tflops(10**9, 100.0, "train") == pytest.approx(0.6)
    assert B.achieved_tflops(4_089_184_256, 6_000.0, "train") == pytest.approx(147.21, abs=0.01)
    with pytest.raises(ValueError, match="mode must be one of"):
        B.achieved_tflops(1, 1.0, "training")


@pytest.mark.parametrize("device, precision, peak", [
    ("NVIDIA H200", "mixed_bfloat16", 989.4),
    ("NVIDIA H200", "float32", 494.7),
    ("NVIDIA H100 PCIe", "mixed_float16", 756.0),  # the PCIe card before the SXM one
    ("NVIDIA H100 80GB HBM3", "mixed_bfloat16", 989.4),
    ("NVIDIA A100-SXM4-40GB", "float32", 156.0),
    ("Tesla T4", "mixed_float16", 65.0),
    ("TPU v2", "mixed_bfloat16", 22.5),
    ("TPU v5 lite", "mixed_bfloat16", 197.0),
    ("cpu", "float32", None),
    ("NVIDIA GeForce RTX 4090", "float32", None),
])
def test_peaks_come_from_the_table_by_device_name(device, precision, peak):
    assert B.peak_tflops(device, precision) == peak


def test_an_unknown_precision_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="mixed_bfloat16"):
        B.peak_tflops("NVIDIA H200", "bfloat16")


def test_a_measured_run_agrees_with_itself():
    r = B.bench("lenet5", batch=5, steps=3, mode="infer", peak=2.0, show_progress=False)
    assert (r.model, r.mode, r.precision, r.batch, r.steps) == ("lenet5", "infer", "float32", 5, 3)
    assert r.input_shape == (32, 32, 1)
    assert r.backend == keras.backend.backend() and r.device == B.device_name()
    assert 0 < r.ms_min <= r.ms_per_step <= r.ms_max
    assert r.images_per_s == pytest.approx(5 / (r.ms_per_step / 1e3))
    assert r.macs_per_image == model_macs(cnnkit.build("lenet5"))
    assert r.tflops == pytest.approx(B.achieved_tflops(r.macs_per_image, r.images_per_s, "infer"))
    assert (r.peak_tflops, r.mfu) == (2.0, pytest.approx(r.tflops / 2.0))


def test_build_options_reach_the_model():
    r = B.bench("mobilenet_v1", batch=1, steps=1, warmup=1, mode="infer", input_size=32,
                options={"alpha": 0.25}, show_progress=False)
    small = cnnkit.build("mobilenet_v1", alpha=0.25, input_shape=(32, 32, 3))
    assert r.macs_per_image == model_macs(small) < model_macs(
        cnnkit.build("mobilenet_v1", input_shape=(32, 32, 3)))


def test_precision_and_input_size_apply_to_the_benched_model_only():
    r = B.bench("lenet5", batch=3, steps=1, warmup=1, precision="mixed_bfloat16", input_size=36,
                show_progress=False)
    assert r.input_shape == (36, 36, 1) and r.mode == "train"
    assert r.macs_per_image == model_macs(cnnkit.build("lenet5", input_shape=(36, 36, 1)))
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("kwargs, message", [
    ({"batch": 0}, "batch must be a whole number"),
    ({"steps": 2.5}, "steps must be a whole number"),
    ({"mode": "fit"}, "mode must be one of"),
    ({"precision": "float16"}, "precision must be one of"),
])
def test_bad_arguments_say_what_to_pass(kwargs, message):
    with pytest.raises(ValueError, match=message):
        B.bench("lenet5", show_progress=False, **kwargs)


def test_the_command_prints_one_line_of_json():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["bench", "lenet5", "--json", "--infer", "--batch", "3", "--steps", "2",
                     "--peak-tflops", "4"])
    assert code == 0
    row = json.loads(out.getvalue())
    assert (row["model"], row["mode"], row["batch"], row["steps"]) == ("lenet5", "infer", 3, 2)
    assert row["mfu"] == pytest.approx(row["tflops"] / 4)


def test_the_command_names_the_choices_for_an_unknown_model(capsys):
    assert main(["bench", "lenet"]) == 2
    assert "Unknown model 'lenet'" in capsys.readouterr().err
