"""One model of every family on JAX and on PyTorch, in CI's environment without TensorFlow
(.ci/run); on TensorFlow tests/test_models.py checks every model.

Each family's first registered model (the hourglass at 2 of its 8 stacks, see OPTIONS), at its
minimum input size with 3 classes: a forward pass,
a compiled training step that must move every trainable weight, and a `.keras` round trip in
safe mode that must give identical outputs (tools/backend_check.py's `check`, which runs every
model the same way on a machine that has the time).
"""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras

import cnnkit

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from backend_check import check  # noqa: E402

FIRST_OF_EACH_FAMILY = [cnnkit.list_models(family)[0] for family in cnnkit.list_families()]


def test_every_family_is_represented():
    assert len(FIRST_OF_EACH_FAMILY) == len(cnnkit.list_families()) == 28
    assert {cnnkit.model_info(n).family for n in FIRST_OF_EACH_FAMILY} == \
        set(cnnkit.list_families())


def _backend_chosen_by_import(tmp_path, keras_json, **env):
    """The lines `import cnnkit, keras` prints, in a fresh process with KERAS_BACKEND unset."""
    (tmp_path / "keras.json").write_text(json.dumps(keras_json))
    clean = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    code = "import cnnkit, keras; print(keras.backend.backend())"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**clean, "KERAS_HOME": str(tmp_path), **env}, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_import_cnnkit_points_keras_at_an_installed_backend(tmp_path):
    lines = _backend_chosen_by_import(tmp_path, {"backend": "tensorflow"})
    if importlib.util.find_spec("tensorflow") is not None:
        assert lines == ["tensorflow"]  # installed: Keras's own choice stands, silently
    else:
        chosen = "jax" if importlib.util.find_spec("jax") is not None else "torch"
        assert lines == [f"cnnkit: tensorflow is not installed, so Keras runs on {chosen} (set "
                         "KERAS_BACKEND to choose).", chosen]
    # KERAS_BACKEND always wins, and nothing is said.
    installed = [b for b in ("jax", "torch", "tensorflow") if importlib.util.find_spec(b)]
    assert _backend_chosen_by_import(tmp_path, {}, KERAS_BACKEND=installed[-1]) == [installed[-1]]


# The same code, fewer repeats: the stacked hourglass calls one function per stack, and two
# stacks already take the path that feeds a stack's heatmaps into the next. Eight took 49 s of
# CI's JAX run (2026-12-03), mostly compiling; tests/test_models.py builds all eight on TensorFlow.
OPTIONS = {"hourglass": {"stacks": 2}}


def _family_test(name):
    def test_forward_training_step_and_round_trip(self, tmp_path):
        step_seconds = check(name, str(tmp_path), **OPTIONS.get(name, {}))
        assert step_seconds > 0
        keras.backend.clear_session()

    return test_forward_training_step_and_round_trip


# A class per family: pytest-xdist's loadscope sends each class to a worker of its own, where
# one parametrized function would send all 27 models to one worker. On TensorFlow, the suite's
# default, tests/test_models.py already runs these checks (and more) on every model.
for _name in FIRST_OF_EACH_FAMILY if keras.backend.backend() != "tensorflow" else []:
    _family = cnnkit.model_info(_name).family
    globals()[f"Test_{_family}_{_name}"] = type(
        f"Test_{_family}_{_name}", (), {"test_forward_training_step_and_round_trip": _family_test(_name)})
