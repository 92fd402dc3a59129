"""PostgreSQL: several statements, and the transaction around them, in one round trip.

A group commit of the hot path sent each statement on its own and waited for its answer:
``BEGIN``, the accept, the turns' fence, their rows, the outcomes, ``COMMIT``, six round
trips. On two shared cores the writer's connection then sat *idle in transaction* half
of the time (``bench pg-activity``): PostgreSQL had answered and the writer thread had not
yet been scheduled to send the next statement. Statements that do not need each other's
answers go together here, as one simple query (``BEGIN; EXECUTE a(...); EXECUTE b(...)``),
and PostgreSQL answers them all at once (docs/performance.md, "A group commit in two
round trips").

The simple query protocol takes no parameters, so they are written into the text as
literals (``literal``); the statements that planned well as prepared ones are prepared
once per connection (``PREPARE``) and run with ``EXECUTE``, the others are planned at each
run, as they were. No literal can end the text early: a NUL character is refused, as
PostgreSQL's text type refuses it.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import IsolationLevel

# A SQLSTATE: the prepared statement does not exist (the connection was reset under us,
# e.g. by a pooler): prepare again at the next round.
UNKNOWN_STATEMENT = "26000"


def literal(value: Any) -> str:
    """``value`` as SQL text; every parameter of the hot path is None, a bool, an int, a
    float or a string (the arrays come as array literals already, hotpath_pg.columns)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "'" + repr(value) + "'"  # quoted: 'inf' and 'nan' are literals too
    if isinstance(value, str):
        if "\x00" in value:
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
        # E'' whatever standard_conforming_strings says: backslashes and quotes doubled.
        return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


@dataclass(frozen=True)
class Statement:
    """A statement of the hot path: ``sql`` with ``%s`` placeholders; ``name``: run as a
    prepared statement of that name, else planned at each run."""

    sql: str
    name: str | None = None

    def __post_init__(self) -> None:
        if "%" in self.sql.replace("%s", ""):
            raise ValueError("only %s placeholders may hold a percent sign")

    def text(self, params: Sequence[Any]) -> str:
        """The statement with ``params`` in it, as one statement of a simple query."""
        values = [literal(p) for p in params]
        if self.name is not None:
            return f"EXECUTE {self.name}({', '.join(values)})" if values else f"EXECUTE {self.name}"
        pieces = self.sql.split("%s")
        if len(pieces) != len(values) + 1:
            raise ValueError(f"{len(pieces) - 1} placeholders, {len(values)} parameters")
        out = [pieces[0]]
        for value, piece in zip(values, pieces[1:], strict=True):
            out += [value, piece]
        return "".join(out)

    def prepare_text(self) -> str:
        assert self.name is not None
        pieces = self.sql.split("%s")
        numbered = [pieces[0]]
        for n, piece in enumerate(pieces[1:], start=1):
            numbered += [f"${n}", piece]
        return f"PREPARE {self.name} AS {''.join(numbered)}"


class Rounds:
    """Runs lists of statements on a psycopg connection, a list per round trip, keeping
    track of what each connection has prepared."""

    def __init__(self) -> None:
        self._prepared: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[str]] = (
            weakref.WeakKeyDictionary()
        )

    def begin(self, raw: psycopg.Connection[Any]) -> str:
        """The ``BEGIN`` the driver would have sent."""
        level = raw.isolation_level
        if level is None:
            return "BEGIN"
        return "BEGIN ISOLATION LEVEL " + IsolationLevel(level).name.replace("_", " ")

    def prepare(self, raw: psycopg.Connection[Any], statements: Sequence[Statement]) -> None:
        """Prepare those of ``statements`` this connection has not prepared yet (one round
        trip, outside any transaction; none when all are; one more to see what the server
        holds for a connection not seen before)."""
        if all(s.name is None for s in statements):
            return
        done = self._prepared.get(raw)
        if done is None:  # a connection new to us, or one whose statements may be gone
            with raw.cursor() as cursor:
                cursor.execute(b"SELECT name FROM pg_prepared_statements")
                done = self._prepared[raw] = {str(row[0]) for row in cursor.fetchall()}
        missing = {s.name: s for s in statements if s.name is not None and s.name not in done}
        if not missing:
            return
        with raw.cursor() as cursor:
            cursor.execute("; ".join(s.prepare_text() for s in missing.values()).encode())
        done.update(missing)

    def forget(self, raw: psycopg.Connection[Any]) -> None:
        """This connection's prepared statements are gone: prepare again."""
        self._prepared.pop(raw, None)

    def run(self, raw: psycopg.Connection[Any], texts: Sequence[str]) -> list[list[Any] | None]:
        """Send ``texts`` as one simple query; each statement's rows (None for those that
        return none), in order."""
        results: list[list[Any] | None] = []
        try:
            with raw.cursor() as cursor:
                cursor.execute("; ".join(texts).encode())
                while True:
                    results.append(cursor.fetchall() if cursor.description else None)
                    if not cursor.nextset():
                        break
        except psycopg.Error as exc:
            if exc.sqlstate == UNKNOWN_STATEMENT:
                self.forget(raw)
            raise
        if len(results) != len(texts):
            raise psycopg.InterfaceError(f"{len(texts)} statements, {len(results)} results")
        return results
