"""THE lines on a node's SSH session, each kind once: a dataclass per kind of line, one
encoder (:func:`encode_line`) and one decoder (:func:`decode_line`) for all of them. Part of the
contract (worker/protocol/, with results.py, layout.py): the worker writes and reads these,
the controller reads and writes them; neither frames a line by hand.

From the worker (stdout): :class:`Ready` (the start barrier), :class:`Record` (a saved
client record, told), :class:`Progress` (live progress), the agent's
:class:`AgentReady`, :class:`AgentStarted`, :class:`AgentDone` and :class:`Stderr` (a
line of the phase's stderr), :class:`AgentClock` (its clock), :class:`LockReply` (the answer
to a lock request), the probe's :class:`Clock`. From the controller (stdin): :class:`Go`,
:class:`Stop`, and to the agent :class:`LockAsk`, :class:`RunAsk`, :class:`AgentClockAsk`,
to the probe :class:`BecomeAgent` and :class:`ClockAsk`.

The probe (worker/probe.py) runs as ``python -c`` before this package is on the node:
it keeps its own copies of its lines (``PROBE_COPIES`` below), checked equal by a test.
A line is encoded without its newline. Stdlib only, Python 3.9+.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, List, Optional, Union

from ..results import ClientResult

READY = "parbench-ready"
GO = "go"
STOP = "stop"
RECORD = "@record"
PROGRESS = "@progress"
STDERR = "@stderr"
AGENT_READY = "parbench-agent ready"
AGENT_STARTED = "parbench-agent started"
AGENT_DONE = "parbench-agent done"
AGENT_CLOCK = "parbench-agent clock"
LOCK_REPLY = "parbench-lock"
LOCK = "lock"
RUN = "run"
BECOME_AGENT = "agent"
CLOCK = "clock"

#: the probe's copies of these (worker/probe.py cannot import): its name -> the value
PROBE_COPIES = {"LOCK_REPLY": LOCK_REPLY, "AGENT": BECOME_AGENT, "LOCK_ASK": LOCK + " "}


class MessageError(ValueError):
    """A line of a known kind whose body cannot be read."""

    def __init__(self, kind: type, text: str) -> None:
        super().__init__(text)
        self.kind = kind  # the kind of message the line was meant to be


@dataclass(frozen=True)
class Ready:
    """The worker's clients are all ready: it waits for :class:`Go` (or :class:`Stop`)."""

    node: str


@dataclass(frozen=True)
class Go:
    """Start at ``at`` (epoch seconds, the node's clock)."""

    at: float


@dataclass(frozen=True)
class Stop:
    """The controller was interrupted: no client starts, running ones stop."""


@dataclass(frozen=True)
class Record:
    """A client record the worker saved, told on its output."""

    result: ClientResult


@dataclass(frozen=True)
class Progress:
    """How far a node's clients have got (worker/progress.py), drawn by the controller."""

    phase: str
    node: str
    done: int
    total: int
    bytes: int
    files: int


@dataclass(frozen=True)
class Stderr:
    """A line the phase the agent runs wrote on stderr (shown as stderr)."""

    text: str


@dataclass(frozen=True)
class AgentReady:
    """The agent's first line."""


@dataclass(frozen=True)
class AgentStarted:
    """The child running a phase for the agent is up: what is sent now is the child's."""


@dataclass(frozen=True)
class AgentDone:
    """The phase the agent ran has ended with this exit code."""

    code: int


@dataclass(frozen=True)
class LockReply:
    """The answer to a lock request: for each place, held or not and by whom (checked by
    the controller: controller/nodes/holders.py)."""

    reply: Any


@dataclass(frozen=True)
class LockAsk:
    """Take, renew or give back locks: a protocol.LockRequest as JSON."""

    request: str


@dataclass(frozen=True)
class RunAsk:
    """Run a phase in the agent: the request's JSON, kept at ``save`` on the node first."""

    save: str
    request: str


@dataclass(frozen=True)
class BecomeAgent:
    """Asks the probe to exec the workdir's worker as the node's agent."""


