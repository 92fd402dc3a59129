"""The one list shape of the API: ``{"items": [...], "nextCursor": "..." | null}``.

Every route that answers a list answers a ``Page``: ``items`` in a stable order and
``nextCursor``, the opaque value to pass back as ``?cursor=`` for the next page (null on
the last page). A route takes ``limit: Limit`` and ``cursor: Cursor`` query parameters
(or ``IdCursor`` for pages of rows by id) and builds its answer with ``Page`` (keyset
pages from storage) or ``page_of`` (a list small enough to hold in memory). Every value
a cursor parameter's schema allows is accepted: an unknown position is simply a page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=500, description="At most this many items.")]
Cursor = Annotated[
    str | None, Query(max_length=500, description="nextCursor of the previous page.")
]
# Pages of rows with increasing ids: the cursor is the last id of the previous page.
IdCursor = Annotated[
    str | None,
    Query(pattern="^[1-9][0-9]{0,17}$", description="nextCursor of the previous page."),
]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as ?cursor= for the next page; null: this is the last page."
    )


def page_of(items: Sequence[T], key: Callable[[T], str], limit: int, cursor: str | None) -> Page[T]:
    """One page of a list held in memory, in ``key`` order (keys must be unique)."""
    ordered = sorted(items, key=key)
    if cursor is not None:  # any string is a position in key order
        ordered = [item for item in ordered if key(item) > cursor]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return Page[T](items=list(chunk), next_cursor=key(chunk[-1]) if more else None)
