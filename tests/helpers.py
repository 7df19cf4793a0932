"""What the test files share: one small-model builder, one tensor-to-NumPy conversion and one
training step that reports the weights it left unchanged.

A plain module, imported as `from helpers import small, to_numpy` (as `reference` is), rather
than fixtures in conftest.py: the tests call these with arguments inside parametrized tests,
and the root conftest.py is also loaded by nbval for the notebooks.
"""

import sys

import numpy as np

import cnnkit
import keras

to_numpy = keras.ops.convert_to_numpy  # works for every backend's tensors, on any device


_BUILT = {}


def small(name, size=64, **options):
    """Registered model `name` at size x size (with its registry channels) and `options`,
    built once per test file: its layers and weights do not depend on the size.

    The cache is kept per calling module, so a test that changes a model's weights
    (tests/test_senet.py, test_shufflenet.py) can reach only its own file's tests, which run
    on one worker in file order; another file never receives a model whose weights depend on
    which files that worker ran before.
    """
    owner = sys._getframe(1).f_globals.get("__name__")  # the test file (through a partial too)
    key = (owner, name, size, tuple(sorted(options.items())))
    if key not in _BUILT:
        channels = cnnkit.model_info(name).input_shape[2]
        _BUILT[key] = cnnkit.build(name, input_shape=(size, size, channels), **options)
    return _BUILT[key]


def unchanged_after_one_step(model, x, targets, loss):
    """One eager SGD step on x with `loss` on every output (`targets`: one per output); the
    paths of the trainable weights it left unchanged (none, for a model whose every weight
    learns).

    Eager, because tracing a 500-layer training step into a graph takes longer than running it.
    Also checks the loss is finite, the optimizer counted one step and no frozen layer moved.
    """
    keras.utils.set_random_seed(0)
    outputs = len(model.outputs)
    model.compile(optimizer=keras.optimizers.SGD(0.1), run_eagerly=True,
                  loss=loss if outputs == 1 else [loss] * outputs)
    frozen = [w for layer in model.layers if not layer.trainable for w in layer.weights]
    before = [np.array(w) for w in model.trainable_weights]
    fixed = [np.array(w) for w in frozen]
    value = model.train_on_batch(x, targets[0] if outputs == 1 else list(targets))
    assert np.all(np.isfinite(value))
    assert int(model.optimizer.iterations) == 1
    for w, b in zip(frozen, fixed, strict=True):
        np.testing.assert_array_equal(np.array(w), b, err_msg=f"frozen {w.path} moved")
    return [w.path for w, b in zip(model.trainable_weights, before, strict=True)
            if np.array_equal(np.array(w), b)]
