"""Transfer learning by freezing layers: choose what trains, count it, and keep BatchNorm honest.

    base = transfer.headless(source)                 # a copy of a trained network, head cut off
    model = transfer.new_head(base, classes=5)       # pooling, dropout, dense; base frozen
    lr = transfer.regime(model, "medium")            # head + last stage train; returns 1e-4
    model.compile(keras.optimizers.Adam(lr), ...)    # compile AFTER changing trainability
    print(transfer.trainable_summary(model))

- `freeze(model, ...)` / `unfreeze(model, ...)`: by layer name(s), index or slice, everything up
  to a layer (`upto=`, inclusive; `before=`, exclusive), by stage (`stages=`) or the last N stages
  (`last_stages=`). `select(...)` shows which layers a selection hits without changing them.
- `stages(model)`: the ordered stage -> layers mapping, plus "head": a cnnkit model's from its
  registered taps (`cnnkit.model_info(name).taps`), another model's from its layer names.
- `trainable_summary(model)`: trainable, frozen and BatchNorm-statistics counts, per stage.
- `regime(model, "small" | "medium" | "large")`: the three regimes by data size; returns the
  learning rate to use. `new_head(base, classes)`, `headless(model)` build the models.
- `bn_statistics(model)` and `bn_drift(before, model)`: how far the moving statistics moved.

BatchNorm stays frozen when the rest is fine-tuned (`train_bn=False`): in Keras 3 a frozen
BatchNormalization runs in inference mode, and `training=False` on a nested call does not survive
`fit`. Lesson 04 §5 (notebooks/04_transfer_learning.ipynb) shows why, and measures the drift.
Change trainability before `compile`: Keras reads it when it builds the training step.
"""

from __future__ import annotations

import difflib
import math
import re
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import keras
import numpy as np

from cnnkit import registry
from cnnkit.analysis import format_table

__all__ = ["layers_of", "stages", "select", "freeze", "unfreeze", "trainable_summary",
           "TrainableSummary", "StageRow", "regime", "LR_DIVISOR", "new_head", "headless",
           "bn_statistics", "bn_drift", "BNDrift", "DriftRow", "STAGE_RULES", "Unreadable"]

# For models that declare no taps (keras.applications', your own): layer name -> stage, first
# match wins; a layer that matches none stays in the current stage (pool1 after conv1,
# DenseNet's transition pool2 after conv2, the final "bn" after conv5).
STAGE_RULES = (
    (r"^(stem|top)(?:_|$)", r"\1"),                    # EfficientNet
    (r"^conv(\d+)(?:_|$)", r"conv\1"),                 # ResNet, ResNetV2, DenseNet
    (r"^block(\d+)[a-z]?(?:_|$)", r"block\1"),          # VGG, Xception, EfficientNet block2a/b
    (r"^block_(\d+)_", r"block_\1"),                    # MobileNetV2 (merged, see below)
    (r"^conv_(?:dw|pw|pad)_(\d+)(?:_|$)", r"block_\1"),  # MobileNet (merged)
    (r"^stage(\d+)(?:_|$)", r"stage\1"),               # stage-numbered networks
    (r"^mixed_(\d+)[a-z]", r"mixed_\1"),                # InceptionResNetV2's stem modules
    (r"^(?:avg|max)_pool$|^head(?:_|$)", "head"),        # the global pool starts the head
    (r"^Conv1(?:_|$)", "conv1"),                        # MobileNetV2 ...
    (r"^expanded_conv(?:_|$)", "block_0"),
    (r"^Conv_1(?:_|$)", "top"),
)
# MobileNet numbers every block; consecutive blocks with the same output width form one stage,
# a row of the paper's table ("block_1..2" is MobileNetV2's sequence of two 24-channel blocks).
_MERGED = re.compile(r"^block_(\d+)$")
# What each regime divides base_lr (1e-3 for Adam) by: a random head learns at the usual rate;
# pretrained weights must move less, and the more of them train the smaller the step.
LR_DIVISOR = {"small": 1, "medium": 10, "large": 100}


def _close(word, choices, what):
    matches = difflib.get_close_matches(str(word), list(choices), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(m) for m in matches)}?" if matches else ""
    return f"No {what} named {word!r}.{hint}"


