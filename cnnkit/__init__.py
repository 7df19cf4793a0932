"""cnnkit: a Keras 3 course kit on convolutional networks.

    import cnnkit
    model = cnnkit.build("lenet5")          # any name from cnnkit.list_models()
    P = cnnkit.profile()                     # smoke, cpu or gpu budgets for a lesson

`cnnkit.data` (TensorFlow datasets and tf.data) is imported on first use, so the models run on
the JAX and PyTorch backends without TensorFlow installed.
"""

import importlib as _importlib
import os as _os

# TensorFlow prints C++ INFO and WARNING lines at import; they drown a lesson's own output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

# Importing these registers the models, layers and optimizers, so saved models load safely.
from cnnkit import layers, models, optimizers  # noqa: E402
from cnnkit import augment  # noqa: E402  (registers its layers for loading)
from cnnkit.profiles import Profile, profile  # noqa: E402
from cnnkit.registry import build, list_families, list_models, model_info  # noqa: E402

_LAZY = {"analysis", "boxes", "data", "exercises", "grading", "plots", "segmentation", "training",
         "transfer", "weights"}

__all__ = ["build", "list_models", "list_families", "model_info", "profile", "Profile",
           "layers", "models", "optimizers", *sorted(_LAZY)]


def __getattr__(name):
    if name in _LAZY:
        return _importlib.import_module(f"cnnkit.{name}")
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
