"""SQLite: many rows in one INSERT statement, for the group-commit writer.

``executemany`` runs its statement once per row, and CPython's sqlite3 lets go of the
interpreter lock around every run. The writer thread shares that lock with the event
loop: each time it lets go while the loop is busy, it waits for the loop to let go
again before its next row. A group commit of 35 messages ran about 350 such rows, and
the writer's commit took about three times its own CPU time
(docs/performance.md, "Fewer statements per group commit"). One statement per chunk of
rows lets go once per chunk.

Chunks have fixed sizes (64, 16, 4, 1 rows) so that each kind of insert has at most four
statement texts, which stay prepared in the connection's statement cache.

The statements are ``INSERT OR ROLLBACK``. A plain INSERT of several rows keeps a
statement journal (the pages it changes, as they were, to undo just that statement when
a later row breaks a constraint); past 64 KiB SQLite writes it to a temporary file, and
it did: 40 % more ``pwrite`` calls than one row at a time. OR ROLLBACK needs no such
journal: a row breaking a constraint rolls the whole transaction back, which the
group-commit writer already answers by running each write again on its own (a broken
constraint here is a bug either way: these inserts have no expected conflicts, and the
session upsert's conflict is resolved by its ON CONFLICT clause).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CHUNKS = (64, 16, 4, 1)


class MultiRowInsert:
    """``head`` (``INSERT INTO t (a, b)``), then ``row`` (``(?, ?)``, literals allowed)
    once per row after VALUES, then ``tail`` (e.g. an ``ON CONFLICT`` clause)."""

    def __init__(self, head: str, row: str, tail: str = "") -> None:
        head = self._rolling_back(head)
        self._sql = {size: f"{head} VALUES {', '.join([row] * size)}{tail}" for size in CHUNKS}

    @classmethod
    def of(cls, single: str) -> MultiRowInsert:
        """From the one-row statement ``head VALUES (row) tail`` (no parenthesis inside
        the row)."""
        head, rest = single.split(" VALUES ", 1)
        end = rest.index(")") + 1
        return cls(head, rest[:end], rest[end:])

    @staticmethod
    def _rolling_back(head: str) -> str:
        verb = "INSERT INTO "
        if not head.startswith(verb):
            raise ValueError(f"not an INSERT: {head[:40]!r}")
        return "INSERT OR ROLLBACK INTO " + head[len(verb) :]

    def run(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> None:
        """Insert the rows, in order."""
        for sql, chunk in self._chunks(rows):
            cursor.execute(sql, [value for row in chunk for value in row])

    def run_returning_ids(self, cursor: Any, rows: Sequence[Sequence[Any]]) -> list[int]:
        """Insert the rows (into a table whose key is its rowid) and return their new ids,
        in row order. SQLite gives each row of a statement the next rowid in turn, so a
        chunk's ids are the ``len(chunk)`` ids ending at the last one it inserted; this
        connection is the only writer, and the tables have no triggers."""
        ids: list[int] = []
        for sql, chunk in self._chunks(rows):
            cursor.execute(sql, [value for row in chunk for value in row])
            last = int(cursor.lastrowid)
            ids.extend(range(last - len(chunk) + 1, last + 1))
        return ids

    def _chunks(self, rows: Sequence[Sequence[Any]]) -> list[tuple[str, Sequence[Sequence[Any]]]]:
        out: list[tuple[str, Sequence[Sequence[Any]]]] = []
        start, left = 0, len(rows)
        for size in CHUNKS:
            while left >= size:
                out.append((self._sql[size], rows[start : start + size]))
                start += size
                left -= size
        return out
