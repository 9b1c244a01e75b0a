"""The reference data a run writes and verifies against: the file on the controller, or
data generated on every node (worker/generate.py), and its size and sha256 as the run
seals them (:func:`reference_facts`).

A file's sha256 is read once per command while it is unchanged; the generated data's is
computed once per recipe and size and kept in the user's cache (:data:`CACHE`: generated/).
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import Optional

from parbench.worker.protocol import DATA_GENERATOR
from parbench.worker.protocol import generated_sha256 as generated_digest

from .inventory import Inventory
from .plan import ReferenceFacts


def _cache() -> Path:
    """parbench's cache on the controller: $PARBENCH_CACHE, else $XDG_CACHE_HOME/parbench,
    else ~/.cache/parbench (never inside the installed package)."""
    given = os.environ.get("PARBENCH_CACHE")
    if given:
        return Path(given)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "parbench"


CACHE = _cache()
GENERATED_CACHE = CACHE / "generated"


def sha256_of(path: Path) -> str:
    """The sha256 of a local file, read in 1 MiB chunks; read once per command while the
    file is unchanged (the run's check and the push both ask about the reference)."""
    stat = os.stat(path)
    key = (str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _DIGESTS:
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        _DIGESTS[key] = digest.hexdigest()
    return _DIGESTS[key]


#: (path, size, mtime, inode) -> sha256, for this process
_DIGESTS: dict[tuple[str, int, int, int], str] = {}


class PushError(RuntimeError):
    """The inventory's reference data file is missing (bad input)."""


def reference_file(inventory: Inventory) -> Path:
    """The reference data file, which must exist before anything starts."""
    data = inventory.settings.data
    if isinstance(data, int):
        raise PushError(f"{inventory.path.name}: defaults.data: generated on the nodes, no file")
    if not data.is_file():
        raise PushError(
            f"{inventory.path.name}: defaults.data: reference file {data} does not "
            "exist; make it with ./get_data.sh"
        )
    return data


def generated_sha256(size: int, cache: Optional[Path] = None) -> str:
    """The sha256 of the data generated on the nodes (worker/generate.py), computed once
    per recipe and size and kept in ``cache`` (by default GENERATED_CACHE)."""
    cache = GENERATED_CACHE if cache is None else cache
    kept = cache / f"{DATA_GENERATOR.replace('/', '-')}-{size}.sha256"
    try:
        return kept.read_text().strip()
    except OSError:
        pass
    digest = generated_digest(size)
    cache.mkdir(parents=True, exist_ok=True)
    # one name per process and thread: a command probes its nodes in threads at once
    tmp = kept.with_suffix(f".{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.write_text(digest + "\n")
    tmp.replace(kept)
    return digest


def reference_facts(inventory: Inventory) -> ReferenceFacts:
    """Size and sha256 of the inventory's reference file (which must exist), or of the
    data generated on the nodes."""
    data = inventory.settings.data
    if isinstance(data, int):
        return ReferenceFacts(f"generated:{data}", data, generated_sha256(data), generated=True)
    path = reference_file(inventory)
    return ReferenceFacts(str(path), path.stat().st_size, sha256_of(path))
