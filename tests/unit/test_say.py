"""The lower layers speak through controller/run/say.py: fabfile.py points it at the
console, and the lines keep their text and their stream."""

from __future__ import annotations

import io
from typing import Iterator, TextIO

import pytest

from parbench.controller.nodes.remote import PrefixedStream
from parbench.controller.output import console
from parbench.controller.run import say


class Recorder:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.streams = {False: io.StringIO(), True: io.StringIO()}

    def out(self, text: str) -> None:
        self.lines.append(("out", text))

    def err(self, text: str) -> None:
        self.lines.append(("err", text))

    def live(self, error: bool = False) -> TextIO:
        return self.streams[error]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    before = say.current()
    sink = Recorder()
    say.install(sink)
    try:
        yield sink
    finally:
        say.install(before)


def test_the_fabfile_installs_the_console() -> None:
    from parbench import tasks as fabfile  # noqa: F401 - installs on import

    assert say.current() is console


def test_a_lower_layer_speaks_through_the_installed_sink(
    recorder: Recorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    from parbench.controller.nodes import stopping

    def leave(code: int) -> None:
        raise SystemExit(code)

    monkeypatch.setattr(stopping.os, "_exit", leave)
    with pytest.raises(SystemExit):
        stopping.quit_now(130)
    [(stream, text)] = recorder.lines
    assert stream == "err" and text.startswith("interrupted again: quitting now")


def test_a_nodes_live_lines_go_to_the_sinks_streams(recorder: Recorder) -> None:
    PrefixedStream("n0").write("said\n")
    PrefixedStream("n0", error=True).write("trouble\n")
    assert recorder.streams[False].getvalue() == "[n0] said\n"
    assert recorder.streams[True].getvalue() == "[n0] trouble\n"


@pytest.mark.parametrize("sink", [say.Plain(), console], ids=["plain", "console"])
def test_the_fallback_and_the_console_write_the_same(
    sink: say.Say, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(console, "_level", "verbose")  # below it the console drops node lines
    before = say.current()
    say.install(sink)
    try:
        say.out("a line")
        say.err("a warning")
        PrefixedStream("n0").write("live\n")
        PrefixedStream("n0", error=True).write("live err\n")
    finally:
        say.install(before)
    assert capsys.readouterr() == ("a line\n[n0] live\n", "a warning\n[n0] live err\n")
