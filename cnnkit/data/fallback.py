"""The one dataset fallback: tensorflow-datasets online, an announced stand-in offline, no hang.

Every loader of `cnnkit.data` (classification and segmentation) comes through here, in order:
1. the dataset already prepared on this machine (tensorflow-datasets with download=False);
2. a download, but only after a reachability check of a few seconds: without a network
   `tfds.load` retries for minutes before it gives up;
3. the loader's offline stand-in, announced with one printed line that says what was used
   instead and why (`announce_offline`): never a silent swap.
`CNNKIT_OFFLINE=1` skips straight to 3, and so does a machine without TensorFlow and
tensorflow-datasets (the printed line names the missing package). `fetch_online` runs 1 and 2,
or says why the stand-in must serve; a loader without a stand-in raises instead.

Nothing here imports TensorFlow: a loader's `fetch(download)` imports tensorflow-datasets
itself, and only once `online_unavailable()` has found it installed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import threading

__all__ = ["DatasetBase", "Unavailable", "fetch_online", "from_tfds", "online_unavailable",
           "offline_forced", "network_reachable", "tensorflow_available", "announce_online",
           "announce_offline", "tfds_source", "stand_in_source"]

OFFLINE_VAR = "CNNKIT_OFFLINE"
# tensorflow-datasets downloads and mirrors its data through Google Cloud Storage.
PROBE_HOST, PROBE_PORT = "storage.googleapis.com", 443
# The start of every online dataset's `source`; anything else is a stand-in.
ONLINE = "tensorflow-datasets"

# Why the offline path is taken on a machine without TensorFlow, and how to get the online one.
NO_TENSORFLOW = ("tensorflow-datasets needs TensorFlow, which is not installed: "
                 "pip install 'cnnkit[tensorflow]' for the online datasets")


class Unavailable(Exception):
    """tensorflow-datasets could not provide the dataset; the message says why."""


def tensorflow_available() -> bool:
    """Whether TensorFlow and tensorflow-datasets are installed: the online path needs both."""
    return all(importlib.util.find_spec(m) is not None
               for m in ("tensorflow", "tensorflow_datasets"))


def offline_forced() -> bool:
    """Whether CNNKIT_OFFLINE asks for the offline data."""
    return os.environ.get(OFFLINE_VAR, "").strip().lower() not in ("", "0", "false", "no")


def network_reachable(host: str = PROBE_HOST, port: int = PROBE_PORT, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to host:port opens within `timeout` seconds (DNS included)."""

    answer = []

    def connect():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                answer.append(True)
        except Exception:  # noqa: BLE001  (any failure means: not reachable)
            pass

    # A daemon thread bounds the DNS lookup too, which socket timeouts do not cover, and a
    # lookup that never returns cannot hold up the interpreter's exit.
    probe = threading.Thread(target=connect, daemon=True)
    probe.start()
    probe.join(timeout + 0.5)
    return bool(answer)


def online_unavailable() -> str | None:
    """Why the online path is not even tried (CNNKIT_OFFLINE=1, or no TensorFlow), or None."""
    if offline_forced():
        return f"{OFFLINE_VAR}=1"
    if not tensorflow_available():
        return NO_TENSORFLOW
    return None


def from_tfds(name, fetch):
    """`fetch(download)` from tensorflow-datasets: the copy prepared on this machine
    (download=False), else a download, tried only after a reachability check (without a
    network tfds retries for minutes). Returns (what fetch returned, how it was had); raises
    Unavailable with the reason."""
    absl_logger = logging.getLogger("absl")  # tensorflow-datasets logs through absl
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # hide its "no dataset_info.json" warnings
    try:
        try:
            return fetch(False), "prepared on this machine"
        except Exception:  # noqa: BLE001  (versions differ in what "not prepared" raises)
            pass  # no usable local copy: a download is needed
        if not network_reachable():
            raise Unavailable(f"no network: {PROBE_HOST} unreachable, and {name} is not "
                              "prepared on this machine")
        try:
            return fetch(True), "downloaded"
        except Exception as err:  # any failed download falls back, with its reason shown
            raise Unavailable(f"the download failed: {type(err).__name__}: {err}") from err
    finally:
        absl_logger.setLevel(level)


def fetch_online(name, fetch, *, stand_in=True):
    """The online half of every loader: (what `fetch(download)` returned, how it was had, None)
    from tensorflow-datasets (`from_tfds`), or (None, None, why not) when the stand-in must
    serve: CNNKIT_OFFLINE=1, no TensorFlow, no network, a failed download. A dataset without
    a stand-in (stand_in=False) raises a RuntimeError with that reason instead."""
    reason = online_unavailable()
    if reason is not None:
        if not stand_in:
            raise RuntimeError(f"{name} could not be loaded: {reason}.")
        return None, None, reason
    try:
        result, how = from_tfds(name, fetch)
    except Unavailable as err:
        if not stand_in:
            raise RuntimeError(f"{name} could not be loaded: {err}") from err
        return None, None, str(err)
    return result, how, None


def tfds_source(name, how) -> str:
    """A dataset's `source` when tensorflow-datasets provided it."""
    return f"{ONLINE} {name} ({how})"


def stand_in_source(description) -> str:
    """A dataset's `source` when an offline stand-in replaced it."""
    return f"offline stand-in: {description}"


def announce_online(source, name, how, n_train, n_test, unit="examples", details=""):
    """The line that says `name` came from tensorflow-datasets (a loader's verbose=True)."""
    print(f"{source}: {name} from {ONLINE} ({how}): {n_train:,} train / {n_test:,} test "
          f"{unit}{details}.")


def announce_offline(source, name, reason, description, n_train, n_test, unit="examples"):
    """The one line that says a stand-in replaces `name`, and why: never a silent swap, so it
    is printed whatever a loader's `verbose` says."""
    print(f"{source}: OFFLINE, {name} unavailable ({reason}); using {description}, "
          f"{n_train:,} train / {n_test:,} test {unit}.")


class DatasetBase:
    """What every dataset of `cnnkit.data` has: a `name`, a `source` (`tfds_source` or
    `stand_in_source`: where its examples came from) and `class_names`. The loaders' dataclasses
    (`ImageData`, `SegmentationData`) declare those fields and inherit these properties."""

    name: str
    source: str
    class_names: tuple

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def offline(self) -> bool:
        """Whether an offline stand-in replaced the dataset."""
        return not self.source.startswith(ONLINE)