def _walk(model, inside=()):
    """(layer, containers it sits in) for every layer, nested models opened, in graph order."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _walk(layer, inside + (layer,))
        else:
            yield layer, inside


def layers_of(model) -> list:
    """The model's layers with nested models (a base inside a new head) opened: the list that
    indices and `upto=` refer to. For a model without nested models it is `model.layers`."""
    return [layer for layer, _ in _walk(model)]


def _is_bn(layer):
    return isinstance(layer, keras.layers.BatchNormalization)


def _rank(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):  # a shared layer has several outputs
        return None
    out = out[0] if isinstance(out, (list, tuple)) else out
    return len(out.shape)


class Unreadable(ValueError):
    """The layer names of a model without taps say nothing `stages` can read."""


def _registered(model):
    """`model`, or the model nested in it, if its name is a registered model's with taps."""
    for container in _containers(model):
        if container.name in registry.list_models() and \
                registry.model_info(container.name).taps:
            return container
    return None


def stages(model, pattern=None) -> dict:
    """Ordered {stage: [layers]}: the network's stages, then "head" (everything after them).

    A cnnkit model (or a model with one nested in it, as `new_head` builds) has registered taps
    (`cnnkit.model_info("resnet50").taps`, the output of each stage): a stage is every layer up
    to its tap layer in graph order, and the head what follows the last tap. A tap naming a
    layer the model lacks raises a ValueError: a renamed layer must be renamed in its model's
    taps, never silently regrouped.

    Other models (keras.applications, your own) are read from their layer names by
    `STAGE_RULES` (ResNet `conv3_block2_1_conv`, VGG `block1_conv1`, MobileNet `block_3_...`,
    EfficientNet `block2a_...`); their head is everything after the last layer that outputs
    feature maps (pooling, dropout, dense). Another naming: pass `pattern`, a regular
    expression whose first group (or whole match) names the stage, e.g. r"^(conv\\d)" or
    r"^(?:conv|pool|mixed)_(\\d)"; it also overrides a cnnkit model's taps.
    """
    base = _registered(model) if pattern is None else None
    if base is not None:
        return _tap_stages(model, base)
    return _rule_stages(model, pattern)


def _tap_stages(model, base):
    name, taps = base.name, registry.tap_layers(base)
    ends = {id(layer): stage for stage, layer in taps.items()}
    result, group = {}, []
    for layer in layers_of(model):
        if isinstance(layer, keras.layers.InputLayer):
            continue
        group.append(layer)
        if id(layer) in ends:
            result[ends[id(layer)]], group = group, []
    if list(result) != list(taps):
        raise ValueError(f"The taps of {name} ({', '.join(taps)}) are not in the graph order of "
                         f"{model.name!r} ({', '.join(result)}): fix their order where {name} "
                         "registers.")
    if group:
        result["head"] = group
    return result


def _rule_stages(model, pattern):
    rules = [(re.compile(pattern), None)] if pattern else [(re.compile(p), r)
                                                           for p, r in STAGE_RULES]
    layers = [layer for layer in layers_of(model) if not isinstance(layer, keras.layers.InputLayer)]
    last_map = max((i for i, layer in enumerate(layers) if _rank(layer) == 4), default=-1)
    units, matched = [], False  # [stage name, layers], runs of consecutive layers
    for i, layer in enumerate(layers):
        name = "head" if i > last_map else None
        for regex, repl in rules if name is None else ():
            if m := regex.search(layer.name):
                name = m.expand(repl) if repl else (m.group(1) if regex.groups else m.group(0))
                matched = True
                break
        if name is None:  # no rule: the layer belongs where the graph is
            name = units[-1][0] if units else "stem"
        if units and units[-1][0] == name:
            units[-1][1].append(layer)
        else:
            units.append([name, [layer]])
    if not matched:
        raise Unreadable(
            f"Cannot read stages from the layer names of {model.name!r} (e.g. "
            f"{', '.join(repr(layer.name) for layer in layers[:3])}). Pass pattern=, a regular "
            "expression whose first group names the stage, or select layers by name or index.")
    if len(units) > 1 and units[0][0] == "stem" and not any(u.weights for u in units[0][1]):
        padding = units.pop(0)[1]  # weightless padding before conv1 is not a stage
        units[0][1][:0] = padding
    merged = []
    for name, group in units:
        prev = merged[-1] if merged else None
        if prev and _MERGED.match(prev[2]) and _MERGED.match(name) and \
                _width(prev[1]) == _width(group):
            prev[0] = f"{prev[2]}..{name.split('_')[1]}"
            prev[1].extend(group)
        else:
            merged.append([name, group, name])
    result = {}
    for name, group, _ in merged:
        if name in result:
            raise Unreadable(f"Stage {name!r} of {model.name!r} is not contiguous in the graph; "
                             "pass pattern= to name the stages.")
        result[name] = group
    return result


_stage_table = stages  # select() has an argument named stages


