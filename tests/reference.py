"""Reference trainable-parameter counts, copied from independent sources (never computed here).

Each entry: registered name -> (trainable parameters at the registry's default input and
classes, where the figure comes from). Every registered model must have a row: a model whose
count nobody has checked against an outside figure is not done. Where no outside figure exists,
the count is derived layer by layer from the paper's own table in a `derived_*.py` module.
"""

from derived_inception import INCEPTION_V2_PARAMS
from derived_resnet import RESNET152_V2_PARAMS

REFERENCE_PARAMS = {
    # Derived from LeCun et al. 1998: conv 5x5 1->6 (156) + conv 5x5 6->16 (2,416)
    # + dense 400->120 (48,120) + 120->84 (10,164) + 84->10 (850), full C3 connections.
    "lenet5": (61_706, "derived from LeCun et al. 1998, Section II.B"),
    # AlexNet, one tower, 227x227: conv 34,944 + 614,656 + 885,120 + 1,327,488 + 884,992,
    # dense 37,752,832 + 16,781,312 + 4,097,000.
    "alexnet": (62_378_344, "derived from Krizhevsky et al. 2012"),
    "zfnet": (62_357_608, "derived from Zeiler & Fergus 2013"),
    "vgg11": (132_863_336, "torchvision"),
    "vgg13": (133_047_848, "torchvision"),
    "vgg16": (138_357_544, "torchvision"),
    "vgg19": (143_667_240, "torchvision"),
    "googlenet": (6_998_552, "derived from Szegedy et al. 2014, Table 1"),
    "inception_v2": (INCEPTION_V2_PARAMS, "derived from Ioffe & Szegedy 2015, Figure 5"),
    "inception_v3": (23_834_568, "torchvision"),
    "inception_v4": (42_679_816, "timm"),
    "inception_resnet_v2": (55_843_464, "timm"),
    "xception": (22_855_952, "timm legacy_xception (= keras.applications Xception trainable)"),
    "resnet18": (11_689_512, "torchvision"),
    "resnet34": (21_797_672, "torchvision"),
    "resnet50": (25_557_032, "torchvision"),
    "resnet101": (44_549_160, "torchvision"),
    "resnet152": (60_192_808, "torchvision"),
    "resnet50_v2": (25_549_352, "timm resnetv2_50"),
    "resnet101_v2": (44_541_480, "timm resnetv2_101"),
    "resnet152_v2": (RESNET152_V2_PARAMS, "derived from He et al. 2016 and 2015, Table 1"),
    "resnext50_32x4d": (25_028_904, "torchvision"),
    "resnext101_32x8d": (88_791_336, "torchvision"),
}

# Variants that are options of a registered model rather than models of their own.
VARIANT_PARAMS = {
    ("alexnet", "groups=2"): (60_965_224, "derived from Krizhevsky et al. 2012"),
    ("vgg16", "batch_norm=True"): (138_365_992, "torchvision vgg16_bn"),
    ("googlenet", "aux_logits=True"): (13_378_280, "derived from Szegedy et al. 2014"),
    ("inception_v3", "aux_logits=True"): (27_161_264, "torchvision"),
    # The paper's plain nets (Fig. 3 middle): resnet18/34 less the three 1x1 projections and their
    # BatchNorms, summed in derived_resnet.py from Table 1.
    ("resnet18", "shortcut=False"): (11_515_688, "derived from He et al. 2015, Table 1"),
    ("resnet34", "shortcut=False"): (21_623_848, "derived from He et al. 2015, Table 1"),
}
