"""Training on several devices with the engines Keras and its backends already have.

Data parallelism: `keras.distribution.DataParallel` (JAX) and `tf.distribute.MirroredStrategy`
(TensorFlow) copy the model to every device, split each global batch between them and average
the gradients, so N replicas compute what one device computes on the same global batch (checked
here within float tolerance). Model parallelism: `keras.distribution.ModelParallel` with a
`LayoutMap` splits one layer's weights between devices (VGG-16's fc6 here). Beyond one machine:
`keras.distribution.initialize` joins processes into one JAX cluster, and the same training code
then spans them (TensorFlow's twin, `TF_CONFIG` with `MultiWorkerMirroredStrategy`, is not run
here).

Keras has all of the engines; this module adds only what it lacks for a course on one CPU:
- virtual devices. A backend fixes its device list when it first uses a device, and a lesson's
  set-up cell has done so already. So each multi-device part runs as a script in a process of
  its own, `python -m cnnkit.course.distribute PART --engine jax --devices 2`, which first makes N
  virtual CPU devices (XLA's `--xla_force_host_platform_device_count` for JAX, logical devices
  for TensorFlow) and then prints the devices it uses. A learner can read and rerun that command
  in a shell; `launch` runs it from a notebook and returns what it measured.
- where the notebook's own backend already sees N accelerators (a Colab TPU's 8 cores, a
  multi-GPU node), `launch` runs the part in the notebook itself: a TPU belongs to one process.

Paper of the learning-rate rules: "Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour",
Goyal et al., 2017 (linear scaling and gradual warm-up). Simplified: the parts train LeNet-5 and
VGG-16 for a few steps, enough to compare devices, not to reach an accuracy.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["ENGINES", "engine_missing", "virtual_cpu_devices", "launch", "launch_workers",
           "command", "PARTS"]

ENGINES = {"jax": "keras.distribution on JAX", "tensorflow": "tf.distribute on TensorFlow"}
"""Each engine, by the Keras backend that runs it."""

HOST_DEVICES_FLAG = "--xla_force_host_platform_device_count"


def engine_missing(engine) -> str | None:
    """Why `engine` ("jax" or "tensorflow") cannot run here, or None when it can."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}; got {engine!r}.")
    if importlib.util.find_spec(engine) is None:
        return f"{ENGINES[engine]} needs {engine}, which is not installed in this environment"
    return None


def virtual_cpu_devices(n, engine):
    """Make `n` CPU devices for `engine` in this process; call before the backend's first device
    use (a process's first lines), since a backend fixes its device list then."""
    if engine == "jax":
        # XLA reads the flag when JAX creates its CPU client, at the first device use.
        flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if
                 not f.startswith(HOST_DEVICES_FLAG)]
        os.environ["XLA_FLAGS"] = " ".join(flags + [f"{HOST_DEVICES_FLAG}={n}"])
        os.environ["JAX_PLATFORMS"] = "cpu"  # leave any GPU to the notebook that holds it
        return
    import tensorflow as tf

    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")
    cpu = tf.config.list_physical_devices("CPU")[0]
    # Raises RuntimeError once TensorFlow has initialised its devices: the message says so.
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def _devices(engine, n):
    """The first `n` devices of the fastest kind this process sees: accelerators when there are
    `n` of them, else CPUs (virtual ones, after `virtual_cpu_devices`)."""
    import keras

    for kind in ("tpu", "gpu", "cpu"):
        try:
            found = keras.distribution.list_devices(kind)
        except (RuntimeError, ValueError):
            continue
        if len(found) >= n:
            return [d.lower() for d in found[:n]]
    raise RuntimeError(f"{engine} sees fewer than {n} devices of one kind; run this part with "
                       f"`python -m cnnkit.course.distribute PART --engine {engine} --devices {n}`, "
                       "which makes virtual CPU devices first.")


# --- the parts ---------------------------------------------------------------------------------

def _lenet(seed):
    import keras

    import cnnkit

    keras.utils.set_random_seed(seed)
    return cnnkit.build("lenet5")


