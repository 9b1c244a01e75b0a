"""Storage backends the clients write to and read from, one module each behind
:class:`Storage` (``base.py``): ``alluxio`` (the REST proxy), ``posix`` (a directory) and
``s3`` (boto3).

A backend is one module here with a ``preload()`` and its class, and one row in
:data:`_CLASSES`; its name is in ``protocol.BACKENDS``. Modules are imported only when their
backend is used, so a node needs only the client library of the backend it runs.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..protocol import BACKENDS, StorageConfig
from .base import (
    CAUSE_LIMIT,
    TAG,
    Storage,
    StorageError,
    describe_error,
    exception_chain,
    is_missing,
    local_tag,
    local_tag_of,
    root_cause,
)
from .posix import PosixStorage

#: backend name -> its class in the module of that name
_CLASSES = {
    "alluxio": "AlluxioStorage",
    "posix": "PosixStorage",
    "s3": "S3Storage",
    "native": "NativeStorage",
}

__all__ = [
    "CAUSE_LIMIT",
    "TAG",
    "PosixStorage",
    "Storage",
    "StorageConfig",
    "StorageError",
    "describe_error",
    "exception_chain",
    "is_missing",
    "local_tag",
    "local_tag_of",
    "make_storage",
    "preload",
    "root_cause",
]


def _module(backend: str) -> ModuleType:
    if backend not in _CLASSES:
        raise ValueError(f"unknown backend {backend!r}, expected one of {BACKENDS}")
    return importlib.import_module(f".{backend}", __name__)


def preload(backend: str) -> None:
    """Import ``backend``'s client library now, in this process: the processes forked
    from it later (a phase from the agent, its clients, each set up before the common
    start) then share it instead of each importing it again."""
    _module(backend).preload()


def make_storage(config: StorageConfig) -> Storage:
    storage: Storage = getattr(_module(config.backend), _CLASSES[config.backend])(config)
    return storage
