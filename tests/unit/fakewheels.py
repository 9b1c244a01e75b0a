"""Stand-in wheels and a folder snapshot, for the tests of push and bootstrap."""

from __future__ import annotations

import zipfile
from pathlib import Path

ALLUXIO_OLD = "alluxio-0.1.3-py3-none-any.whl"
ALLUXIO = "alluxio-0.1.4-py3-none-any.whl"
REQUESTS = "requests-2.0-py3-none-any.whl"


def make_wheel(folder: Path, name: str) -> Path:
    """A stand-in wheel: the package named by the file, whose VERSION is the file's."""
    package, version = name.split("-")[:2]
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(folder / name, "w") as archive:
        entry = zipfile.ZipInfo(f"{package}/__init__.py")  # a fixed date: same bytes each time
        archive.writestr(entry, f"VERSION = {version!r}\n")
    return folder / name


def tree(root: Path) -> dict[str, object]:
    """Every path below ``root`` with its bytes (None for a folder)."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
        for p in sorted(root.rglob("*"))
    }
