"""Session fixtures: the real local testbed (sshd nodes + Alluxio), brought up once.

If a testbed is already up (``python -m testbed up`` by hand or by ``make test``), it
is used and left running; otherwise the session starts one and takes it down at the end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import settings

from testbed import bed, fuse
from testbed.layout import Layout

#: nodes of the session's testbed; fewer (``PARBENCH_TESTBED_NODES=2``) for a second
#: checkout's testbed beside another, for the tests that need no more
NODES = int(os.environ.get("PARBENCH_TESTBED_NODES", "3"))

# no per-example time limit: a shared 2-core machine is noisy, and speed is measured in
# bench/, never asserted in a test
settings.register_profile("parbench", deadline=None)
settings.load_profile("parbench")


@dataclass(frozen=True)
class Testbed:
    layout: Layout
    state: bed.State

    @property
    def proxy_port(self) -> int:
        assert self.state.proxy_port is not None
        return self.state.proxy_port

    @property
    def inventory(self) -> Path:
        return self.layout.inventory


@pytest.fixture(scope="session")
def testbed() -> Testbed:
    layout = Layout()
    state = bed.State.load(layout)
    reuse = (
        bed.is_up(layout)
        and state is not None
        and state.alluxio is not None
        and len(state.nodes) >= NODES
    )
    if not reuse:
        state = bed.up(layout, nodes=NODES)
    assert state is not None
    yield Testbed(layout, state)
    if not reuse:
        bed.down(layout)


#: nodes of a testbed the FUSE fixture starts itself (none running): the test needs two
FUSE_NODES = 2


@pytest.fixture(scope="module")
def fuse_testbed() -> Testbed:
    """A testbed with Alluxio FUSE mounted at ``layout.fuse`` (its inventory's nodes have
    ``posix_root`` there): a running testbed gets the mount for the module (and loses it
    after, unless it had it), else one of 2 nodes is started with it and stopped after.
    Skipped, with the reason, where FUSE cannot work on this machine."""
    why = fuse.unavailable()
    if why:
        pytest.skip(f"Alluxio FUSE cannot work here: {why}")
    layout = Layout()
    state = bed.State.load(layout)
    running = bed.is_up(layout) and state is not None and state.alluxio is not None
    mounted_here = started_here = False
    if not running:
        state, started_here = bed.up(layout, nodes=FUSE_NODES, with_fuse=True), True
    elif state is not None and not state.fuse:
        state, mounted_here = bed.fuse_up(layout), True
    assert state is not None and state.fuse
    yield Testbed(layout, state)
    if started_here:
        bed.down(layout)
    elif mounted_here:
        bed.fuse_down(layout)
