"""``python -m worker clean``: remove what this node's clients wrote and read.

Deletes ``{dst}/{node}`` in storage (every file the node's writers made there) and the
numbered copies ``{local_dst}/{cid}`` on this node, then ``local_dst`` if it is empty.
Refuses roots that are not absolute, not normalised, or ``/``: nothing outside the
configured roots is ever touched.
"""

from __future__ import annotations

import os
import posixpath
import re

from worker.storage import Storage

_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class UnsafePath(ValueError):
    pass


def safe_root(path: str, what: str) -> str:
    if not path.startswith("/") or posixpath.normpath(path) != path or path == "/":
        raise UnsafePath(
            f"refusing to delete below {what} {path!r}: it must be an absolute, "
            "normalised path other than /"
        )
    return path


def clean(storage: Storage, dst: str, node: str, local_dst: str) -> list[str]:
    """Delete and return a line per thing removed (or found absent)."""
    if not _NODE.match(node):
        raise UnsafePath(f"refusing node id {node!r}: not a plain path segment")
    target = posixpath.join(safe_root(dst, "--dst"), node)
    local = safe_root(local_dst, "--local-dst")
    done = [f"deleted {target}" if storage.delete_tree(target) else f"absent {target}"]
    copies = sorted(
        name for name in (os.listdir(local) if os.path.isdir(local) else ()) if name.isdigit()
    )
    for name in copies:
        os.remove(os.path.join(local, name))
    done.append(f"deleted {len(copies)} read copies in {local}")
    if os.path.isdir(local) and not os.listdir(local):
        os.rmdir(local)
    return done
