"""Client errors for people: the root cause of a requests/urllib3 chain in a few words,
one bounded line per record and place, the whole chain in the record's ``detail``."""

from __future__ import annotations

import io
import json
import socket
from http.client import RemoteDisconnected
from typing import Sequence

import alluxio
import pytest
import requests
from alluxio import exceptions
from urllib3 import HTTPConnectionPool
from urllib3.exceptions import (
    ConnectTimeoutError,
    IncompleteRead,
    MaxRetryError,
    ProtocolError,
    ReadTimeoutError,
)

from parbench.worker.report import progress_line
from parbench.worker.results import (
    DETAIL_LIMIT,
    ERROR_LIMIT,
    ClientResult,
    elide,
    error_detail,
    one_line,
    outcome,
    read_lines,
)
from parbench.worker.storage import CAUSE_LIMIT, exception_chain, root_cause

POOL = HTTPConnectionPool("127.0.0.1", 39999)
WRITE_URL = "/api/v1/streams/1/write"


def raised(links: Sequence[BaseException]) -> BaseException:
    """The last of ``links``, raised while handling the one before it, and so on down to
    the first: chained (and with tracebacks) as the libraries raise them."""

    def throw(index: int) -> None:
        if index == 0:
            raise links[0]
        try:
            throw(index - 1)
        except BaseException:
            raise links[index]  # noqa: B904 - the implicit context is the point

    try:
        throw(len(links) - 1)
    except BaseException as exc:
        return exc
    raise AssertionError("unreachable")


def wrapped(*inner: BaseException) -> BaseException:
    """``inner`` (innermost first) under urllib3's MaxRetryError, requests' ConnectionError
    and alluxio's HTTPError, as a failed POST to the proxy is."""
    retries = MaxRetryError(POOL, WRITE_URL, inner[-1])
    connection = requests.ConnectionError(retries)
    failed = exceptions.HTTPError(f"Failed to send POST request to http://127.0.0.1{WRITE_URL}")
    return raised([*inner, retries, connection, failed])


def refused_by_a_closed_port() -> BaseException:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    with pytest.raises(exceptions.HTTPError) as caught:
        alluxio.Client("127.0.0.1", port, timeout=5).exists("/")
    return caught.value


def test_a_real_refused_connection_is_two_words() -> None:
    exc = refused_by_a_closed_port()
    chain = exception_chain(exc)
    assert [type(link).__name__ for link in chain] == [
        "HTTPError",
        "ConnectionError",
        "MaxRetryError",
        "NewConnectionError",
        "ConnectionRefusedError",
    ]
    assert len(str(chain[1])) > CAUSE_LIMIT  # what used to be shown
    assert root_cause(exc) == "connection refused"


def test_a_reset_connection_is_found_under_the_retries() -> None:
    reset = ConnectionResetError(104, "Connection reset by peer")
    exc = wrapped(reset, ProtocolError("Connection aborted.", reset))
    assert len(str(exception_chain(exc)[1])) > CAUSE_LIMIT
    assert root_cause(exc) == "connection reset by peer"


@pytest.mark.parametrize(
    ("links", "timeout", "cause"),
    [
        # metadata calls: urllib3 names the timeout
        ([ReadTimeoutError(POOL, WRITE_URL, "Read timed out. (read timeout=600.0)")], None,
         "read timed out after 600 s"),
        ([ConnectTimeoutError(POOL, "Connection to 10.0.0.9 timed out. (connect timeout=5)")],
         600.0, "connect timed out after 5 s"),
        # a stream's body read does not: the backend's timeout is named
        ([ReadTimeoutError(POOL, None, "Read timed out.")], 600.0, "read timed out after 600 s"),
        ([ReadTimeoutError(POOL, None, "Read timed out.")], None, "read timed out"),
        ([], 2.5, "timed out after 2.5 s"),
    ],
)  # fmt: skip
def test_timeouts_say_which_and_how_long(
    links: list[BaseException], timeout: float, cause: str
) -> None:
    exc = raised([socket.timeout("timed out"), *links])
    assert root_cause(exc, timeout) == cause


@pytest.mark.parametrize(
    ("root", "cause"),
    [
        (socket.gaierror(-2, "Name or service not known"), "name or service not known"),
        (RemoteDisconnected("Remote end closed connection without response"),
         "remote end closed connection without response"),
        (IncompleteRead(2000, 8000), "IncompleteRead(2000 bytes read, 8000 more expected)"),
        (BrokenPipeError(32, "Broken pipe"), "broken pipe"),
        (FileNotFoundError(2, "No such file or directory", "/x"),
         "no such file or directory: /x"),
        (RuntimeError(), "RuntimeError"),
    ],
)  # fmt: skip
def test_the_innermost_error_in_words(root: BaseException, cause: str) -> None:
    assert root_cause(wrapped(root)) == cause


