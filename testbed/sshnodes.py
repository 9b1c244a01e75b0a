"""N OpenSSH ``sshd`` processes on loopback, each a simulated client node.

Every node has its own host key, config, work directory and port. The client key and a
known_hosts file with every node's host key are generated, so that clients check host
keys instead of trusting whatever answers.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .layout import Layout
from .procs import PidFile, TestbedError, free_port_from, spawn, wait_until, which

FIRST_PORT = 2201
SFTP_SERVERS = (
    "/usr/lib/openssh/sftp-server",
    "/usr/libexec/openssh/sftp-server",
    "/usr/libexec/sftp-server",
)


@dataclass(frozen=True)
class SshNode:
    id: str
    port: int
    home: Path  # the node's own directory: config, host key, log

    @property
    def workdir(self) -> Path:
        return self.home / "work"

    @property
    def host_key(self) -> Path:
        return self.home / "ssh_host_ed25519_key"

    @property
    def config(self) -> Path:
        return self.home / "sshd_config"


def _keygen(path: Path, comment: str) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            which("ssh-keygen", "openssh-client"),
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            comment,
            "-f",
            str(path),
        ],
        check=True,
    )


def _sshd_config(node: SshNode, authorized_keys: Path, sftp: str) -> str:
    root = os.geteuid() == 0
    return "\n".join(
        [
            f"ListenAddress 127.0.0.1:{node.port}",
            f"HostKey {node.host_key}",
            f"PidFile {node.home / 'sshd.pid'}",
            f"AuthorizedKeysFile {authorized_keys}",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            # the key files live in the repository checkout, whatever its permissions
            "StrictModes no",
            f"PermitRootLogin {'prohibit-password' if root else 'no'}",
            f"AllowUsers {getpass.getuser()}",
            # many clients connect at once: no throttling of unauthenticated connections
            "MaxStartups 200:30:400",
            "MaxSessions 200",
            "UseDNS no",
            "PrintMotd no",
            "LogLevel INFO",
            f"Subsystem sftp {sftp}",
            "",
        ]
    )


def _public_key(private: Path) -> str:
    """``type base64`` of the public half, as known_hosts wants it."""
    return " ".join(private.with_suffix(".pub").read_text().split()[:2])


def _banner(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        return sock.recv(64).startswith(b"SSH-2.0")


def start(layout: Layout, count: int, timeout: float = 30.0) -> list[SshNode]:
    """Start ``count`` sshd nodes; ports from 2201 up, skipping any that are taken."""
    sshd = which("sshd", "openssh-server (apt-get install openssh-server)")
    sftp = next((p for p in SFTP_SERVERS if Path(p).exists()), None)
    if sftp is None:
        raise TestbedError("no sftp-server found: install openssh-sftp-server")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation dir
    _keygen(layout.client_key, "parbench-testbed-client")
    authorized = layout.ssh / "authorized_keys"
    shutil.copyfile(layout.client_key.with_suffix(".pub"), authorized)

    nodes: list[SshNode] = []
    taken: set[int] = set()
    for index in range(count):
        port = free_port_from(FIRST_PORT, taken)
        taken.add(port)
        node = SshNode(f"n{index}", port, layout.nodes / f"n{index}")
        node.workdir.mkdir(parents=True, exist_ok=True)
        _keygen(node.host_key, f"parbench-testbed-{node.id}")
        node.config.write_text(_sshd_config(node, authorized, sftp))
        spawn(
            f"sshd-{node.id}",
            [sshd, "-D", "-e", "-f", str(node.config)],
            layout.run,
            layout.logs / f"sshd-{node.id}.log",
        )
        nodes.append(node)
    for node in nodes:
        wait_until(
            lambda n=node: _banner(n.port),
            timeout,
            f"sshd of node {node.id} (port {node.port})",
            layout.logs / f"sshd-{node.id}.log",
            PidFile(layout.run / f"sshd-{node.id}.pid"),
        )
    known = [f"[127.0.0.1]:{n.port} {_public_key(n.host_key)}\n" for n in nodes]
    layout.known_hosts.write_text("".join(known))
    return nodes