def _width(group):
    maps = [layer for layer in group if _rank(layer) == 4]
    return maps[-1].output.shape[-1] if maps else None


def select(model, which=None, *, upto=None, before=None, stages=None, last_stages=None,
           pattern=None) -> list:
    """The layers a freeze/unfreeze selection hits (all layers when nothing is given).

    which: a layer name, an index into `layers_of(model)`, a slice, or a list of names and
    indices; the name of a nested model selects all its layers. upto / before: every layer up
    to and including / up to but excluding the named (or indexed) layer. stages: a stage name
    or list of them (see `stages`). last_stages: the last N stages before the head (the head
    is not counted; select it with stages="head").
    """
    given = [k for k, v in dict(which=which, upto=upto, before=before, stages=stages,
                                 last_stages=last_stages).items() if v is not None]
    if len(given) > 1:
        raise ValueError(f"Give one selection, not {' and '.join(given)}.")
    everything = layers_of(model)
    if stages is not None or last_stages is not None:
        table = _stage_table(model, pattern)
        if last_stages is not None:
            body = [s for s in table if s != "head"]
            if not isinstance(last_stages, int) or not 0 <= last_stages <= len(body):
                raise ValueError(f"last_stages must be an integer from 0 to {len(body)} "
                                 f"(the stages of {model.name!r}: {', '.join(body)}).")
            stages = body[len(body) - last_stages:]
        names = [stages] if isinstance(stages, str) else list(stages)
        for name in names:
            if name not in table:
                raise ValueError(_close(name, table, "stage") + f" Stages: {', '.join(table)}.")
        return [layer for name in names for layer in table[name]]
    if which is None and upto is None and before is None:
        return everything
    if which is None:
        end = _position(model, everything, upto if upto is not None else before)
        return everything[:end + 1 if upto is not None else end]
    if isinstance(which, slice):
        return everything[which]
    items = [which] if isinstance(which, (str, int)) else list(which)
    nested = {c.name: c for c in _containers(model)[1:]}
    chosen = []
    for item in items:
        if isinstance(item, str) and item in nested:
            chosen += layers_of(nested[item])
        else:
            chosen.append(everything[_position(model, everything, item)])
    return list(dict.fromkeys(chosen))


def _position(model, everything, item):
    if isinstance(item, int):
        if not -len(everything) <= item < len(everything):
            raise ValueError(f"Layer index {item} is out of range: {model.name!r} has "
                             f"{len(everything)} layers (see transfer.layers_of).")
        return item % len(everything)
    names = [layer.name for layer in everything]
    if item not in names:
        raise ValueError(_close(item, names, "layer") + f" ({model.name!r} has {len(names)} "
                         "layers; `[l.name for l in transfer.layers_of(model)]` lists them.)")
    return names.index(item)


def _containers(model):
    """The model and every model nested in it, outermost first."""
    found = [model]
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _containers(layer)
    return found


def _apply(model, chosen, value, train_bn=True):
    want = {id(layer): layer.trainable and all(c.trainable for c in inside)
            for layer, inside in _walk(model)}
    for layer in chosen:
        if value and _is_bn(layer) and not train_bn:
            continue  # unfreeze leaves a frozen BatchNorm frozen, i.e. in inference mode
        want[id(layer)] = value
    if getattr(model, "compiled", False):
        warnings.warn("Trainability changed after compile(): compile again before fit so the "
                      "change takes effect.", stacklevel=3)
    # Setting a model's `trainable` sets every layer in it, so containers go first (trainable
    # if anything inside trains), then each layer gets its own state back.
    for container in _containers(model):
        container.trainable = any(want[id(layer)] for layer in layers_of(container))
    for layer, _ in _walk(model):
        if layer.trainable != want[id(layer)]:
            layer.trainable = want[id(layer)]


def freeze(model, which=None, *, upto=None, before=None, stages=None, last_stages=None,
           pattern=None) -> None:
    """Freeze the selected layers (see `select`; all layers when nothing is given). A frozen
    BatchNorm runs in inference mode (see the module docstring)."""
    chosen = select(model, which, upto=upto, before=before, stages=stages,
                    last_stages=last_stages, pattern=pattern)
    _apply(model, chosen, False)


def unfreeze(model, which=None, *, upto=None, before=None, stages=None, last_stages=None,
             pattern=None, train_bn=False) -> None:
    """Make the selected layers trainable (see `select`; all layers when nothing is given).

    BatchNorm layers that are frozen stay frozen, so in inference mode with their pretrained
    statistics, unless train_bn=True (which undoes `freeze` exactly; then `fit` updates the
    statistics, see the module docstring).
    """
    chosen = select(model, which, upto=upto, before=before, stages=stages,
                    last_stages=last_stages, pattern=pattern)
    _apply(model, chosen, True, train_bn)


