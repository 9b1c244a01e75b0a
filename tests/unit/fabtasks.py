"""Call a ``fab`` task as the command line does (its function with a Context whose
``bench`` config points at a test's folders) and see how it ends."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from invoke import Config, Context, Exit

from parbench import tasks as fabfile


def context(tmp_path: Path, inventory: Optional[Path] = None) -> Context:
    bench = {
        "inventory": str(inventory or tmp_path / "inventory.yaml"),
        "results": str(tmp_path / "results"),
        "run": None,
        "history": None,
    }
    return Context(Config(overrides={"bench": bench}))


def exit_of(task: str, tmp_path: Path, inventory: Optional[Path] = None, **options: Any) -> Exit:
    """The Exit ``fab TASK --options`` ends with (a traceback fails the test)."""
    with pytest.raises(Exit) as info:
        getattr(fabfile, task)(context(tmp_path, inventory), **options)
    return info.value
