"""One registry for every architecture: `build(name)`, `list_models()`, `model_info(name)`.

Each model file ends with its registrations, one line per model, in course order:

    lenet5 = register("lenet5", lenet5, family="lenet", paper=..., year=1998, ...,
                      taps=(Tap("c1", "s2_pool", 2), Tap("c3", "s4_pool", 4)))
    resnet50 = register("resnet50", resnet, "resnet50", **_info("resnet50"), twin="ResNet50")

`register` records what the kit knows about the model (a `ModelInfo`: paper, default input,
reference count, keras.applications twin, feature taps) and returns the module's function for
it: the family's builder with the model's row of the table bound (`resnet("resnet50", ...)`),
or the builder itself when nothing is bound. So `cnnkit.models.resnet.resnet50(weights=None)`
and `cnnkit.build("resnet50", weights=None)` call the same function.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

__all__ = ["ModelInfo", "Tap", "register", "build", "list_models", "list_families",
           "model_info", "tap_layers"]


class Tap(NamedTuple):
    """One stage of a registered model and the layer whose output the next stage reads.

    A stage ends where the next begins, with the pooling that closes it if one does (ResNet's
    conv1 with pool1, VGG's blocks, DenseNet's transitions); the last tap is the headless
    model's output. What needs "the output of stage 3" reads these (FPN's C2..C5, BiSeNet's
    context path, ThunderNet's C4 and C5), and `transfer.stages` groups the layers by them.
    """

    stage: str  # the paper's name for the stage ("conv2".."conv5" for ResNet)
    layer: str  # the layer whose output is the stage's output in the built model
    stride: int  # its downsampling: the product of the strides before it (input / output size)


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
    classes: int = 1000  # default number of classes
    params: int | None = None  # trainable parameters at the defaults (tests/reference.py checks)
    taps: tuple[Tap, ...] = ()  # stage outputs, input to output; the last is the headless output
    twin: str | None = None  # the keras.applications builder computing the same ("ResNet50")
    fixed_size_top: bool = False  # the classifier flattens feature maps, so it needs a fixed size
    task: str = "classification"

    @property
    def imagenet(self) -> bool:
        """Official ImageNet weights can be loaded: they are its keras.applications twin's."""
        return self.twin is not None

    @property
    def citation(self) -> str:
        return f"{self.paper} ({self.year})"

    def tap(self, stage: str) -> Tap:
        """The tap of `stage`; a ValueError names the stages there are."""
        for tap in self.taps:
            if tap.stage == stage:
                return tap
        stages = ", ".join(t.stage for t in self.taps) or "none declared"
        raise ValueError(f"{self.name} has no tap {stage!r}.{_close(stage, self.stages)} "
                         f"Its taps: {stages}.")

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(tap.stage for tap in self.taps)


_REGISTRY: dict[str, ModelInfo] = {}


def _check_taps(name, taps):
    taps = tuple(taps)
    for tap in taps:
        if not isinstance(tap, Tap) or not isinstance(tap.stride, int) or tap.stride < 1:
            raise ValueError(f"{name}: taps must be Tap(stage, layer, stride) with a whole "
                             f"stride >= 1; got {tap!r}")
    stages = [tap.stage for tap in taps]
    if len(set(stages)) != len(stages):
        raise ValueError(f"{name}: a stage is tapped twice in {stages}")
    return taps


def _bind(name, builder, args):
    """`builder` with `args` bound first, as a module function named `name` whose signature
    is the rest of the builder's (so `build`'s keyword check and `help()` read it)."""
    if not args:
        return builder

    def variant(*more, **kwargs):
        return builder(*args, *more, **kwargs)

    variant.__signature__ = inspect.signature(functools.partial(builder, *args))
    variant.__name__ = variant.__qualname__ = name
    variant.__module__ = builder.__module__
    bound = ", ".join(map(repr, args))
    variant.__doc__ = (f"{name}: `{builder.__name__}({bound}, ...)`.\n\n"
                       + inspect.cleandoc(builder.__doc__ or ""))
    variant.func, variant.args = builder, args  # as functools.partial names them
    return variant


def register(name: str, builder: Callable, *args, family: str, paper: str, year: int,
             input_shape: tuple, min_size: int, classes: int = 1000, params: int | None = None,
             taps=(), twin: str | None = None, fixed_size_top: bool = False,
             task: str = "classification") -> Callable:
    """Add model `name` to the registry and return its module function.

    builder: the family's builder; `args` are bound first (the key of the model's row in the
    family's table), so a variant is one line of data, never a copy of code. The function
    returned is the builder itself when nothing is bound; assign it to `name` in the model's
    module (`resnet50 = register("resnet50", resnet, "resnet50", ...)`).
    twin: the keras.applications builder that computes the same network (its ImageNet
    weights then load, see cnnkit.weights). taps: the stage outputs (see `Tap`).
    """
    if name in _REGISTRY:
        raise ValueError(f"a model named {name!r} is already registered")
    if not name.isidentifier():
        raise ValueError(f"{name!r} must be a Python name: it is also the module function's")
    function = _bind(name, builder, args)
    _REGISTRY[name] = ModelInfo(
        name=name, builder=function, family=family, paper=paper, year=year,
        input_shape=tuple(input_shape), min_size=min_size, classes=classes, params=params,
        taps=_check_taps(name, taps), twin=twin, fixed_size_top=fixed_size_top, task=task)
    return function


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


def _all_layers(model):
    import keras  # here: the command line imports this module without Keras

    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested model: its own layers
            yield from _all_layers(layer)
        else:
            yield layer


def tap_layers(model, name: str | None = None, stages=None) -> dict:
    """{stage: layer} of the taps registered model `name` (default: `model.name`) declares,
    found in `model` (nested models opened); `stages` picks some, in that order.

    A declared tap whose layer the model lacks raises a ValueError: a layer renamed in a model
    file must be renamed in its taps too, never silently read elsewhere.
    """
    info = model_info(model.name if name is None else name)
    taps = info.taps if stages is None else [info.tap(stage) for stage in stages]
    if not taps:
        raise ValueError(f"{info.name} declares no taps (see its registration in "
                         f"{info.builder.__module__}).")
    layers = {layer.name: layer for layer in _all_layers(model)}
    missing = [tap for tap in taps if tap.layer not in layers]
    if missing:
        listed = ", ".join(f"{tap.stage} -> {tap.layer!r}" for tap in missing)
        raise ValueError(
            f"{info.name} declares taps whose layers {model.name!r} lacks: {listed}. If a layer "
            f"was renamed, rename its tap in {info.builder.__module__}'s registration; if "
            f"{model.name!r} is not cnnkit's {info.name}, it has no declared taps.")
    return {tap.stage: layers[tap.layer] for tap in taps}