class StageRow(NamedTuple):
    stage: str
    state: str  # trainable, frozen, partly frozen, or "-" for a stage without weights
    layers: int
    trainable: int
    frozen: int
    bn_statistics: int


@dataclass
class TrainableSummary:
    """Parameter counts by what training does to them; `print` it for the per-stage table.

    trainable: weights the optimizer updates. frozen: weights that could train but are frozen
    (and any other non-trainable state that is not BN statistics). bn_statistics: the moving
    means and variances of BatchNorm layers, never trainable. bn_updating: BatchNorm layers
    whose statistics `fit` will update (the trainable ones).
    """

    trainable: int
    frozen: int
    bn_statistics: int
    bn_layers: int
    bn_updating: int
    rows: list = field(default_factory=list, repr=False)

    @property
    def total(self) -> int:
        return self.trainable + self.frozen + self.bn_statistics

    def __str__(self):
        totals = (f"trainable {self.trainable:,}  frozen {self.frozen:,}  "
                  f"BN statistics {self.bn_statistics:,}  total {self.total:,}\n"
                  f"BatchNorm layers: {self.bn_layers}, updating their statistics in fit: "
                  f"{self.bn_updating}")
        return (format_table(self.rows) + "\n" + totals) if self.rows else totals

    def _repr_pretty_(self, printer, cycle):  # a notebook cell shows the table
        printer.text(str(self))


def _size(weights):
    return int(sum(math.prod(w.shape) for w in weights))


def _stats(layer):
    return [w for w in layer.weights if _is_bn(layer) and not w.trainable
            and w.name in ("moving_mean", "moving_variance", "moving_stddev",
                           "renorm_mean", "renorm_stddev")]


def trainable_summary(model, pattern=None) -> TrainableSummary:
    """Trainable, frozen and BatchNorm-statistics parameter counts, in total and per stage
    (per stage only where `stages(model)` can read the names)."""
    trainable_ids = {id(w) for w in model.trainable_weights}

    def counts(layers):
        weights = [w for layer in layers for w in layer.weights]
        stats = {id(w) for layer in layers for w in _stats(layer)}
        train = _size([w for w in weights if id(w) in trainable_ids])
        bn = _size([w for w in weights if id(w) in stats])
        return train, _size(weights) - train - bn, bn

    try:
        table = stages(model, pattern)
    except Unreadable:  # no per-stage rows; a registered model's broken taps still raise
        table = {}
    rows = []
    for name, layers in table.items():
        train, frozen, bn = counts(layers)
        state = "-" if not train + frozen else "trainable" if not frozen else \
            "frozen" if not train else "partly frozen"
        rows.append(StageRow(name, state, len(layers), train, frozen, bn))
    walked = list(_walk(model))
    train, frozen, bn = counts([layer for layer, _ in walked])
    bns = [(layer, inside) for layer, inside in walked if _is_bn(layer)]
    updating = sum(layer.trainable and all(c.trainable for c in inside) for layer, inside in bns)
    return TrainableSummary(train, frozen, bn, len(bns), int(updating), rows)


def regime(model, size, *, last_stages=1, base_lr=1e-3, train_bn=False, pattern=None) -> float:
    """Set what trains for a target data set of `size` and return the learning rate to use.

    - "small" (tens to hundreds of images per class): train only the new head; the base is a
      fixed feature extractor, too little data to move millions of weights without
      overfitting. Returns base_lr (1e-3 for Adam).
    - "medium": the head and the last `last_stages` stages: early stages compute generic edges
      and textures, the last ones the most source-specific features (Yosinski et al., "How
      transferable are features in deep neural networks?", 2014). Returns base_lr / 10.
    - "large": everything, from the pretrained start. Returns base_lr / 100.
    Pretrained weights are already good: a step sized for a random head would wreck them in the
    first updates, when the head's large gradients flow back. BatchNorm layers of the base
    stay frozen (inference mode) unless train_bn=True, see `unfreeze`; with plenty of target
    data in "large", train_bn=True lets the statistics follow the new data.
    """
    if size not in LR_DIVISOR:
        raise ValueError(_close(size, LR_DIVISOR, "regime") + " Regimes: small, medium, large.")
    table = stages(model, pattern)
    if not [layer for layer in table.get("head", []) if layer.weights]:
        raise ValueError(f"{model.name!r} has no head with weights to train: build one with "
                         "transfer.new_head(base, classes).")
    freeze(model)
    if size == "large":
        unfreeze(model, train_bn=train_bn)
    elif size == "medium":
        unfreeze(model, last_stages=last_stages, pattern=pattern, train_bn=train_bn)
    unfreeze(model, stages="head", pattern=pattern, train_bn=True)  # a new head is new
    return base_lr / LR_DIVISOR[size]


