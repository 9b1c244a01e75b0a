"""Fabric connections to the nodes, and running one step on many nodes in parallel.

Each node gets its own command line (node id, sources, deadline), so steps run on a
thread per node rather than through a ``ThreadingGroup``; a failure on one node becomes a
``NodeFailure`` naming the node, host and cause while the other nodes carry on. A node is
connected to once per process (the command's fleet, controller/nodes/fleet.py), whatever
the number of steps.
"""

from __future__ import annotations

import io
import os
import select
import socket
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from operator import methodcaller
from typing import IO, Callable, Generic, Optional, Protocol, Sequence, TextIO, TypeVar

import paramiko
from fabric import Config, Connection
from fabric.runners import Remote
from invoke.exceptions import CommandTimedOut, UnexpectedExit

from parbench.worker.protocol import decode_progress, for_the_controller

from ..run import hosts, say
from ..run.inventory import Inventory, Node
from ..run.rundir import NodeFailure
from . import stopping
from .limits import ensure_open_files
from .nodeoutput import KeptStream, LineCutter, printable, split_lines, tail

T = TypeVar("T")

#: seconds a step's nodes have to finish after Ctrl-C or SIGTERM before they are given up
#: (a scheduler's SIGTERM is followed by a SIGKILL; a node may not answer at all)
INTERRUPT_GRACE = 5.0
#: the same for a phase: time for the nodes to stop their clients and tell their records
STOP_GRACE = 20.0


@dataclass(frozen=True)
class StepOutcome(Generic[T]):
    """What a step did on one node: its value, or why it failed there."""

    node: Node
    value: Optional[T] = None
    failure: Optional[NodeFailure] = None


class StepError(RuntimeError):
    """Raised inside a step function: the message is the cause shown for that node."""


def address(node: Node) -> str:
    return f"{node.user}@{node.host}:{node.port}"


class _Remote(Remote):
    """Fabric's runner, except that writing to a command that has already ended (its
    stdin closed) is no error (a ``stop`` meant for a worker that just finished), and that
    what the controller writes to a worker's stdin goes whole."""

    def _write_proc_stdin(self, data: bytes) -> None:
        with suppress(OSError):
            super()._write_proc_stdin(data)

    def read_our_stdin(self, input_: IO) -> Optional[str]:
        """What is in our pipe (controller/nodes/stopping.py) at once, not a byte per 10 ms: a
        ``stop`` must not be cut into bytes that the barrier's ``go`` could land between."""
        if not readable(input_.fileno()):
            return None
        return os.read(input_.fileno(), 4096).decode()

    def _handle_output(self, buffer_: list, hide: bool, output: IO, reader: Callable) -> None:
        """invoke's, within bounds (controller/nodes/nodeoutput.py): no line longer than
        MAX_LINE passed on, and of the output only the records and the last lines kept
        (invoke would keep it all, and hand all of it to the watchers after each read).
        The watchers see each line once it is whole, as through a node's agent."""
        kept = KeptStream()
        try:
            for data in self.read_proc_output(reader):
                data, lines = kept.feed(data)
                if not hide:
                    self.write_our_output(stream=output, string=data)
                for line in lines:
                    self.respond([line])
        finally:
            buffer_[:] = [kept.text()]


