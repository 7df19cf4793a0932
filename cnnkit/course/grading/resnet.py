"""Graders of exercise 08 · ResNet (solutions/08_resnet.ipynb).

- `residual_block(x, filters, strides=1)`: the student builds ResNet's basic block with Keras
  layers on the Keras tensor x. Built on random shapes, it is compared with cnnkit's
  `basic_block`: output shape, trainable parameters, then its OUTPUTS on a random batch, both
  blocks holding the same random kernels, γ, β and BatchNorm moving statistics.
- `bottleneck_params(c_in, width, c_out, groups=1)`: the trainable parameters of a (ResNeXt)
  bottleneck, checked against cnnkit's `bottleneck` on random sizes.
- `bottleneck_block(x, width, strides=1)`: find the bug. The exercise shows `buggy_bottleneck`
  (below), with two bugs; the student's fixed block is compared with cnnkit's `bottleneck`
  exactly as `residual_block` is with `basic_block`.
"""

from __future__ import annotations

import functools
import itertools

import keras
import numpy as np
from keras import layers

from cnnkit.analysis import count_params
from cnnkit.models.resnet import basic_block, bottleneck

from .core import GradeFailure, StudentCrash, expect, grade, student, whole_number

__all__ = ["check_residual_block", "check_bottleneck_params", "check_bottleneck_block",
           "buggy_bottleneck"]

# Mistakes that keep the block's shapes and parameters, each rebuilt with the reference's weights
# so that a block computing it can be told what it did.
MISTAKES = {
    "stride_second": "the first 3x3 convolution has the stride (strides=strides), the second "
                     "has stride 1",
    "relu_before_bn": "BatchNormalization comes before the ReLU: conv, BN, ReLU",
    "no_inner_relu": "F(x) has a ReLU between its two convolutions: conv, BN, ReLU, conv, BN",
    "relu_in_f": "F(x) ends with BatchNormalization, no ReLU: the second ReLU comes after the "
                 "addition only",
    "relu_before_add": "add first, then apply the ReLU: y = ReLU(F(x) + shortcut), not "
                       "ReLU(F(x)) + shortcut",
    "no_final_relu": "apply the ReLU after the addition, y = ReLU(F(x) + shortcut)",
    "no_shortcut": "it has no shortcut: add x to F(x) with layers.Add(), then the ReLU",
}


@functools.lru_cache(maxsize=None)
def _reference_block(shape, filters, strides):
    """cnnkit's basic block (projection shortcut where the shape changes) on an input `shape`;
    the grader sets its weights and BatchNorm epsilons before each use."""
    inputs = keras.Input(shape)
    return keras.Model(inputs, basic_block(inputs, filters, strides=strides, shortcut=True,
                                           name="reference", epsilon=1e-3))


def _randomise(model, rng):
    """Random kernels, γ, β, moving means and variances in `model`: {role ("1_conv"): weights}."""
    weights = {}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            shape = tuple(layer.kernel.shape)
            values = [rng.normal(size=shape) / np.sqrt(np.prod(shape[:-1]))]
        elif isinstance(layer, layers.BatchNormalization):
            c = layer.gamma.shape[0]
            values = [rng.uniform(0.5, 1.5, c), rng.normal(0, 0.5, c), rng.normal(0, 0.5, c),
                      rng.uniform(0.5, 2.0, c)]
        else:
            continue
        values = [v.astype("float32") for v in values]
        layer.set_weights(values)
        weights[layer.name.removeprefix("reference_")] = values
    return weights


def _leaves(model):
    """The layers of `model`, those inside a nested Sequential or Model included."""
    for layer in model.layers:
        yield from _leaves(layer) if isinstance(layer, keras.Model) else [layer]


