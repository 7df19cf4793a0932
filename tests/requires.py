"""Markers for tests that need what a backend environment may lack: the skip names it."""

import importlib.util

import pytest

tensorflow = pytest.mark.skipif(
    importlib.util.find_spec("tensorflow") is None,
    reason="needs TensorFlow (tf.data or tensorflow-datasets), not installed in this environment")