def new_head(base, classes, *, dropout=0.2, pooling="avg", freeze_base=True,
             activation="softmax", name=None):
    """A classifier head on a headless `base`: pooling, dropout, dense `head_predictions`.

    The base stays one nested layer of the new model (`layers_of` opens it). freeze_base=True
    freezes it, the "small" regime's starting point, BatchNorm in inference mode included. It
    is called without `training=False`: in Keras 3 `fit` would override that argument (see the
    module docstring), so what keeps BN in inference mode is that it is frozen. pooling: "avg",
    "max" or "flatten" for feature maps; ignored if the base already pools.
    """
    inputs = keras.Input(base.input_shape[1:], name="head_input")
    x = base(inputs)
    if len(x.shape) == 4:
        if pooling not in ("avg", "max", "flatten"):
            raise ValueError(f"pooling must be 'avg', 'max' or 'flatten', not {pooling!r}.")
        pool = {"avg": keras.layers.GlobalAveragePooling2D, "max": keras.layers.GlobalMaxPooling2D,
                "flatten": keras.layers.Flatten}[pooling]
        x = pool(name="head_pool")(x)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(classes, activation=activation, name="head_predictions")(x)
    model = keras.Model(inputs, outputs, name=name or f"{base.name}_transfer")
    if freeze_base:
        freeze(model, base.name)
    return model


def headless(model, at=None, *, copy=True, name=None):
    """The feature extractor of a trained classifier: its graph up to layer `at` (default the
    last layer that outputs feature maps, i.e. everything `stages` does not call head).

    copy=True clones the model with its weights first, so each regime starts from the same
    pretrained weights and the source model stays as it was.
    """
    if copy:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
        model = clone
    if at is None:
        body = [layer for layer in layers_of(model) if _rank(layer) == 4
                and not isinstance(layer, keras.layers.InputLayer)]
        if not body:
            raise ValueError(f"{model.name!r} has no layer that outputs feature maps.")
        at = body[-1].name
    output = layers_of(model)[_position(model, layers_of(model), at)].output
    return keras.Model(model.inputs, output, name=name or model.name)


def bn_statistics(model) -> dict:
    """{BN layer name: (moving mean, moving variance)} as NumPy copies, to compare later."""
    return {layer.name: (keras.ops.convert_to_numpy(layer.moving_mean).copy(),
                         keras.ops.convert_to_numpy(layer.moving_variance).copy())
            for layer in layers_of(model) if _is_bn(layer)}


class DriftRow(NamedTuple):
    layer: str
    changed: str  # "yes" or "no"
    mean_shift: float  # mean over channels of |Δ moving mean| / old moving std
    var_ratio: float  # mean over channels of new moving variance / old


@dataclass
class BNDrift:
    """How far each BatchNorm layer's moving statistics moved; `print` it for the table."""

    rows: list

    @property
    def changed(self) -> int:
        return sum(row.changed == "yes" for row in self.rows)

    @property
    def max_mean_shift(self) -> float:
        return max((row.mean_shift for row in self.rows), default=0.0)

    def __str__(self):
        shown = [row._replace(mean_shift=f"{row.mean_shift:.4f}", var_ratio=f"{row.var_ratio:.4f}")
                 for row in self.rows]
        return (format_table(shown, max_rows=12) + "\n" +
                f"{self.changed} of {len(self.rows)} BatchNorm layers changed their statistics; "
                f"largest mean shift {self.max_mean_shift:.4f} old standard deviations")

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))


def bn_drift(before, model, epsilon=1e-5) -> BNDrift:
    """Compare `bn_statistics(model)` taken earlier with the model now.

    mean_shift is in units of the old moving standard deviation, i.e. how far a channel's
    normalized output moved for the same input; var_ratio 1.0 means the variance stayed.
    """
    rows = []
    for name, (mean, var) in bn_statistics(model).items():
        if name not in before:
            continue
        old_mean, old_var = before[name]
        shift = float(np.mean(np.abs(mean - old_mean) / np.sqrt(old_var + epsilon)))
        ratio = float(np.mean(var / np.maximum(old_var, epsilon)))
        same = np.array_equal(mean, old_mean) and np.array_equal(var, old_var)
        rows.append(DriftRow(name, "no" if same else "yes", shift, ratio))
    return BNDrift(rows)
