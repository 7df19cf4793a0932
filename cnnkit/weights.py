"""ImageNet weights for cnnkit's own models, ported from their keras.applications twins.

The cnnkit models that declare a keras.applications twin where they register (26, `TWINS`)
compute exactly what the twin computes (the tests prove it layer by layer). So
`cnnkit.build("resnet50", weights="imagenet")` downloads the official Keras weights (Keras's own
cache in ~/.keras/models and its hash check), builds the Keras model with them, and copies
every weight into the cnnkit model, pairing the layers that carry weights in graph order.
Three differences are bridged, each exactly:

- A convolution whose bias feeds BatchNorm (keras.applications' ResNets): cnnkit's convolution
  has no bias, because BatchNorm(conv(x) + b) equals BatchNorm(conv(x)) with its moving mean
  lowered by b. The bias is carried along the graph, through sums (ResNet v2's residual stream
  adds the biases of `_0_conv` and `_3_conv`) and max pools, to the BatchNorms that read it.
- A BatchNorm without a learned scale (InceptionV3, InceptionResNetV2): cnnkit's scale is 1.
- Keras's EfficientNet normalises its input inside the model; cnnkit models take preprocessed
  input (`keras.applications.<family>.preprocess_input`), so that layer is left out.
"""

from __future__ import annotations

import numpy as np

import keras

from collections.abc import Mapping

from cnnkit._keras_internals import inbound_nodes
from cnnkit.registry import list_models, model_info

__all__ = ["TWINS", "MODES", "PREPROCESSING", "keras_twin", "port_weights", "load_imagenet",
           "preprocess_input", "randomise", "port_differences"]

to_numpy = keras.ops.convert_to_numpy

class _ByTwin(Mapping):
    """{cnnkit name: value of its twin} over the registered models that declare a
    keras.applications twin (in `values`, if given), in course order. It reads the registry
    when used: the models register after this module is imported."""

    def __init__(self, values=None):
        self._values = values  # twin's builder name -> value; None: the twin's name itself

    def _value(self, name):
        twin = model_info(name).twin if name in list_models() else None
        if twin is None or (self._values is not None and twin not in self._values):
            raise KeyError(name)
        return twin if self._values is None else self._values[twin]

    def _names(self):
        return [name for name in list_models() if name in self]

    def __getitem__(self, name):
        return self._value(name)

    def __iter__(self):
        return iter(self._names())

    def __len__(self):
        return len(self._names())

    def __repr__(self):
        return repr(dict(self))


# cnnkit name -> keras.applications model of the same computation: each model declares its
# twin where it registers (`register(..., twin="ResNet50")`), the one home of "has ImageNet
# weights" (`model_info(name).imagenet`).
TWINS = _ByTwin()


def keras_twin(arch, *, include_top=True, weights="imagenet", **options):
    """The keras.applications model that computes what cnnkit's `arch` computes."""
    if arch not in TWINS:
        raise ValueError(f"{arch} has no keras.applications twin; twins: {', '.join(TWINS)}.")
    return getattr(keras.applications, TWINS[arch])(include_top=include_top, weights=weights,
                                                    **options)


def _weighted(model, *, skip_preprocessing=False):
    layers = [layer for layer in model.layers if layer.weights]
    if skip_preprocessing:
        layers = [layer for layer in layers if not isinstance(layer, keras.layers.Normalization)]
    return layers


def _drops_bias(src, dst):
    return getattr(src, "use_bias", False) and not getattr(dst, "use_bias", False)


def _conv_as_dense(src, dst):
    """A 1x1 convolution on pooled 1x1 maps is the Dense layer cnnkit writes in its place."""
    return (type(src) is keras.layers.Conv2D and tuple(src.kernel_size) == (1, 1)
            and isinstance(dst, keras.layers.Dense))


