"""The set-up cell every lesson, exercise and solution starts with, written from this one template.

    python tools/refresh_notebooks.py --setup-only   # rewrite every notebook's set-up cell and badge

On Colab the cell installs cnnkit with `--no-deps`, beside whatever Keras, TensorFlow, JAX and
PyTorch the runtime has, so it never upgrades them and never meets a resolver conflict, whatever
the runtime's versions (Colab already has NumPy, Matplotlib, scikit-learn, scikit-image and
nbformat). On a runtime without TensorFlow (Colab's TPU runtime), `import cnnkit` points Keras
at JAX, or at PyTorch where JAX is missing too. Anywhere else the cell only imports.

The repository it installs from has one home: `[project.urls] Repository` in pyproject.toml.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["TEMPLATE", "render", "repository", "badge"]

TEMPLATE = '''\
# Set-up. On Colab this installs cnnkit beside the runtime's own Keras, TensorFlow, JAX and
# PyTorch, upgrading none of them; without TensorFlow (Colab's TPU runtime) cnnkit runs Keras
# on JAX. Anywhere else it only imports.
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "cnnkit @ git+https://github.com/{repository}"], check=True)

import cnnkit  # before keras: without TensorFlow it chooses JAX or PyTorch for Keras
import keras
import numpy as np

P = cnnkit.profile()  # smoke, cpu or gpu: set CNNKIT_PROFILE to choose
print(P)
keras.utils.set_random_seed(0)'''


def repository(root: str | Path = ".") -> str:
    """The GitHub `owner/name` of the course, from pyproject.toml's `[project.urls] Repository`."""
    text = (Path(root) / "pyproject.toml").read_text(encoding="utf-8")
    found = re.search(r'^Repository\s*=\s*"https://github\.com/([^/"]+/[^/"]+?)/?"', text, re.M)
    if not found:
        raise ValueError("pyproject.toml needs `Repository = \"https://github.com/OWNER/NAME\"` "
                         "under [project.urls]: the notebooks install and link from there.")
    return found.group(1)


def render(repository: str) -> str:
    """The set-up cell's source for the course at github.com/`repository`."""
    return TEMPLATE.format(repository=repository)


def badge(repository: str, folder: str, name: str) -> str:
    """The Open-in-Colab link of `folder/name` (a solution's badge opens its exercise)."""
    folder = "exercises" if folder == "solutions" else folder
    return f"https://colab.research.google.com/github/{repository}/blob/main/{folder}/{name}"
