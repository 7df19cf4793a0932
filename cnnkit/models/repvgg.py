"""RepVGG: train with three branches per layer, deploy as a plain stack of 3x3 convolutions.

Ding, Zhang, Ma, Han, Ding and Sun, "RepVGG: Making VGG-style ConvNets Great Again" (2021).
While training, each layer is a RepVGG block: 3x3 conv+BN, 1x1 conv+BN and (when the shape is
kept) an identity BN, summed, then ReLU (Fig. 2). All three branches are linear up to the sum,
so after training they fold into ONE 3x3 convolution with bias (Fig. 4): `reparameterize`.

Table 2 (input 224x224): the first layer of each stage has stride 2; a and b are the widths.

| stage  | output  | RepVGG-A | RepVGG-B | width       |
|--------|---------|----------|----------|-------------|
| stage1 | 112x112 | 1        | 1        | min(64, 64a)|
| stage2 | 56x56   | 2        | 4        | 64a         |
| stage3 | 28x28   | 4        | 6        | 128a        |
| stage4 | 14x14   | 14       | 16       | 256a        |
| stage5 | 7x7     | 1        | 1        | 512b        |
|        | 1x1     | global average pool, 1000-way fully connected                  |

| model     | a    | b    | training (3 branches) | deployed (Table 3: 8.30M ... 51.82M) |
|-----------|------|------|----------------------:|-------------------------------------:|
| repvgg_a0 | 0.75 | 2.5  |             9,108,968 |                            8,309,384 |
| repvgg_a1 | 1    | 2.5  |            14,092,264 |                           12,789,864 |
| repvgg_a2 | 1.5  | 2.75 |            28,210,600 |                           25,499,944 |
| repvgg_b0 | 1    | 2.5  |            15,817,960 |                           14,339,048 |
| repvgg_b1 | 2    | 4    |            57,415,016 |                           51,829,480 |

Layer names: block i of stage n is `stage{n}_block{i}` with `_3x3_conv`, `_3x3_bn`,
`_1x1_conv`, `_1x1_bn`, `_identity_bn`, `_add`, `_relu` (deployed: `_conv`, `_relu`). Stage n's
output is its last block's `_relu`, at stride 2**n, in both forms.
"""

import keras
import numpy as np
from keras import layers

from cnnkit.blocks import BN_EPSILON, BN_MOMENTUM, classifier, conv_bn
from cnnkit.registry import Tap, register
from cnnkit.validation import check_args, load_weights, model_inputs

__all__ = ["REPVGG_CONFIGS", "repvgg", "repvgg_block", "reparameterize", "fuse_bn",
           "pad_1x1_to_3x3", "identity_kernel", "repvgg_a0", "repvgg_a1", "repvgg_a2",
           "repvgg_b0", "repvgg_b1"]

BASE_WIDTHS = (64, 128, 256, 512)  # stages 2-5 before the multipliers a, a, a, b
DEPTHS = {"A": (1, 2, 4, 14, 1), "B": (1, 4, 6, 16, 1)}

# name -> (depths of Table 2, a, b, training-time parameters, deployed parameters)
REPVGG_CONFIGS = {
    "repvgg_a0": ("A", 0.75, 2.5, 9_108_968, 8_309_384),
    "repvgg_a1": ("A", 1.0, 2.5, 14_092_264, 12_789_864),
    "repvgg_a2": ("A", 1.5, 2.75, 28_210_600, 25_499_944),
    "repvgg_b0": ("B", 1.0, 2.5, 15_817_960, 14_339_048),
    "repvgg_b1": ("B", 2.0, 4.0, 57_415_016, 51_829_480),
}


BRANCHES = ("3x3", "1x1", "identity")