def _train(model, x, y, global_batch, epochs, learning_rate, verbose=0):
    """fit with plain SGD on the same batches (in order, partial batch dropped); the loss Keras
    logs after every step (its running mean over the epoch so far), the steps counted, and the
    seconds of every epoch (the first includes compiling)."""
    import keras

    from cnnkit.course.training import BatchCounter, EpochTimer

    losses = []

    class StepLosses(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))

    model.compile(optimizer=keras.optimizers.SGD(learning_rate),
                  loss="sparse_categorical_crossentropy")
    # Whole global batches only, so that each splits evenly between the replicas (lesson 01's
    # drop_remainder, done on the arrays: it works the same on every engine).
    n = len(x) // global_batch * global_batch
    counter, timer = BatchCounter(), EpochTimer()
    model.fit(x[:n], y[:n], batch_size=global_batch, epochs=epochs, shuffle=False, verbose=verbose,
              callbacks=[StepLosses(), counter, timer])
    return {"step_losses": losses, "iterations": counter.per_epoch,
            "seconds_per_epoch": timer.seconds}


def _weights_sum(model):
    """The sum of every weight, in float64: one number that two runs can compare."""
    return float(sum(np.sum(np.asarray(w), dtype="float64") for w in model.get_weights()))


def _weights_diff(a, b):
    return float(max(np.max(np.abs(np.asarray(u) - np.asarray(v)))
                     for u, v in zip(a.get_weights(), b.get_weights())))


def data_parallel(engine, devices, x, y, global_batch=64, epochs=2, learning_rate=0.05, seed=0,
                  verbose=0):
    """LeNet-5 trained on one device and on `devices` replicas from the same initial weights on
    the same global batches: the losses of both, and the largest weight difference at the end."""
    import keras

    used = _devices(engine, devices)
    one = _lenet(seed)
    start = one.get_weights()
    print(f"training LeNet-5 on one device, then on {devices} replicas ...", flush=True)
    single = _train(one, x, y, global_batch, epochs, learning_rate, verbose)
    if engine == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=used))
        try:
            replicated = _lenet(seed)  # variables made now are placed on every device
            replicated.set_weights(start)
            many = _train(replicated, x, y, global_batch, epochs, learning_rate, verbose)
            placed = sorted(str(d).lower() for d in replicated.weights[0].value.devices())
        finally:
            keras.distribution.set_distribution(None)
    else:
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(
            [f"/{d.split(':')[0].upper()}:{d.split(':')[1]}" for d in used])
        with strategy.scope():  # variables made in the scope are mirrored on every device
            replicated = _lenet(seed)
            replicated.set_weights(start)
            many = _train(replicated, x, y, global_batch, epochs, learning_rate, verbose)
        placed = sorted(v.device.lower() for v in replicated.weights[0].value.values)
    return {"engine": engine, "devices": used, "replicas": devices, "global_batch": global_batch,
            "per_replica_batch": global_batch // devices, "one_device": single,
            "replicated": many, "first_kernel_on": placed,
            "max_weight_difference": _weights_diff(one, replicated),
            "weights_sum": _weights_sum(replicated)}


