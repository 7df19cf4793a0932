"""The old path of `cnnkit.data.segmentation`: importing it gives that module itself, so its
names, private ones included, and a test's monkeypatching reach the code that runs."""

import sys

from cnnkit.data import segmentation as _segmentation

sys.modules[__name__] = _segmentation
