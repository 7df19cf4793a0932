"""cnnkit.course.distribute: N replicas compute what one device computes, on two virtual CPU devices.

Each engine runs in a process of its own (`python -m cnnkit.course.distribute`), which makes its virtual
devices before the backend starts, so these tests never depend on the devices of the test
process. The JAX tests need JAX (the no-TensorFlow environment); the TensorFlow ones TensorFlow.
"""

import importlib.util
import os
import sys

import numpy as np
import pytest

from cnnkit.course import distribute

import requires

jax_engine = pytest.mark.skipif(importlib.util.find_spec("jax") is None,
                                reason="needs JAX (keras.distribution), not installed here")


def digits_like(n=96, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 32, 32, 1)).astype("float32"), rng.integers(0, 10, n)


def test_engines_and_the_command_a_learner_reruns():
    assert distribute.engine_missing("jax") == (
        None if importlib.util.find_spec("jax") else
        "keras.distribution on JAX needs jax, which is not installed in this environment")
    with pytest.raises(ValueError, match="engine must be one of jax, tensorflow; got 'torch'"):
        distribute.engine_missing("torch")
    assert distribute.command("data-parallel", "jax", 4, epochs=3) == [
        sys.executable, "-m", "cnnkit.course.distribute", "data-parallel", "--engine", "jax",
        "--devices", "4", "--options", '{"epochs": 3}']


def test_virtual_jax_devices_keep_the_other_xla_flags(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                                    "--xla_force_host_platform_device_count=8")
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    distribute.virtual_cpu_devices(3, "jax")  # sets flags only: JAX is not started here
    assert os.environ["XLA_FLAGS"] == ("--xla_backend_optimization_level=0 "
                                       "--xla_force_host_platform_device_count=3")
    assert os.environ["JAX_PLATFORMS"] == "cpu"


def check_equal_to_one_device(result, engine, n=96, global_batch=32, epochs=2):
    assert result["engine"] == engine
    assert result["devices"] == ["cpu:0", "cpu:1"]
    assert len(result["first_kernel_on"]) == 2  # the first kernel is mirrored on both devices
    assert result["per_replica_batch"] == global_batch // 2
    for run in ("one_device", "replicated"):
        assert result[run]["iterations"] == [n // global_batch] * epochs
        assert len(result[run]["step_losses"]) == n // global_batch * epochs
    np.testing.assert_allclose(result["replicated"]["step_losses"],
                               result["one_device"]["step_losses"], rtol=1e-5)
    assert result["max_weight_difference"] < 1e-5
    # the weights moved: the equality is not that of two untouched copies
    assert result["one_device"]["step_losses"][0] != result["one_device"]["step_losses"][-1]


@jax_engine
def test_jax_data_parallel_equals_one_device(capsys):
    result = distribute.launch("data-parallel", "jax", 2, data=digits_like(), global_batch=32,
                               epochs=2, learning_rate=0.1)
    assert capsys.readouterr().out == ("training LeNet-5 on one device, then on 2 replicas ...\n"
                                       "data-parallel on jax: devices ['cpu:0', 'cpu:1']\n")
    check_equal_to_one_device(result, "jax")
    assert result["first_kernel_on"] == ["cpu:0", "cpu:1"]


@jax_engine
def test_jax_model_parallel_splits_a_dense_layer():
    # LeNet-5's C5 (400 inputs to 120 units) stands in for VGG-16's fc6: the same code path at a
    # fraction of the compile time; the lesson splits the real fc6.
    result = distribute.launch("model-parallel", "jax", 2, model="lenet5", layer="c5_dense",
                               image_size=32, classes=10)
    assert result["kernel_shape"] == [400, 120]
    assert result["params"] == 48_120
    assert result["shards"] == [{"device": "cpu:0", "shape": [400, 60]},
                                {"device": "cpu:1", "shape": [400, 60]}]
    assert result["last_layer_shards"] == [[84, 10], [84, 10]]  # not in the map: whole copies
    assert result["max_output_difference"] < 1e-6


@requires.tensorflow
def test_tensorflow_mirrored_strategy_equals_one_device(capsys):
    result = distribute.launch("data-parallel", "tensorflow", 2, data=digits_like(),
                               global_batch=32, epochs=2, learning_rate=0.1)
    assert capsys.readouterr().out == (
        "training LeNet-5 on one device, then on 2 replicas ...\n"
        "data-parallel on tensorflow: devices ['cpu:0', 'cpu:1']\n")
    check_equal_to_one_device(result, "tensorflow")
    assert [d.rsplit("/", 1)[1] for d in result["first_kernel_on"]] == ["device:cpu:0",
                                                                       "device:cpu:1"]


@requires.tensorflow
def test_model_parallel_refuses_tensorflow():
    with pytest.raises(ValueError, match="ModelParallel trains on JAX only"):
        distribute.model_parallel("tensorflow", 2)
