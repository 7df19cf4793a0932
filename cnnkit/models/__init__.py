"""Every architecture of the kit, one module per family; importing a module registers its models."""

from cnnkit.models.lenet import lenet5

__all__ = ["lenet5"]