def _bias_offsets(twin, pairs):
    """Per BatchNorm of `twin`, the bias (per channel) its input carries that cnnkit's lacks.

    Walks the graph: a dropped bias starts an offset, Add sums offsets, max pooling passes them
    (max(x + b) = max(x) + b), BatchNorm absorbs them. Anything else would make the port inexact.
    """
    offsets, absorbed = {}, {}
    for layer in twin.layers:
        for node in inbound_nodes(layer):
            carried = [offsets.get(id(t)) for t in node.input_tensors]
            carried = [c for c in carried if c is not None]
            out = None
            if isinstance(layer, keras.layers.BatchNormalization):
                if carried:
                    absorbed[layer.name] = sum(carried)
            elif isinstance(layer, keras.layers.Add):
                out = sum(carried) if carried else None
            elif carried and not isinstance(layer, keras.layers.MaxPooling2D):
                raise ValueError(f"cannot fold a convolution bias through {layer.name} "
                                 f"({type(layer).__name__}) of {twin.name}")
            else:
                out = sum(carried) if carried else None
            if layer in pairs and _drops_bias(layer, pairs[layer]):
                out = to_numpy(layer.bias)
            for t in node.output_tensors:
                offsets[id(t)] = out
    if any(offsets.get(id(t)) is not None for t in twin.outputs):
        raise ValueError(f"a convolution bias of {twin.name} reaches its output unnormalised")
    return absorbed


def port_weights(twin, model):
    """Copy every weight of keras.applications `twin` into the cnnkit `model`, exactly."""
    theirs, ours = _weighted(twin, skip_preprocessing=True), _weighted(model)
    hint = (f"ImageNet weights fit only the layout keras.applications.{twin.name} builds: "
            f"build {model.name} with its default options (and include_top and input size "
            "matching the weights)")
    if len(theirs) != len(ours):
        raise ValueError(f"{twin.name} has {len(theirs)} layers with weights, {model.name} "
                         f"{len(ours)}. {hint}.")
    pairs = dict(zip(theirs, ours))
    absorbed = _bias_offsets(twin, pairs)
    for src, dst in pairs.items():
        if isinstance(src, keras.layers.BatchNormalization) and isinstance(
                dst, keras.layers.BatchNormalization):
            c = src.moving_mean.shape[0]
            gamma = to_numpy(src.gamma) if src.scale else np.ones(c, "float32")
            beta = to_numpy(src.beta) if src.center else np.zeros(c, "float32")
            mean = to_numpy(src.moving_mean) - absorbed.get(src.name, 0.0)
            values = ([gamma] if dst.scale or src.scale else []) + (
                [beta] if dst.center or src.center else [])
            values += [mean, to_numpy(src.moving_variance)]
        else:
            values = src.get_weights()[:-1] if _drops_bias(src, dst) else src.get_weights()
        if _conv_as_dense(src, dst):  # Keras's MobileNets classify with 1x1 convolutions
            values = [v.reshape(w.shape) if v.size == np.prod(w.shape) else v
                      for v, w in zip(values, dst.weights)]
        shapes = [tuple(v.shape) for v in values], [tuple(w.shape) for w in dst.weights]
        same_kind = type(src) is type(dst) or _conv_as_dense(src, dst)
        if not same_kind or shapes[0] != shapes[1]:
            raise ValueError(f"{twin.name}'s {src.name} {shapes[0]} does not fit "
                             f"{model.name}'s {dst.name} {shapes[1]}. {hint}.")
        dst.set_weights(values)
    return model


def load_imagenet(model, arch, *, include_top=True, **options):
    """Download `arch`'s official ImageNet weights (Keras's cache) and port them into `model`."""
    try:
        # At the twin's own size: Keras picks the weights file by it (the weights are the same
        # at any size, but MobileNet warns and VGG's flattened classifier needs it).
        twin = keras_twin(arch, include_top=include_top,
                          input_shape=model_info(arch).input_shape, **options)
    except ValueError as error:  # Keras publishes weights for some widths and sizes only
        raise ValueError(f"keras.applications.{TWINS[arch]} has no ImageNet weights for "
                         f"{options or 'these options'}: {error}") from error
    except Exception as error:  # keras.utils.get_file raises a bare Exception when offline
        raise ConnectionError(
            f"Could not download the ImageNet weights of keras.applications.{TWINS[arch]} "
            f"({error}). weights='imagenet' needs the internet once; Keras then keeps the file "
            "in ~/.keras/models. Offline, build with weights=None, or pass the path of a "
            "weights file you saved.") from error
    return port_weights(twin, model)


