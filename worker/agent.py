"""``python -m worker agent``: the node's side of the controller's open session.

The push's probe hands its session over to this (an exec: no new SSH session, no new
shell), and the controller sends it one request per line for the rest of its command,
each answered with one line:

- ``lock REQUEST_JSON``: take or give back the run's locks (worker/lock.py), answered
  with its ``LOCK_REPLY`` line.

It says ``AGENT_READY`` first and ends when its stdin does (the controller done, or its
connection gone). Stdlib and the worker only, Python 3.9+.
"""

from __future__ import annotations

import sys
from typing import Iterable, TextIO

from worker import lock
from worker.protocol import AGENT_READY


def serve(lines: Iterable[str], out: TextIO) -> int:
    out.write(AGENT_READY + "\n")
    out.flush()
    for line in lines:
        verb, _, rest = line.rstrip("\n").partition(" ")
        if verb == "lock":
            lock.main(rest)  # prints its one line
        else:
            print(f"parbench worker: agent: no such request {verb!r}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(serve(sys.stdin, sys.stdout))
