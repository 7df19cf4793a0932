"""Every architecture of the kit, one module per family; importing a module registers its models.

The import order is the course order, which is the order `cnnkit.list_models()` lists them in.
"""

from cnnkit.models import lenet  # noqa: F401  (06 classic CNNs)
from cnnkit.models import alexnet, vgg  # noqa: F401  (06 classic CNNs)
from cnnkit.models import googlenet, inception, xception  # noqa: F401  (07 inception)
from cnnkit.models import resnet  # noqa: F401  (08 resnet)
from cnnkit.models import densenet, dpn, vovnet  # noqa: F401  (09 dense connections)
from cnnkit.models import senet, sknet, resnest  # noqa: F401  (10 channel attention)
from cnnkit.models import mobilenet, shufflenet, ghostnet, efficientnet  # noqa: F401  (11)
from cnnkit.models import repvgg  # noqa: F401  (12 re-parameterization)
from cnnkit.models import fcn, unet, bisenet, dfanet  # noqa: F401  (13 segmentation)
from cnnkit.models import darknet, fpn, hourglass, detnet, thundernet  # noqa: F401  (14)
from cnnkit.models import airbench  # noqa: F401  (16 fast training)

__all__ = ["lenet", "alexnet", "vgg", "googlenet", "inception", "xception", "resnet",
           "densenet", "dpn", "vovnet", "senet", "sknet", "resnest", "mobilenet", "shufflenet",
           "ghostnet", "efficientnet", "repvgg", "fcn", "unet", "bisenet", "dfanet", "darknet",
           "fpn", "hourglass", "detnet", "thundernet", "airbench"]
