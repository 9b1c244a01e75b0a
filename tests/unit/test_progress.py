"""Live progress: the block drawn in place on a terminal, plain periodic lines without one,
and many nodes' output never interleaved mid-line."""

from __future__ import annotations

import io
import re
import threading

from parbench.controller.nodes.remote import PrefixedStream
from parbench.controller.output.progress import Board
from parbench.worker.protocol import Progress, decode_progress, encode_line

MIB = 1024 * 1024
ERASE = re.compile(r"\x1b\[(\d+)F\x1b\[J")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def fields(node: str, done: int, moved: int, files: int, total: int = 2) -> Progress:
    line = encode_line(Progress("write", node, done, total, moved, files))
    found = decode_progress(line)
    assert found is not None
    return found


def screen(text: str) -> list[str]:
    """What a terminal shows after ``text``: lines, with the erase sequences applied."""
    shown: list[str] = []
    for part in re.split(r"(\x1b\[\d+F\x1b\[J)", text):
        erased = ERASE.fullmatch(part)
        if erased:
            del shown[len(shown) - int(erased.group(1)) :]
        else:
            shown += part.splitlines()
    return shown


def test_on_a_terminal_one_line_per_node_and_a_total_rewritten_in_place() -> None:
    out, clock = io.StringIO(), Clock()
    board = Board(out, tty=True, clock=clock)
    clock.now = 2.0
    board.update(fields("n0", 0, 10 * MIB, 1))
    clock.now = 3.0
    board.update(fields("n1", 1, 30 * MIB, 3))
    assert screen(out.getvalue()) == [
        "write: 1/4 clients done on 2 node(s), 40.0 MiB, 4 files, 13.3 MiB/s, 3 s",
        "  n0              0/2    clients        10.0 MiB       1 files",
        "  n1              1/2    clients        30.0 MiB       3 files",
    ]
    # a node's ordinary line goes above the block, which is drawn again below it
    board.lines("n0", ["write n0/1 ok 10.00 MiB"])
    assert screen(out.getvalue())[0] == "[n0] write n0/1 ok 10.00 MiB"
    assert screen(out.getvalue())[1].startswith("write: 1/4 clients done")
    board.close()
    assert screen(out.getvalue()) == ["[n0] write n0/1 ok 10.00 MiB"]


def test_without_a_terminal_a_plain_total_every_interval_and_no_block() -> None:
    out, clock = io.StringIO(), Clock()
    board = Board(out, tty=False, every=10.0, clock=clock)
    for second in range(1, 26):
        clock.now = second - 0.5
        board.update(fields("n1", 0, second * MIB, 0))
        clock.now = float(second)
        board.update(fields("n0", 0, second * MIB, 0))
    lines = out.getvalue().splitlines()
    assert lines == [
        "write: 0/4 clients done on 2 node(s), 20.0 MiB, 0 files, 2.0 MiB/s, 10 s",
        "write: 0/4 clients done on 2 node(s), 40.0 MiB, 0 files, 2.0 MiB/s, 20 s",
    ]
    assert "\x1b" not in out.getvalue()
    board.close()
    assert out.getvalue().splitlines() == lines


def test_a_line_it_does_not_understand_is_ignored() -> None:
    out = io.StringIO()
    board = Board(out, tty=True)
    line = '@progress {"node": "n0", "phase": "write"}'  # a newer worker's, say
    assert decode_progress(line) is None
    stream = PrefixedStream("n0", out, board)
    stream.write(line + "\n")
    stream.finish()
    assert board.nodes == {} and out.getvalue() == ""


def test_many_nodes_output_and_progress_never_interleave_mid_line() -> None:
    out = io.StringIO()
    board = Board(out, tty=True)

    def node(nid: str) -> None:
        stream = PrefixedStream(nid, out, board=board)
        for i in range(200):
            # invoke hands over whatever it read: here, lines cut at odd places
            told = encode_line(Progress("write", nid, i, 200, i * MIB, i))
            text = f"write {nid}/{i} ok\n" + told + "\n"
            for cut in range(0, len(text), 7):
                stream.write(text[cut : cut + 7])
        stream.finish()

    threads = [threading.Thread(target=node, args=(f"n{k}",)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    board.close()
    shown = screen(out.getvalue())
    assert len(shown) == 8 * 200  # the block is gone, every ordinary line is there, whole
    assert all(re.fullmatch(r"\[(n\d)\] write \1/\d+ ok", line) for line in shown)


def test_the_block_fits_the_terminal_so_erasing_leaves_nothing_behind(monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "40")
    monkeypatch.setenv("LINES", "10")
    out = io.StringIO()
    board = Board(out, tty=True)
    for k in range(20):
        board.update(fields(f"node-with-a-long-name-{k}", 0, MIB, 0))
    block = screen(out.getvalue())
    assert len(block) <= 8 and all(len(line) <= 39 for line in block)
    board.close()
    assert screen(out.getvalue()) == []


def test_the_rate_is_recent_and_starts_afresh_with_the_next_phase() -> None:
    out, clock = io.StringIO(), Clock()
    board = Board(out, tty=False, every=1.0, clock=clock)
    for second, moved in [(1, 100), (2, 200), (10, 200), (11, 5)]:  # a stall, then read
        clock.now = float(second)
        board.update(fields("n0", 0, moved * MIB, 0))
    rates = [float(re.search(r"([\d.]+) MiB/s", x).group(1)) for x in out.getvalue().splitlines()]
    assert rates == [100.0, 100.0, 0.0, 0.0]
