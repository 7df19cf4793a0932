"""Each private API cnnkit relies on, checked where it is reached: Keras's (all in
cnnkit._keras_internals) and nbval's (conftest.py). A Keras or nbval upgrade that moves one fails
the test named after it."""

import numpy as np
import pytest

import keras
from keras import layers

from cnnkit import _keras_internals as internals
from cnnkit.layers import GroupConv2D


def small_graph():
    inputs = keras.Input((8, 8, 3))
    shared = layers.Conv2D(4, 3, padding="same", name="shared")
    a = shared(inputs)
    b = shared(layers.Conv2D(3, 1, name="mix")(inputs))
    return keras.Model(inputs, layers.Add(name="add")([a, b])), shared


def test_inbound_nodes_lists_each_call_with_its_input_and_output_tensors():
    model, shared = small_graph()
    nodes = internals.inbound_nodes(shared)
    assert len(nodes) == 2  # called twice
    assert [tuple(n.output_tensors[0].shape) for n in nodes] == [(None, 8, 8, 4)] * 2
    assert nodes[0].input_tensors[0] is model.inputs[0]
    add_node, = internals.inbound_nodes(model.get_layer("add"))
    assert len(add_node.input_tensors) == 2


def test_keras_history_operation_is_the_layer_that_made_a_tensor():
    model, _ = small_graph()
    assert internals.keras_history_operation(model.get_layer("add").output) is model.get_layer("add")
    assert internals.keras_history_operation(np.zeros(3)) is None


def test_data_layer_is_the_base_of_keras_own_preprocessing_layers_and_gives_backend_ops():
    assert issubclass(layers.RandomFlip, internals.DataLayer)

    class Shift(internals.DataLayer):
        def call(self, x):
            return self.backend.numpy.add(x, 1.0)

    out = keras.ops.convert_to_numpy(Shift()(np.full((1, 2), 2.0, "float32")))
    assert np.array_equal(out, [[3.0, 3.0]])


def test_file_utils_get_file_is_what_keras_applications_downloads_with(monkeypatch, tmp_path):
    calls = []

    def fake(fname, origin, **kwargs):
        calls.append(origin)
        raise RuntimeError("stub")

    monkeypatch.setattr(internals.file_utils(), "get_file", fake)
    with pytest.raises(RuntimeError, match="stub"):
        keras.applications.MobileNetV2(weights="imagenet", include_top=False,
                                       input_shape=(96, 96, 3))
    assert len(calls) == 1 and calls[0].startswith("https://")


def test_conv2d_computes_through_convolution_op_which_group_conv2d_overrides():
    seen = []

    class Recording(layers.Conv2D):
        def convolution_op(self, inputs, kernel):
            seen.append(tuple(kernel.shape))
            return super().convolution_op(inputs, kernel)

    x = np.random.default_rng(0).normal(size=(1, 6, 6, 4)).astype("float32")
    Recording(8, 3)(x)
    assert seen == [(3, 3, 4, 8)]
    assert getattr(GroupConv2D, internals.CONVOLUTION_OP) is not getattr(layers.Conv2D,
                                                                        internals.CONVOLUTION_OP)


def test_nbval_compares_outputs_through_the_method_conftest_wraps():
    plugin = pytest.importorskip("nbval.plugin", reason="nbval runs the notebooks only")
    import inspect

    import conftest

    assert plugin.IPyNbCell.compare_outputs.__name__ == "_compare_outputs_without_stderr"
    original = inspect.signature(conftest._compare_outputs)  # nbval's own, which the wrapper calls
    assert list(original.parameters) == ["self", "test", "ref", "skip_compare"]
