"""Where the testbed keeps its state, in one place."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Layout:
    """Paths below one testbed root (``.testbed/`` of the repository by default)."""

    root: Path = REPO / ".testbed"

    @property
    def jars(self) -> Path:
        return self.root / "jars"

    @property
    def run(self) -> Path:
        """pid files of the processes this testbed started"""
        return self.root / "run"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def alluxio_home(self) -> Path:
        """conf/, bin/alluxio (the shell wrapper); what a node's ``alluxio_home`` points at"""
        return self.root / "alluxio"

    @property
    def alluxio_data(self) -> Path:
        """under storage and worker cache"""
        return self.root / "alluxio-data"

    @property
    def fuse(self) -> Path:
        """where ``up --fuse`` mounts Alluxio's ``/`` (Alluxio FUSE); nodes' ``posix_root``"""
        return self.root / "fuse"

    @property
    def ssh(self) -> Path:
        return self.root / "ssh"

    @property
    def client_key(self) -> Path:
        return self.ssh / "id_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.ssh / "known_hosts"

    @property
    def nodes(self) -> Path:
        return self.root / "nodes"

    @property
    def inventory(self) -> Path:
        return self.root / "inventory.yaml"

    @property
    def state(self) -> Path:
        """JSON description of what is up (ports, nodes); read by ``status`` and fixtures"""
        return self.root / "state.json"
