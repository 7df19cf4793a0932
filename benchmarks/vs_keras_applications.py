"""Time cnnkit's models against their keras.applications twins: forward pass and training step.

    python benchmarks/vs_keras_applications.py                      # every twin cnnkit has
    python benchmarks/vs_keras_applications.py resnet50 vgg16 --batch 8 --repeats 9

Both models of a pair get the same batch and the same compiled Keras paths (`predict_on_batch`
for inference, `train_on_batch` with SGD for a training step). After a warm-up, the two are timed
alternately in one process (cnnkit first on even rounds, Keras first on odd ones), so load on a
noisy machine hits both alike; the ratio is cnnkit / keras.applications of the median times.
A ratio <= 1.00 means the kit's model is at least as fast as the one a learner would otherwise use.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import cnnkit  # noqa: E402

from cnnkit.weights import TWINS  # noqa: E402  (cnnkit name -> keras.applications model)


def build_pair(name):
    info = cnnkit.model_info(name)
    ours = cnnkit.build(name)
    theirs = getattr(keras.applications, TWINS[name])(weights=None,
                                                      input_shape=info.input_shape)
    for model in (ours, theirs):
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss="sparse_categorical_crossentropy")
    return info, ours, theirs


def seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compare(name, batch, repeats, warmup=2):
    info, ours, theirs = build_pair(name)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *info.input_shape), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    tasks = {"forward": lambda m: m.predict_on_batch(x),
             "train step": lambda m: m.train_on_batch(x, y)}
    result = {}
    for task, run in tasks.items():
        for _ in range(warmup):
            run(ours), run(theirs)
        times = {"cnnkit": [], "keras": []}
        for round_ in range(repeats):
            pair = [("cnnkit", ours), ("keras", theirs)]
            for who, model in (pair if round_ % 2 == 0 else pair[::-1]):
                times[who].append(seconds(lambda: run(model)))
        a, b = statistics.median(times["cnnkit"]), statistics.median(times["keras"])
        result[task] = (a, b, a / b)
    keras.backend.clear_session(free_memory=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="cnnkit names (default: every twin)")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    available = [n for n in TWINS if n in cnnkit.list_models()]
    names = args.models or available
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"no keras.applications twin in cnnkit for {unknown}; "
                     f"choose from {available}")
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, batch {args.batch}, "
          f"median of {args.repeats} alternating runs after 2 warm-up runs; times in ms")
    header = (f"{'model':22s} {'input':>9s} {'fwd cnnkit':>11s} {'fwd keras':>10s} {'ratio':>6s} "
              f"{'train cnnkit':>13s} {'train keras':>12s} {'ratio':>6s}")
    print(header)
    worst = 0.0
    for name in names:
        r = compare(name, args.batch, args.repeats)
        (fa, fb, fr), (ta, tb, tr) = r["forward"], r["train step"]
        size = "x".join(map(str, cnnkit.model_info(name).input_shape[:2]))
        print(f"{name:22s} {size:>9s} {fa * 1e3:11.1f} {fb * 1e3:10.1f} {fr:6.2f} "
              f"{ta * 1e3:13.1f} {tb * 1e3:12.1f} {tr:6.2f}", flush=True)
        worst = max(worst, fr, tr)
    print(f"largest ratio: {worst:.2f} ({'goal met' if worst <= 1.0 else 'above the 1.00 goal'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
