"""Compare cnnkit's models with the real torchvision/timm models, weight for weight.

Not a test (CI has no PyTorch): a script for a machine with torch, torchvision and timm.

    KERAS_BACKEND=torch python tools/compare_reference.py [names ...]

For each model of `REFERENCE_NAMES` (tools/backend_check.py): build the reference (no
pretrained weights, eval mode) and the cnnkit model (logits, 1000 classes) at one input size,
randomise the reference's BatchNorm statistics and affine parameters (so that a misplaced
BatchNorm shows), port every reference weight into the cnnkit model by pairing the layers that
own weights in order, checking shapes pair by pair, and compare the logits on one random input.

Pairing: the reference's modules in the order they run (forward pre-hooks), else in the order
they are registered, against cnnkit's layers in the order the builder calls them; where neither
pairs every shape, a greedy pairing (each cnnkit layer takes the first free compatible reference
module, a BatchNorm preferring the one right after its convolution's partner). Besides the
logits, every paired convolution/dense output is compared (a padding shift can vanish in a deep
random network's logits) and the first one that differs is named. A model that does not match
is compared again at the next (odd) size, where Keras's "same" pads symmetrically, and, where
the BatchNorm epsilons differ, with the reference's epsilons set to cnnkit's; `ALIGN` repeats
the comparison with a known, documented difference taken out of the reference.

Ports are exact where the layers agree: Conv2d (O, I/g, kh, kw) -> Conv2D (kh, kw, I/g, O);
depthwise (C*m, 1, kh, kw) -> DepthwiseConv2D (kh, kw, C, m); Linear (O, I) -> Dense (I, O) or
a 1x1 Conv2D (and back); a Dense after Flatten gets its rows reordered from CHW to HWC;
BatchNorm weight, bias, running_mean, running_var -> gamma, beta, moving_mean,
moving_variance. Where cnnkit has no bias or no BatchNorm scale the reference's is set to zero
or one first (reported as "ref bias->0" / "ref gamma->1"), so the comparison stays exact.
"""

import argparse
import os
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402

import cnnkit  # noqa: E402
from cnnkit._keras_internals import keras_history_operation  # noqa: E402
from cnnkit.analysis import count_params  # noqa: E402
from backend_check import REFERENCE_NAMES  # noqa: E402

# cnnkit builder options that select the reference's layout.
BUILD_KWARGS = {n: {"downsample": "3x3"} for n in ("resnet50", "resnet101", "resnet152")}
# Input sizes other than the default (64, or the model's minimum / fixed size).
SIZES = {}
# Per-model pairing rules: name -> function(torch_units, keras_units) -> (torch, keras) lists.
REORDER = {}


def _replace_modules(model, kind, make):
    count = 0
    for parent in list(model.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, kind):
                setattr(parent, child_name, make(child))
                count += 1
    return count


def _align_darknet(model):
    import torch.nn as nn
    changed = [m for m in model.modules() if isinstance(m, nn.LeakyReLU)]
    for m in changed:
        m.negative_slope = 0.1
    return f"reference LeakyReLU slope ->0.1 ({len(changed)} modules)"


def _align_dpn(model):
    import torch.nn as nn
    count = _replace_modules(model, nn.ELU, lambda m: nn.ReLU())
    return f"reference ELU->ReLU ({count} modules)"


def _align_inception_v3(model):
    import types

    import torch.nn.functional as F
    import torchvision.models.inception as inception
    shim = types.SimpleNamespace(**{k: getattr(F, k) for k in dir(F) if not k.startswith("__")})
    shim.avg_pool2d = lambda *a, **kw: F.avg_pool2d(*a, **{**kw, "count_include_pad": False})
    inception.F = shim  # this process's torchvision inception only
    return "reference 3x3 average pools excluding the padding (count_include_pad=False)"


# Known, documented differences: a second comparison with the reference changed to cnnkit's
# choice shows whether anything else differs.
ALIGN = {"darknet53": _align_darknet, "inception_v3": _align_inception_v3,
         **{n: _align_dpn for n in ("dpn68", "dpn92", "dpn98", "dpn107", "dpn131")}}


# ------------------------------------------------------------------------------------------
# Reference side