def repvgg_block(x, filters, *, name, strides=1, deploy=False, branches=BRANCHES):
    """One RepVGG layer: 3x3 conv+BN + 1x1 conv+BN (+ identity BN), summed, then ReLU.

    The identity branch exists only where the block keeps the shape (stride 1, same channels).
    deploy=True builds what the block folds into: one 3x3 convolution with bias, then ReLU.
    `branches` leaves branches out as the paper's ablation does (Table 6): ("3x3",) is the
    ordinary plain layer, 3x3 conv+BN+ReLU, which folds into the same deployed layer.
    """
    if "3x3" not in branches or not set(branches) <= set(BRANCHES):
        raise ValueError(f"branches must hold '3x3' and any of '1x1', 'identity'; "
                         f"got {branches!r}.")
    shortcut = x
    if strides == 2:
        # PyTorch pads 1 on every side; Keras's "same" would pad only bottom/right on even sizes
        # and shift the 3x3 centre off the pixels the strided 1x1 reads, so the fold would fail.
        x = layers.ZeroPadding2D(1, name=f"{name}_pad")(x)
    padding = "valid" if strides == 2 else "same"
    if deploy:
        x = layers.Conv2D(filters, 3, strides=strides, padding=padding, name=f"{name}_conv")(x)
        return layers.Activation("relu", name=f"{name}_relu")(x)
    outputs = [conv_bn(x, filters, 3, strides=strides, padding=padding, activation=None,
                       name=f"{name}_3x3")]
    if "1x1" in branches:
        outputs.append(conv_bn(shortcut, filters, 1, strides=strides, activation=None,
                               name=f"{name}_1x1"))
    if "identity" in branches and strides == 1 and shortcut.shape[-1] == filters:
        outputs.append(layers.BatchNormalization(epsilon=BN_EPSILON, momentum=BN_MOMENTUM,
                                                 name=f"{name}_identity_bn")(shortcut))
    # Keras's Add refuses a single input: a 3x3-only layer has nothing to add
    x = layers.Add(name=f"{name}_add")(outputs) if len(outputs) > 1 else outputs[0]
    return layers.Activation("relu", name=f"{name}_relu")(x)


def _blocks(depth_key, a, b):
    """(name, filters, strides) of every block, stage by stage, from Table 2."""
    widths = (min(64, int(64 * a)),) + tuple(
        int(w * m) for w, m in zip(BASE_WIDTHS, (a, a, a, b)))
    return [(f"stage{stage}_block{i}", width, 2 if i == 1 else 1)
            for stage, (depth, width) in enumerate(zip(DEPTHS[depth_key], widths), start=1)
            for i in range(1, depth + 1)]


def _plain_net(inputs, x, blocks, *, deploy, include_top, pooling, classes,
               classifier_activation, name):
    for block_name, filters, strides in blocks:
        x = repvgg_block(x, filters, strides=strides, deploy=deploy, name=block_name)
    x = classifier(x, include_top=include_top, pooling=pooling, classes=classes,
                   activation=classifier_activation)
    return keras.Model(inputs, x, name=name)


def repvgg(config, /, include_top=True, weights=None, input_tensor=None, input_shape=None,
           pooling=None, classes=1000, classifier_activation="softmax", deploy=False,
           name=None):
    """A RepVGG network of Table 2, `config` being one of REPVGG_CONFIGS ("repvgg_a0", ...).

    Paper: "RepVGG: Making VGG-style ConvNets Great Again", Ding et al., 2021. Layout as timm's
    `repvgg_*` (and the authors' code): the first layer (stage1) is itself a stride-2 RepVGG
    block without identity, BatchNorm eps 1e-5, no dropout before the classifier.

    deploy=True builds the inference-time plain network directly (one 3x3 conv with bias and
    ReLU per block), the architecture `reparameterize` returns; train the multi-branch form.
    The grouped variants (B1g2, B1g4, ...) and the larger B2/B3 are left out.
    """
    if not isinstance(deploy, bool):
        raise ValueError(f"deploy must be True (the plain inference-time network) or False "
                         f"(the multi-branch network you train); got {deploy!r}.")
    depth_key, a, b, _, _ = REPVGG_CONFIGS[config]
    args = check_args(config, include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape, pooling=pooling,
                      classes=classes, classifier_activation=classifier_activation)
    inputs, x = model_inputs(input_tensor, args.input_shape)
    model = _plain_net(inputs, x, _blocks(depth_key, a, b), deploy=deploy,
                       include_top=include_top, pooling=pooling, classes=args.classes,
                       classifier_activation=classifier_activation, name=name or config)
    return load_weights(model, weights)


# --- Re-parameterization (Section 3.3): NumPy, run once after training --------------------------

def fuse_bn(kernel, bn_weights, eps=BN_EPSILON):
    """Fold BatchNorm into the convolution before it: returns (kernel, bias) of one convolution.

    BN(conv(x)) = gamma * (W*x - mean) / sqrt(var + eps) + beta, so the fused kernel is
    W * gamma / std (per output channel, the last axis of a Keras kernel) and the bias is
    beta - mean * gamma / std. `bn_weights` is a BatchNormalization layer's get_weights():
    [gamma, beta, moving_mean, moving_variance].
    """
    gamma, beta, mean, var = (np.asarray(w, dtype=np.float64) for w in bn_weights)
    scale = gamma / np.sqrt(var + eps)
    return np.asarray(kernel, dtype=np.float64) * scale, beta - mean * scale


