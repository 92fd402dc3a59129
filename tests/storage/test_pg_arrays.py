"""PostgreSQL: the arrays of a group commit's one-statement writes (``hotpath_pg.columns``,
written as array literals) reach the database exactly as the rows held them."""

from __future__ import annotations

import psycopg
import pytest

from flowhook.storage import hotpath_pg as pg

pytestmark = pytest.mark.postgres

KINDS = (("t", "text"), ("i", "int8"), ("f", "float8"), ("b", "bool"), ("j", "int4"))
ROWS = [
    ('{"text": "say \\"hi\\"", "path": "C:\\\\x"}', 1, 1.5, True, 3),
    (None, None, None, None, None),
    ("", -(2**62), 1e300, False, -7),
    ("{x,y} NULL, é\n\t  ", 0, float("inf"), True, 0),
    ("NULL", 5, -0.1, False, 2),
    ('"', 9, 1 / 3, True, 1),
    ("\\", 2**40, 1e-300, False, 2**31 - 1),
]


def test_columns_round_trip_exactly(postgres_database: str) -> None:
    """Text with quotes, backslashes, braces, commas, white space, the word NULL and the
    empty string, NULLs of every kind, large and small numbers: unnested back, every
    value is the one sent, in row order."""
    with psycopg.connect(postgres_database) as conn:
        rows = conn.execute(
            "SELECT t, i, f, b, j FROM unnest(%s::text[], %s::int8[], %s::float8[], "
            "%s::bool[], %s::int4[]) WITH ORDINALITY AS v(t, i, f, b, j, n) ORDER BY n",
            pg.columns(ROWS, KINDS),
        ).fetchall()
    assert [tuple(r) for r in rows] == ROWS


def test_an_empty_batch_is_an_empty_array(postgres_database: str) -> None:
    """No rows: every column is an empty array."""
    with psycopg.connect(postgres_database) as conn:
        count = conn.execute(
            "SELECT count(*) FROM unnest(%s::text[], %s::int8[])", pg.columns([], KINDS[:2])
        ).fetchone()
    assert count == (0,)