@dataclass(frozen=True)
class ClockAsk:
    """Asks the probe for its clock (an empty line)."""


@dataclass(frozen=True)
class AgentClockAsk:
    """Asks the agent for its clock (the clock offset measured again between phases,
    without a probe)."""


@dataclass(frozen=True)
class AgentClock:
    """The agent's clock: epoch seconds on the node."""

    at: float


@dataclass(frozen=True)
class Clock:
    """The probe's clock: epoch seconds (untagged: read with :func:`decode_clock`)."""

    at: float


Message = Union[
    Ready, Go, Stop, Record, Progress, Stderr, AgentReady, AgentStarted, AgentDone,
    LockReply, LockAsk, RunAsk, BecomeAgent, ClockAsk, Clock, AgentClockAsk, AgentClock,
]  # fmt: skip


def encode_line(msg: Message) -> str:
    """The line of ``msg``, without its newline."""
    if isinstance(msg, Ready):
        return f"{READY} {msg.node}"
    if isinstance(msg, Go):
        return f"{GO} {msg.at:.6f}"
    if isinstance(msg, Stop):
        return STOP
    if isinstance(msg, Record):
        return f"{RECORD} {msg.result.to_json()}"
    if isinstance(msg, Progress):
        fields = {"phase": msg.phase, "node": msg.node, "done": msg.done, "total": msg.total}
        return f"{PROGRESS} " + json.dumps({**fields, "bytes": msg.bytes, "files": msg.files})
    if isinstance(msg, Stderr):
        return f"{STDERR} {msg.text}"
    if isinstance(msg, AgentReady):
        return AGENT_READY
    if isinstance(msg, AgentStarted):
        return AGENT_STARTED
    if isinstance(msg, AgentDone):
        return f"{AGENT_DONE} {msg.code}"
    if isinstance(msg, LockReply):
        return f"{LOCK_REPLY} {json.dumps(msg.reply, sort_keys=True)}"
    if isinstance(msg, LockAsk):
        return f"{LOCK} {msg.request}"
    if isinstance(msg, RunAsk):
        return f"{RUN} " + json.dumps({"save": msg.save, "request": msg.request})
    if isinstance(msg, BecomeAgent):
        return BECOME_AGENT
    if isinstance(msg, AgentClockAsk):
        return CLOCK
    if isinstance(msg, AgentClock):
        return f"{AGENT_CLOCK} {msg.at!r}"
    if isinstance(msg, ClockAsk):
        return ""
    if isinstance(msg, Clock):
        return repr(msg.at)
    raise TypeError(f"not a message: {msg!r}")  # a bug in the caller


def kind(line: str) -> Optional[type]:
    """The kind of message ``line`` is by its tag (its body not read: cheap), None when it
    is none. The probe's clock is untagged: :func:`decode_clock`."""
    line = line.rstrip("\n")
    word, _, body = line.partition(" ")
    if body:
        found = _TAGGED.get(word)
        if found is not None:
            return found
        if line.startswith(AGENT_DONE + " "):
            return AgentDone
        if line.startswith(AGENT_CLOCK + " "):
            return AgentClock
    if word == STDERR and line.startswith(STDERR + " "):
        return Stderr
    return _WHOLE.get(line.strip())


def decode_line(line: str) -> Optional[Message]:
    """The message ``line`` is (its newline, if any, ignored), None when it is none (a line
    for people; a progress line of fields this worker does not know). MessageError when
    it is of a known kind but its body cannot be read. The probe's clock is untagged:
    :func:`decode_clock`."""
    found = kind(line)
    if found is None:
        return None
    line = line.rstrip("\n")
    body = line.partition(" ")[2]
    if found in (Stop, AgentReady, AgentStarted, BecomeAgent, AgentClockAsk):
        return found()
    if found is Ready:
        return Ready(body)
    if found is Stderr:
        return Stderr(body)
    if found is LockAsk:
        return LockAsk(body)
    if found is Progress:
        return _progress(body)
    try:
        if found is Go:
            return Go(float(body))
        if found is AgentDone:
            return AgentDone(int(line[len(AGENT_DONE) + 1 :]))
        if found is AgentClock:
            return AgentClock(float(line[len(AGENT_CLOCK) + 1 :]))
        if found is Record:
            return Record(ClientResult.from_dict(json.loads(body)))
        if found is LockReply:
            return LockReply(json.loads(body))
        asked = json.loads(body)
        return RunAsk(str(asked["save"]), str(asked["request"]))
    except (ValueError, TypeError, KeyError) as exc:
        raise MessageError(found, _cannot(found, line, exc)) from None


