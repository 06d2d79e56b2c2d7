"""Keyset pages for the stores' listings: a cursor is the position of a page's last row, opaque
to the caller, and the next page starts after it.

    cursor = make_cursor(row["created_at"], row["call_id"])       # aware datetimes as ISO text
    created_at, call_id = read_cursor(cursor, datetime, str)      # ValidationFailed for a forged one
    rows, next_cursor = one_page(rows, limit, lambda r: (r["created_at"], r["call_id"]))
    sql, params = newest_first(f"SELECT … FROM {table}", "call_id", str, [("status = {}", "queued")], 50, cursor)

A listing asks PostgreSQL for `limit + 1` rows: the extra one only says that another page exists.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from happ_integ.errors import ValidationFailed

Row = TypeVar("Row")
_FORGED = "cursor is not one this API handed out"


def make_cursor(*parts: datetime | int | str) -> str:
    """The cursor of a row at this position (its sort key, in order)."""
    text = [p.isoformat() if isinstance(p, datetime) else str(p) for p in parts]
    return base64.urlsafe_b64encode(json.dumps(text).encode()).decode().rstrip("=")


def read_cursor(cursor: str, *kinds: type) -> tuple[Any, ...]:
    """The position a cursor holds, each part read as its kind (`datetime`, aware; `int`; `str`)."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(parts, list) or len(parts) != len(kinds):
            raise ValueError
        return tuple(_read(part, kind) for part, kind in zip(parts, kinds, strict=True))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise ValidationFailed(_FORGED, field="cursor") from None


def _read(part: object, kind: type) -> Any:
    if not isinstance(part, str):
        raise ValueError
    if kind is datetime:
        moment = datetime.fromisoformat(part)
        if moment.tzinfo is None:
            raise ValueError
        return moment
    return kind(part)


def one_page(
    rows: Sequence[Row], limit: int, position: Callable[[Row], tuple[datetime | int | str, ...]]
) -> tuple[list[Row], str | None]:
    """The first `limit` of `limit + 1` rows, and the cursor after them (None: no more)."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return page, make_cursor(*position(page[-1])) if more else None


def newest_first(
    select: str,
    id_column: str,
    id_kind: type,
    filters: Sequence[tuple[str, Any]],
    limit: int,
    cursor: str | None,
) -> tuple[str, list[Any]]:
    """The statement and parameters of one page of a table listed newest first: `select`
    (`SELECT … FROM …`) narrowed by `filters` (a condition with `{}` where its value goes, and the
    value), after the cursor's position, ordered by `created_at` then `id_column`, `limit + 1` rows."""
    params: list[Any] = []
    where: list[str] = []
    for condition, value in filters:
        params.append(value)
        where.append(condition.format(f"${len(params)}"))
    if cursor is not None:
        params += read_cursor(cursor, datetime, id_kind)
        where.append(f"(created_at, {id_column}) < (${len(params) - 1}, ${len(params)})")
    params.append(limit + 1)
    sql = (
        select
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY created_at DESC, {id_column} DESC LIMIT ${len(params)}"
    )
    return sql, params
