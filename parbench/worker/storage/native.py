"""The native backend's storage for what is not timed (clean, the cluster's version, verify):
Alluxio through its REST proxy, as the alluxio backend. Its write and read are Alluxio's own
StressClientIOBench (worker/native.py), not a Storage."""

from __future__ import annotations

from .alluxio import AlluxioStorage, preload

__all__ = ["NativeStorage", "preload"]


class NativeStorage(AlluxioStorage):
    """The REST proxy of the inventory (``proxy``), for the native backend's side work."""
