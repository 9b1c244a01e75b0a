"""THE grammar of sizes and durations (worker/protocol/units.py): one rule, stated once."""

from __future__ import annotations

import pytest

from parbench.worker.protocol import UnitError, parse_duration, parse_size

KiB, MiB, GiB, TiB = 1024, 1024**2, 1024**3, 1024**4


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (512, 512),
        ("512", 512),
        ("512B", 512),
        ("4k", 4 * KiB),  # a bare prefix: powers of 1024, as dd, fio and elbencho read it
        ("4K", 4 * KiB),
        ("4M", 4 * MiB),
        ("1G", GiB),
        ("1g", GiB),
        ("1T", TiB),
        ("1P", 1024 * TiB),
        ("4KiB", 4 * KiB),  # IEC: powers of 1024
        ("4kiB", 4 * KiB),
        ("1.5MiB", 3 * MiB // 2),
        ("0.5KiB", 512),
        (" 64 MiB ", 64 * MiB),
        ("4KB", 4000),  # SI: powers of 1000
        ("4kB", 4000),
        ("2MB", 2_000_000),
        ("1GB", 10**9),
        ("1TB", 10**12),
        ("1.5kB", 1500),
        (".5KiB", 512),
    ],
)
def test_sizes(written: object, expected: int) -> None:
    assert parse_size(written) == expected


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("4kb", "ambiguous"),  # a lowercase b: bits? 1000 or 1024? (the old grammars disagreed)
        ("64mb", "ambiguous"),
        ("1Gb", "ambiguous"),
        ("1mib", "ambiguous"),
        ("-1K", "0 bytes or more"),
        (-1, "0 bytes or more"),
        ("1.5", "whole number of bytes"),
        ("0.1MiB", "whole number of bytes"),
        ("4096.9", "whole number of bytes"),
        ("8EiB", "expected a size like"),
        ("9000P", "below 2^63"),
        ("1" + "0" * 400, "below 2^63"),
        (10**400, "below 2^63"),
        ("1e3", "expected a size like"),
        ("0x10", "expected a size like"),
        ("4 K B", "expected a size like"),
        ("4Ki", "expected a size like"),
        ("", "expected a size like"),
        ("²", "expected a size like"),
        ("٣MiB", "expected a size like"),
        (True, "expected a size like"),
        (1.5, "expected a size like"),
        (None, "expected a size like"),
    ],
)
def test_sizes_refused(written: object, why: str) -> None:
    with pytest.raises(UnitError) as info:
        parse_size(written)
    assert why in str(info.value) and "\n" not in str(info.value)


def test_an_ambiguous_size_says_what_to_write() -> None:
    with pytest.raises(UnitError) as info:
        parse_size("64mb")
    assert str(info.value).endswith("write 64MB for powers of 1000 or 64MiB for powers of 1024")


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        (90, 90.0),
        (0.5, 0.5),
        ("90", 90.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("90s", 90.0),
        ("1m30s", 90.0),
        ("1m 30s", 90.0),
        ("30m", 1800.0),
        ("2h", 7200.0),
        ("1.5h", 5400.0),
        ("1d", 86400.0),
        ("1d2h3m4s", 93784.0),
        ("250ms", 0.25),
        ("1s500ms", 1.5),
    ],
)
def test_durations(written: object, expected: float) -> None:
    assert parse_duration(written) == expected


@pytest.mark.parametrize(
    "written",
    ["-5", -5, "30s1m", "1m1m", "1M", "2H", "1w", "1 min", "s", "", "1e3", True, None,
     float("nan"), float("inf"), "1" + "0" * 400 + "s", 10**400],
)  # fmt: skip
def test_durations_refused(written: object) -> None:
    with pytest.raises(UnitError):
        parse_duration(written)