def _assignments(model, weights):
    """Every way to hand the reference's weights to the student's Conv2D and BatchNormalization
    layers, shape for shape: [[(layer, role), ...], ...]; none if another layer has weights."""
    kinds = (layers.Conv2D, layers.BatchNormalization)
    leaves = [layer for layer in _leaves(model) if layer.weights]
    if any(not isinstance(layer, kinds) for layer in leaves):
        return []
    per_kind = []
    for kind, suffix in zip(kinds, ("conv", "bn")):
        mine = [layer for layer in leaves if isinstance(layer, kind)]
        roles = [role for role in weights if role.endswith(suffix)]
        per_kind.append([list(zip(order, roles)) for order in itertools.permutations(mine)
                         if len(mine) == len(roles) and all(
                             [w.shape for w in layer.get_weights()] == [v.shape for v in
                                                                        weights[role]]
                             for layer, role in zip(order, roles))])
    return [convs + bns for convs, bns in itertools.product(*per_kind)]


def _outputs(model, reference, assignment, weights, x):
    """The student's block and the reference on x, with the weights handed out as `assignment`
    (each reference BatchNorm taking the epsilon of the student's layer it stands for)."""
    for layer, role in assignment:
        layer.set_weights(weights[role])
        if role.endswith("bn"):
            reference.get_layer(f"reference_{role}").epsilon = layer.epsilon
    return [keras.ops.convert_to_numpy(m(x, training=False)) for m in (model, reference)]


def _variant(shape, filters, strides, epsilon, mistake, weights, x):
    """The basic block with `mistake` made, holding `weights`, applied to x."""
    def conv(t, size, stride, role):
        return layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False,
                             name=role)(t)

    def bn(t, role):
        return layers.BatchNormalization(epsilon=epsilon, name=role)(t)

    inputs = keras.Input(shape)
    first, second = (1, strides) if mistake == "stride_second" else (strides, 1)
    y = conv(inputs, 3, first, "1_conv")
    if mistake == "relu_before_bn":
        y = bn(layers.ReLU()(y), "1_bn")
    else:
        y = bn(y, "1_bn") if mistake == "no_inner_relu" else layers.ReLU()(bn(y, "1_bn"))
    f = bn(conv(y, 3, second, "2_conv"), "2_bn")
    s = inputs if "0_conv" not in weights else bn(conv(inputs, 1, strides, "0_conv"), "0_bn")
    if mistake in ("relu_before_add", "relu_in_f"):
        f = layers.ReLU()(f)
    y = f if mistake == "no_shortcut" else layers.Add()([f, s])
    model = keras.Model(inputs, y if mistake in ("no_final_relu", "relu_before_add")
                        else layers.ReLU()(y))
    for layer in model.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
    return keras.ops.convert_to_numpy(model(x, training=False))


def _mistake_hint(outs, shape, filters, strides, weights, x, epsilon):
    """The hint of the first MISTAKES block that computes one of the student's outputs `outs`."""
    for mistake, hint in MISTAKES.items():
        if mistake != "no_shortcut" or "0_conv" not in weights:
            y = _variant(shape, filters, strides, epsilon, mistake, weights, x)
            if any(np.allclose(out, y, rtol=1e-4, atol=1e-4) for out in outs):
                return hint
    return ("F(x) = BN(conv3x3(ReLU(BN(conv3x3(x, strides)))), stride 1 on the second; "
            "y = ReLU(F(x) + shortcut)")


def _build(block, shape, size, strides, call, crash_hint):
    """The student's `block(x, size, strides=strides)` on keras.Input(shape), as a Model.
    `crash_hint(error)` names the shortcut's projection where the block crashed for want of it;
    None reports the crash as it is (an untouched exercise, or a crash of another kind)."""
    inputs = keras.Input(shape)
    try:
        outputs = block(inputs, size, strides=strides)
    except StudentCrash as crash:
        if not isinstance(crash.error, Exception) or isinstance(crash.error, NotImplementedError):
            raise
        hint = crash_hint(crash.error)
        if hint is None:
            raise
        raise GradeFailure(f"{call} raised {type(crash.error).__name__}: {crash.error}. "
                           f"{hint}") from None
    expect(isinstance(outputs, keras.KerasTensor),
           f"{call} returned {type(outputs).__name__} {outputs!r:.60}: return the block's output "
           "tensor (a Keras tensor, the result of the last layer called on the tensors before).")
    try:
        return keras.Model(inputs, outputs)
    except ValueError as err:
        raise GradeFailure(f"{call} returned a tensor that is not computed from x ({err}): build "
                           "the block on the tensor x it receives.") from None


