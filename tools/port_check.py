"""Port every keras.applications twin's (random) weights into cnnkit and print the differences.

    python tools/port_check.py [name ...]

Offline: `cnnkit.weights.port_differences` builds each twin with weights=None, random biases
and BatchNorm statistics, ports it with and without the classifier and compares the outputs on
the same pixels. tests/test_weights.py asserts the same figures are <= 1e-4.
"""

import sys
import time

import keras

from cnnkit.weights import TWINS, port_differences

# Keras's Inception and Xception refuse fewer pixels; 40 gives strided layers odd and even sizes.
SIZES = {"inception_v3": 75, "inception_resnet_v2": 75, "xception": 71}


def main(names):
    print(f"{'model':20s} {'keras.applications':18s} {'logits max|diff|':>16s} "
          f"{'max|logit|':>10s} {'no top max|diff|':>16s} {'max|map|':>9s} {'s':>5s}")
    for name in names or TWINS:
        start, size = time.perf_counter(), SIZES.get(name, 40)
        results = port_differences(name, input_shape=(size, size, 3))
        (top, top_scale), (maps, maps_scale) = results.values()
        print(f"{name:20s} {TWINS[name]:18s} {top:16.1e} {top_scale:10.3g} {maps:16.1e} "
              f"{maps_scale:9.3g} {time.perf_counter() - start:5.1f}", flush=True)
        keras.backend.clear_session(free_memory=True)


if __name__ == "__main__":
    main(sys.argv[1:])
