"""One switch, `CNNKIT_PROFILE`, makes the same notebook a seconds-long CI test or a full lesson.

- smoke: every notebook within 60 s on 2 CPU cores (what CI runs);
- cpu:   every notebook within 5 minutes on 2 CPU cores, with real learning;
- gpu:   the full lesson, on a Colab GPU or your own.
Without the variable the kit picks gpu when the Keras backend sees a GPU, else cpu.

`profile()` always asks the backend for its devices, so it is the set-up cell (never a graded
cell) that initialises the device and shows whatever the backend logs while doing so: on a
machine without a GPU, TensorFlow logs "failed call to cuInit" to stderr at that moment, and
nbgrader scores any grade cell with stderr output as 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

__all__ = ["Profile", "profile", "PROFILES", "gpu_available", "devices"]

ENV_VAR = "CNNKIT_PROFILE"


@dataclass(frozen=True)
class Profile:
    """Budgets a lesson scales itself by."""

    name: str
    epochs: int  # passes over the training set for a lesson's main model
    train_size: int | None  # at most this many training examples (None: all)
    test_size: int | None  # at most this many test examples (None: all)
    image_size: int  # side that lessons resize natural images to
    batch_size: int
    repeats: int  # timing repeats; medians are taken over them
    budget_s: int  # what one notebook should take at most on the profile's machine
    source: str = ""  # how the profile was chosen, once `profile()` has chosen it
    device: str = ""  # the backend and the devices it sees, once `profile()` has asked

    def __str__(self) -> str:
        def size(n):
            return "all" if n is None else f"<= {n:,}"

        chosen = f" ({self.source})" if self.source else ""
        return (f"profile {self.name!r}{chosen}: {self.epochs} epochs, "
                f"{size(self.train_size)} training / {size(self.test_size)} test examples, "
                f"{self.image_size}x{self.image_size} images, batch {self.batch_size}, "
                f"{self.repeats} timing repeats, budget {self.budget_s} s per notebook"
                + (f"; {self.device}" if self.device else ""))


PROFILES = {
    "smoke": Profile("smoke", epochs=2, train_size=512, test_size=256, image_size=32,
                     batch_size=32, repeats=1, budget_s=60),
    "cpu": Profile("cpu", epochs=30, train_size=12_000, test_size=2_000, image_size=64,
                   batch_size=32, repeats=3, budget_s=300),
    "gpu": Profile("gpu", epochs=30, train_size=None, test_size=None, image_size=224,
                   batch_size=128, repeats=5, budget_s=1800),
}


def devices() -> list[str]:
    """The devices the active Keras backend sees, e.g. ['cpu:0'] or ['gpu:0', 'cpu:0']; asking
    initialises the backend's device (TensorFlow, JAX or PyTorch)."""
    import keras

    if keras.backend.backend() == "torch":
        import torch

        return [f"gpu:{i}" for i in range(torch.cuda.device_count())] + ["cpu:0"]
    found = []
    for kind in ("gpu", "tpu", "cpu"):  # Keras's distribution API answers for TensorFlow and JAX
        try:
            found += [d.lower() for d in keras.distribution.list_devices(kind)]
        except (RuntimeError, ValueError, NotImplementedError):
            continue
    return found


def gpu_available() -> bool:
    """Whether the active Keras backend sees a GPU (TensorFlow, JAX or PyTorch)."""
    return any(d.startswith("gpu") for d in devices())


def profile(name: str | None = None) -> Profile:
    """The active profile: `name` if given, else $CNNKIT_PROFILE, else gpu or cpu by hardware."""
    from dataclasses import replace

    if name is None:
        name = os.environ.get(ENV_VAR, "").strip().lower() or None
        source = f"from {ENV_VAR}" if name else None
    else:
        source = "chosen in code"
    if name is None:
        name = "gpu" if gpu_available() else "cpu"
        source = f"{ENV_VAR} unset; {'a GPU' if name == 'gpu' else 'no GPU'} found"
    if name not in PROFILES:
        raise ValueError(f"Unknown profile {name!r}: set {ENV_VAR} to one of "
                         f"{', '.join(PROFILES)} (or leave it unset to choose by hardware).")
    import keras

    seen = devices()
    device = f"{keras.backend.backend()} backend on {', '.join(seen[:4])}" + (
        f" and {len(seen) - 4} more" if len(seen) > 4 else "")
    return replace(PROFILES[name], source=source, device=device)