def _same_outputs(model, reference, rng, shape, call, reference_name, mistake_hint, batch=None):
    """Nothing if the student's `model`, holding `reference`'s random weights (handed out shape
    for shape, every way they fit), computes what `reference` computes on a random batch; else
    a FAIL with `mistake_hint(outputs, weights, x, epsilon)`."""
    epsilons = {layer.epsilon for layer in _leaves(model) if
                isinstance(layer, layers.BatchNormalization)}
    epsilon = epsilons.pop() if len(epsilons) == 1 else 1e-3
    weights = _randomise(reference, rng)
    assignments = _assignments(model, weights)
    expect(assignments, f"{call}: the layers with weights must be the Conv2D layers "
           "(use_bias=False) and BatchNormalization layers (with γ and β) of the block.")
    batch = int(rng.integers(2, 4)) if batch is None else batch
    x = rng.normal(size=(batch, *shape)).astype("float32")
    pairs = [_outputs(model, reference, a, weights, x) for a in assignments]
    if any(np.allclose(y, want_y, rtol=1e-4, atol=1e-4) for y, want_y in pairs):
        return
    hint = mistake_hint([y for y, _ in pairs], weights, x, epsilon)
    worst = min(float(np.abs(y - want_y).max()) for y, want_y in pairs)
    expect(False, f"{call}: with random weights (copied into both) and random inputs, your "
           f"block's output differs from {reference_name}'s by up to {worst:.3g}: {hint}.")


def _param_hint(got, want, shape, filters, identity):
    if got == want + 2 * filters + (0 if identity else filters):
        return ("BatchNorm follows every convolution, so a bias would be cancelled by it: use "
                "Conv2D(..., use_bias=False)")
    if identity and got in (want + shape[-1] * filters + 2 * filters,
                            want + shape[-1] * filters + 3 * filters):
        return ("x and F(x) already have the same shape here: the shortcut is the identity, "
                "project it only when the stride or the channels change")
    if not identity and got == want - 2 * filters:
        return "the projection shortcut needs its own BatchNormalization after its 1x1 convolution"
    return ("two 3x3 convolutions without bias, each followed by BatchNormalization, and a 1x1 "
            "projection (+ BatchNormalization) only where the shape changes")


def check_residual_block(residual_block):
    """`residual_block(x, filters, strides=1)` -> ResNet's basic block on the Keras tensor x:
    compared with cnnkit's `basic_block` (shapes, parameters, outputs with random weights)."""
    residual_block = student(residual_block)
    def run():
        rng = np.random.default_rng(11)
        # A stride of 2 only on odd sizes: there padding="same" pads one pixel on every side,
        # as basic_block does (on even sizes Keras pads only the bottom and right).
        cases = [((6, 6, 8), 8, 1), ((9, 9, 8), 16, 2), ((7, 5, 8), 8, 2), ((6, 5, 4), 12, 1)]
        for _ in range(3):
            strides = int(rng.integers(1, 3))
            c_in = int(rng.choice([4, 8, 12]))
            filters = c_in * int(rng.choice([1, 2])) if rng.random() < 0.7 else 8
            size = rng.integers(2, 6, 2) * strides + 1 if strides == 2 else rng.integers(3, 9, 2)
            cases.append(((*map(int, size), c_in), filters, strides))
        for shape, filters, strides in cases:
            call = f"residual_block(x, {filters}, strides={strides}) on x of shape {shape}"
            identity = strides == 1 and shape[-1] == filters
            model = _build(residual_block, shape, filters, strides, call, lambda error: None
                           if identity else f"Here F(x) has another shape than x, so the "
                           f"shortcut must be projected: a 1x1 Conv2D with {filters} filters and "
                           f"strides={strides} (no bias), then BatchNormalization.")
            reference = _reference_block(shape, filters, strides)
            got_shape, want_shape = tuple(model.output.shape[1:]), tuple(reference.output.shape[1:])
            expect(got_shape == want_shape, f"{call} gives an output of shape {got_shape}, "
                   f"expected {want_shape}: " + (
                       "the first 3x3 convolution has the stride, and both use padding='same'"
                       if got_shape[-1] == filters else f"the block outputs filters = {filters} "
                       "channels: both 3x3 convolutions (and a projection) have `filters` "
                       "filters") + ".")
            got, want = count_params(model), count_params(reference)
            expect(got == want, f"{call} has {got:,} trainable parameters, cnnkit's basic block "
                   f"{want:,}: {_param_hint(got, want, shape, filters, identity)}.")
            _same_outputs(model, reference, rng, shape, call, "basic_block",
                          lambda outs, weights, x, epsilon: _mistake_hint(
                              outs, shape, filters, strides, weights, x, epsilon))
        return (f"{len(cases)} blocks agree with cnnkit's basic_block: output shapes, parameters, "
                "and outputs on random inputs with the same random weights.")

    return grade("residual_block", run)


