"""``python -m worker clean``: remove what this node's clients wrote and read.

Deletes ``{dst}/{node}`` in storage (every file the node's writers made there) and the
copies ``{local_dst}/{cid}`` (and ``{cid}.1``, ``{cid}.2``, ... of a phase with a
duration) for cid in 0..nfile-1 on this node (regular files only, never symlinks or
other names), then ``local_dst`` if it is empty. Refuses roots that are not
absolute, not normalised, or ``/``, and a ``local_dst`` that is a symbolic link (as reads
do): nothing outside the configured roots is ever touched.

With ``fab clean --data --runs`` (:func:`clean_workdir`), also in the node's workdir: the
reference data ``worker generate`` made (``data/generated-<bytes>.bin``, its stamp, a
partial one) and the run folders ``runs/<run>``, but those named to keep and the one whose
run holds the workdir's lock. Only entries of those two folders with those names go,
plain files and folders, never a symbolic link (nor one's target); a linked ``data`` or
``runs`` is refused.
"""

from __future__ import annotations

import os
import posixpath
import re
import shutil
from typing import Iterable

from . import layout
from .lock import local_place
from .protocol import NODE_ID, RUN_ID, is_nth_of
from .storage import Storage

#: what ``worker generate`` leaves in ``{workdir}/data``: the data, its stamp, a partial
#: file (worker/generate.py); a pushed reference file keeps its own name
GENERATED = re.compile(r"generated-[0-9]+\.bin(\.stamp|" + re.escape(layout.PARTIAL) + ")?")


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


def _entries(folder: str) -> list[str]:
    """The names in ``folder`` (none when it is absent); UnsafePath when it is a link."""
    if os.path.islink(folder):
        raise UnsafePath(f"refusing to delete below {folder!r}: a symbolic link")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _lock_holder(workdir: str) -> str | None:
    """The run that holds the workdir's lock now, if any; UnsafePath when the lock
    cannot be read (then no run folder can be said to be free)."""
    try:
        holder = local_place(workdir).holder()
    except (OSError, ValueError) as exc:
        raise UnsafePath(f"not deleting run folders: {exc}") from None
    return None if holder is None else holder.run_id


def clean_workdir(workdir: str, data: bool, runs: bool, keep: Iterable[str] = ()) -> list[str]:
    """Delete the generated reference data (``data``) and the run folders (``runs``) in
    ``workdir``, but the runs in ``keep`` and the lock holder's; a line per folder."""
    root = safe_root(workdir, "the workdir")
    if os.path.islink(root):
        raise UnsafePath(f"refusing to delete below the workdir {root!r}: a symbolic link")
    done = []
    if data:
        folder = os.path.join(root, layout.DATA)
        gone = 0
        for name in _entries(folder):
            path = os.path.join(folder, name)
            if GENERATED.fullmatch(name) and os.path.isfile(path) and not os.path.islink(path):
                os.remove(path)
                gone += 1
        done.append(f"deleted {gone} generated data file(s) in {folder}")
    if runs:
        folder = os.path.join(root, layout.RUNS)
        held = set(keep)
        holder = _lock_holder(root)
        if holder is not None:
            held.add(holder)
        gone, kept = 0, []
        for name in _entries(folder):
            path = os.path.join(folder, name)
            if not RUN_ID.fullmatch(name) or os.path.islink(path) or not os.path.isdir(path):
                continue
            if name in held:
                kept.append(name)
                continue
            shutil.rmtree(path)
            gone += 1
        note = f"; kept {', '.join(kept)} (in use)" if kept else ""
        done.append(f"deleted {gone} run folder(s) in {folder}{note}")
    return done
