"""Reference data generated on the nodes: deterministic, every page its own, made once."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from parbench.worker import generate


def test_the_same_bytes_every_time_and_cut_to_length() -> None:
    size = 3 * generate.CHUNK + 123
    once = b"".join(generate.chunks(size))
    assert len(once) == size and once == b"".join(generate.chunks(size))
    assert [len(c) for c in generate.chunks(size)][-1] == 123
    assert generate.sha256(size) == hashlib.sha256(once).hexdigest()
    assert b"".join(generate.chunks(0)) == b""
    # a prefix of a larger size: sizes differ only in length
    assert b"".join(generate.chunks(size + 5000))[:size] == once


def test_every_page_is_its_own() -> None:
    data = b"".join(generate.chunks(2 * generate.CHUNK))
    pages = [data[i : i + generate.PAGE] for i in range(0, len(data), generate.PAGE)]
    assert len(set(pages)) == len(pages)
    assert pages[300].startswith(b"parbench page 000000000000000000300\n")


def test_materialise_makes_the_file_once(tmp_path: Path) -> None:
    out = str(tmp_path / "generated-5000.bin")
    expected = generate.sha256(5000)
    assert generate.materialise(out, 5000, expected) is True
    assert hashlib.sha256(Path(out).read_bytes()).hexdigest() == expected
    assert generate.materialise(out, 5000, expected) is False
    Path(out).write_bytes(b"x" * 5000)  # changed: the stamp no longer fits
    assert generate.materialise(out, 5000, expected) is True
    assert hashlib.sha256(Path(out).read_bytes()).hexdigest() == expected


def test_a_digest_that_differs_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "generated-10.bin"
    with pytest.raises(generate.GenerateError, match="the controller expects ffffffffffff"):
        generate.materialise(str(out), 10, "f" * 64)
    assert list(tmp_path.iterdir()) == []
    assert generate.run(str(out), 10, "f" * 64) == 1


def test_a_failed_write_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    def full(size: int):
        yield b"x" * 10
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(generate, "chunks", full)
    with pytest.raises(OSError, match="No space left"):
        generate.materialise(str(tmp_path / "generated-20.bin"), 20, "0" * 64)
    assert list(tmp_path.iterdir()) == []
