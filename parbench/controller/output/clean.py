"""Text from nodes and storage made fit for the exports (junit.xml, metrics.prom)."""

from __future__ import annotations

import re

#: terminal escape sequences (colours, titles) in what nodes and storage said: CSI (7- and
#: 8-bit), OSC (ended by BEL or ST), and the other two-character ones (or a lone ESC)
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x9b[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]?"
)
#: what XML 1.0 does not allow (C0 controls but tab and newlines, lone surrogates,
#: U+FFFE, U+FFFF), and DEL and the C1 controls, which it only discourages
_NOT_TEXT = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def clean(text: str) -> str:
    """``text`` without terminal escape sequences and without characters an XML or
    OpenMetrics reader would choke on: what goes into junit.xml and metrics.prom."""
    return _NOT_TEXT.sub("", _ESCAPES.sub("", text))
