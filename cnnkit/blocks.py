"""Building blocks that several architectures share: each takes a tensor and returns a tensor."""

from keras import layers

__all__ = ["global_pool"]


def global_pool(x, pooling, name_prefix=""):
    """The `pooling` option of a headless model: None keeps the maps, 'avg' or 'max' pools them."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=f"{name_prefix}avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name=f"{name_prefix}max_pool")(x)
    return x