def model_parallel(engine, devices, model="vgg16", layer="fc1", image_size=32, classes=1000,
                   batch=2, seed=0, verbose=0):
    """`model` with the Dense `layer` split column-wise over `devices` (VGG-16's fc6, `fc1` in
    Keras's names, by default): each device holds 1/devices of its kernel and bias, every other
    variable is copied whole; the outputs equal one device's within float tolerance."""
    if engine != "jax":
        raise ValueError("keras.distribution.ModelParallel trains on JAX only.")
    import keras

    import cnnkit

    used = _devices(engine, devices)
    shape = (image_size, image_size, cnnkit.model_info(model).input_shape[-1])

    def build():
        keras.utils.set_random_seed(seed)
        return cnnkit.build(model, input_shape=shape, classes=classes)

    whole = build()
    images = np.random.default_rng(seed).uniform(0, 255, (batch, *shape))
    print(f"{model} at {image_size}x{image_size} on one device, then with {layer} split ...",
          flush=True)
    start = time.perf_counter()
    expected = np.asarray(whole.predict(images, verbose=verbose))
    seconds_one = time.perf_counter() - start
    mesh = keras.distribution.DeviceMesh((1, devices), ["batch", "model"], devices=used)
    layout = keras.distribution.LayoutMap(mesh)
    layout[f"{layer}/kernel"] = (None, "model")  # the layer's output columns, split
    layout[f"{layer}/bias"] = ("model",)
    keras.distribution.set_distribution(
        keras.distribution.ModelParallel(layout_map=layout, batch_dim_name="batch"))
    try:
        split = build()  # variables made now follow the layout map
        split.set_weights(whole.get_weights())
        start = time.perf_counter()
        got = np.asarray(split.predict(images, verbose=verbose))
        seconds_split = time.perf_counter() - start
    finally:
        keras.distribution.set_distribution(None)
    kernel = split.get_layer(layer).kernel.value
    last = split.layers[-1].kernel.value  # not in the map
    return {"engine": engine, "devices": used, "model": model, "layer": layer,
            "image_size": image_size, "kernel_shape": list(kernel.shape),
            "params": int(np.prod(kernel.shape)) + int(kernel.shape[1]),
            "shards": [{"device": str(s.device).lower(), "shape": list(s.data.shape)}
                       for s in kernel.addressable_shards],
            "last_layer_shards": [list(s.data.shape) for s in last.addressable_shards],
            "max_output_difference": float(np.max(np.abs(got - expected))),
            "seconds_one_device": seconds_one, "seconds_split": seconds_split}


def multi_worker(engine, devices, x, y, process_id, processes, address, global_batch=64,
                 epochs=2, learning_rate=0.05, seed=0, verbose=0):
    """One of `processes` workers joined into one cluster (JAX) training LeNet-5 data-parallel
    on every worker's devices; each worker feeds its own part of every global batch."""
    if engine != "jax":
        raise ValueError("this part joins JAX processes; TensorFlow's twin is TF_CONFIG with "
                         "tf.distribute.MultiWorkerMirroredStrategy.")
    import keras

    keras.distribution.initialize(address, processes, process_id)
    used = [d.lower() for d in keras.distribution.list_devices("cpu")]
    # Each worker feeds its own rows (below), so Keras must not cut the data between workers.
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=used, auto_shard_dataset=False))
    try:
        model = _lenet(seed)
        # The global batch b is cut into `processes` slices; this worker's rows of batch i are
        # its own slice, so all workers together feed exactly one device's batches.
        local = global_batch // processes
        steps = len(x) // global_batch
        rows = np.concatenate([np.arange(i * global_batch + process_id * local,
                                         i * global_batch + (process_id + 1) * local)
                               for i in range(steps)])
        trained = _train(model, x[rows], y[rows], local, epochs, learning_rate, verbose)
    finally:
        keras.distribution.set_distribution(None)
    return {"engine": engine, "process_id": process_id, "processes": processes,
            "global_devices": used, "local_batch": local, "global_batch": global_batch,
            **trained, "weights_sum": _weights_sum(model)}


PARTS = {"data-parallel": data_parallel, "model-parallel": model_parallel,
         "multi-worker": multi_worker}
"""The parts `python -m cnnkit.course.distribute PART` runs, by name."""


# --- running a part in a process of its own ----------------------------------------------------

def command(part, engine, devices=2, **options) -> list[str]:
    """The command line that runs `part` on `devices` virtual devices of `engine`."""
    line = [sys.executable, "-m", "cnnkit.course.distribute", part, "--engine", engine,
            "--devices", str(devices)]
    return line + (["--options", json.dumps(options)] if options else [])


def _child_env(engine):
    env = dict(os.environ, KERAS_BACKEND=engine, TF_CPP_MIN_LOG_LEVEL="3")
    # The child imports this very cnnkit, installed or not (a checkout on sys.path).
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


