"""Reference data made where it is used: the same bytes on every node and on the
controller, so that a 1 GiB reference costs no transfer.

The data of ``size`` bytes is a 1 MiB pattern (SHAKE-256 of a fixed seed: incompressible)
repeated, with every 4 KiB page starting with its own number (``parbench page
000000000000000000042\\n``), so that a lost, repeated or swapped page changes the digest.
The last chunk is cut to length. ``GENERATOR`` names this recipe: a change of recipe must
change it.

On a node, :func:`materialise` writes the file once and keeps a stamp beside it (digest,
size, mtime, inode), so that later pushes need not hash it again; a file whose digest is
not the controller's is an error, never used. Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from typing import Iterator, Optional

GENERATOR = "parbench-gen/1"
CHUNK = 1 << 20
PAGE = 4096
_HEADER = b"parbench page %021d\n"  # 36 bytes
_PATTERN: Optional[bytes] = None


def file_name(size: int) -> str:
    """The file a node keeps the generated data of ``size`` bytes in (under data/)."""
    return f"generated-{size}.bin"


def _pattern() -> bytes:
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = hashlib.shake_256(GENERATOR.encode()).digest(CHUNK)
    return _PATTERN


def chunks(size: int) -> Iterator[bytes]:
    """The data, 1 MiB at a time."""
    if size < 0:
        raise ValueError(f"size must be 0 or more, got {size}")
    pattern = _pattern()
    pages_per_chunk = CHUNK // PAGE
    for index in range((size + CHUNK - 1) // CHUNK):
        chunk = bytearray(pattern)
        first = index * pages_per_chunk
        for page in range(pages_per_chunk):
            header = _HEADER % (first + page)
            chunk[page * PAGE : page * PAGE + len(header)] = header
        yield bytes(chunk[: min(CHUNK, size - index * CHUNK)])


def sha256(size: int) -> str:
    digest = hashlib.sha256()
    for chunk in chunks(size):
        digest.update(chunk)
    return digest.hexdigest()


class GenerateError(RuntimeError):
    """The generated data is not what the controller expects; the message says how."""


def _stamp_of(path: str) -> dict:
    info = os.stat(path)
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino}


def stamp_holds(stamp: Optional[str], found: Optional[dict], expected: str) -> bool:
    """Whether the stamp's text ``stamp`` vouches for the file as ``found`` (its size,
    mtime_ns and inode now) holding the data whose sha256 is ``expected``. The probe
    reports both, so that the controller need not run ``generate`` to learn it."""
    if stamp is None or found is None:
        return False
    try:
        said = json.loads(stamp)
    except ValueError:
        return False
    return said == {"generator": GENERATOR, "sha256": expected, **found}


def materialise(path: str, size: int, expected: str) -> bool:
    """Make ``path`` hold the data of ``size`` bytes, whose sha256 must be ``expected``;
    True when it was (re)made, False when the stamp shows it is already there.
    GenerateError when the digest differs (nothing is left at ``path`` then)."""
    stamp = path + ".stamp"
    want = {"generator": GENERATOR, "sha256": expected}
    try:
        with open(stamp, encoding="utf-8") as stream:
            if stamp_holds(stream.read(), _stamp_of(path), expected):
                return False
    except OSError:
        pass
    partial = path + ".parbench-new"
    digest = hashlib.sha256()
    try:
        with open(partial, "wb") as out:
            for chunk in chunks(size):
                digest.update(chunk)
                out.write(chunk)
    except BaseException:  # a full disk, an interruption: no large partial file stays
        if os.path.exists(partial):
            os.remove(partial)
        raise
    if digest.hexdigest() != expected:
        os.remove(partial)
        raise GenerateError(
            f"generated {size} bytes have sha256 {digest.hexdigest()[:12]}..., the controller"
            f" expects {expected[:12]}... (another generator version: push the worker again)"
        )
    os.replace(partial, path)
    with open(stamp, "w", encoding="utf-8") as stream:
        json.dump({**want, **_stamp_of(path)}, stream)
    return True


def run(out: str, size: int, expected: str) -> int:
    """``python -m worker generate``: exit 0 once ``out`` holds the data, 1 (and why on
    stderr) when it cannot."""
    try:
        made = materialise(out, size, expected)
    except (GenerateError, OSError) as exc:
        print(f"parbench generate: {out}: {exc}", file=sys.stderr)
        return 1
    print(f"{out}: {'generated' if made else 'up to date'}")
    return 0
