"""Reference data made where it is used: the same bytes on every node and on the
controller, so that a 1 GiB reference costs no transfer.

What the bytes are is the contract's (worker/protocol/generated.py's ``generated_chunks``,
named by ``DATA_GENERATOR``): the controller digests the same recipe.

On a node, :func:`materialise` writes the file once and keeps a stamp beside it (digest,
size, mtime, inode), so that later pushes need not hash it again; a file whose digest is
not the controller's is an error, never used. Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

from .layout import PARTIAL, generated_file
from .protocol import (
    DATA_GENERATOR,
    GENERATED_CHUNK,
    generated_chunks,
    generated_sha256,
    generated_stamp_holds,
)

#: the recipe is the contract's (worker/protocol/generated.py): the controller digests the
#: same bytes
GENERATOR = DATA_GENERATOR
CHUNK = GENERATED_CHUNK
PAGE = 4096
chunks = generated_chunks
sha256 = generated_sha256
stamp_holds = generated_stamp_holds
file_name = generated_file


class GenerateError(RuntimeError):
    """The generated data is not what the controller expects; the message says how."""


def _stamp_of(path: str) -> dict:
    info = os.stat(path)
    return {"size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino}


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
    partial = path + PARTIAL
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