def readable(fd: int) -> bool:
    """Whether reading ``fd`` would not block. ``poll``, not invoke's ``select``: select
    refuses descriptors above 1023, which a controller of 400 nodes already holds (a
    socket and a pipe's two ends per node)."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))


#: never forward the controller's stdin: many threads share it, schedulers have none, and
#: a node's stdin carries the common start (controller/nodes/startgate.py) and the stop
_CONFIG = Config(overrides={"run": {"in_stream": False}, "runners": {"remote": _Remote}})


def connect(inventory: Inventory, node: Node) -> Connection:
    """A Fabric connection that checks host keys unless the inventory opts out.

    The inventory's ssh config (``ssh.config``, by default ``~/.ssh/config``) counts for
    what the inventory leaves unset: the node's User and Port are resolved with the
    inventory (controller/run/inventory.py); its HostName and ProxyJump here (the jump
    hosts' keys checked as the nodes' are), and its ``IdentityFile`` keys for a node
    without ``key`` (also next to it with ``ssh.ssh_config_keys``). The SSH agent is
    forwarded only when the inventory asks (``ssh.forward_agent``), whatever the ssh config
    or Fabric's config say."""
    ssh = inventory.ssh
    config = _CONFIG.clone()
    config._set(base_ssh_config=hosts.ssh_config(ssh.config))  # noqa: SLF001
    conn = Connection(
        node.host,
        user=node.user,
        port=node.port,
        connect_timeout=int(inventory.settings.connect_timeout),
        forward_agent=ssh.forward_agent,  # given: neither ssh_config nor Fabric's config
        config=config,
    )
    # what Fabric resolved merges Fabric's config, ssh_config's IdentityFile keys and
    # ours: replaced by ours, else the ssh config's
    kwargs: dict = {}
    keys = [] if node.key is None else [str(node.key)]
    if node.key is not None:
        kwargs.update(look_for_keys=False, allow_agent=False)
    if node.key is None or ssh.ssh_config_keys:
        keys += _identity_files(conn)
    if keys:
        kwargs["key_filename"] = keys
    conn.connect_kwargs = kwargs
    _check_host_keys(conn, inventory)
    gateway = conn.gateway
    while isinstance(gateway, Connection):  # ProxyJump: each hop as the ssh config says
        gateway.forward_agent = ssh.forward_agent
        hop_keys = _identity_files(gateway)
        gateway.connect_kwargs = {"key_filename": hop_keys} if hop_keys else {}
        _check_host_keys(gateway, inventory)
        gateway = gateway.gateway
    return conn


def _identity_files(conn: Connection) -> list[str]:
    found = conn.ssh_config.get("identityfile", [])
    return [found] if isinstance(found, str) else list(found)


def _check_host_keys(conn: Connection, inventory: Inventory) -> None:
    ssh = inventory.ssh
    if ssh.known_hosts is not None and ssh.known_hosts.exists():
        # load_host_keys() would make paramiko rewrite the file on every new key
        conn.client.get_host_keys().load(str(ssh.known_hosts))
    # Fabric auto-adds (and saves) unknown host keys by default: refuse them, or with the
    # explicit opt-out accept them with a warning and leave known_hosts alone
    policy = paramiko.RejectPolicy() if ssh.strict_host_keys else paramiko.WarningPolicy()
    conn.client.set_missing_host_key_policy(policy)


def connection_key(node: Node) -> tuple:
    """What tells one inventory node's connection (and agent) from another's: how it is
    reached, and its workdir (nodes on one machine must not share a connection's sftp
    client)."""
    key = None if node.key is None else str(node.key)
    return (node.host, node.port, node.user, key, node.workdir)


def close_each(things: Sequence[Optional[T]], close: Callable[[T], object]) -> None:
    """``close`` every one of ``things`` that is there (None is skipped), whatever
    closing one raises: they are being given up (at exit, or gone bad), and nothing is
    waiting to hear how."""
    for thing in things:
        if thing is not None:
            with suppress(Exception):
                close(thing)


class Connections:
    """One SSH connection per node for the whole ``fab`` command: push, locks, every
    phase of a chain and every iteration open channels on it instead of connecting
    again (each connection costs a key exchange on both ends). A connection that has
    died is replaced on the next step; all are closed with the command's fleet
    (controller/nodes/fleet.py). ``connect``: how a node is connected to (tests: a fake)."""

    def __init__(self, connect: Optional[Callable[[Inventory, Node], Connection]] = None) -> None:
        self._connect = connect
        self._open: dict[tuple, Connection] = {}
        self._lock = threading.Lock()
        self.made = 0  # connections opened (a reconnect counts)

    def get(self, inventory: Inventory, node: Node) -> Connection:
        """The open connection to ``node``, connecting (and checking its host key) first
        when there is none or the one there is has closed."""
        key = connection_key(node)
        with self._lock:
            conn = self._open.get(key)
        if conn is not None and getattr(conn, "is_connected", False):
            return conn
        fresh = (self._connect or connect)(inventory, node)
        fresh.open()
        with self._lock:
            self.made += 1
            self._open[key] = fresh
        if conn is not None:
            conn.close()
        return fresh

    def close(self) -> None:
        with self._lock:
            conns, self._open = list(self._open.values()), {}
        close_each(conns, methodcaller("close"))


