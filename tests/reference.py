"""Reference trainable-parameter counts, copied from independent sources (never computed here).

Each entry: registered name -> (trainable parameters at the registry's default input and
classes, where the figure comes from). Every registered model must have a row: a model whose
count nobody has checked against an outside figure is not done. Where no outside figure exists,
the count is derived layer by layer from the paper's own table in a `derived_*.py` module.
"""

from derived_airbench import AIRBENCH94_PARAMS
from derived_detnet import DETNET59_PARAMS
from derived_inception import INCEPTION_V2_PARAMS
from derived_resnet import RESNET152_V2_PARAMS
from derived_shufflenet import SHUFFLENET_V1_PARAMS
from derived_snet import SNET_PARAMS, THUNDERNET_FEATURES_PARAMS

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
    # timm's v2 stem has no bias; Keras's (and cnnkit's) keeps its 64, which no BatchNorm cancels.
    "resnet50_v2": (25_549_352 + 64, "timm resnetv2_50 + the stem's 64 biases"),
    "resnet101_v2": (44_541_480 + 64, "timm resnetv2_101 + the stem's 64 biases"),
    "resnet152_v2": (RESNET152_V2_PARAMS, "derived from He et al. 2016 and 2015, Table 1"),
    "resnext50_32x4d": (25_028_904, "torchvision"),
    "resnext101_32x8d": (88_791_336, "torchvision"),
    # 09 dense connections
    "densenet121": (7_978_856, "torchvision (= keras.applications DenseNet121 trainable)"),
    "densenet169": (14_149_480, "torchvision (= keras.applications DenseNet169 trainable)"),
    "densenet201": (20_013_928, "torchvision (= keras.applications DenseNet201 trainable)"),
    "dpn68": (12_611_602, "timm"),
    "dpn92": (37_668_392, "timm"),
    "dpn98": (61_570_728, "timm"),
    "dpn107": (86_917_800, "timm"),
    "dpn131": (79_254_504, "timm"),
    "vovnet39": (22_600_296, "timm vovnet39a"),
    "vovnet57": (36_640_296, "timm vovnet57a"),
    "vovnet39_v2": (24_568_936, "timm ese_vovnet39b"),
    # 10 channel attention
    "se_resnet50": (28_088_024, "timm seresnet50"),
    "se_resnext50_32x4d": (27_559_896, "timm seresnext50_32x4d"),
    "senet154": (115_088_984, "timm legacy_senet154"),
    "sk_resnet18": (11_958_056, "timm skresnet18"),
    "sk_resnet34": (22_282_376, "timm skresnet34"),
    "sk_resnext50_32x4d": (27_479_784, "timm skresnext50_32x4d"),
    "resnest14": (10_611_688, "timm resnest14d"),
    "resnest26": (17_069_448, "timm resnest26d"),
    "resnest50": (27_483_240, "timm resnest50d"),
    # 11 efficient design
    "mobilenet_v1": (4_231_976, "timm mobilenetv1_100 (= keras.applications MobileNet trainable)"),
    "mobilenet_v2": (3_504_872, "torchvision (= keras.applications MobileNetV2 trainable)"),
    "mobilenet_v3_small": (2_542_856, "torchvision (= keras.applications MobileNetV3Small "
                                      "trainable)"),
    "mobilenet_v3_large": (5_483_032, "torchvision (= keras.applications MobileNetV3Large "
                                      "trainable)"),
    "shufflenet_v1": (SHUFFLENET_V1_PARAMS[3], "derived from Zhang et al. 2017, Table 1 "
                                               "(ShuffleNet 1x, g = 3)"),
    "shufflenet_v2_x0_5": (1_366_792, "torchvision"),
    "shufflenet_v2_x1_0": (2_278_604, "torchvision"),
    "shufflenet_v2_x1_5": (3_503_624, "torchvision"),
    "shufflenet_v2_x2_0": (7_393_996, "torchvision"),
    "ghostnet": (5_182_508, "timm ghostnet_100"),
    "efficientnet_b0": (5_288_548, "torchvision (= keras.applications EfficientNetB0 trainable)"),
    "efficientnet_b1": (7_794_184, "torchvision (= keras.applications EfficientNetB1 trainable)"),
    "efficientnet_b2": (9_109_994, "torchvision (= keras.applications EfficientNetB2 trainable)"),
    "efficientnet_b3": (12_233_232, "torchvision (= keras.applications EfficientNetB3 trainable)"),
    "efficientnet_b4": (19_341_616, "torchvision (= keras.applications EfficientNetB4 trainable)"),
    "efficientnet_b5": (30_389_784, "torchvision (= keras.applications EfficientNetB5 trainable)"),
    "efficientnet_b6": (43_040_704, "torchvision (= keras.applications EfficientNetB6 trainable)"),
    "efficientnet_b7": (66_347_960, "torchvision (= keras.applications EfficientNetB7 trainable)"),
    # 12 re-parameterization: the training-time models, three branches per block
    "repvgg_a0": (9_108_968, "timm repvgg_a0"),
    "repvgg_a1": (14_092_264, "timm repvgg_a1"),
    "repvgg_a2": (28_210_600, "timm repvgg_a2"),
    "repvgg_b0": (15_817_960, "timm repvgg_b0"),
    "repvgg_b1": (57_415_016, "timm repvgg_b1"),
    # 14 detection backbones
    "darknet53": (41_609_928, "timm darknet53"),
    # DetNet-59: ResNet-50 stages 1-4 + two stages of dilated bottlenecks, summed in
    # derived_detnet.py from Table 1.
    "detnet59": (DETNET59_PARAMS, "derived from Li et al. 2018, Table 1"),
    # ThunderNet's SNets, summed in derived_snet.py from Table 1 (5x5 depthwise ShuffleNetV2 units).
    "snet49": (SNET_PARAMS["snet49"], "derived from Qin et al. 2019, Table 1"),
    "snet146": (SNET_PARAMS["snet146"], "derived from Qin et al. 2019, Table 1"),
    "snet535": (SNET_PARAMS["snet535"], "derived from Qin et al. 2019, Table 1"),
    # 16 fast training
    "airbench94": (AIRBENCH94_PARAMS, "derived from Jordan 2024, Section 3.1"),
    # Networks that output maps (task != "classification"). No outside figure covers most of
    # them: each is derived from the paper's layer sizes in its family's test file, which checks
    # its derivation gives this figure (tests/test_fcn_unet.py, test_bisenet_dfanet.py,
    # test_fpn_hourglass_detnet.py; ThunderNet's in derived_snet.py).
    "fcn32s": (134_346_581, "derived from Long et al. 2015 (VGG16 + 32x head), test_fcn_unet"),
    "fcn16s": (134_364_410, "derived from Long et al. 2015 (+ the pool4 skip), test_fcn_unet"),
    "fcn8s": (134_376_863, "derived from Long et al. 2015 (+ the pool3 skip), test_fcn_unet"),
    "unet": (31_030_658, "derived from Ronneberger et al. 2015, Figure 1, test_fcn_unet"),
    # The authors' Nest_Net has one sigmoid map (9,041,601); the registry's default two classes.
    "unet_plusplus": (9_041_634, "derived from Zhou et al. 2018 and its code, test_fcn_unet"),
    "bisenet": (12_894_163, "derived from Yu et al. 2018, Fig. 2, test_bisenet_dfanet"),
    "dfanet": (1_813_251, "derived from Li et al. 2019, Table 1, test_bisenet_dfanet"),
    "dfanet_b": (1_087_011, "derived from Li et al. 2019, Table 1, test_bisenet_dfanet"),
    # torchvision resnet50 less its classifier (23,508,032) + the pyramid (3,344,384).
    "fpn": (26_852_416, "derived from Lin et al. 2017, Sec. 3, test_fpn_hourglass_detnet"),
    "hourglass": (25_369_664, "derived from Newell et al. 2016 (hg.lua), "
                              "test_fpn_hourglass_detnet"),
    "thundernet_features": (THUNDERNET_FEATURES_PARAMS["snet146"],
                            "derived from Qin et al. 2019, Table 1 and Sec. 3"),
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
    # RepVGG after re-parameterization: one 3x3 convolution with bias per block.
    ("repvgg_a0", "deploy"): (8_309_384, "timm reparameterize_model"),
    ("repvgg_a1", "deploy"): (12_789_864, "timm reparameterize_model"),
    ("repvgg_a2", "deploy"): (25_499_944, "timm reparameterize_model"),
    ("repvgg_b0", "deploy"): (14_339_048, "timm reparameterize_model"),
    ("repvgg_b1", "deploy"): (51_829_480, "timm reparameterize_model"),
    # ShuffleNet 1x with the other group counts of Table 1, summed in derived_shufflenet.py.
    ("shufflenet_v1", "groups=1"): (SHUFFLENET_V1_PARAMS[1], "derived from Zhang et al. 2017, "
                                                              "Table 1"),
    ("shufflenet_v1", "groups=2"): (SHUFFLENET_V1_PARAMS[2], "derived from Zhang et al. 2017, "
                                                              "Table 1"),
    ("shufflenet_v1", "groups=4"): (SHUFFLENET_V1_PARAMS[4], "derived from Zhang et al. 2017, "
                                                              "Table 1"),
    ("shufflenet_v1", "groups=8"): (SHUFFLENET_V1_PARAMS[8], "derived from Zhang et al. 2017, "
                                                              "Table 1"),
    # The options tests/test_models.py builds map networks with (MAP_OPTIONS there): every
    # optional head, or the same code on fewer layers. Derived in the family's test file.
    ("unet_plusplus", "deep_supervision=True"): (9_041_832, "derived, test_fcn_unet"),
    ("bisenet", "aux_heads=True"): (13_494_777, "derived, test_bisenet_dfanet"),
    ("fpn", "backbone='resnet18'"): (13_783_616, "derived, test_fpn_hourglass_detnet"),
    ("hourglass", "stacks=2, order=2"): (3_985_376, "derived, test_fpn_hourglass_detnet"),
}
