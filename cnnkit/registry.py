"""One registry for every architecture: `build(name)`, `list_models()`, `model_info(name)`."""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["ModelInfo", "register", "build", "list_models", "list_families", "model_info"]


@dataclass(frozen=True)
class ModelInfo:
    """What the kit knows about one registered architecture."""

    name: str
    builder: Callable = field(repr=False)
    family: str
    paper: str
    year: int
    input_shape: tuple  # default (height, width, channels)
    min_size: int  # smallest height and width the network accepts
    classes: int  # default number of classes
    params: int | None = None  # reference trainable parameters at the defaults
    params_source: str = ""  # where that reference comes from
    imagenet: bool = False  # official ImageNet weights can be loaded
    fixed_size_top: bool = False  # the classifier flattens feature maps, so it needs a fixed size
    task: str = "classification"

    @property
    def citation(self) -> str:
        return f"{self.paper} ({self.year})"


_REGISTRY: dict[str, ModelInfo] = {}


def register(name: str, *, family: str, paper: str, year: int, input_shape: tuple,
             min_size: int, classes: int = 1000, params: int | None = None,
             params_source: str = "", imagenet: bool = False,
             fixed_size_top: bool = False, task: str = "classification"):
    """Decorator that adds a builder to the registry under `name`.

    Variants of one family register the same builder through `functools.partial`,
    so a variant is a row of data, never a copy of code.
    """

    def decorate(builder: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"a model named {name!r} is already registered")
        _REGISTRY[name] = ModelInfo(
            name=name, builder=builder, family=family, paper=paper, year=year,
            input_shape=tuple(input_shape), min_size=min_size, classes=classes,
            params=params, params_source=params_source, imagenet=imagenet,
            fixed_size_top=fixed_size_top, task=task)
        return builder

    return decorate


def _close(word: str, choices) -> str:
    matches = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""


def model_info(name: str) -> ModelInfo:
    """The registry entry for `name`; a ValueError names close matches for a typo."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(
            f"Unknown model {name!r}.{_close(str(name), _REGISTRY)} "
            f"`cnnkit.list_models()` lists all {len(_REGISTRY)} models.")
    return _REGISTRY[name]


def list_families() -> list[str]:
    """Families in the order their first model was registered."""
    return list(dict.fromkeys(info.family for info in _REGISTRY.values()))


def list_models(family: str | None = None) -> list[str]:
    """Names of the registered models, in course order, optionally of one family."""
    if family is None:
        return list(_REGISTRY)
    if family not in list_families():
        raise ValueError(f"Unknown family {family!r}.{_close(family, list_families())} "
                         f"Families: {', '.join(list_families())}.")
    return [name for name, info in _REGISTRY.items() if info.family == family]


def build(name: str, **kwargs):
    """Build the registered model `name`, passing keras.applications-style keyword arguments."""
    info = model_info(name)
    accepted = inspect.signature(info.builder).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
    unknown = [k for k in kwargs if k not in accepted]
    if unknown and not takes_any:
        hints = "".join(_close(k, accepted) for k in unknown)
        raise ValueError(
            f"{name} does not take {', '.join(repr(k) for k in unknown)}.{hints} "
            f"It takes: {', '.join(accepted)}.")
    return info.builder(**kwargs)
