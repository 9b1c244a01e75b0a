"""What the controller's process needs from the machine for N nodes, checked before it
connects: open files first (the limit a large inventory meets first, see docs/testing.md,
"How far it scales").

Each node holds one SSH connection for the whole command (a socket), and while a phase
runs, the pipe its stop goes through; paramiko adds no descriptors per channel. The
figures below are measured by ``python -m bench --only orchestration_overhead`` (peak
descriptors of ``fab write`` against the number of nodes), with a margin.
"""

from __future__ import annotations

import resource

#: open files per node at the peak of ``fab write`` (3 measured: the connection's socket
#: and the two ends of the phase's stop pipe), and the process's own (Python, the results
#: folder, SQLite), with a margin
FILES_PER_NODE = 4
FILES_BASE = 64


class LimitError(RuntimeError):
    """The machine lets this process open fewer files than the inventory needs."""


def files_needed(nodes: int) -> int:
    return FILES_BASE + FILES_PER_NODE * nodes


def ensure_open_files(nodes: int) -> None:
    """Raise this process's soft limit of open files to what ``nodes`` nodes need (up to
    the hard limit, which needs no privilege); LimitError saying what to change when
    even the hard limit is too low."""
    needed = files_needed(nodes)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise LimitError(
            f"{nodes} nodes need about {needed} open files and this controller may open "
            f"{hard} (ulimit -Hn): raise the hard limit (limits.conf, or LimitNOFILE= in "
            "the scheduler's unit), or run fewer nodes per controller"
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