@functools.lru_cache(maxsize=None)
def _reference_bottleneck_params(c_in, width, c_out, groups):
    inputs = keras.Input((4, 4, c_in))
    outputs = bottleneck(inputs, width, c_out, strides=1, groups=groups, name="reference",
                         epsilon=1e-5)
    return count_params(keras.Model(inputs, outputs))


def check_bottleneck_params(bottleneck_params):
    """`bottleneck_params(c_in, width, c_out, groups=1)` -> trainable parameters of a bottleneck:
    1x1 c_in -> width, 3x3 width -> width in `groups` groups, 1x1 width -> c_out, no biases, each
    followed by BatchNorm (γ, β), and a projection (+ BN) when c_in != c_out (stride 1). Checked
    against cnnkit's `bottleneck` on random sizes."""
    bottleneck_params = student(bottleneck_params)

    def run():
        rng = np.random.default_rng(12)
        cases = [(256, 64, 256, 1), (64, 64, 256, 1), (512, 128, 512, 1), (256, 128, 256, 32),
                 (96, 64, 96, 4), (256, 256, 256, 8)]
        for _ in range(10):
            groups = int(rng.choice([1, 2, 4, 8, 32]))
            width = groups * int(rng.integers(1, 9))
            c_in = int(rng.integers(1, 65)) * 4
            c_out = c_in if rng.random() < 0.5 else int(rng.integers(1, 65)) * 4
            cases.append((c_in, width, c_out, groups))
        for c_in, width, c_out, groups in cases:
            want = _reference_bottleneck_params(c_in, width, c_out, groups)
            call = f"bottleneck_params({c_in}, {width}, {c_out}, groups={groups})"
            got = whole_number(bottleneck_params(c_in, width, c_out, groups=groups), call)
            if got == want:
                continue
            projection = (c_in * c_out + 2 * c_out) if c_in != c_out else 0
            bn = 2 * (width + width + c_out) + (2 * c_out if projection else 0)
            if projection and got == want - projection:
                hint = (f"c_in ≠ c_out, so the shortcut is projected: a 1x1 convolution "
                        f"({c_in}·{c_out} weights) and its BatchNorm")
            elif not projection and got == want + c_in * c_out + 2 * c_out:
                hint = "c_in = c_out: the shortcut is the identity, with no projection"
            elif got == want + bn:
                hint = ("count only γ and β of each BatchNorm: its moving mean and variance are "
                        "not trainable")
            elif got == want - bn:
                hint = "every convolution is followed by a BatchNorm with γ and β per channel"
            elif groups > 1 and got == want + 9 * width * width * (groups - 1) // groups:
                hint = (f"the 3x3 is split into {groups} groups: each filter sees only "
                        f"{width}/{groups} = {width // groups} channels")
            else:
                hint = ("1x1 (c_in·width) + 3x3 (9·width·width/groups) + 1x1 (width·c_out) "
                        "weights, 2 per channel for each BatchNorm, and a projection only "
                        "when c_in ≠ c_out")
            expect(False, f"{call} returned {got!r}; cnnkit's bottleneck block has {want:,} "
                   f"trainable parameters: {hint}.")
        resnet = whole_number(bottleneck_params(256, 64, 256), "bottleneck_params(256, 64, 256)")
        resnext = whole_number(bottleneck_params(256, 128, 256, groups=32),
                               "bottleneck_params(256, 128, 256, groups=32)")
        return (f"{len(cases)} blocks agree with cnnkit's bottleneck; at 256 channels ResNet-50's "
                f"block has {resnet:,} parameters and ResNeXt-50's (32 groups, twice as wide) "
                f"{resnext:,}.")

    return grade("bottleneck_params", run)


