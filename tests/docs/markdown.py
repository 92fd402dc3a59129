"""The fenced blocks of README.md and docs/*.md, with the doctest directive before each.

A directive is an HTML comment on the line right before the fence (invisible when the
page is rendered)::

    <!-- doctest: skip: needs systemd -->      not runnable here; the reason is required
    <!-- doctest: file: compose.yaml -->       the block is that file of the repository
    <!-- doctest: walkthrough -->              run live by test_doc_walkthrough.py
    <!-- doctest: fixture: flows/x.yaml -->    written there for the document's sessions
    <!-- doctest: session -->                  ``$ command`` lines run, output compared
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FENCE = re.compile(r"^```([\w-]*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_DIRECTIVE = re.compile(r"<!--\s*doctest:\s*(.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    doc: str  # path relative to the repository
    line: int  # of the opening fence
    lang: str
    text: str
    directive: str | None

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def kind(self) -> str:
        return (self.directive or "").split(":", 1)[0].strip()

    @property
    def argument(self) -> str:
        return (
            (self.directive or "").split(":", 1)[1].strip() if ":" in (self.directive or "") else ""
        )


def blocks_of(path: Path) -> list[Block]:
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        directive = _DIRECTIVE.search(before)
        found.append(
            Block(
                str(path.relative_to(REPO)),
                line,
                match.group(1),
                match.group(2),
                directive.group(1) if directive else None,
            )
        )
    return found


def all_blocks() -> list[Block]:
    return [block for path in DOCS for block in blocks_of(path)]


def shell_commands(text: str) -> list[str]:
    """The commands of a shell block, each on one string: continuation lines and quoted
    strings over several lines joined, comment lines dropped, a ``$ `` prompt removed."""
    commands: list[str] = []
    pending = ""
    joiner = "\n"
    for raw in text.splitlines():
        line = raw if pending else raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if not pending and line.startswith("$ "):
            line = line[2:]
        pending = f"{pending}{joiner}{line}" if pending else line
        joiner = "\n"
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip() + " "
            joiner = ""
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # a quote still open: the command goes on
            continue
        commands.append(pending)
        pending = ""
    if pending:
        commands.append(pending)
    return commands


def words(command: str) -> list[str]:
    return shlex.split(command, comments=True)