def _notebook_has(engine, devices):
    """Whether this process's Keras runs on `engine` and already sees `devices` accelerators."""
    import keras

    if keras.backend.backend() != engine:
        return False
    for kind in ("tpu", "gpu"):
        try:
            if len(keras.distribution.list_devices(kind)) >= devices:
                return True
        except (RuntimeError, ValueError):
            continue
    return False


def launch(part, engine, devices=2, data=None, **options) -> dict:
    """Run `part` on `devices` devices of `engine` and return what it measured (a dict).

    In the notebook itself when its backend is `engine` and sees that many accelerators; else
    in a new process (`command(...)`) on virtual CPU devices, whose printed lines are shown.
    `data` is (x, y), handed to the part; `options` are its keyword arguments.
    """
    if _notebook_has(engine, devices):
        print(f"{part}: in this notebook, on its own {devices} accelerators")
        arrays = {} if data is None else {"x": data[0], "y": data[1]}
        return PARTS[part](engine, devices, **arrays, **options)
    with tempfile.TemporaryDirectory() as folder:
        line = command(part, engine, devices, **options) + ["--out", f"{folder}/out.json"]
        if data is not None:
            np.savez(f"{folder}/data.npz", x=data[0], y=data[1])
            line += ["--data", f"{folder}/data.npz"]
        # stderr (a backend's logs) goes to a file: a full pipe would block the child.
        with open(f"{folder}/stderr.txt", "w+") as errors:
            child = subprocess.Popen(line, env=_child_env(engine), text=True,
                                     stdout=subprocess.PIPE, stderr=errors)
            for printed in child.stdout:  # as it comes: the part's progress
                print(printed, end="", flush=True)
            if child.wait() != 0:
                errors.seek(0)
                raise RuntimeError(f"{part} on {engine} failed:\n{errors.read()[-3000:]}")
        return json.loads(Path(f"{folder}/out.json").read_text())


def _free_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def launch_workers(part, engine, processes=2, data=None, **options) -> list[dict]:
    """Start `processes` workers of `part` on this machine, each with one CPU device, as a
    cluster's machines would be started (one command each, differing only in its id)."""
    address = f"localhost:{_free_port()}"
    with tempfile.TemporaryDirectory() as folder:
        if data is not None:
            np.savez(f"{folder}/data.npz", x=data[0], y=data[1])
        running = []
        for worker in range(processes):
            line = command(part, engine, 1, process_id=worker, processes=processes,
                           address=address, **options) + ["--out", f"{folder}/{worker}.json"]
            line += ["--data", f"{folder}/data.npz"] if data is not None else []
            running.append(subprocess.Popen(line, env=_child_env(engine), text=True,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE))
        results = []
        for worker, child in enumerate(running):
            out, err = child.communicate(timeout=600)
            print(out, end="")
            if child.returncode != 0:
                raise RuntimeError(f"{part} worker {worker} on {engine} failed:\n{err[-3000:]}")
            results.append(json.loads(Path(f"{folder}/{worker}.json").read_text()))
        return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cnnkit.course.distribute", description=__doc__.split(
        "\n")[0])
    parser.add_argument("part", choices=sorted(PARTS))
    parser.add_argument("--engine", choices=sorted(ENGINES), required=True)
    parser.add_argument("--devices", type=int, default=2, help="virtual CPU devices to make")
    parser.add_argument("--options", default="{}", help="the part's keyword arguments, as JSON")
    parser.add_argument("--data", help="an .npz file holding x and y")
    parser.add_argument("--out", help="write what the part measured here, as JSON")
    args = parser.parse_args(argv)
    os.environ["KERAS_BACKEND"] = args.engine
    virtual_cpu_devices(args.devices, args.engine)  # before anything touches a device
    options = json.loads(args.options)
    if args.data:
        with np.load(args.data) as arrays:
            options.update(x=arrays["x"], y=arrays["y"])
    result = PARTS[args.part](args.engine, args.devices, **options)
    where = (f"process {result['process_id']} of {result['processes']}, cluster devices "
             f"{result['global_devices']}" if "process_id" in result else
             f"devices {result['devices']}")
    print(f"{args.part} on {args.engine}: {where}")
    text = json.dumps(result)
    if args.out:
        Path(args.out).write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
