"""What the probe (worker/probe.py) tells about a node, and the constants it shares with
the contract: the probe runs as ``python -c`` before this package is on the node, so it
cannot import this module; it keeps its own copies of these, checked by a test. Part of
the contract (worker/protocol/). Stdlib only, Python 3.9+."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

from ..layout import MARKER
from .typed import _parse, decode

#: the probe's exit code when the workdir is not parbench's to use (nothing was touched)
PROBE_REFUSED = 3
#: the file that marks a workdir as parbench's
WORKDIR_MARKER = MARKER
#: what marks a file the probe is asked about as one with a stamp beside it (its
#: arguments: ``stamped:data/generated-1024.bin``), reported in ProbeFacts.stamps
PROBE_STAMPED = "stamped:"


@dataclass(frozen=True)
class Stamped:
    """A file the probe was asked about with its stamp (worker/generate.py)."""

    stamp: Optional[str]  # the stamp's text, None when there is none
    file: Dict[str, int]  # size, mtime_ns and inode of the file now


@dataclass(frozen=True)
class ProbeFacts:
    """What the probe prints about a node (one JSON object), checked when read."""

    hostname: str
    platform: str
    python: Tuple[int, ...]
    hashes: Dict[str, Optional[str]]  # sha256 of each file asked about, None if absent
    worker_files: Tuple[str, ...]
    runtime: Optional[str]  # the venv's stamp
    machine: Optional[str] = None  # /etc/machine-id, else the host name
    workdir_id: Optional[Tuple[int, ...]] = None  # (st_dev, st_ino), None before it exists
    stamps: Dict[str, Optional[Stamped]] = field(default_factory=dict)  # None: no such file

    @classmethod
    def from_json(cls, text: str) -> ProbeFacts:
        return decode(cls, _parse(text, "probe"), "probe")
