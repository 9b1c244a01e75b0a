"""An SSH server in this process, on loopback, for tests of the controller's real paramiko
channels: it accepts any public key, and each command it is asked to run is a Python
function given the channel (``hang`` writes nothing and never ends, as a node whose
interpreter or login hangs).

Run as a script (``python -m tests.unit.sshserver DIR BEHAVIOUR``) it serves in the
background and runs one probe step through ``fabfile._exits`` and ``on_nodes``, as
``fab push`` does, writing ``DIR/ready`` once the node's command is running.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import paramiko

Behaviour = Callable[[paramiko.Channel, str], None]


def hang(channel: paramiko.Channel, command: str) -> None:
    """Say nothing, never exit."""


def chatter(line: bytes) -> Behaviour:
    """Write ``line`` without end (a node that keeps writing)."""

    def behave(channel: paramiko.Channel, command: str) -> None:
        try:
            while True:
                channel.sendall(line)
        except (OSError, EOFError):
            pass

    return behave


class _Server(paramiko.ServerInterface):
    def __init__(self, behaviour: Behaviour, commands: list[str]) -> None:
        self.behaviour = behaviour
        self.commands = commands

    def get_allowed_auths(self, username: str) -> str:
        return "publickey"

    def check_auth_publickey(self, username: str, key: paramiko.PKey) -> int:
        return paramiko.AUTH_SUCCESSFUL

    def check_channel_request(self, kind: str, chanid: int) -> int:
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_exec_request(self, channel: paramiko.Channel, command: bytes) -> bool:
        self.commands.append(command.decode(errors="replace"))
        threading.Thread(target=self.behaviour, args=(channel, command), daemon=True).start()
        return True


class SSHServer:
    """Serves on 127.0.0.1 until closed; ``inventory(folder)`` writes an inventory (its
    key and known_hosts beside it) with one node, n0, that is this server."""

    def __init__(self, behaviour: Behaviour = hang) -> None:
        self.host_key = paramiko.ECDSAKey.generate()
        self.behaviour = behaviour
        self.commands: list[str] = []
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.transports: list[paramiko.Transport] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            transport = paramiko.Transport(client)
            transport.add_server_key(self.host_key)
            transport.start_server(server=_Server(self.behaviour, self.commands))
            self.transports.append(transport)

    def inventory(self, folder: Path, extra: str = "") -> Path:
        key = paramiko.ECDSAKey.generate()
        key.write_private_key_file(str(folder / "id_test"))
        entry = f"[127.0.0.1]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"
        (folder / "known_hosts").write_text(entry + "\n")
        path = folder / "inventory.yaml"
        path.write_text(
            f"{extra}ssh: {{known_hosts: known_hosts}}\n"
            f"nodes:\n  - {{id: n0, host: 127.0.0.1, port: {self.port}, user: me, "
            f"key: id_test, workdir: {folder / 'work'}}}\n"
        )
        return path

    def wait_for_command(self, timeout: float = 10) -> str:
        end = time.monotonic() + timeout
        while not self.commands and time.monotonic() < end:
            time.sleep(0.02)
        assert self.commands, "no command reached the server"
        return self.commands[-1]

    def close(self) -> None:
        self.listener.close()
        for transport in self.transports:
            transport.close()

    def __enter__(self) -> SSHServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def served(behaviour: Behaviour = hang) -> Iterator[SSHServer]:
    """A fixture's body: a server, closed after the test."""
    with SSHServer(behaviour) as server:
        yield server


def _probe_step(folder: Path) -> None:
    """What ``fab push`` does to one node up to the probe's first answer, its exits
    as the fabfile maps them (130/143); ``ready`` is written once the probe runs."""
    from parbench import tasks as fabfile
    from parbench.controller.nodes import nodeprobe
    from parbench.controller.nodes.fleet import on_nodes
    from parbench.controller.run.inventory import load

    with SSHServer(hang) as server:
        inventory = load(server.inventory(folder))
        threading.Thread(
            target=lambda: (server.wait_for_command(60), (folder / "ready").touch()),
            daemon=True,
        ).start()
        try:
            with fabfile._exits():
                on_nodes(inventory, "push", lambda c, n: nodeprobe.probe_node(c, n, []))
        except SystemExit:
            raise
        except BaseException as exc:  # invoke's Exit: its code
            print(getattr(exc, "message", exc), file=sys.stderr, flush=True)
            sys.exit(getattr(exc, "code", 1))


if __name__ == "__main__":
    _probe_step(Path(sys.argv[1]))
