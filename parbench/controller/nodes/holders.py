"""Judging a lock and a node's answer about it, for the run's locks (controller/nodes/locks.py).

Who holds a lock, described for people; whether that holder is gone: its lease ended,
judged on one clock (the node's, by the age of the lock file it last wrote or renewed),
or it ran in this very pid namespace of this machine and its pid is not running; how
long a lease is; and a node's lock reply, checked to be what this controller reads.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import time
from contextlib import suppress
from pathlib import Path
from typing import Any, Optional

from parbench.worker.protocol import (
    Holder,
    LockReply,
    MessageError,
    RequestError,
    decode,
    decode_line,
)

from ..run.inventory import Inventory, Node
from .nodeoutput import printable
from .remote import StepError


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def describe(holder: dict) -> str:
    return (
        f"run {holder['run_id']} (controller {holder['controller']} pid {holder['pid']}, "
        f"user {holder['user']}, since {_when(holder['since'])})"
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def machine_id() -> str:
    """This controller's machine id (host names repeat, in containers for one)."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        with suppress(OSError):
            found = Path(path).read_text().strip()
            if found:
                return found
    return socket.gethostname()


def pid_namespace() -> str:
    """This process's pid namespace (``pid:[4026531836]``); "" where it cannot be told.
    Containers that share a host name and a machine id have pids of their own."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def lease_of(holder: dict) -> float:
    """How long ``holder``'s lock stays without being renewed (a duration: no clock)."""
    return float(holder.get("lease") or holder["expires"] - holder["since"])


def gone(holder: dict, age: Optional[float] = None) -> Optional[str]:
    """Why ``holder`` no longer holds anything, or None while it may still be running.

    ``age``: seconds since its lock file was last written or renewed, on the node's
    clock (None: not known). Its pid is asked about only when it ran in this very pid
    namespace of this very machine (same host name, machine id and pid namespace)."""
    lease = lease_of(holder)
    if age is not None and age > lease:
        return f"its lease of {lease:.0f} s ended: not renewed for {age:.0f} s (node clock)"
    ns = pid_namespace()
    here = (
        holder["controller"] == socket.gethostname()
        and holder.get("machine", "") == machine_id()
        and ns != ""
        and holder.get("pidns", "") == ns
    )
    if here and not _alive(holder["pid"]):
        return f"pid {holder['pid']} is not running on {holder['controller']}"
    return None


def lease(inventory: Inventory) -> float:
    """How long a holder may keep a lock without renewing it: the longest one phase step
    can take (verify runs two phases) plus the start barrier's wait, with a margin."""
    s = inventory.settings
    return 2 * s.phase_timeout + s.ready_timeout + 60


def reply_in(told: str) -> dict:
    """The lock reply in ``told`` (a node's answer), checked; StepError (one line)."""
    for line in told.splitlines():
        try:
            said = decode_line(line)
        except MessageError as exc:
            if exc.kind is not LockReply:
                continue
            raise StepError(str(exc)) from None
        if isinstance(said, LockReply):
            return checked_reply(said.reply)
    raise StepError(f"no answer to the lock request: {printable(told.strip()[-200:])}")


def cannot_lock(what: str, place: dict, node: Node) -> str:
    """Why the lock of ``what`` on ``node`` could not be taken, with the command that
    removes a lock file no holder can be read from."""
    clear = place.get("clear")
    todo = f"; if no run is at work there, remove it on {node.id} ({node.host}): {clear}"
    return f"cannot lock the {what} {place['path']} on {node.id}: {place['error']}" + (
        todo if clear else ""
    )


def as_error(place: dict) -> dict:
    """A reply about an empty lock file, younger than a crash's leftover, as an error."""
    written = f"written {place['age']:.0f} s ago: " if place.get("age") is not None else ""
    return {
        **place,
        "error": f"the lock file is empty, {written}a run may be taking it right now (try "
        "again in a few seconds), or one crashed doing so",
        "clear": f"rm -f -- {shlex.quote(place['path'])}",
    }


def checked_reply(reply: Any) -> dict:
    """A node's answer to a lock request (its JSON, decoded), checked to be what this
    controller reads; StepError (one line) when it is not."""
    if not isinstance(reply, dict) or not {"workdir", "dst"} <= set(reply):
        text = json.dumps(reply)
        raise StepError(f"the lock reply has no workdir and dst: {text[:80]!r}")
    for kind in ("workdir", "dst"):
        place = reply[kind]
        if place is None and kind == "dst":
            continue
        _expect(isinstance(place, dict), kind, "an object", place)
        _expect(isinstance(place.get("path"), str), f"{kind}.path", "a path", place.get("path"))
        held = place.get("held")
        _expect(isinstance(held, bool), f"{kind}.held", "true or false", held)
        age = place.get("age")
        _expect(age is None or isinstance(age, (int, float)), f"{kind}.age", "seconds", age)
        for key in ("error", "clear", "cleared"):
            value = place.get(key)
            _expect(value is None or isinstance(value, str), f"{kind}.{key}", "text", value)
        for key in ("holder", "replaced"):
            if place.get(key) is not None:
                try:
                    decode(Holder, place[key], f"{kind}.{key}")
                except RequestError as exc:
                    raise StepError(f"the lock reply does not fit: {exc}") from None
    return reply


def _expect(ok: bool, where: str, expected: str, value: Any) -> None:
    if not ok:
        raise StepError(
            f"the lock reply does not fit: {where}: expected {expected}, got {value!r:.60}"
        )


def refused(reply: dict) -> bool:
    return any(p is not None and not p["held"] for p in (reply["workdir"], reply["dst"]))
