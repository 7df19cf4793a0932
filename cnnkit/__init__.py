"""cnnkit: a Keras 3 course kit on convolutional networks.

    import cnnkit
    model = cnnkit.build("lenet5")          # any name from cnnkit.list_models()
    P = cnnkit.profile()                     # smoke, cpu or gpu budgets for a lesson

`cnnkit.data` (TensorFlow datasets and tf.data) is imported on first use, so the models run on
the JAX and PyTorch backends without TensorFlow installed.
"""

import importlib as _importlib
import os as _os
import sys as _sys

# TensorFlow prints C++ INFO and WARNING lines at import; they drown a lesson's own output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_LAZY = {"analysis", "boxes", "data", "exercises", "grading", "plots", "segmentation", "training",
         "transfer", "weights"}
_EAGER = {"build": "registry", "list_models": "registry", "list_families": "registry",
          "model_info": "registry", "profile": "profiles", "Profile": "profiles",
          "layers": None, "models": None, "optimizers": None, "augment": None}

__all__ = ["build", "list_models", "list_families", "model_info", "profile", "Profile",
           "layers", "models", "optimizers", *sorted(_LAZY)]


def _load():
    """Import Keras and register every model, layer and optimizer, so saved models load safely."""
    for module in ("layers", "models", "optimizers", "augment"):  # importing registers them
        globals()[module] = _importlib.import_module(f"cnnkit.{module}")
    for name, module in _EAGER.items():
        if module is not None:
            globals()[name] = getattr(_importlib.import_module(f"cnnkit.{module}"), name)


# `python -m cnnkit ...` imports this package while sys.argv[0] is still "-m": the command line
# then loads Keras only for the commands that need it, so `--help` answers at once. Any other
# import registers everything now.
if _sys.argv[:1] != ["-m"]:
    _load()


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"cnnkit.{name}")
    if name in _EAGER:
        _load()
        return globals()[name]
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
