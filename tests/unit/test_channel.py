"""The controller's SSH sessions with a node that hangs, or writes without end, over real
paramiko channels (an SSH server in this process, tests/unit/sshserver.py); node text
shown with its control characters made visible."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import paramiko
import pytest
from invoke.exceptions import CommandTimedOut

from parbench.controller.nodes import nodeprobe
from parbench.controller.nodes.agents import Agents
from parbench.controller.nodes.nodeoutput import (
    CUT_MARKER,
    MAX_LINE,
    TAIL_CHARS,
    Kept,
    LineCutter,
    printable,
    tail,
)
from parbench.controller.nodes.remote import PrefixedStream, StepError, connect, connection_key
from parbench.controller.phases import failure_table
from parbench.controller.run.inventory import Inventory, Node, load
from parbench.controller.run.rundir import NodeFailure

from .sshserver import SSHServer, chatter, hang

REPO = Path(__file__).resolve().parents[2]


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()``'s value or exception, failing the test when it takes over ``seconds``
    (its thread is then left behind: a hang must fail the test, not stop the suite)."""
    got: dict[str, Any] = {}

    def run() -> None:
        try:
            got["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            got["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    if "error" in got:
        raise got["error"]
    return got["value"]


def _node_of(server: SSHServer, folder: Path) -> tuple[Inventory, Node]:
    inventory = load(server.inventory(folder))
    return inventory, inventory.nodes[0]


@pytest.fixture
def hung(tmp_path: Path) -> Iterator[tuple[SSHServer, Inventory, Node]]:
    with SSHServer(hang) as server:
        yield (server, *_node_of(server, tmp_path))


def test_the_probe_s_first_answer_is_timed_out_on_a_real_channel(
    hung: tuple[SSHServer, Inventory, Node], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, inventory, node = hung
    monkeypatch.setattr(nodeprobe, "SESSION_TIMEOUT", 0.5)
    conn = connect(inventory, node)
    conn.open()
    try:
        began = time.monotonic()
        with pytest.raises(StepError, match=r"^the probe did not report its facts within 0.5 s$"):
            _within(15, lambda: nodeprobe.probe_node(conn, node, []))
        assert time.monotonic() - began < 5
        assert "-c" in server.wait_for_command()  # the probe was started there
    finally:
        conn.close()


def test_a_line_trickling_in_is_timed_out_as_a_whole(tmp_path: Path) -> None:
    """The timeout is for the line, not for each read: a byte a second never ends it."""

    def trickle(channel: paramiko.Channel, command: str) -> None:
        try:
            while True:
                channel.sendall(b"x")
                time.sleep(0.1)
        except (OSError, EOFError):
            pass

    with SSHServer(trickle) as server:
        inventory, node = _node_of(server, tmp_path)
        conn = connect(inventory, node)
        conn.open()
        try:
            session = nodeprobe.ChannelSession(conn, "probe")
            session.timeout = 0.5
            with pytest.raises(TimeoutError):
                _within(10, session.readline)
            session.abandon()
        finally:
            conn.close()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_or_ctrl_c_ends_a_push_whose_probe_hangs_within_seconds(
    tmp_path: Path, signum: int, code: int
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.unit.sshserver", str(tmp_path)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO / "parbench")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.monotonic() + 30
        while not (tmp_path / "ready").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < end, "the probe never started"
            time.sleep(0.05)
        time.sleep(0.3)  # the step is waiting for the probe's answer
        proc.send_signal(signum)
        began = time.monotonic()
        out, err = proc.communicate(timeout=15)
        assert time.monotonic() - began < 10
        assert proc.returncode == code, err
        assert "interrupted" in err and "Traceback" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _agent_on(conn: Any, node: Node) -> Agents:
    """An agent for ``node`` on a real channel (whatever the server does with it)."""
    agents = Agents()
    agents._sessions[connection_key(node)] = nodeprobe.ChannelSession(conn, "agent")
    return agents


@pytest.mark.parametrize("line", [b"x" * 1000 + b"\n", b"y" * 65536])
def test_a_node_that_keeps_writing_is_timed_out_at_the_phase_deadline(
    tmp_path: Path, line: bytes
) -> None:
    with SSHServer(chatter(line)) as server:
        inventory, node = _node_of(server, tmp_path)
        conn = connect(inventory, node)
        conn.open()
        agents = _agent_on(conn, node)
        out = io.StringIO()
        began = time.monotonic()
        try:
            with pytest.raises(StepError, match=r"timed out after 1 s"):
                _within(20, lambda: agents.run(node, "x", "{}", out, out, [], None, 1))
        finally:
            conn.close()
        assert time.monotonic() - began < 10
        if b"\n" not in line:  # one line without end: nothing of it was let through whole
            assert len(out.getvalue()) <= MAX_LINE + len(CUT_MARKER) + 1


def test_a_line_longer_than_the_limit_is_cut_and_the_rest_of_it_dropped(tmp_path: Path) -> None:
    def long_line(channel: paramiko.Channel, command: str) -> None:
        channel.sendall(
            b"@stderr " + b"z" * (MAX_LINE + 100_000) + b"\nnext\nparbench-agent done 0\n"
        )

    with SSHServer(long_line) as server:
        inventory, node = _node_of(server, tmp_path)
        conn = connect(inventory, node)
        conn.open()
        out, err = io.StringIO(), io.StringIO()
        try:
            done = _within(
                60, lambda: _agent_on(conn, node).run(node, "x", "{}", out, err, [], None, 30)
            )
        finally:
            conn.close()
    first, second = err.getvalue().split("\n")[:2], done.stdout
    assert first[0] == "z" * (MAX_LINE - len("@stderr ")) + CUT_MARKER
    assert second == "next\n" and done.exited == 0


def test_a_command_s_output_is_kept_within_bounds_through_invoke(tmp_path: Path) -> None:
    with SSHServer(chatter(b"w" * 999 + b"\n")) as server:
        inventory, node = _node_of(server, tmp_path)
        conn = connect(inventory, node)
        try:
            try:
                done = _within(30, lambda: conn.run("worker", hide=True, warn=True, timeout=2))
            except CommandTimedOut as timed_out:
                done = timed_out.result
        finally:
            conn.close()
    kept = done.stdout
    assert kept.startswith("[parbench: ") and "line(s) not kept" in kept, kept[:200]
    assert len(kept) <= TAIL_CHARS + 2000


def test_a_line_cutter_cuts_once_and_drops_the_rest_up_to_the_newline() -> None:
    cutter = LineCutter(5)
    pieces = ["ab", "cdefg", "hij", "\nok\n", "123456\n"]
    assert "".join(cutter.feed(p) for p in pieces) == (
        f"abcde{CUT_MARKER}\nok\n12345{CUT_MARKER}\n"
    )


def test_kept_output_holds_every_record_and_only_the_last_lines() -> None:
    kept = Kept(lines=3, chars=1000)
    record = "@record " + "{" + "r" * 5_000_000 + "}\n"  # a large, legitimate record
    for i in range(10):
        kept.add(f"line {i}\n")
    kept.add(record)
    kept.add("after\n")
    assert kept.text() == "[parbench: 8 line(s) not kept]\nline 8\nline 9\n" + record + "after\n"
    assert len(record) < MAX_LINE  # the limit never cuts a record of 4 MiB and more


def test_node_text_is_shown_with_its_control_characters_visible() -> None:
    evil = "\x1b]0;owned\x07red\x1b[31m\tok\r"
    assert printable(evil) == "\\x1b]0;owned\\x07red\\x1b[31m\tok\\x0d"
    shown = io.StringIO()
    stream = PrefixedStream("n0", shown)
    stream.write(evil + "\nlast")
    stream.finish()
    assert shown.getvalue() == f"[n0] {printable(evil)}\n[n0] last\n"
    assert "\x1b" not in tail("a\n" + evil) and "\x1b" not in failure_table(
        [NodeFailure("n0", "me@h:22", "push", "exit code 1: " + evil)]
    )


class _Flood:
    """A session whose node writes lines as fast as they are read: the controller never
    finds it silent."""

    timeout: float | None = None

    def send(self, text: str) -> None:
        pass

    def readline(self) -> str:
        return "flood\n"

    def abandon(self) -> None:
        pass


def test_the_phase_deadline_holds_however_fast_the_node_writes(tmp_path: Path) -> None:
    (tmp_path / "inventory.yaml").write_text("nodes:\n  - {id: n0, host: localhost}\n")
    node = load(tmp_path / "inventory.yaml").nodes[0]
    agents = Agents()
    agents._sessions[connection_key(node)] = _Flood()  # type: ignore[assignment]
    out = io.StringIO()
    with pytest.raises(StepError, match=r"timed out after 1 s"):
        _within(15, lambda: agents.run(node, "x", "{}", out, out, [], None, 1))
