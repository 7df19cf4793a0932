"""Datasets, from the lessons on: classification and segmentation, with one offline fallback.

    from cnnkit import data
    digits = data.load("mnist", image_size=32)             # an ImageData
    pets = data.segmentation.load(64)                      # a SegmentationData

- `cnnkit.data.fallback`: the one path every loader takes: the dataset prepared on this
  machine, else a download after a reachability check of a few seconds, else an offline
  stand-in announced in one printed line (`CNNKIT_OFFLINE=1` goes straight to it).
- `cnnkit.data.classification`: images and one label each (`load`, `ImageData`, `Batches`);
  its names are this package's, so `cnnkit.data.load` is `classification.load`.
- `cnnkit.data.segmentation`: images and one label per pixel (Oxford-IIIT Pet, or generated
  shapes), and mean IoU. `cnnkit.segmentation`, its old path, is the same module.

TensorFlow is optional: tf.data and tensorflow-datasets are imported only on the online path.
To replace part of the fallback in a test, patch `cnnkit.data.fallback`, where it is looked up.
"""

from cnnkit.data import fallback
from cnnkit.data import classification
from cnnkit.data import segmentation
from cnnkit.data.classification import (DEFAULT_SPLITS, FALLBACKS, PHOTOS, SPLITS, Batches,
                                        ImageData, array_batches, load, on_canvas, splits_of,
                                        tf_data_batches)
from cnnkit.data.fallback import (NO_TENSORFLOW, OFFLINE_VAR, PROBE_HOST, PROBE_PORT,
                                  DatasetBase, Unavailable, announce_offline, announce_online,
                                  fetch_online, from_tfds, network_reachable, offline_forced,
                                  online_unavailable, tensorflow_available)
from cnnkit.data.segmentation import SegmentationData

_Unavailable = Unavailable  # the old module's private name

__all__ = ["ImageData", "SegmentationData", "DatasetBase", "Batches", "load", "array_batches",
           "tf_data_batches", "offline_forced", "network_reachable", "tensorflow_available",
           "online_unavailable", "from_tfds", "fetch_online", "announce_online",
           "announce_offline", "Unavailable", "FALLBACKS", "SPLITS", "splits_of", "on_canvas",
           "fallback", "classification", "segmentation"]
