"""Custom layers and activations, each registered for `.keras` serialization (no Lambda)."""

from cnnkit.layers.activations import scaled_tanh

__all__ = ["scaled_tanh"]