def build_reference(name):
    import torch
    library, ref = REFERENCE_NAMES[name]
    if library == "torchvision":
        import torchvision
        extra = {"aux_logits": False, "init_weights": False} if ref == "inception_v3" else {}
        model = getattr(torchvision.models, ref)(weights=None, **extra)
    else:
        import timm
        model = timm.create_model(ref, pretrained=False, num_classes=1000)
    model.eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                if m.running_mean is not None:
                    m.running_mean.copy_(0.1 * torch.randn(c, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(c, generator=gen))
                if m.weight is not None:
                    m.weight.copy_(0.5 + torch.rand(c, generator=gen))
                    m.bias.copy_(0.1 * torch.randn(c, generator=gen))
    return model


class TUnit:
    """One reference module that owns weights."""

    def __init__(self, name, module):
        import torch.nn as nn
        self.name, self.module = name, module
        if isinstance(module, nn.Conv2d):
            o, i, kh, kw = module.weight.shape
            self.kind, self.shape, self.groups = "conv", (o, i, kh, kw), module.groups
        elif isinstance(module, nn.Linear):
            self.kind, self.shape, self.groups = "dense", tuple(module.weight.shape), 1
        elif isinstance(module, nn.modules.batchnorm._BatchNorm):
            self.kind, self.shape, self.groups = "bn", (module.num_features,), 1
        else:
            self.kind = "other"
            self.shape = tuple((n, tuple(p.shape)) for n, p in module.named_parameters(
                recurse=False))
            self.groups = 1

    def __repr__(self):
        return f"{self.name}<{type(self.module).__name__} {self.kind} {self.shape}>"


def reference_units(model, x):
    import torch
    units = {}
    for name, m in model.named_modules():
        if list(m.parameters(recurse=False)) or isinstance(
                m, torch.nn.modules.batchnorm._BatchNorm):
            units[name] = TUnit(name, m)
    order, hooks = [], []
    for name, unit in units.items():
        hooks.append(unit.module.register_forward_pre_hook(
            lambda mod, inp, name=name: order.append(name)))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    run = list(dict.fromkeys(order))
    unused = [n for n in units if n not in set(run)]
    executed = [units[n] for n in run] + [units[n] for n in unused]
    return executed, list(units.values()), unused


# ------------------------------------------------------------------------------------------
# cnnkit side


class KUnit:
    """One weight-owning cnnkit layer, or one half of a SeparableConv2D."""

    def __init__(self, layer, part=None):
        L = keras.layers
        self.layer, self.part = layer, part
        self.name = layer.name + (f":{part}" if part else "")
        if isinstance(layer, L.SeparableConv2D):
            kh, kw, c, m = layer.depthwise_kernel.shape
            if part == "dw":
                self.kind, self.shape, self.groups = "conv", (c * m, 1, kh, kw), c
            else:
                _, _, i, o = layer.pointwise_kernel.shape
                self.kind, self.shape, self.groups = "conv", (o, i, 1, 1), 1
        elif isinstance(layer, L.DepthwiseConv2D):
            kh, kw, c, m = layer.kernel.shape
            self.kind, self.shape, self.groups = "conv", (c * m, 1, kh, kw), c
        elif isinstance(layer, L.Conv2D):
            kh, kw, i, o = layer.kernel.shape
            self.kind, self.shape, self.groups = "conv", (o, i, kh, kw), layer.groups
        elif isinstance(layer, L.Dense):
            i, o = layer.kernel.shape
            self.kind, self.shape, self.groups = "dense", (o, i), 1
        elif isinstance(layer, L.BatchNormalization):
            self.kind, self.shape, self.groups = "bn", (layer.moving_mean.shape[0],), 1
        else:
            self.kind, self.shape, self.groups = "other", tuple(
                tuple(w.shape) for w in layer.weights), 1

    def __repr__(self):
        return f"{self.name}<{type(self.layer).__name__} {self.kind} {self.shape}>"


def build_cnnkit(name, size):
    """The cnnkit model, and its weight-owning layers in the order the builder called them."""
    calls = []
    original = keras.layers.Layer.__call__

    def recording(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    keras.layers.Layer.__call__ = recording
    try:
        model = cnnkit.build(name, input_shape=(size, size, 3), classes=1000,
                             classifier_activation=None, **BUILD_KWARGS.get(name, {}))
    finally:
        keras.layers.Layer.__call__ = original
    order = list({id(layer): layer for layer in calls if layer.weights}.values())
    in_model = {id(layer) for layer in model.layers}
    order = [layer for layer in order if id(layer) in in_model]
    missing = [layer for layer in model.layers if layer.weights and id(layer) not in
               {id(o) for o in order}]
    units = []
    for layer in order + missing:
        if isinstance(layer, keras.layers.SeparableConv2D):
            units += [KUnit(layer, "dw"), KUnit(layer, "pw")]
        else:
            units.append(KUnit(layer))
    return model, units


# ------------------------------------------------------------------------------------------
# Pairing and porting


def compatible(t, k):
    if t.kind == "other" or k.kind == "other":
        return False
    if t.kind == k.kind:
        return t.shape == k.shape and (t.kind != "conv" or t.groups == k.groups)
    conv, dense = (t, k) if t.kind == "conv" else (k, t)
    if {t.kind, k.kind} == {"conv", "dense"}:
        return conv.shape[2:] == (1, 1) and conv.groups == 1 and conv.shape[:2] == dense.shape
    return False


def pair_in_order(tunits, kunits):
    """Pairs if every position matches, else (None, description of the first mismatch)."""
    for i, (t, k) in enumerate(zip(tunits, kunits)):
        if not compatible(t, k):
            return None, f"#{i}: {k} vs {t}"
    if len(tunits) != len(kunits):
        return None, f"{len(kunits)} cnnkit units vs {len(tunits)} reference units"
    return list(zip(tunits, kunits)), ""


def pair_greedy(tunits, kunits):
    free = list(range(len(tunits)))
    partner_of_prev = None
    pairs = []
    for k in kunits:
        chosen = None
        if k.kind == "bn" and partner_of_prev is not None and partner_of_prev + 1 in free \
                and compatible(tunits[partner_of_prev + 1], k):
            chosen = partner_of_prev + 1
        if chosen is None:
            chosen = next((j for j in free if compatible(tunits[j], k)), None)
        if chosen is None:
            return None, f"no reference partner for {k}"
        free.remove(chosen)
        partner_of_prev = chosen
        pairs.append((tunits[chosen], k))
    if free:
        return None, f"reference units left over: {[tunits[j] for j in free[:3]]}"
    return pairs, ""


def _np(t):
    return t.detach().float().cpu().numpy()


def _flatten_source(layer):
    """(h, w, c) when a Dense reads a Flatten of an h x w x c map (h * w > 1), else None."""
    try:
        source = keras_history_operation(layer.input)
    except Exception:  # a layer with several inputs, or none
        return None
    if isinstance(source, keras.layers.Flatten):
        shape = source.input.shape
        if len(shape) == 4 and shape[1] * shape[2] > 1:
            return tuple(shape[1:])
    return None


def port(pairs, align_eps=False):
    """Copies every reference weight into its cnnkit partner; returns notes.

    align_eps sets each reference BatchNorm's epsilon to its cnnkit partner's."""
    import torch
    notes = {}

    def note(text):
        notes[text] = notes.get(text, 0) + 1

    with torch.no_grad():
        for t, k in pairs:
            m, layer = t.module, k.layer
            if k.kind == "bn":
                if layer.scale:
                    layer.gamma.assign(_np(m.weight))
                elif m.weight is not None:
                    m.weight.fill_(1.0)
                    note("ref gamma->1")
                if layer.center:
                    layer.beta.assign(_np(m.bias))
                elif m.bias is not None:
                    m.bias.zero_()
                    note("ref beta->0")
                layer.moving_mean.assign(_np(m.running_mean))
                layer.moving_variance.assign(_np(m.running_var))
                if abs(layer.epsilon - m.eps) > 0.01 * m.eps:
                    note(f"eps {layer.epsilon:g} vs ref {m.eps:g}")
                    if align_eps:
                        m.eps = layer.epsilon
                continue
            w = m.weight
            if isinstance(layer, keras.layers.SeparableConv2D):
                if k.part == "dw":
                    kh, kw, c, mult = layer.depthwise_kernel.shape
                    layer.depthwise_kernel.assign(
                        _np(w.reshape(c, mult, kh, kw).permute(2, 3, 0, 1)))
                    if m.bias is not None:
                        m.bias.zero_()
                        note("ref bias->0")
                    continue
                layer.pointwise_kernel.assign(_np(w.reshape(w.shape[0], -1).t()[None, None]))
            elif isinstance(layer, keras.layers.DepthwiseConv2D):
                kh, kw, c, mult = layer.kernel.shape
                layer.kernel.assign(_np(w.reshape(c, mult, kh, kw).permute(2, 3, 0, 1)))
            elif isinstance(layer, keras.layers.Conv2D):
                if t.kind == "dense":
                    layer.kernel.assign(_np(w.t()[None, None]))
                else:
                    layer.kernel.assign(_np(w.permute(2, 3, 1, 0)))
            else:  # Dense
                matrix = w.reshape(w.shape[0], -1)
                hwc = _flatten_source(layer)
                if hwc is not None:
                    h, wd, c = hwc
                    matrix = matrix.reshape(-1, c, h, wd).permute(0, 2, 3, 1).reshape(
                        matrix.shape[0], -1)
                    note("flatten CHW->HWC")
                layer.kernel.assign(_np(matrix.t()))
            bias = layer.bias
            if bias is not None and m.bias is not None:
                bias.assign(_np(m.bias))
            elif bias is not None:
                bias.assign(np.zeros(bias.shape, "float32"))
                note("cnnkit bias->0")
            elif m.bias is not None:
                m.bias.zero_()
                note("ref bias->0")
    return notes


def first_divergence(model, ref, pairs, x_t, x_k, tol=1e-3):
    """The first paired convolution/dense whose outputs differ by more than tol (relative),
    or None, and the largest relative difference over all of them."""
    import torch
    pairs = [(t, k) for t, k in pairs if k.kind in ("conv", "dense") and k.part != "dw"]
    captured = {}

    def keep(name):
        def hook(module, inputs, output):
            captured.setdefault(name, _np(output))  # returns None: the output stays
        return hook

    hooks = [t.module.register_forward_hook(keep(t.name)) for t, _ in pairs]
    try:
        with torch.no_grad():
            ref(x_t)
    finally:
        for h in hooks:
            h.remove()
    probe = keras.Model(model.inputs, [k.layer.output for _, k in pairs])
    outs = probe(x_k, training=False)
    worst, first = 0.0, None
    for (t, k), out in zip(pairs, outs):
        ours = keras.ops.convert_to_numpy(out)
        theirs = captured[t.name]
        if theirs.ndim == 4:
            theirs = theirs.transpose(0, 2, 3, 1)
        if theirs.size != ours.size:
            return f"{k.layer.name} / {t.name}: shapes {ours.shape} vs {theirs.shape}", np.inf
        theirs = theirs.reshape(ours.shape)
        activation = getattr(k.layer, "activation", None)
        if activation is not None and activation is not keras.activations.linear:
            # Keras fuses the activation into the layer; PyTorch runs it as a module after.
            theirs = keras.ops.convert_to_numpy(activation(keras.ops.convert_to_tensor(theirs)))
        rel = float(np.abs(ours - theirs).max() / max(np.abs(theirs).max(), 1e-12))
        worst = max(worst, rel)
        if rel > tol and first is None:
            first = f"{k.layer.name} / {t.name}: rel diff {rel:.2e}"
    return first, worst


def _verdict(rel):
    return "match" if rel < 1e-4 else "close" if rel < 1e-2 else "DIFFERENT"


def evaluate(name, size, align=False, align_eps=False):
    """Builds, pairs, ports and compares at one size; returns a dict of what it found."""
    import torch
    device = "cuda" if torch.cuda.is_available() else "cpu"
    ref = build_reference(name).to(device)
    aligned = ALIGN[name](ref) if align else None
    result = dict(size=size, aligned=aligned,
                  ref_params=sum(p.numel() for p in ref.parameters() if p.requires_grad))
    model, kunits = build_cnnkit(name, size)
    result["params"] = count_params(model)
    x = np.random.default_rng(0).standard_normal((2, 3, size, size)).astype("float32")
    x_t = torch.from_numpy(x).to(device)
    x_k = x.transpose(0, 2, 3, 1).copy()
    run_order, reg_order, unused = reference_units(ref, x_t)
    result["unused"] = unused
    if name in REORDER:
        run_order, kunits = REORDER[name](run_order, kunits)
    pairs, why = None, []
    for label, tunits in (("run order", run_order), ("registration order", reg_order)):
        pairs, reason = pair_in_order(tunits, kunits)
        if pairs:
            result["method"] = label
            break
        why.append(f"{label}: {reason}")
    if not pairs:
        pairs, reason = pair_greedy(run_order, kunits)
        if pairs:
            result["method"] = "greedy"
        else:
            why.append(f"greedy: {reason}")
    if not pairs:
        result["why"] = " | ".join(why)
        return result
    result["pairs"] = len(pairs)
    result["notes"] = port(pairs, align_eps)
    with torch.no_grad():
        theirs = _np(ref(x_t))
    mine = keras.ops.convert_to_numpy(model(x_k, training=False))
    result["diff"] = float(np.abs(mine - theirs).max())
    result["scale"] = float(np.abs(theirs).max())
    result["rel"] = result["diff"] / max(result["scale"], 1e-12)
    try:
        first, worst = first_divergence(model, ref, pairs, x_t, x_k)
        result["layers_rel"] = worst
        if first:
            result["divergence"] = first
    except Exception as error:
        result["divergence"] = f"(not found: {type(error).__name__}: {error})"
    # A padding shift can vanish in a deep random network's logits: the layers decide too.
    result["verdict"] = _verdict(result["rel"])
    if result["verdict"] == "match" and "divergence" in result:
        result["verdict"] = "DIFFERENT (layers)"
    return result


def _short(r):
    text = f"size {r['size']}: max|diff| {r['diff']:.3g} (rel {r['rel']:.1e}) {r['verdict']}"
    if "divergence" in r:
        text += f", first divergence {r['divergence']}"
    return text


def compare(name):
    info = cnnkit.model_info(name)
    size = SIZES.get(name) or (info.input_shape[0] if info.fixed_size_top
                               else max(64, info.min_size))
    r = evaluate(name, size)
    ours, theirs = r["params"], r["ref_params"]
    head = (f"{name:20s} size {size:3d} params {ours:>11,} ref {theirs:>11,} "
            f"{'equal' if ours == theirs else 'DIFFERENT':9s}")
    if "pairs" not in r:
        return head + " ported NO | " + r["why"]
    line = (head + f" ported yes ({r['method']}, {r['pairs']} pairs) max|diff| {r['diff']:.3g} "
            f"(logits up to {r['scale']:.3g}, rel {r['rel']:.1e}; conv/dense outputs rel "
            f"{r.get('layers_rel', float('nan')):.1e}) {r['verdict']}")
    if r["notes"]:
        line += " [" + ", ".join(f"{k} x{v}" if v > 1 else k for k, v in r["notes"].items()) + "]"
    if r["unused"]:
        line += f" [reference modules never run: {r['unused'][:3]}]"
    if "divergence" in r:
        line += f" | first divergence: {r['divergence']}"
    if r["verdict"] != "match" and not info.fixed_size_top:
        try:
            line += " | at " + _short(evaluate(name, size + 1))
        except Exception as error:
            line += f" | at size {size + 1}: ERROR {type(error).__name__}: {error}"
    if r["verdict"] != "match" and any(k.startswith("eps") for k in r["notes"]):
        for at in (size, size + 1):
            try:
                line += " | with reference eps = cnnkit's, at " + _short(
                    evaluate(name, at, align_eps=True))
            except Exception as error:
                line += f" | eps aligned: ERROR {type(error).__name__}: {error}"
    if name in ALIGN:
        try:
            r2 = evaluate(name, size, align=True)
            line += f" | with {r2['aligned']}: " + _short(r2)
        except Exception as error:
            line += f" | aligned: ERROR {type(error).__name__}: {error}"
    return line


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: every one with a reference)")
    parser.add_argument("--shard", default="0/1", help="i/n: every n-th model from the i-th")
    args = parser.parse_args(argv)
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    names = args.names or [n for n in cnnkit.list_models() if n in REFERENCE_NAMES]
    i, n = (int(v) for v in args.shard.split("/"))
    names = names[i::n]
    print(f"backend {keras.backend.backend()}, torch {torch.__version__}, {len(names)} models",
          flush=True)
    failures = 0
    for name in names:
        start = time.perf_counter()
        try:
            line = compare(name)
        except Exception as error:  # report every model
            line = f"{name:20s} ERROR {type(error).__name__}: {str(error)[:300]}"
            traceback.print_exc(limit=3)
        failures += "DIFFERENT" in line.split(' | ')[0] or "ERROR" in line or "ported NO" in line
        print(f"{line} ({time.perf_counter() - start:.0f} s)", flush=True)
        keras.backend.clear_session()
    print(f"{failures} model(s) not matching")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