# --- Find the bug: a bottleneck with two bugs, shown to the student ---------------------------

def buggy_bottleneck(x, width, strides=1):
    """ResNet-50's bottleneck block (He et al., 2016, Fig. 5 right), as a classmate wrote it.
    It has two bugs; exercise 08 asks for them to be found and fixed."""
    filters = 4 * width
    y = layers.Conv2D(width, 1, strides=strides, use_bias=False)(x)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(width, 3, padding="same", use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    y = layers.Conv2D(filters, 1, use_bias=False)(y)
    y = layers.BatchNormalization()(y)
    y = layers.ReLU()(y)
    shortcut = x
    if strides != 1:
        shortcut = layers.Conv2D(filters, 1, strides=strides, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    return layers.ReLU()(layers.Add()([y, shortcut]))


BOTTLENECK_MISTAKES = {
    "relu_before_add": "F(x) ends with BatchNormalization: the last ReLU comes only after the "
                       "addition, y = ReLU(F(x) + shortcut), not ReLU(ReLU(F(x)) + shortcut)",
    "no_final_relu": "apply the ReLU after the addition, y = ReLU(F(x) + shortcut)",
    "stride_on_3x3": "this block strides its first 1x1 convolution, as the paper and "
                     "keras.applications do (striding the 3x3 is torchvision's ResNet v1.5)",
    "no_middle_relu": "the 3x3 convolution's BatchNormalization is followed by a ReLU",
    "no_first_relu": "the first 1x1 convolution's BatchNormalization is followed by a ReLU",
}


@functools.lru_cache(maxsize=None)
def _reference_bottleneck_block(shape, width, strides):
    inputs = keras.Input(shape)
    return keras.Model(inputs, bottleneck(inputs, width, 4 * width, strides=strides,
                                          name="reference", epsilon=1e-3))


def _bottleneck_variant(shape, width, strides, epsilon, mistake, weights, x):
    """The bottleneck with `mistake` made, holding `weights`, applied to x."""
    def conv_bn(t, filters, size, stride, role, relu=True):
        t = layers.Conv2D(filters, size, strides=stride, padding="same", use_bias=False,
                          name=f"{role}_conv")(t)
        t = layers.BatchNormalization(epsilon=epsilon, name=f"{role}_bn")(t)
        return layers.ReLU()(t) if relu else t

    inputs = keras.Input(shape)
    first, middle = (1, strides) if mistake == "stride_on_3x3" else (strides, 1)
    y = conv_bn(inputs, width, 1, first, "1", relu=mistake != "no_first_relu")
    y = conv_bn(y, width, 3, middle, "2", relu=mistake != "no_middle_relu")
    y = conv_bn(y, 4 * width, 1, 1, "3", relu=mistake == "relu_before_add")
    s = inputs if "0_conv" not in weights else conv_bn(inputs, 4 * width, 1, strides, "0",
                                                        relu=False)
    y = layers.Add()([y, s])
    model = keras.Model(inputs, y if mistake == "no_final_relu" else layers.ReLU()(y))
    for layer in model.layers:
        if layer.name in weights:
            layer.set_weights(weights[layer.name])
    return keras.ops.convert_to_numpy(model(x, training=False))


def _bottleneck_mistake_hint(outs, shape, width, strides, weights, x, epsilon):
    """The hint of the first BOTTLENECK_MISTAKES block that computes one of `outs`."""
    for mistake, hint in BOTTLENECK_MISTAKES.items():
        y = _bottleneck_variant(shape, width, strides, epsilon, mistake, weights, x)
        if any(np.allclose(out, y, rtol=1e-4, atol=1e-4) for out in outs):
            return hint
    return ("compare each line with the paper's Fig. 5: conv-BN-ReLU twice, conv-BN, add the "
            "shortcut, then ReLU")


def _bottleneck_param_hint(got, want, c_in, width, identity):
    filters = 4 * width
    if got - want in (2 * width + filters, 2 * width + 2 * filters - (filters if identity else 0)):
        return ("a bias before BatchNormalization is cancelled by it: Conv2D(..., "
                "use_bias=False), as in the classmate's code")
    if identity and got == want + c_in * filters + 2 * filters:
        return ("x already has 4·width channels and the stride is 1: the shortcut is the "
                "identity here")
    if not identity and got == want - 2 * filters:
        return "the projection needs its BatchNormalization, as in the classmate's code"
    return ("1x1 to width, 3x3 width to width, 1x1 to 4·width, each without bias and followed by "
            "BatchNormalization, plus a 1x1 projection with BatchNormalization where the shape "
            "changes")


def _runs_as_identity(bottleneck_block, shape, width):
    """Whether the block builds where no projection is needed (4·width channels, stride 1): if
    so, its crash elsewhere comes from the shortcut; if not, from something else."""
    try:
        bottleneck_block(keras.Input((*shape[:2], 4 * width)), width, strides=1)
    except StudentCrash:
        return False
    return True


def check_bottleneck_block(bottleneck_block):
    """`bottleneck_block(x, width, strides=1)` -> ResNet-50's bottleneck (4·width channels out),
    `buggy_bottleneck` fixed: compared with cnnkit's `bottleneck` (shapes, parameters, outputs
    with the same random weights)."""
    bottleneck_block = student(bottleneck_block)

    def run():
        rng = np.random.default_rng(8)
        # conv2_x's first block (64 channels in, 4·16 out: a projection at stride 1) first, then
        # an identity block, then a strided one; the input width never equals `width`, so that
        # every kernel has its own shape and the weights can be handed out shape for shape.
        cases = [((6, 6, 8), 4, 1), ((5, 5, 16), 4, 1), ((7, 7, 16), 8, 2), ((6, 5, 12), 8, 2)]
        for _ in range(2):
            width = int(rng.choice([2, 4, 6]))
            c_in = int(rng.choice([4 * width, 3 * width, width + 2]))
            strides = int(rng.integers(1, 3))
            cases.append(((*map(int, rng.integers(3, 8, 2)), c_in), width, strides))
        for shape, width, strides in cases:
            call = f"bottleneck_block(x, {width}, strides={strides}) on x of shape {shape}"
            identity = strides == 1 and shape[-1] == 4 * width
            model = _build(bottleneck_block, shape, width, strides, call, lambda error: None
                           if identity or not _runs_as_identity(bottleneck_block, shape, width)
                           else f"x has {shape[-1]} channels and F(x) {4 * width}: the shortcut "
                           "must be projected whenever the stride OR the number of channels "
                           "changes (as in conv2_x's first block, 64 channels in and 256 out at "
                           "stride 1).")
            reference = _reference_bottleneck_block(shape, width, strides)
            got_shape, want_shape = tuple(model.output.shape[1:]), tuple(reference.output.shape[1:])
            expect(got_shape == want_shape, f"{call} gives an output of shape {got_shape}, "
                   f"expected {want_shape}: the last 1x1 widens to 4·width = {4 * width} "
                   "channels and the stride halves the map once.")
            got, want = count_params(model), count_params(reference)
            expect(got == want, f"{call} has {got:,} trainable parameters, cnnkit's bottleneck "
                   f"{want:,}: {_bottleneck_param_hint(got, want, shape[-1], width, identity)}.")
            _same_outputs(model, reference, rng, shape, call, "cnnkit's bottleneck",
                          lambda outs, weights, x, epsilon: _bottleneck_mistake_hint(
                              outs, shape, width, strides, weights, x, epsilon), batch=2)
        return (f"both bugs fixed: {len(cases)} blocks (projection at stride 1, identity, "
                "strided) agree with cnnkit's bottleneck in shapes, parameters and outputs.")

    return grade("bottleneck_block", run)