def explain(exc: BaseException, inventory: Inventory) -> str:
    """A one-line cause for a failed step, in the words a user can act on."""
    if isinstance(exc, StepError):
        return str(exc)
    if isinstance(exc, paramiko.BadHostKeyException):
        return (
            f"host key mismatch ({exc.key.get_name()}): the node's key differs from "
            f"{inventory.ssh.known_hosts}"
        )
    if isinstance(exc, paramiko.AuthenticationException):
        hint = (
            "" if inventory.ssh.ssh_config_keys else " (~/.ssh/config's keys: ssh.ssh_config_keys)"
        )
        return f"authentication refused ({exc}); check nodes[].user and nodes[].key{hint}"
    if isinstance(exc, paramiko.SSHException) and "not found in known_hosts" in str(exc):
        return (
            f"unknown host key: add it to {inventory.ssh.known_hosts} "
            "(ssh-keyscan) or set ssh.strict_host_keys: false"
        )
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        return f"unreachable: {exc.strerror or exc}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return f"unreachable: no answer within {inventory.settings.connect_timeout:g} s"
    if isinstance(exc, CommandTimedOut):
        return f"timed out after {exc.timeout} s (defaults.phase_timeout)"
    if isinstance(exc, UnexpectedExit):
        return _command_failure(exc.result.exited, exc.result.stderr or exc.result.stdout)
    return f"{type(exc).__name__}: {printable(str(exc))}"


def _command_failure(code: int, output: str) -> str:
    said = tail(output or "")
    return f"exit code {code}" + (f": {said}" if said else "")


def on_nodes(
    inventory: Inventory,
    step: str,
    fn: Callable[[Connection, Node], T],
    nodes: Optional[Sequence[Node]] = None,
    on_interrupt: Callable[[], None] = lambda: None,
    together: bool = False,
    grace: float = INTERRUPT_GRACE,
    *,
    connections: Connections,
    given_up: Callable[[Node], None] = lambda node: None,
) -> list[StepOutcome[T]]:
    """Run ``fn(connection, node)`` on every node over ``connections``, ``defaults.fanout``
    at a time (every node at once when ``together``: a common start); failures become
    outcomes. Tasks call it through controller/nodes/fleet.py (the command's connections).

    On Ctrl-C (or SIGTERM), ``on_interrupt()`` runs at once: the node threads cannot be
    stopped, so it must make them finish; once they have, or ``grace`` seconds have
    passed (a node that does not answer: its thread is left behind),
    ``Interrupted`` carries their outcomes (a node still waiting for its turn does not
    begin; one left behind fails, and ``given_up(node)`` is told: the fleet forgets its
    agent). A second Ctrl-C meanwhile quits at once."""
    targets = list(nodes if nodes is not None else inventory.nodes)
    ensure_open_files(len(inventory.nodes))
    turns = threading.BoundedSemaphore(len(targets) if together else inventory.settings.fanout)
    interrupted = threading.Event()

    def one(node: Node) -> StepOutcome[T]:
        with turns:
            try:
                if interrupted.is_set():
                    raise StepError(f"interrupted before {step} began")
                return StepOutcome(node, value=fn(connections.get(inventory, node), node))
            except Exception as exc:  # noqa: BLE001 - every failure is reported per node
                cause = explain(exc, inventory)
                return StepOutcome(node, failure=NodeFailure(node.id, address(node), step, cause))

    if not targets:
        return []
    # a thread per node, however many (a thread waiting for its turn costs a stack, not
    # a connection). Plain threads rather than a pool: the locks are given back at exit,
    # when pools refuse work
    outcomes: list[Optional[StepOutcome[T]]] = [None] * len(targets)
    finished = [False] * len(targets)

    def run(index: int) -> None:
        try:
            outcomes[index] = one(targets[index])
        finally:
            finished[index] = True

    started = 0
    try:  # started inside: a Ctrl-C while they start stops those already running
        for i in range(len(targets)):
            threading.Thread(target=run, args=(i,), daemon=True).start()
            started += 1
        _wait(finished)
    except KeyboardInterrupt as interrupt:
        code = stopping.exit_code(interrupt)
        interrupted.set()
        for i in range(started, len(targets)):  # never begun: nothing to wait for
            finished[i] = True
        on_interrupt()
        try:
            _wait(finished, time.monotonic() + grace)
        except KeyboardInterrupt:
            stopping.quit_now(code)
        for i, node in enumerate(targets):
            if not finished[i]:  # its thread is left behind (a daemon: it ends with us)
                given_up(node)  # its agent too: the thread may be reading it
                cause = f"interrupted: no answer within {grace:g} s of the interrupt; given up"
                failure = NodeFailure(node.id, address(node), step, cause)
                outcomes[i] = StepOutcome(node, failure=failure)
        raise stopping.Interrupted([o for o in outcomes if o is not None], code) from None
    return [o for o in outcomes if o is not None]


