"""How ``python -m worker`` ends: its exit codes. Part of the contract
(worker/protocol/). Stdlib only, Python 3.9+."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How ``python -m worker`` ends."""

    OK = 0  # every record ok (clean: everything removed)
    NOT_OK = 1  # records saved, some not ok (clean: something not removed)
    USAGE = 2  # bad options or a bad request: nothing ran
    NOT_SAVED = 3  # the records could not be saved
    INTERRUPTED = 130  # SIGINT
    TERMINATED = 143  # SIGTERM


#: exit codes after which the node's records file is complete and worth fetching
RECORDED_EXITS = (ExitCode.OK, ExitCode.NOT_OK)
