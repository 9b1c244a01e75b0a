"""THE phases: the table every list of phases, here and in the controller, is derived
from. Part of the contract (worker/protocol/). Stdlib only, Python 3.9+."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Tuple


@dataclass(frozen=True)
class Phase:
    """One phase a request may ask, and what follows from its kind. Every list of phases,
    here and in the controller, is derived from :data:`PHASE_TABLE`."""

    name: str
    #: clients start together behind the barrier and their work is timed; the controller
    #: summarises, exports, compares and keeps in the history the figures of these
    timed: bool = False
    moves_data: bool = False  # moves file data (a ``duration`` may be given)
    reference: bool = False  # the request carries the reference file
    copies: bool = False  # each client has a local copy (read makes it, verify-read checks it)
    at_dst: bool = False  # the clients' storage paths are under ``dst``
    local_dst: bool = False  # the request names the node's folder of copies
    recorded: bool = True  # each client leaves a record
    verifies: str = ""  # the phase whose files it checks
    headline_op: str = ""  # the operation whose p99 latency stands for a timed phase
    late: bool = False  # added after runs were first sealed: an older run has no request


#: THE phases, in the order a run has them
PHASE_TABLE: Tuple[Phase, ...] = (
    Phase("write", timed=True, moves_data=True, reference=True, at_dst=True, headline_op="file"),
    Phase("read", timed=True, moves_data=True, copies=True, local_dst=True, headline_op="file"),
    Phase("verify-write", reference=True, at_dst=True, verifies="write"),
    Phase("verify-read", reference=True, copies=True, verifies="read"),
    Phase("meta", timed=True, at_dst=True, headline_op="create", late=True),
    Phase("clean", at_dst=True, local_dst=True, recorded=False),
)
#: name -> its phase
BY_PHASE: Dict[str, Phase] = {p.name: p for p in PHASE_TABLE}


def _phases(**kind: Any) -> Tuple[str, ...]:
    """The names of the phases whose fields have these values, in the table's order."""
    return tuple(p.name for p in PHASE_TABLE if all(getattr(p, k) == v for k, v in kind.items()))


#: what a request may ask; all but clean leave one record per client
PHASES = _phases()
RECORDED_PHASES = _phases(recorded=True)
#: phases whose clients start together behind the barrier and whose work is timed
TIMED_PHASES = _phases(timed=True)
#: phases that move file data
IO_PHASES = _phases(moves_data=True)
#: phases that check the files of another: verify phase -> the phase it checks
VERIFIED: Dict[str, str] = {p.name: p.verifies for p in PHASE_TABLE if p.verifies}
VERIFY_PHASES = tuple(VERIFIED)
#: the phases a request carries the reference file for; and those with local copies
REFERENCE_PHASES = _phases(reference=True)
COPY_PHASES = _phases(copies=True)
#: phases an older parbench did not seal (a run sealed then lacks their requests)
LATE_PHASES = _phases(late=True)
