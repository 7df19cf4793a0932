"""Every use of Keras's private API in cnnkit, in one module (written for Keras 3.10 to 3.15).

Keras 3 has no public way to walk a model's graph node by node, no public base class for
preprocessing layers that work inside tf.data on every backend, and no public hook for the
download keras.applications makes. cnnkit needs all three; each is reached here and nowhere
else, and tests/test_private_api.py checks each one, so that a Keras upgrade that moves one of
them fails one named test and changes one file.
"""

import keras

__all__ = ["DataLayer", "inbound_nodes", "keras_history_operation", "file_utils",
           "CONVOLUTION_OP"]

# The base of Keras's own preprocessing layers: a subclass gets `self.backend`, the ops of the
# backend running the call (TensorFlow inside tf.data, whatever Keras runs on elsewhere). Named
# DataLayer since Keras 3.11, TFDataLayer before.
try:
    from keras.src.layers.preprocessing.data_layer import DataLayer
except ImportError:
    from keras.src.layers.preprocessing.tf_data_layer import TFDataLayer as DataLayer


def inbound_nodes(layer) -> list:
    """The nodes where `layer` was called (`layer._inbound_nodes`), each with `input_tensors`
    and `output_tensors`: how cnnkit walks a functional model's graph."""
    return layer._inbound_nodes


def keras_history_operation(tensor):
    """The layer that produced a symbolic tensor (`tensor._keras_history`), or None."""
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        return None
    return history.operation if hasattr(history, "operation") else history[0]


def file_utils():
    """The module whose `get_file` keras.applications calls to download weights: tests replace
    that function to stand in for a download (`keras.utils.get_file` is the same function, but
    keras.applications looks it up in this module at each call)."""
    from keras.src.utils import file_utils as module

    return module


# The method of Keras's base convolution that computes the convolution itself (after padding
# checks, before the bias): GroupConv2D overrides it to split the groups on TensorFlow.
CONVOLUTION_OP = "convolution_op"
if not hasattr(keras.layers.Conv2D, CONVOLUTION_OP):  # not an assert: python -O drops those
    raise ImportError("keras.layers.Conv2D no longer has convolution_op: "
                      "cnnkit.layers.GroupConv2D needs another way to replace the grouped "
                      "convolution")
