"""How fast a kit model trains or infers here: images/s, ms per step, TFLOP/s achieved and MFU.

    python -m cnnkit bench resnet50 --batch 32 --steps 10 --precision mixed_bfloat16 --train

`bench(name, ...)` builds the model with random weights, runs `warmup` steps that are not timed
(the first one compiles: a tf.function, a jit on JAX, nothing on PyTorch), then times `steps`
single steps through Keras's own compiled paths (`train_on_batch`, `predict_on_batch`). Both
return NumPy values, so every timed step has finished on the device before its clock stops.

FLOPs follow the papers' convention of `cnnkit.analysis` (convolutions and dense layers,
2 FLOPs per multiply-accumulate); a training step counts 3 forward passes (the forward pass,
and a backward pass that computes gradients for both the inputs and the weights), as MFU is
defined in "PaLM: Scaling Language Modeling with Pathways" (Chowdhery et al., 2022).
MFU = achieved TFLOP/s / the device's peak: dense tensor-core peaks from the vendors' data
sheets in `PEAK_TFLOPS` (16-bit for the mixed policies; TF32 for float32, which JAX and cuDNN use
for float32 convolutions by default). A CPU has no entry: pass `peak_tflops` for one.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass

import keras
import numpy as np

__all__ = ["BenchResult", "PEAK_TFLOPS", "PRECISIONS", "bench", "device_name", "peak_tflops",
           "achieved_tflops"]

PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
FORWARD_PASSES = {"train": 3, "infer": 1}

# Device name as the backend reports it (a substring, most specific first) -> dense peak TFLOP/s
# (16-bit tensor cores, float32 as TF32). TPU v2 and v3 show each core as a device, v4 on a chip.
PEAK_TFLOPS = {
    "H200": {"16-bit": 989.4, "float32": 494.7},
    "H100 PCIe": {"16-bit": 756.0, "float32": 378.0},
    "H100": {"16-bit": 989.4, "float32": 494.7},
    "A100": {"16-bit": 312.0, "float32": 156.0},
    "L4": {"16-bit": 121.0, "float32": 60.0},
    "V100": {"16-bit": 125.0, "float32": 15.7},
    "T4": {"16-bit": 65.0, "float32": 8.1},
    "TPU v2": {"16-bit": 22.5, "float32": 22.5},
    "TPU v3": {"16-bit": 61.5, "float32": 61.5},
    "TPU v4": {"16-bit": 275.0, "float32": 275.0},
    "TPU v5 lite": {"16-bit": 197.0, "float32": 197.0},
    "TPU v6 lite": {"16-bit": 918.0, "float32": 918.0},
}


@dataclass(frozen=True)
class BenchResult:
    """One model's measured speed; `mfu` is None where the device's peak is unknown."""

    model: str
    backend: str
    device: str
    mode: str  # "train" or "infer"
    precision: str
    batch: int
    input_shape: tuple
    steps: int
    ms_per_step: float  # median over the timed steps
    ms_min: float
    ms_max: float
    images_per_s: float
    macs_per_image: int
    tflops: float  # achieved
    peak_tflops: float | None
    mfu: float | None

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        size = "x".join(map(str, self.input_shape))
        mfu = (f"{self.mfu:.1%} of {self.peak_tflops:g} TFLOP/s" if self.mfu is not None
               else "unknown peak (--peak-tflops)")
        return (f"{self.model} {self.mode} {self.precision}, batch {self.batch} at {size}, "
                f"{self.backend} on {self.device}: {self.images_per_s:,.1f} images/s, "
                f"{self.ms_per_step:.1f} ms/step (median of {self.steps}; "
                f"{self.ms_min:.1f}-{self.ms_max:.1f}), "
                f"{self.macs_per_image / 1e9:.3f} GMACs/image, {self.tflops:.3f} TFLOP/s, "
                f"MFU {mfu}")


def device_name() -> str:
    """The first accelerator the active backend sees, by its name ('NVIDIA H200', 'TPU v4'),
    or 'cpu'."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        return "cpu" if device.platform == "cpu" else device.device_kind
    if backend == "torch":
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU")
        return "cpu"
    return "cpu"


def peak_tflops(device: str, precision: str) -> float | None:
    """The dense peak of `device` for `precision`, from PEAK_TFLOPS; None if it is not there."""
    _check_precision(precision)
    kind = "float32" if precision == "float32" else "16-bit"
    for key, peaks in PEAK_TFLOPS.items():
        if key.lower() in device.lower():
            return peaks[kind]
    return None


def achieved_tflops(macs_per_image: int, images_per_s: float, mode: str) -> float:
    """TFLOP/s done: 2 FLOPs per MAC, times the forward passes a step of `mode` counts."""
    if mode not in FORWARD_PASSES:
        raise ValueError(f"mode must be one of {tuple(FORWARD_PASSES)}; got {mode!r}.")
    return 2 * macs_per_image * FORWARD_PASSES[mode] * images_per_s / 1e12


def _check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}; got {precision!r}.")


def bench(name: str, *, batch: int = 32, steps: int = 10, warmup: int = 2, mode: str = "train",
          precision: str = "float32", input_size: int | None = None,
          peak: float | None = None, show_progress: bool = True,
          options: dict | None = None) -> BenchResult:
    """Time `steps` training (or inference) steps of the kit model `name` on random data;
    `options` go to `cnnkit.build` (e.g. {"alpha": 0.5})."""
    import cnnkit
    from cnnkit.analysis import model_macs
    from cnnkit.course.training import progress_bar

    _check_precision(precision)
    if mode not in FORWARD_PASSES:
        raise ValueError(f"mode must be one of {tuple(FORWARD_PASSES)}; got {mode!r}.")
    for label, value, least in (("batch", batch, 1), ("steps", steps, 1), ("warmup", warmup, 1)):
        if not isinstance(value, int) or value < least:
            raise ValueError(f"{label} must be a whole number >= {least}; got {value!r}.")
    info = cnnkit.model_info(name)  # a ValueError naming the choices for an unknown name
    shape = info.input_shape if input_size is None else (input_size, input_size,
                                                         info.input_shape[-1])
    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = cnnkit.build(name, input_shape=shape, **(options or {}))
    finally:
        keras.config.set_dtype_policy(before)  # only this model takes the precision
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False))
    rng = np.random.default_rng(0)
    x = rng.random((batch, *shape), dtype=np.float32)
    y = rng.integers(0, model.output_shape[-1], batch)
    step = ((lambda: model.train_on_batch(x, y)) if mode == "train"
            else (lambda: model.predict_on_batch(x)))
    bar = progress_bar(warmup + steps) if show_progress else None
    times = []
    for i in range(warmup + steps):
        start = time.perf_counter()
        step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
        if bar is not None:
            bar.update(i + 1)
    ms = statistics.median(times) * 1e3
    images_per_s = batch / (ms / 1e3)
    macs = model_macs(model)
    tflops = achieved_tflops(macs, images_per_s, mode)
    device = device_name()
    peak = peak if peak is not None else peak_tflops(device, precision)
    keras.backend.clear_session()
    return BenchResult(name, keras.backend.backend(), device, mode, precision, batch, shape,
                       steps, ms, min(times) * 1e3, max(times) * 1e3, images_per_s, macs, tflops,
                       peak, tflops / peak if peak else None)
