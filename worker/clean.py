"""``python -m worker clean``: remove what this node's clients wrote and read.

Deletes ``{dst}/{node}`` in storage (every file the node's writers made there) and the
copies ``{local_dst}/{cid}`` (and ``{cid}.1``, ``{cid}.2``, ... of a phase with a
duration) for cid in 0..nfile-1 on this node (regular files only, never symlinks or
other names), then ``local_dst`` if it is empty. Refuses roots that are not
absolute, not normalised, or ``/``, and a ``local_dst`` that is a symbolic link (as reads
do): nothing outside the configured roots is ever touched.
"""

from __future__ import annotations

import os
import posixpath

from worker.protocol import NODE_ID, is_nth_of
from worker.storage import Storage


class UnsafePath(ValueError):
    pass


def safe_root(path: str, what: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
        raise UnsafePath(
            f"refusing to delete below {what} {path!r}: it must be an absolute, "
            "normalised path other than /"
        )
    return path


def clean(storage: Storage, dst: str, node: str, local_dst: str, nfile: int) -> list[str]:
    """Delete and return a line per thing removed (or found absent)."""
    if not NODE_ID.fullmatch(node):  # fullmatch: "$" alone would let "n0\n" through
        raise UnsafePath(f"refusing node id {node!r}: not a plain path segment")
    target = posixpath.join(safe_root(dst, "--dst"), node)
    local = safe_root(local_dst, "--local-dst")
    if os.path.islink(local):
        raise UnsafePath(f"refusing to delete below --local-dst {local!r}: a symbolic link")
    done = [f"deleted {target}" if storage.delete_tree(target) else f"absent {target}"]
    deleted = 0
    names = os.listdir(local) if os.path.isdir(local) else []
    for cid in range(nfile):
        for name in (n for n in names if is_nth_of(n, str(cid))):
            copy = os.path.join(local, name)
            if os.path.isfile(copy) and not os.path.islink(copy):
                os.remove(copy)
                deleted += 1
    done.append(f"deleted {deleted} read copies in {local}")
    if os.path.isdir(local) and not os.path.islink(local) and not os.listdir(local):
        os.rmdir(local)
    return done