def test_a_root_cause_is_one_bounded_line() -> None:
    cause = root_cause(wrapped(ValueError("first line\n" + "x" * 1000)))
    assert cause.startswith("ValueError: first line xxx") and "\n" not in cause
    assert len(cause) == CAUSE_LIMIT


def test_the_chain_ends_at_a_loop_or_a_suppressed_context() -> None:
    first, second = ValueError("a"), KeyError("b")
    first.__context__, second.__context__ = second, first
    assert exception_chain(first) == [first, second]
    hidden = raised([OSError("hidden"), ValueError("shown")])
    hidden.__suppress_context__ = True  # `raise ... from None`
    assert exception_chain(hidden) == [hidden]


def test_the_detail_holds_the_whole_chain() -> None:
    detail = error_detail(refused_by_a_closed_port())
    assert detail.startswith("Traceback (most recent call last):")
    for name in ("ConnectionRefusedError", "NewConnectionError", "MaxRetryError", "HTTPError"):
        assert f"{name}: " in detail
    assert detail.count("During handling of the above exception") >= 2


def test_a_long_detail_keeps_the_root_cause_and_the_last_step() -> None:
    exc = raised([ConnectionResetError(104, "the root"), ValueError("y" * 3 * DETAIL_LIMIT)])
    detail = error_detail(exc)
    assert len(detail) == DETAIL_LIMIT and "\n...\n" in detail
    assert "ConnectionResetError: [Errno 104] the root" in detail and detail.endswith("yyy\n")


def test_elide_and_one_line() -> None:
    assert elide("abcdefghij", 10) == "abcdefghij"
    assert elide("abcdefghij", 9, "..") == "abc..ghij"
    assert one_line(" a\n  b\tc ") == "a b c"
    long = one_line("start " + "x " * 500 + "end")
    assert len(long) == ERROR_LIMIT and long.startswith("start x") and long.endswith("x end")
    assert " ... " in long


def test_outcome_drops_the_host_and_path_the_line_names() -> None:
    assert outcome("error", "hostA: /p/0: boom", "hostA", "/p/0") == "error: boom"
    assert outcome("error", "other: /p/0: boom", "hostA", "/p/0") == "error: other: /p/0: boom"
    assert outcome("error", None, "hostA", "/p/0") == "error"
    assert outcome("ok", None, "hostA", "/p/0") == "ok"


def record(**fields: object) -> ClientResult:
    return ClientResult(
        run_id="r", phase="write", node="n0", client=1, host="hostA", backend="alluxio",
        path="/parbench/n0/1", **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_detail_is_an_optional_field_of_the_same_schema() -> None:
    failed = record(status="error", error="hostA: /parbench/n0/1: boom", detail="Traceback ...")
    assert list(read_lines(io.StringIO(failed.to_json()))) == [failed]
    older = json.loads(record().to_json())
    del older["detail"]  # a record written before the field existed
    newer = {**older, "a_later_field": 1}  # a reader ignores what it does not know
    lines = io.StringIO(f"{json.dumps(older)}\n{json.dumps(newer)}\n")
    assert [r.detail for r in read_lines(lines)] == [None, None]


def test_the_progress_line_shows_the_short_error_once() -> None:
    cause = "alluxio proxy 127.0.0.1:39999: write: connection reset by peer after 3.0 MiB"
    failed = record(
        status="error",
        error=f"hostA: /parbench/n0/1: {cause}; partial file\n deleted",
        bytes=3 * 1024 * 1024,
        detail="Traceback (most recent call last):\n ...",
    )
    assert progress_line(failed) == (
        f"n0/1 write /parbench/n0/1  3.0 MiB  0.00 s  - MiB/s  error: {cause}; partial file deleted"
    )
    huge = progress_line(record(status="error", error="hostA: /parbench/n0/1: " + "z" * 5000))
    assert "\n" not in huge and len(huge) < ERROR_LIMIT + 80


def test_an_error_being_handled_is_no_cause_of_a_later_one() -> None:
    """A cleanup after a failed write raises while the write's error is handled: Python
    chains that error to the cleanup's root; the cleanup's cause is its own."""
    write_failed = RemoteDisconnected("Remote end closed connection without response")
    try:
        raise write_failed
    except RemoteDisconnected:
        cleanup_failed = wrapped(ConnectionRefusedError(111, "Connection refused"))
    assert exception_chain(cleanup_failed)[-1] is write_failed
    assert root_cause(cleanup_failed, handled=write_failed) == "connection refused"
