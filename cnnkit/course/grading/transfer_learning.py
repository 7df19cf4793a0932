"""Graders of exercise 04 · Transfer learning (solutions/04_transfer_learning.ipynb)."""

from __future__ import annotations

import numpy as np

from .core import array, expect, grade, one_of, student

__all__ = ["check_freeze_all_but_last", "check_fold_bias_into_bn", "check_new_classifier"]


def _transfer_models():
    """Small real models for the transfer graders: LeNet-5 (no BatchNorm) and ResNet-8 (BN)."""
    from cnnkit.course.experiments import cifar_resnet
    from cnnkit.registry import build

    return [build("lenet5"), cifar_resnet(1, input_shape=(12, 12, 3), classes=4)]


def check_freeze_all_but_last(freeze_all_but_last):
    """`freeze_all_but_last(model, n)`: the last n of `model.layers` trainable, the others frozen.

    Checked on LeNet-5 and ResNet-8 for n from 0 to all layers, each time from a random mix of
    frozen and trainable layers (sometimes the whole model frozen), against `cnnkit.transfer`:
    the same trainable flags, and the same trainable parameter count in `trainable_summary`.
    """
    freeze_all_but_last = student(freeze_all_but_last)
    from cnnkit import transfer

    def run():
        rng = np.random.default_rng(4)
        total = 0
        for model in _transfer_models():
            size = len(model.layers)
            drawn = rng.integers(0, size + 1, 4).tolist()
            ns = sorted({0, 1, 2, size // 2, size - 1, size, *drawn}, reverse=True)  # 0 last
            for n in ns:
                n = int(n)
                start = rng.random(size) < 0.5  # a random state the function must overwrite
                if n < size:  # the layers on either side of the cut start the way they end, so
                    start[size - n - 1] = False  # that a slip of one layer changes a flag
                if n:
                    start[size - n] = True
                model.trainable = True
                for layer, flag in zip(model.layers, start):
                    layer.trainable = bool(flag)
                if rng.random() < 0.25:
                    model.trainable = False  # everything frozen, the model included
                call = f"freeze_all_but_last({model.name}, n={n}) ({size} layers)"
                start_flags = [layer.trainable for layer in model.layers]
                freeze_all_but_last(model, n)
                got_flags = [layer.trainable for layer in model.layers]
                got = transfer.trainable_summary(model).trainable
                transfer.freeze(model)
                if n:
                    transfer.unfreeze(model, slice(size - n, None), train_bn=True)
                want_flags = [layer.trainable for layer in model.layers]
                want = transfer.trainable_summary(model).trainable
                wrong = [layer.name for layer, g, w in zip(model.layers, got_flags, want_flags)
                         if g != w]
                last, first = slice(size - n, None), slice(0, size - n)
                if n == 0 and got_flags == [True] * size:
                    hint = ("for n = 0 nothing trains, but model.layers[-0:] is the WHOLE list "
                            "(-0 == 0): handle n = 0 on its own, or slice with [size - n:]")
                elif got_flags != want_flags and got_flags in (
                        [i >= size - n - 1 for i in range(size)],
                        [i >= size - n + 1 for i in range(size)]):
                    hint = (f"one layer off: exactly {n} layers train, model.layers[-n:] for "
                            "n > 0")
                elif got_flags == want_flags and got != want:
                    hint = ("your layer flags are right, but the model itself is frozen: "
                            "model.trainable = False hides every weight from the optimizer "
                            "whatever its layers say; set model.trainable = True first")
                elif got_flags == [True] * size:
                    hint = ("every layer trains: nothing was frozen (layer.trainable = False for "
                            "each layer before the last n). Note that setting model.trainable "
                            "can set every layer's flag too: set it first, then the layers'")
                elif n and not all(got_flags[last]) and got_flags[last] == start_flags[last]:
                    hint = (f"the last {n} layers must be made trainable too (some were frozen "
                            "before your call): layer.trainable = True for each")
                elif any(got_flags[first]) and got_flags[first] == start_flags[first]:
                    hint = ("every layer before the last n must be frozen (some were trainable "
                            "before your call): layer.trainable = False for each")
                else:
                    hint = "the last n layers are model.layers[-n:] (for n > 0), the rest frozen"
                expect(got_flags == want_flags and got == want,
                        f"{call}: {len(wrong)} layer(s) with the wrong trainable flag (e.g. "
                        f"{', '.join(wrong[:3]) or 'none'}), {got:,} trainable parameters instead "
                        f"of {want:,}: {hint}.")
                total += 1
        return (f"{total} cases on LeNet-5 and ResNet-8 (n = 0 to every layer, from random "
                "starting states) agree with cnnkit.transfer, flag for flag.")

    return grade("freeze_all_but_last", run)


def _batchnorm(z, gamma, beta, mean, var, epsilon):
    """BatchNormalization in inference mode, as the exercise writes it (and Keras computes it)."""
    return gamma * (z - mean) / np.sqrt(var + epsilon) + beta


def check_fold_bias_into_bn(fold_bias_into_bn):
    """`fold_bias_into_bn(bias, moving_mean)` -> the moving mean of the BatchNorm after a
    convolution WITHOUT that bias, so that both pairs compute the same in inference mode.

    Checked on random convolution outputs z, biases and BatchNorm weights and statistics:
    BN(z + bias) with the old mean against BN(z) with the student's mean.
    """
    fold_bias_into_bn = student(fold_bias_into_bn)

    def run():
        rng = np.random.default_rng(40)
        for c in (3, 1, 8, 16, 5, 32):
            z = rng.normal(0, 2, size=(2, 4, 4, c))
            bias, mean = rng.normal(0, 0.5, c), rng.normal(0, 0.5, c)
            gamma, beta = rng.normal(1, 0.2, c), rng.normal(0, 0.2, c)
            var, epsilon = rng.uniform(0.5, 2.0, c), 1.001e-5
            call = f"fold_bias_into_bn(bias of shape ({c},), moving_mean of shape ({c},))"
            got = fold_bias_into_bn(bias.copy(), mean.copy())
            got = array(got, call, shape=(c,))
            want = _batchnorm(z + bias, gamma, beta, mean, var, epsilon)
            out = _batchnorm(z, gamma, beta, got, var, epsilon)
            hint = one_of(got, [
                (mean + bias, "the sign: conv(x) + b minus μ is conv(x) minus (μ − b), so the "
                 "bias LOWERS the mean"),
                (bias - mean, "the new mean is μ − b, not b − μ"),
                (mean, "the bias must go somewhere: into the mean, μ − b")],
                "BN(conv(x) + b) = BN(conv(x)) with moving mean μ − b")
            expect(np.allclose(out, want, atol=1e-6), f"{call}: BatchNormalization of the "
                   f"convolution without bias, with your mean, differs from the pair with the "
                   f"bias by up to {float(np.abs(out - want).max()):.3g}: {hint}.")
        return ("6 convolution outputs and BatchNorm layers: without the bias and with your "
                "moving mean, each computes exactly what it computed with the bias.")

    return grade("fold_bias_into_bn", run)


def _tiny_base(rng, name):
    """conv-BN-ReLU stages named like cnnkit's ResNets, with random sizes: a base to transfer."""
    import keras

    side, channels = int(rng.choice([6, 8, 10])), int(rng.choice([1, 3]))
    inputs = keras.Input((side, side, channels), name=f"{name}_input")
    x = inputs
    for stage in range(1, int(rng.integers(2, 4)) + 1):
        x = keras.layers.Conv2D(int(rng.choice([4, 6, 8])), 3, padding="same", use_bias=False,
                                name=f"conv{stage}_conv")(x)
        x = keras.layers.BatchNormalization(name=f"conv{stage}_bn")(x)
        x = keras.layers.ReLU(name=f"conv{stage}_relu")(x)
    return keras.Model(inputs, x, name=name)


def _snapshot(layers_):
    import keras

    return [keras.ops.convert_to_numpy(w).copy() for layer in layers_ for w in layer.weights]


def _theirs(function, *args, **kwargs):
    """Run the student's model (a call, compile or fit): what it raises is the student's."""
    return student(lambda: function(*args, **kwargs), name="your model")()


def _classifier_hint(got, head, bn_scales, pooled_size, classes):
    if got == pooled_size * classes + classes:
        return ("pool with GlobalAveragePooling2D (one number per channel), not Flatten (a "
                "weight for every position)")
    if got == head + bn_scales:
        return ("the BatchNorm layers of the base are still trainable: in fit they run in "
                "training mode and move their moving statistics. Freeze them too: "
                "base.trainable = False freezes every layer")
    if got > head:
        return ("freeze the base: base.trainable = False. In Keras 3 calling base(x, "
                "training=False) neither freezes it nor protects its BatchNorm statistics in fit")
    if got == 0:
        return "nothing trains: the new Dense layer must stay trainable (freeze only the base)"
    return f"the head is Dense({classes}) on the pooled channels, with its biases"


def check_new_classifier(new_classifier):
    """`new_classifier(base, classes)` -> a model: the frozen `base`, global average pooling and a
    Dense softmax layer of `classes` units (functional or keras.Sequential).

    Checked on a headless ResNet-8 and random conv-BN bases: the base itself is inside, the
    output equals softmax(Dense(mean of base(x) over the positions)) with the model's own Dense
    weights, only the head trains, and after two real training steps (Keras `fit`) no weight of
    the base and no BatchNorm statistic has moved, while the head learnt.
    """
    new_classifier = student(new_classifier)
    import keras

    from cnnkit import transfer
    from cnnkit.course.experiments import cifar_resnet

    def run():
        rng = np.random.default_rng(41)
        source = cifar_resnet(1, input_shape=(8, 8, 3), classes=3)
        resnet8 = keras.Model(source.input, source.get_layer("avg_pool").input, name="resnet8")
        bases = [resnet8, _tiny_base(rng, "base")]
        for base in bases:
            classes = int(rng.integers(2, 8))
            shape = tuple(base.output.shape[1:])
            call = f"new_classifier({base.name} with output {shape}, {classes})"
            model = new_classifier(base, classes)
            expect(isinstance(model, keras.Model), f"{call} returned {type(model).__name__}: "
                   "return a keras.Model (keras.Model(inputs, outputs) or keras.Sequential).")
            x = rng.normal(2.0, 3.0, size=(8, *base.input_shape[1:])).astype("float32")
            y = rng.integers(0, classes, 8)
            probabilities = array(_theirs(model, x, training=False), f"your model on {x.shape}")
            expect(probabilities.shape == (8, classes), f"{call}: on a batch of 8 images the "
                   f"output has shape {probabilities.shape}, expected (8, {classes}): one "
                   "probability per class.")
            base_layers = {id(layer) for layer in transfer.layers_of(base)}
            in_model = transfer.layers_of(model)
            inside = [layer for layer in in_model if id(layer) in base_layers]
            expect(len(inside) == len(base_layers), f"{call}: your model does not contain the "
                   "layers of `base`: build on `base` itself (its trained weights), not on a "
                   "copy or a new network.")
            head_layers = [layer for layer in in_model
                           if id(layer) not in base_layers and layer.weights]
            head = shape[-1] * classes + classes
            got = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            bn_scales = sum(2 * layer.gamma.shape[0] for layer in inside
                            if isinstance(layer, keras.layers.BatchNormalization))
            expect(got == head, f"{call} has {got:,} trainable parameters, expected {head:,} "
                   f"(the head only): "
                   f"{_classifier_hint(got, head, bn_scales, int(np.prod(shape)), classes)}.")
            expect(np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4) and
                   probabilities.min() >= 0, f"{call}: the outputs of each image should be "
                   "probabilities that sum to 1: Dense(classes, activation='softmax').")
            dense = [layer for layer in head_layers if isinstance(layer, keras.layers.Dense)]
            expect(len(dense) == 1 == len(head_layers), f"{call}: the head should be one "
                   f"Dense({classes}) layer after the pooling; yours has "
                   f"{[type(layer).__name__ for layer in head_layers]}.")
            features = keras.ops.convert_to_numpy(base(x, training=False)).astype("float64")
            weights = dense[0].get_weights() + [np.zeros(classes)]
            want, as_max = (_softmax(pooled @ weights[0] + weights[1]) for pooled in (
                features.mean(axis=(1, 2)), features.max(axis=(1, 2))))
            expect(np.allclose(probabilities, want, atol=1e-4), f"{call}: the probabilities "
                   "differ from softmax(Dense(GlobalAveragePooling2D(base(x)))) by up to "
                   f"{float(np.abs(probabilities - want).max()):.3g}: " + (
                       "average the feature maps (GlobalAveragePooling2D), not their maximum"
                       if np.allclose(probabilities, as_max, atol=1e-4) else
                       "the head is base, GlobalAveragePooling2D, then Dense with a softmax") + ".")
            before = {id(layer): _snapshot([layer]) for layer in inside}
            head_before = _snapshot(head_layers)
            _theirs(model.compile, keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy",
                    run_eagerly=True)  # two steps: tracing would cost more
            _theirs(model.fit, x, y, batch_size=4, epochs=1, verbose=0, shuffle=False)
            moved = [layer for layer in inside if any(not np.array_equal(a, b) for a, b in zip(
                before[id(layer)], _snapshot([layer])))]
            kinds = {type(layer) for layer in moved}
            if kinds == {keras.layers.BatchNormalization}:
                hint = ("only BatchNorm layers moved: their moving mean and variance, updated in "
                        "the forward pass because they are trainable. Freeze the whole base, "
                        "BatchNorm included (base.trainable = False): a frozen BatchNorm runs in "
                        "inference mode; training=False on the call does not survive fit in "
                        "Keras 3")
            else:
                hint = "freeze the whole base, BatchNorm included: base.trainable = False"
            expect(not moved, f"{call}: after two training steps {len(moved)} layers of the base "
                   f"changed (e.g. {', '.join(layer.name for layer in moved[:3])}): {hint}.")
            expect(any(not np.array_equal(a, b) for a, b in zip(head_before,
                                                                 _snapshot(head_layers))),
                   f"{call}: after two training steps the head has not changed: its Dense layer "
                   "must be trainable.")
        return (f"{len(bases)} bases (a headless ResNet-8 and random conv-BN stacks): the right "
                "probabilities, only the head trains, and after real training steps every base "
                "weight and BatchNorm statistic is where it was.")

    return grade("new_classifier", run)


def _softmax(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
