"""Check registered models on another Keras backend (JAX, PyTorch), on a GPU if there is one.

Not a test (CI runs TensorFlow on a CPU): a script for a machine that has the backend.

    KERAS_BACKEND=jax python tools/backend_check.py [names ...]
    KERAS_BACKEND=torch python tools/backend_check.py --reference [names ...]

For each model, at its minimum input size with 3 classes: a forward pass, a compiled training
step that must move every trainable weight, and a `.keras` round trip in safe mode that must
give identical outputs. `--reference` also counts the trainable parameters of the same model in
torchvision or timm, where those are installed, and compares them with cnnkit's.
"""

import argparse
import inspect
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import keras  # noqa: E402

import cnnkit  # noqa: E402
from cnnkit.analysis import count_params  # noqa: E402

# cnnkit name -> (library, its name); torchvision first where it has the model.
REFERENCE_NAMES = {
    **{n: ("torchvision", n) for n in (
        "vgg11", "vgg13", "vgg16", "vgg19", "resnet18", "resnet34", "resnet50", "resnet101",
        "resnet152", "resnext50_32x4d", "resnext101_32x8d", "inception_v3", "densenet121",
        "densenet169", "densenet201", "mobilenet_v2", "mobilenet_v3_small",
        "mobilenet_v3_large", "shufflenet_v2_x0_5", "shufflenet_v2_x1_0",
        "shufflenet_v2_x1_5", "shufflenet_v2_x2_0",
        *(f"efficientnet_b{i}" for i in range(8)))},
    "inception_v4": ("timm", "inception_v4"),
    "inception_resnet_v2": ("timm", "inception_resnet_v2"),
    "xception": ("timm", "legacy_xception"),
    "resnet50_v2": ("timm", "resnetv2_50"), "resnet101_v2": ("timm", "resnetv2_101"),
    **{n: ("timm", n) for n in ("dpn68", "dpn92", "dpn98", "dpn107", "dpn131", "darknet53",
                                "repvgg_a0", "repvgg_a1", "repvgg_a2", "repvgg_b0",
                                "repvgg_b1")},
    "vovnet39": ("timm", "vovnet39a"), "vovnet57": ("timm", "vovnet57a"),
    "vovnet39_v2": ("timm", "ese_vovnet39b"),
    "se_resnet50": ("timm", "seresnet50"), "se_resnext50_32x4d": ("timm", "seresnext50_32x4d"),
    "senet154": ("timm", "legacy_senet154"),
    "sk_resnet18": ("timm", "skresnet18"), "sk_resnet34": ("timm", "skresnet34"),
    "sk_resnext50_32x4d": ("timm", "skresnext50_32x4d"),
    "resnest14": ("timm", "resnest14d"), "resnest26": ("timm", "resnest26d"),
    "resnest50": ("timm", "resnest50d"),
    "mobilenet_v1": ("timm", "mobilenetv1_100"), "ghostnet": ("timm", "ghostnet_100"),
}


def reference_count(name):
    """Trainable parameters of the reference library's model, or None if it is not here."""
    if name not in REFERENCE_NAMES:
        return None
    library, ref = REFERENCE_NAMES[name]
    try:
        if library == "torchvision":
            import torchvision
            model = getattr(torchvision.models, ref)(weights=None, **(
                {"aux_logits": False, "init_weights": False} if ref == "inception_v3" else {}))
        else:
            import timm
            model = timm.create_model(ref, pretrained=False)
    except Exception as error:  # the library or the model is missing here
        return f"n/a ({type(error).__name__})"
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# The builder's own minimum where it is above the registry's (unet's default valid padding).
SIZES = {"unet": 188}


def _outputs(model, x):
    # predict_on_batch compiles the forward pass once (XLA on JAX), where an eager call on JAX
    # compiles every operation on its own: 10 s against 1.5 s for DenseNet-121 on a CPU.
    out = model.predict_on_batch(x)
    return [keras.ops.convert_to_numpy(o) for o in (out if isinstance(out, (list, tuple)) else [out])]


def check(name, tmp, jit_compile="auto", **options):
    """Forward, one training step moving every weight, safe-mode round trip. jit_compile=False
    runs the step eagerly: the same arithmetic without XLA's compile time, which on a CPU is
    most of a large model's check (though not on JAX, which compiles every operation when
    eager). `options` go to the builder, e.g. stacks=2."""
    info = cnnkit.model_info(name)
    size = SIZES.get(name, info.min_size)
    shape = (size, size, info.input_shape[2])
    keras.utils.set_random_seed(0)
    takes_classes = "classes" in inspect.signature(info.builder).parameters
    model = cnnkit.build(name, input_shape=shape, **({"classes": 3} if takes_classes else {}),
                         **options)
    rng = np.random.default_rng(0)
    x = rng.random((4, *shape), dtype=np.float32)
    loss = {"classification": "sparse_categorical_crossentropy",
            # One-hot targets: Keras 3.15's sparse cross-entropy on per-pixel labels fails its
            # backward pass on PyTorch ("grad_input must be contiguous").
            "segmentation": "categorical_crossentropy"}.get(info.task, "mse")
    # Compiled before the first forward pass: compile() discards the forward function that
    # predict_on_batch builds, and the round trip below reuses it.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=loss, jit_compile=jit_compile)
    outs = _outputs(model, x)
    if info.task == "classification":
        assert outs[0].shape == (4, 3) and np.allclose(outs[0].sum(axis=1), 1, atol=1e-4)
        y = np.array([0, 1, 2, 1])
    elif info.task == "segmentation":  # a class per pixel, probabilities over the last axis
        for o in outs:
            assert o.shape[0] == 4 and o.shape[-1] == 3 and np.allclose(o.sum(-1), 1, atol=1e-4)
        y = [np.eye(3, dtype="float32")[rng.integers(0, 3, o.shape[:-1])] for o in outs]
    else:  # feature maps or heatmaps: regress them onto zeros
        y = [np.zeros_like(o) for o in outs]
    y = y[0] if isinstance(y, list) and len(y) == 1 else y
    before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    start = time.perf_counter()
    value = float(np.sum(model.train_on_batch(x, y)))
    step = time.perf_counter() - start
    assert np.isfinite(value), value
    unchanged = [w.path for w, b in zip(model.trainable_weights, before)
                 if np.array_equal(keras.ops.convert_to_numpy(w), b)]
    assert not unchanged, f"weights that did not move: {unchanged[:3]}"
    path = os.path.join(tmp, f"{name}.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    for a, b in zip(_outputs(loaded, x), _outputs(model, x)):
        np.testing.assert_array_equal(a, b)
    return step


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="models (default: all)")
    parser.add_argument("--reference", action="store_true",
                        help="compare parameter counts with torchvision/timm")
    args = parser.parse_args(argv)
    names = args.names or cnnkit.list_models()
    print(f"backend {keras.backend.backend()}, {len(names)} models")
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            line = f"{name:22s}"
            try:
                step = check(name, tmp)
                line += f" ok   first train step {step:6.2f} s"
            except Exception as error:  # report every model, then fail at the end
                failures += 1
                line += f" FAIL {type(error).__name__}: {str(error)[:200]}"
            if args.reference:
                ours = count_params(cnnkit.build(name))
                ref = reference_count(name)
                verdict = "equal" if ours == ref else "DIFFERENT" if isinstance(ref, int) else ""
                failures += verdict == "DIFFERENT"
                line += f" | params {ours:,} reference {ref if ref is None or isinstance(ref, str) else f'{ref:,}'} {verdict}"
            print(line, flush=True)
            keras.backend.clear_session()
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