def _cannot(found: type, line: str, exc: Exception) -> str:
    """Why ``line``, a message of kind ``found``, cannot be read."""
    if found is Go:
        return f"{GO}: not a time: {line[len(GO) + 1 :][:80]!r}"
    if found is AgentDone:
        return f"{AGENT_DONE}: not an exit code: {line[:80]!r}"
    if found is AgentClock:
        return f"{AGENT_CLOCK}: not a time: {line[:80]!r}"
    if found is Record:
        return str(exc)
    if found is LockReply:
        body = line[len(LOCK_REPLY) + 1 :]
        return f"the lock reply is not JSON ({exc}): {body[:80]!r}"
    return f"{type(exc).__name__}: {exc}"


#: tag -> the kind of a line ``TAG BODY``
_TAGGED = {
    READY: Ready, GO: Go, RECORD: Record, PROGRESS: Progress, LOCK_REPLY: LockReply,
    LOCK: LockAsk, RUN: RunAsk,
}  # fmt: skip
#: a line that is the whole message
_WHOLE = {
    STOP: Stop, AGENT_READY: AgentReady, AGENT_STARTED: AgentStarted, BECOME_AGENT: BecomeAgent,
    CLOCK: AgentClockAsk,
}  # fmt: skip


def _progress(body: str) -> Optional[Progress]:
    try:
        found = json.loads(body)
        return Progress(
            str(found["phase"]), str(found["node"]), int(found["done"]),
            int(found["total"]), int(found["bytes"]), int(found["files"]),
        )  # fmt: skip
    except (ValueError, TypeError, KeyError):
        return None  # not ours to judge: a newer worker's line


def decode_progress(line: str) -> Optional[Progress]:
    """The progress ``line`` tells, None when it is none (or of fields not known here)."""
    return _progress(line.rstrip("\n").partition(" ")[2]) if kind(line) is Progress else None


def decode_clock(line: str) -> Optional[Clock]:
    """The probe's clock answer, None when ``line`` is not one."""
    try:
        return Clock(float(line))
    except ValueError:
        return None


def for_the_controller(line: str) -> bool:
    """Whether a line of the worker's output is for the controller, not for people: its
    live progress and the records it tells after saving them (a damaged one too, and a
    progress line of fields this controller does not know)."""
    word, _, body = line.rstrip("\n").partition(" ")
    if word == RECORD:
        return bool(body)
    if word == PROGRESS and body:
        try:
            return isinstance(json.loads(body), dict)
        except ValueError:
            return False
    return False


def is_record(line: str) -> bool:
    """Whether ``line`` tells a record (read or not: a damaged one is an error)."""
    return line.startswith(RECORD + " ")


def ready_in(output: str) -> bool:
    """Whether ``output`` (a worker's output so far) has its :class:`Ready` line."""
    return any(line.startswith(READY + " ") for line in output.splitlines())


def told_records(output: str, source: str) -> List[ClientResult]:
    """The records a worker's stdout ``output`` told (ValueError naming ``source`` and the
    record's number when one of them cannot be read)."""
    told: List[ClientResult] = []
    for number, line in enumerate((x for x in output.splitlines() if is_record(x)), 1):
        try:
            msg = decode_line(line)
        except MessageError as exc:
            raise ValueError(f"{source}:{number}: {exc}") from exc
        if isinstance(msg, Record):  # None: "@record " alone, nothing told
            told.append(msg.result)
    return told
