"""Graders that exercises call: each prints PASS or FAIL with a reason and raises on failure.

`core` holds what every grader shares (the verdict, the wrapped student call, the checks of what a
student returns); each lesson's graders live in the module named by its lesson. Notebooks call
them as `grading.check_...`.
"""

from .core import GradeFailure, GraderError
from .epochs_iterations import *  # noqa: F401,F403  (01)
from .building_blocks import *  # noqa: F401,F403  (02)
from .optimizers import *  # noqa: F401,F403  (03)
from .transfer_learning import *  # noqa: F401,F403  (04)
from .data_augmentation import *  # noqa: F401,F403  (05)
from .classic_cnns import *  # noqa: F401,F403  (06)
from .inception import *  # noqa: F401,F403  (07)
from .resnet import *  # noqa: F401,F403  (08)
from .dense_connections import *  # noqa: F401,F403  (09)
from .channel_attention import *  # noqa: F401,F403  (10)
from .efficient_design import *  # noqa: F401,F403  (11)
from .reparameterization import *  # noqa: F401,F403  (12)
from .segmentation import *  # noqa: F401,F403  (13)
from .detection_blocks import *  # noqa: F401,F403  (14)
from .what_networks_learn import *  # noqa: F401,F403  (15)
from .fast_training import *  # noqa: F401,F403  (16)
from .scaling_out import *  # noqa: F401,F403  (17)
from . import (building_blocks, channel_attention, classic_cnns, data_augmentation,
               dense_connections, detection_blocks, efficient_design, epochs_iterations,
               fast_training, inception, optimizers, reparameterization, resnet, scaling_out,
               segmentation, transfer_learning, what_networks_learn)

LESSONS = {"01": epochs_iterations, "02": building_blocks, "03": optimizers,
           "04": transfer_learning, "05": data_augmentation, "06": classic_cnns, "07": inception,
           "08": resnet, "09": dense_connections, "10": channel_attention,
           "11": efficient_design, "12": reparameterization, "13": segmentation,
           "14": detection_blocks, "15": what_networks_learn, "16": fast_training,
           "17": scaling_out}
"""Each lesson's grader module, by lesson number."""

__all__ = ["GradeFailure", "GraderError", "LESSONS"] + [
    name for module in LESSONS.values() for name in module.__all__]
