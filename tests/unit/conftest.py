"""Every unit test gets a fleet of its own (controller/nodes/fleet.py): what one test
connected to, pushed or locked is not another's."""

from __future__ import annotations

from typing import Iterator

import pytest

from parbench.controller.nodes.fleet import Fleet, using


@pytest.fixture(autouse=True)
def fleet() -> Iterator[Fleet]:
    """This test's fleet: a test that fakes the nodes may build its own with ``using``."""
    with using(Fleet()) as made:
        yield made
