"""Printing results: JSON for programs, aligned tables for people."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import orjson


def to_jsonable(value: Any) -> Any:
    from pydantic import BaseModel

    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", by_alias=True)
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(orjson.dumps(to_jsonable(value), option=orjson.OPT_INDENT_2).decode() + "\n")


def print_list(items: Sequence[Any], columns: Sequence[str], table: bool | None) -> None:
    """A list the way every command prints one: a table for people, or the admin API's
    list shape ``{"items": [...], "nextCursor": null}`` for programs."""
    if wants_table(table):
        rows = [{"name": r} if isinstance(r, str) else to_jsonable(r) for r in items]
        print_table(rows, columns)
    else:
        print_json({"items": to_jsonable(list(items)), "nextCursor": None})


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        sys.stdout.write("(none)\n")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    sys.stdout.write(line.rstrip() + "\n")
    for row in cells:
        sys.stdout.write(
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def wants_table(table: bool | None) -> bool:
    """Tables when asked, or by default when a person is looking (stdout is a terminal)."""
    return sys.stdout.isatty() if table is None else table
