"""Reference data generated on the nodes: what the bytes are is part of the contract
(worker/protocol/): a node checks its data against the controller's digest of the same
recipe. Stdlib only, Python 3.9+."""

from __future__ import annotations

import hashlib
import json
from typing import Iterator, Optional

#: names the recipe below: a change of recipe must change it
DATA_GENERATOR = "parbench-gen/1"
GENERATED_CHUNK = 1 << 20
_PAGE = 4096
_HEADER = b"parbench page %021d\n"  # 36 bytes
_PATTERN: Optional[bytes] = None


def _generated_pattern() -> bytes:
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = hashlib.shake_256(DATA_GENERATOR.encode()).digest(GENERATED_CHUNK)
    return _PATTERN


def generated_chunks(size: int) -> Iterator[bytes]:
    """The generated data of ``size`` bytes, 1 MiB at a time: a 1 MiB pattern (SHAKE-256
    of a fixed seed: incompressible) repeated, every 4 KiB page starting with its own
    number (``parbench page 000000000000000000042\\n``: a lost, repeated or swapped page
    changes the digest), the last chunk cut to length."""
    if size < 0:
        raise ValueError(f"size must be 0 or more, got {size}")
    pattern = _generated_pattern()
    pages_per_chunk = GENERATED_CHUNK // _PAGE
    for index in range((size + GENERATED_CHUNK - 1) // GENERATED_CHUNK):
        chunk = bytearray(pattern)
        first = index * pages_per_chunk
        for page in range(pages_per_chunk):
            header = _HEADER % (first + page)
            chunk[page * _PAGE : page * _PAGE + len(header)] = header
        yield bytes(chunk[: min(GENERATED_CHUNK, size - index * GENERATED_CHUNK)])


def generated_sha256(size: int) -> str:
    """The sha256 of the generated data of ``size`` bytes."""
    digest = hashlib.sha256()
    for chunk in generated_chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


def generated_stamp_holds(stamp: Optional[str], found: Optional[dict], expected: str) -> bool:
    """Whether the stamp's text ``stamp`` vouches for the file as ``found`` (its size,
    mtime_ns and inode now) holding the data whose sha256 is ``expected``. The probe
    reports both, so that the controller need not run ``generate`` to learn it."""
    if stamp is None or found is None:
        return False
    try:
        said = json.loads(stamp)
    except ValueError:
        return False
    return said == {"generator": DATA_GENERATOR, "sha256": expected, **found}
