"""cnnkit: a Keras 3 course kit on convolutional networks.

    import cnnkit
    model = cnnkit.build("lenet5")          # any name from cnnkit.list_models()
    P = cnnkit.profile()                     # smoke, cpu or gpu budgets for a lesson

Keras runs on TensorFlow, JAX or PyTorch, and TensorFlow is optional. When Keras has not been
imported yet, KERAS_BACKEND is unset and the backend Keras would choose (keras.json's, else
TensorFlow) is not installed, importing cnnkit chooses JAX, else PyTorch, and says so.
"""

import importlib as _importlib
import importlib.abc  # noqa: F401  (the alias below)
import importlib.util  # noqa: F401  (find_spec)
import os as _os
import sys as _sys

# TensorFlow prints C++ INFO and WARNING lines at import; they drown a lesson's own output.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

def _keras_default_backend() -> str:
    """The backend Keras picks without KERAS_BACKEND: keras.json's, else TensorFlow."""
    import json

    home = _os.environ.get("KERAS_HOME") or _os.path.join(_os.path.expanduser("~"), ".keras")
    try:
        with open(_os.path.join(home, "keras.json"), encoding="utf-8") as config:
            return str(json.load(config).get("backend", "tensorflow"))
    except (OSError, ValueError):
        return "tensorflow"


def _choose_backend():
    """Point Keras at an installed backend when the one it would pick is missing."""
    if "keras" in _sys.modules or "KERAS_BACKEND" in _os.environ:
        return
    wanted = _keras_default_backend()
    # Each backend's Python module has the backend's own name.
    if _importlib.util.find_spec(wanted) is not None:
        return
    for backend in ("jax", "torch"):
        if _importlib.util.find_spec(backend) is not None:
            _os.environ["KERAS_BACKEND"] = backend
            print(f"cnnkit: {wanted} is not installed, so Keras runs on {backend} "
                  "(set KERAS_BACKEND to choose).")
            return


_choose_backend()

# What only the lessons use lives in cnnkit.course (profiles, plots, training, experiments,
# guidelines, optimviz, exercises, setup_cell, distribute, nas and the graders). The lessons and
# learners' own notebooks import it by its old, shorter names (`from cnnkit.training import
# progress`, `from cnnkit import grading`): each old name is the very module in cnnkit.course,
# so a grader, a registered layer or a monkeypatch is never loaded twice.
MOVED_TO_COURSE = ("profiles", "plots", "training", "experiments", "guidelines", "optimviz",
                   "exercises", "setup_cell", "distribute", "nas", "grading")


class _CourseAlias(_importlib.abc.MetaPathFinder, _importlib.abc.Loader):
    """Imports `cnnkit.<old>[.sub]` as the module `cnnkit.course.<old>[.sub]` itself."""

    @staticmethod
    def _new_name(fullname):
        parts = fullname.split(".")
        if len(parts) > 1 and parts[0] == "cnnkit" and parts[1] in MOVED_TO_COURSE:
            return "cnnkit.course." + ".".join(parts[1:])
        return None

    def find_spec(self, fullname, path=None, target=None):
        if self._new_name(fullname) is None:
            return None
        return _importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec):
        module = _importlib.import_module(self._new_name(spec.name))
        self._spec = module.__spec__  # the import system sets the alias's spec; put it back
        return module

    def exec_module(self, module):
        module.__spec__ = self._spec


_sys.meta_path.insert(0, _CourseAlias())

__version__ = "0.1.0"

_LAZY = {"analysis", "boxes", "data", "exercises", "grading", "plots", "segmentation", "training",
         "transfer", "weights"}
_EAGER = {"build": "registry", "list_models": "registry", "list_families": "registry",
          "model_info": "registry", "profile": "course.profiles", "Profile": "course.profiles",
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
        return _importlib.import_module(
            f"cnnkit.course.{name}" if name in MOVED_TO_COURSE else f"cnnkit.{name}")
    if name in _EAGER:
        _load()
        return globals()[name]
    raise AttributeError(f"module 'cnnkit' has no attribute {name!r}")
