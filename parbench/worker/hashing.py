"""Chunked reading and hashing of byte streams, so memory stays flat whatever the size."""

from __future__ import annotations

import hashlib
from typing import BinaryIO, Iterable, Iterator

DEFAULT_ALGORITHM = "sha256"
DEFAULT_CHUNK_SIZE = 1 << 20


def read_chunks(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    """Yield successive chunks of at most ``chunk_size`` bytes until end of stream."""
    if chunk_size <= 0:
        raise ValueError(f"chunk size must be positive, got {chunk_size}")
    while True:
        chunk = stream.read(chunk_size)
        if not chunk:
            return
        yield chunk


class CountingTee:
    """Pass chunks through unchanged while counting their bytes (``size``): what a timed
    transfer needs, with nothing more on its path."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self.size += len(chunk)
            yield chunk


class HashingTee:
    """Pass chunks through unchanged while counting and hashing them.

    Iterate it exactly once; ``size`` and ``hexdigest()`` describe what went through so far.
    """

    def __init__(self, chunks: Iterable[bytes], algorithm: str = DEFAULT_ALGORITHM) -> None:
        self._chunks = chunks
        self._hash = hashlib.new(algorithm)
        self.algorithm = algorithm
        self.size = 0

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._chunks:
            self._hash.update(chunk)
            self.size += len(chunk)
            yield chunk

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def size_and_hash(
    path: str, algorithm: str = DEFAULT_ALGORITHM, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> tuple[int, str]:
    """Return (size, hex digest) of a local file, read in chunks; both from one pass."""
    with open(path, "rb") as stream:
        tee = HashingTee(read_chunks(stream, chunk_size), algorithm)
        for _ in tee:
            pass
    return tee.size, tee.hexdigest()
