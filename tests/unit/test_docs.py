"""The README is for a real cluster (issue 19): at most 400 lines, with a quick start and
troubleshooting; the rest lives in docs/. Every relative link in README.md and docs/*.md
points to a file that exists and, with ``#anchor``, to a heading of that file."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
MAX_LINES = 400
#: the sections issue 19 asks of the README (heading text, lower case)
SECTIONS = ["quick start on a real cluster", "node prerequisites", "tasks and flags",
            "result files", "troubleshooting"]  # fmt: skip
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def without_fences(text: str) -> str:
    """``text`` without its fenced code blocks (a ``# comment`` in one is no heading)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)


def outside_code(text: str) -> str:
    """``text`` without fenced code blocks and inline code (no links in those)."""
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def headings(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^#{1,6} (.+)$", without_fences(text), re.M)]


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, code marks and punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


def test_the_readme_is_at_most_400_lines() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


def test_the_readme_has_the_sections_a_new_user_needs() -> None:
    found = [h.lower() for h in headings(README.read_text())]
    assert [s for s in SECTIONS if s not in found] == []


def test_the_readme_starts_with_the_testbed_commands() -> None:
    text = README.read_text()
    block = text[: text.index("## ")]
    assert "make demo" in block and "make test" in block


def test_every_relative_link_points_to_a_file_and_heading_that_exist() -> None:
    broken = []
    for page in pages():
        for target in LINK.findall(outside_code(page.read_text())):
            if re.match(r"[a-z]+:", target):  # https:, mailto:
                continue
            path, _, fragment = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            name = f"{page.relative_to(REPO)}: {target}"
            if not file.exists():
                broken.append(f"{name}: no such file")
            elif fragment and fragment not in {anchor(h) for h in headings(file.read_text())}:
                broken.append(f"{name}: no heading #{fragment}")
    assert broken == []


def test_the_readme_links_every_page_of_docs() -> None:
    linked = set(LINK.findall(README.read_text()))
    missing = [
        p.name for p in sorted((REPO / "docs").glob("*.md")) if f"docs/{p.name}" not in linked
    ]
    assert missing == []