# How each twin's ImageNet weights expect pixels (keras.applications.imagenet_utils' modes):
# "caffe" BGR minus the ImageNet mean, "tf" scaled to [-1, 1], "torch" to [0, 1] then
# standardised. Keras's EfficientNet and MobileNetV3 do theirs inside the model (EfficientNet's
# Normalization stores the standard deviations as variances and rescales by 1/sqrt(std) to undo
# it: "torch" mode in all); cnnkit's models take the result as input.
MODES = {
    **dict.fromkeys(["VGG16", "VGG19", "ResNet50", "ResNet101", "ResNet152"], "caffe"),
    **dict.fromkeys(["ResNet50V2", "ResNet101V2", "ResNet152V2", "InceptionV3",
                     "InceptionResNetV2", "Xception", "MobileNet", "MobileNetV2",
                     "MobileNetV3Small", "MobileNetV3Large"], "tf"),
    **dict.fromkeys(["DenseNet121", "DenseNet169", "DenseNet201",
                     *(f"EfficientNetB{i}" for i in range(8))], "torch"),
}
# cnnkit name -> its twin's mode.
PREPROCESSING = _ByTwin(MODES)


def preprocess_input(arch, images):
    """RGB pixels in [0, 255] -> the input cnnkit's `arch` expects with ImageNet weights."""
    if arch not in PREPROCESSING:
        raise ValueError(f"{arch} has no ImageNet weights; models that do: {', '.join(TWINS)}.")
    images = np.array(images, dtype="float32")  # a copy: Keras's caffe mode works in place
    return keras.applications.imagenet_utils.preprocess_input(images, mode=PREPROCESSING[arch])


def randomise(model, seed=0):
    """Give every bias and BatchNorm of `model` random values, so that a port that dropped or
    misplaced one shows (fresh ones are 0 and 1: a bias in the wrong place would still agree)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Normalization):
            continue
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.moving_mean.shape[0]
            values = [rng.normal(1, 0.1, c)] if layer.scale else []
            values += [rng.normal(0, 0.1, c)] if layer.center else []
            layer.set_weights(values + [rng.normal(0, 0.1, c), rng.uniform(0.5, 1.5, c)])
        elif getattr(layer, "use_bias", False):
            layer.bias.assign(rng.normal(0, 0.1, layer.bias.shape))
    return model


def _headless(twin, body_layers):
    """The twin without its classifier: what keras.applications builds with include_top=False.

    Its body ends where pooling (GlobalAveragePooling2D, or Flatten in VGG) starts the head,
    after the last layer that carries weights in the headless cnnkit model's count.
    """
    weighted = _weighted(twin, skip_preprocessing=True)
    last_body = twin.layers.index(weighted[body_layers - 1])
    head = next(layer for layer in twin.layers[last_body:] if isinstance(
        layer, (keras.layers.GlobalAveragePooling2D, keras.layers.Flatten)))
    return keras.Model(twin.input, head.input, name=f"{twin.name}_notop")


def port_differences(arch, *, input_shape=(64, 64, 3), seed=0, **options):
    """Max |cnnkit - Keras| after porting a randomised twin into cnnkit's `arch`, offline.

    The twin is built with weights=None and given random biases and BatchNorm statistics; its
    weights are ported into cnnkit's `arch` with include_top=True (logits compared) and False
    (feature maps compared, the twin's body as include_top=False builds it). Both see the same
    random pixels, each as it expects them. Returns {"include_top=True": (max difference,
    largest output), "include_top=False": (...)}.
    """
    from cnnkit.registry import build  # cnnkit.models imports this module

    twin_options = dict(options)
    if arch.startswith("mobilenet_v3"):
        twin_options["include_preprocessing"] = False  # cnnkit takes the scaled input
    twin = randomise(keras_twin(arch, weights=None, input_shape=input_shape,
                                classifier_activation=None, **twin_options), seed)
    x = np.random.default_rng(seed + 1).uniform(-1, 1, (2, *input_shape)).astype("float32")
    # Keras's EfficientNet scales by 1/255 inside (its Normalization is the identity untrained).
    x_twin = x * 255.0 if arch.startswith("efficientnet") else x
    results = {}
    for include_top in (True, False):
        model = build(arch, include_top=include_top, input_shape=input_shape, **options,
                      **(dict(classifier_activation=None) if include_top else {}))
        source = twin if include_top else _headless(twin, len(_weighted(model)))
        port_weights(source, model)
        ours = to_numpy(model(x, training=False))
        theirs = to_numpy(source(x_twin, training=False))
        results[f"include_top={include_top}"] = (float(np.max(np.abs(ours - theirs))),
                                                 float(np.max(np.abs(theirs))))
    return results