def _wait(finished: list[bool], deadline: float = float("inf")) -> None:
    """Until every flag is set (or ``deadline`` on the monotonic clock). Polled, not
    ``Thread.join``: a Ctrl-C that lands inside ``join`` can leave a running thread
    looking finished."""
    while not all(finished) and time.monotonic() < deadline:
        time.sleep(0.05)


class LiveBoard(Protocol):
    """What :class:`PrefixedStream` hands a node's lines to while a live block is shown
    (the progress board, controller/output/progress.py: this layer does not import it)."""

    def update(self, fields: dict) -> None: ...

    def lines(self, prefix: str, lines: list[str], target: Optional[TextIO] = None) -> None: ...


class PrefixedStream(io.TextIOBase):
    """Writes each complete line as ``[node] line`` to ``target`` (by default the
    console's stdout, or with ``error`` its stderr: controller/run/say.py); safe across
    threads.
    With a ``board`` (controller/output/progress.py), the worker's progress lines go to it and
    the others through it, so that they are written around its live block.

    invoke flushes after every read, mid-line: ``flush`` only flushes the target, and a
    last line without a newline is written by ``finish``. Lines are cut at MAX_LINE and
    written ``printable`` (controller/nodes/nodeoutput.py).
    """

    _lock = threading.Lock()

    def __init__(
        self,
        prefix: str,
        target: Optional[TextIO] = None,
        board: Optional[LiveBoard] = None,
        error: bool = False,
    ) -> None:
        self.prefix = prefix
        self.target = target or say.current().live(error)
        self.board = board
        self._pending: list[str] = []
        self._cutter = LineCutter()

    def write(self, text: str) -> int:
        lines = split_lines(self._pending, self._cutter.feed(text))
        self._emit([line[:-1] for line in lines])
        return len(text)

    def _emit(self, lines: list[str]) -> None:
        if lines and self.board is not None:
            said = []
            for line in lines:
                progress = decode_progress(line)
                if progress is not None:
                    self.board.update(progress)
                elif not for_the_controller(line):
                    said.append(printable(line))
            if said:
                self.board.lines(self.prefix, said, self.target)
        elif lines:
            with self._lock:
                for line in lines:
                    if not for_the_controller(line):
                        self.target.write(f"[{self.prefix}] {printable(line)}\n")
                self.target.flush()

    def flush(self) -> None:
        self.target.flush()

    def finish(self) -> None:
        pending, self._pending = "".join(self._pending), []
        self._emit([pending] if pending else [])