def pad_1x1_to_3x3(kernel):
    """A 1x1 kernel as a 3x3 kernel with zeros around: the same output once the input is
    padded by 1 pixel ("same" at stride 1, the block's explicit padding at stride 2)."""
    return np.pad(kernel, ((1, 1), (1, 1), (0, 0), (0, 0)))


def identity_kernel(channels):
    """The 3x3 kernel of the identity: 1 at the centre from channel i to channel i, else 0."""
    kernel = np.zeros((3, 3, channels, channels))
    kernel[1, 1, np.arange(channels), np.arange(channels)] = 1.0
    return kernel


def _fold_block(model, name):
    """Kernel and bias of the one 3x3 convolution equal to block `name`'s three branches."""
    def branch(conv, bn):
        bn = model.get_layer(bn)
        return fuse_bn(model.get_layer(conv).get_weights()[0], bn.get_weights(), bn.epsilon)

    present = {layer.name for layer in model.layers}  # a block may lack branches (Table 6)
    kernel, bias = branch(f"{name}_3x3_conv", f"{name}_3x3_bn")
    if f"{name}_1x1_conv" in present:
        kernel_1x1, bias_1x1 = branch(f"{name}_1x1_conv", f"{name}_1x1_bn")
        kernel, bias = kernel + pad_1x1_to_3x3(kernel_1x1), bias + bias_1x1
    if f"{name}_identity_bn" in present:
        bn = model.get_layer(f"{name}_identity_bn")
        kernel_id, bias_id = fuse_bn(identity_kernel(kernel.shape[-1]), bn.get_weights(),
                                     bn.epsilon)
        kernel, bias = kernel + kernel_id, bias + bias_id
    return kernel, bias


def reparameterize(model):
    """The deployed RepVGG: each block folded into one 3x3 convolution with bias, head copied.

    `model` is a trained multi-branch RepVGG (deploy=False); the result computes the same
    function in inference mode (BatchNorm using its moving statistics) with fewer parameters
    and no branches: a plain VGG-like stack that runs faster. The model itself is unchanged.
    """
    convs = [layer for layer in model.layers if layer.name.endswith("_3x3_conv")]
    if not convs:
        raise ValueError(f"{model.name} has no RepVGG blocks (no '..._3x3_conv' layers): pass "
                         "a model built with deploy=False, e.g. cnnkit.build('repvgg_a0').")
    names = [layer.name.removesuffix("_3x3_conv") for layer in convs]
    blocks = [(n, c.filters, c.strides[0]) for n, c in zip(names, convs)]
    names_in_model = {layer.name for layer in model.layers}
    head = model.get_layer("predictions") if "predictions" in names_in_model else None
    pooling = next((p for p in ("avg", "max") if f"{p}_pool" in names_in_model and not head),
                   None)
    inputs = keras.Input(shape=model.input_shape[1:], name=model.inputs[0].name)
    deployed = _plain_net(
        inputs, inputs, blocks, deploy=True, include_top=head is not None, pooling=pooling,
        classes=head.units if head else None,
        classifier_activation=head.activation if head else None, name=model.name)
    for name in names:
        kernel, bias = _fold_block(model, name)
        deployed.get_layer(f"{name}_conv").set_weights([kernel, bias])  # cast to its dtype
    if head is not None:
        deployed.get_layer("predictions").set_weights(head.get_weights())
    return deployed


def _info(config):
    """What the registry reads from `config`'s row of REPVGG_CONFIGS; the taps are Table 2's five
    stages, each ending with its last block."""
    depths, _, _, params, _ = REPVGG_CONFIGS[config]
    return dict(family="repvgg", paper="RepVGG: Making VGG-style ConvNets Great Again", year=2021,
                input_shape=(224, 224, 3), min_size=1, params=params,
                taps=tuple(Tap(f"stage{s}", f"stage{s}_block{n}_relu", 2 ** s)
                           for s, n in enumerate(DEPTHS[depths], start=1)))


repvgg_a0 = register("repvgg_a0", repvgg, "repvgg_a0", **_info("repvgg_a0"))
repvgg_a1 = register("repvgg_a1", repvgg, "repvgg_a1", **_info("repvgg_a1"))
repvgg_a2 = register("repvgg_a2", repvgg, "repvgg_a2", **_info("repvgg_a2"))
repvgg_b0 = register("repvgg_b0", repvgg, "repvgg_b0", **_info("repvgg_b0"))
repvgg_b1 = register("repvgg_b1", repvgg, "repvgg_b1", **_info("repvgg_b1"))
