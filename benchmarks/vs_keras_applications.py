"""Time cnnkit's models against their keras.applications twins: forward pass and training step.

    python benchmarks/vs_keras_applications.py                      # all 26 twins, ~20 minutes
    python benchmarks/vs_keras_applications.py resnet50 vgg16 --batch 8 --repeats 9

Both models of a pair get the same batch and the same compiled Keras paths (`predict_on_batch`
for inference, `train_on_batch` with SGD for a training step). After a warm-up, the two are timed
alternately in one process (cnnkit first on even rounds, Keras first on odd ones), so load on a
noisy machine hits both alike; the ratio is cnnkit / keras.applications of the median times.
A ratio <= 1.00 means the kit's model is at least as fast as the one a learner would otherwise use.

The noise band: the first row times keras.applications' ResNet50 against a second copy of
itself, in the same way, so its distance from 1.00 is what this machine's noise alone makes of a
ratio; each row also gives the spread (25th to 75th percentile) of its per-round ratios.
`--batch auto` (the default) gives every model about the pixels of four 224x224 images, and
`--budget` (minutes) sets each model's repeats from its warm-up times so the whole run fits.
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


NOISE_ROW = "resnet50"  # keras.applications' ResNet50 against itself


def build_pair(name, noise=False):
    info = cnnkit.model_info(name)
    twin = getattr(keras.applications, TWINS[name])
    ours = (twin(weights=None, input_shape=info.input_shape) if noise
            else cnnkit.build(name))
    theirs = twin(weights=None, input_shape=info.input_shape)
    for model in (ours, theirs):
        model.compile(optimizer=keras.optimizers.SGD(0.01),
                      loss="sparse_categorical_crossentropy")
    return info, ours, theirs


def seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def auto_batch(input_shape):
    """About the pixels of four 224x224 images, at least one image."""
    return max(1, round(4 * (224 * 224) / (input_shape[0] * input_shape[1])))


def quartiles(values):
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def compare(name, batch, repeats, warmup=2, budget_s=None, noise=False):
    """Median times and ratios of cnnkit / keras (forward, train step); with `budget_s`, the
    repeats are as many as fit in it (at least 3, at most `repeats`), from the warm-up times."""
    info, ours, theirs = build_pair(name, noise)
    rng = np.random.default_rng(0)
    x = rng.random((batch, *info.input_shape), dtype=np.float32)
    y = rng.integers(0, 1000, batch)
    tasks = {"forward": lambda m: m.predict_on_batch(x),
             "train step": lambda m: m.train_on_batch(x, y)}
    result = {}
    last_warmup = {}
    for task, run in tasks.items():
        for _ in range(warmup):
            last_warmup[task] = seconds(lambda: run(ours)) + seconds(lambda: run(theirs))
    rounds = repeats
    if budget_s is not None:
        rounds = int(min(repeats, max(3, budget_s // sum(last_warmup.values()))))
    for task, run in tasks.items():
        times = {"cnnkit": [], "keras": []}
        for round_ in range(rounds):
            pair = [("cnnkit", ours), ("keras", theirs)]
            for who, model in (pair if round_ % 2 == 0 else pair[::-1]):
                times[who].append(seconds(lambda: run(model)))
        a, b = statistics.median(times["cnnkit"]), statistics.median(times["keras"])
        per_round = [x / y for x, y in zip(times["cnnkit"], times["keras"])]
        result[task] = (a, b, a / b, *quartiles(per_round))
    keras.backend.clear_session(free_memory=True)
    return result, rounds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="cnnkit names (default: every twin)")
    parser.add_argument("--batch", default="auto",
                        help="images per batch, or auto (about four 224x224 images' pixels)")
    parser.add_argument("--repeats", type=int, default=9, help="at most this many rounds")
    parser.add_argument("--budget", type=float, default=20.0,
                        help="minutes for the whole run; sets each model's rounds (0: no limit)")
    args = parser.parse_args(argv)
    available = [n for n in TWINS if n in cnnkit.list_models()]
    names = args.models or available
    unknown = [n for n in names if n not in available]
    if unknown:
        parser.error(f"no keras.applications twin in cnnkit for {unknown}; "
                     f"choose from {available}")
    print(f"keras {keras.__version__}, backend {keras.backend.backend()}, batch {args.batch}, "
          f"median of up to {args.repeats} alternating rounds after 2 warm-up runs, within "
          f"{args.budget:g} minutes; times in ms; spread: 25th-75th percentile of the per-round "
          "ratios", flush=True)
    header = (f"{'model':22s} {'input':>9s} {'batch':>5s} {'rounds':>6s} {'fwd cnnkit':>11s} "
              f"{'fwd keras':>10s} {'ratio':>6s} {'spread':>11s} {'train cnnkit':>13s} "
              f"{'train keras':>12s} {'ratio':>6s} {'spread':>11s}")
    print(header)
    start = time.perf_counter()
    rows = [(f"keras vs keras ({NOISE_ROW})", NOISE_ROW, True)] + [(n, n, False) for n in names]
    worst, band = 0.0, 0.0
    for i, (label, name, noise) in enumerate(rows):
        shape = cnnkit.model_info(name).input_shape
        batch = auto_batch(shape) if args.batch == "auto" else int(args.batch)
        budget_s = None
        if args.budget > 0:
            left = args.budget * 60 - (time.perf_counter() - start)
            budget_s = max(0.0, left / (len(rows) - i)) * 0.6  # the rest: building, warm-up
        r, rounds = compare(name, batch, args.repeats, budget_s=budget_s, noise=noise)
        (fa, fb, fr, fl, fh), (ta, tb, tr, tl, th) = r["forward"], r["train step"]
        size = "x".join(map(str, shape[:2]))
        print(f"{label:22s} {size:>9s} {batch:5d} {rounds:6d} {fa * 1e3:11.1f} {fb * 1e3:10.1f} "
              f"{fr:6.2f} {fl:5.2f}-{fh:5.2f} {ta * 1e3:13.1f} {tb * 1e3:12.1f} {tr:6.2f} "
              f"{tl:5.2f}-{th:5.2f}", flush=True)
        if noise:
            band = max(abs(fr - 1), abs(tr - 1))
        else:
            worst = max(worst, fr, tr)
    minutes = (time.perf_counter() - start) / 60
    print(f"{len(names)} twins in {minutes:.1f} minutes; noise band (keras against itself): "
          f"±{band:.2f}; largest ratio: {worst:.2f} "
          f"({'within the band of 1.00' if worst <= 1.0 + band else 'above 1.00 beyond the band'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
