"""The do-not-call list every integration shares: `happ_suppressions`.

    store = SuppressionStore(pool)                          # resources.suppressions()
    entry, created = await store.add("+380994829573", None, "asked not to be called")
    await store.is_suppressed("+380994829573", "sofa")      # the entry that stops sofa, or None
    await store.suppressed_among(["+380994829573"], "sofa") # {"+380994829573"}: the ones stopped
    await store.remove("+380994829573", by="admin API", why="added by mistake")
    rows, next_cursor = await store.list(integration="sofa", limit=50)
    added, skipped, rejected = await store.import_rows([ImportRow("099 482 95 73", "sofa")])

An entry is global (`integration` None: no integration calls the number) or scoped to one
integration. Numbers are kept in E.164; a number written without a country code is read in
`default_region` (each method takes it; "UA" unless the caller knows better, e.g. the scoped
integration's `call_handling.default_region`). There is one entry per (number, integration): a
global entry and one scoped to sofa are two entries. Entries never expire: one stays until it is
removed. `is_suppressed` is one read of the unique index, cheap enough before every dial.

Every method checks its input and raises ValidationFailed without quoting the number (an invalid
number is not echoed back into answers or logs).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from happ_integ.calls.phones import mask_phone, normalize_phone
from happ_integ.errors import Conflict, ValidationFailed
from happ_integ.stores.db import INTEGRATION_NAME
from happ_integ.stores.paging import newest_first, one_page
from happ_integ.stores.schema import with_core_schema

__all__ = [
    "DEFAULT_REGION",
    "MATCH_SQL",
    "MAX_IMPORT_ROWS",
    "ImportRow",
    "RejectedRow",
    "Suppression",
    "SuppressionStore",
    "normalized_phone",
]

log = logging.getLogger("happ.suppressions")

DEFAULT_REGION = "UA"
MAX_IMPORT_ROWS = 100_000
MAX_REASON = 500
MAX_EVIDENCE = 256
SOURCE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
SOURCES_NOTE = "manual, analysis, import, api, …: 1 to 32 lowercase letters, digits, _ or -"

_COLUMNS = "id, phone, integration, reason, source, evidence, created_at"
_SCOPE = "COALESCE(integration, '')"
# One read of happ_suppressions_phone_idx: the global entry and the one scoped to $2 (scoped first).
MATCH_SQL = f"""SELECT {_COLUMNS} FROM happ_suppressions
WHERE phone = $1 AND {_SCOPE} = ANY (ARRAY['', $2::text])
ORDER BY integration NULLS LAST LIMIT 1"""
# The numbers of $1 that $2 may not call (a global entry or one scoped to $2): one index read each.
_AMONG_SQL = f"""SELECT DISTINCT phone FROM happ_suppressions
WHERE phone = ANY ($1::text[]) AND {_SCOPE} = ANY (ARRAY['', $2::text])"""
_INSERT = f"""INSERT INTO happ_suppressions (phone, integration, reason, source, evidence)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (phone, ({_SCOPE})) DO NOTHING
RETURNING {_COLUMNS}"""
_EXACT = f"SELECT {_COLUMNS} FROM happ_suppressions WHERE phone = $1 AND {_SCOPE} = COALESCE($2::text, '')"
_DELETE = f"DELETE FROM happ_suppressions WHERE phone = $1 AND {_SCOPE} = COALESCE($2::text, '') RETURNING id"
_IMPORT = f"""INSERT INTO happ_suppressions (phone, integration, reason, source, evidence)
SELECT r.phone, r.integration, r.reason, $4, $5
FROM unnest($1::text[], $2::text[], $3::text[]) AS r(phone, integration, reason)
ON CONFLICT (phone, ({_SCOPE})) DO NOTHING
RETURNING id"""


class Suppression(BaseModel):
    """One entry of the list: `integration` None means every integration."""

    model_config = ConfigDict(frozen=True)

    id: int
    phone: str
    integration: str | None
    reason: str | None
    source: str
    evidence: str | None
    created_at: datetime

    @property
    def phone_masked(self) -> str:
        return mask_phone(self.phone)

    @property
    def scope(self) -> str:
        """ "every integration" or "integration sofa", for messages."""
        return "every integration" if self.integration is None else f"integration {self.integration}"


@dataclass(frozen=True)
class ImportRow:
    """One row of an import, as written (the number is normalised on import)."""

    phone: str
    integration: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class RejectedRow:
    """A row `import_rows` did not take: its index in the rows given, and why."""

    index: int
    error: str


class SuppressionStore:
    """The shared do-not-call list; see the module docstring."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(
        self,
        phone: str,
        integration: str | None = None,
        reason: str | None = None,
        source: str = "manual",
        evidence: str | None = None,
        *,
        default_region: str = DEFAULT_REGION,
    ) -> tuple[Suppression, bool]:
        """Put a number on the list (for every integration, or only `integration`): `(entry, created)`.
        When the number already has an entry of that scope, that entry is returned as it is (its
        reason, source and time are kept) and `created` is False."""
        values = (
            normalized_phone(phone, default_region),
            _integration(integration),
            _text(reason, "reason", MAX_REASON),
            _source(source),
            _text(evidence, "evidence", MAX_EVIDENCE),
        )
        # The entry can be removed between a refused insert and the read that follows: then insert again.
        for _ in range(3):
            row = await self._fetchrow(_INSERT, *values)
            if row is not None:
                entry = _entry(row)
                log.info(
                    "%s added to the do-not-call list of %s (source %s)",
                    entry.phone_masked,
                    entry.scope,
                    entry.source,
                )
                return entry, True
            row = await self._fetchrow(_EXACT, values[0], values[1])
            if row is not None:
                return _entry(row), False
        raise Conflict("the entry changed while it was being added: try again")

    async def remove(
        self,
        phone: str,
        integration: str | None = None,
        *,
        by: str | None = None,
        why: str | None = None,
        default_region: str = DEFAULT_REGION,
    ) -> bool:
        """Take the number's entry of exactly this scope off the list (a global entry, or the one
        scoped to `integration`; the other scope's entry stays); False when there was none. A
        removal is logged (INFO, the number masked) with `by` and `why` when given."""
        number = normalized_phone(phone, default_region)
        scope = _integration(integration)
        removed = await self._fetchrow(_DELETE, number, scope) is not None
        if removed:
            log.info(
                "%s removed from the do-not-call list of %s%s%s",
                mask_phone(number),
                "every integration" if scope is None else f"integration {scope}",
                f" by {_one_line(by)}" if by else "",
                f": {_one_line(why)}" if why else "",
            )
        return removed

    async def is_suppressed(
        self, phone: str, integration: str | None, *, default_region: str = DEFAULT_REGION
    ) -> Suppression | None:
        """The entry that forbids `integration` to call the number (its own, else the global one),
        or None. One read of the unique index (`MATCH_SQL`); `integration` None checks the global
        entry only."""
        row = await self._fetchrow(
            MATCH_SQL, normalized_phone(phone, default_region), _integration(integration)
        )
        return _entry(row) if row is not None else None

    async def suppressed_among(self, phones: Iterable[str], integration: str | None) -> set[str]:
        """Which of `phones` (E.164, as stored) `integration` may not call: its own entries and the
        global ones; `integration` None checks the global entries only. One query."""
        numbers = sorted(set(phones))
        if not numbers:
            return set()
        scope = _integration(integration)
        rows = await with_core_schema(self.pool, lambda: self.pool.fetch(_AMONG_SQL, numbers, scope))
        return {row["phone"] for row in rows}

    async def list(
        self,
        phone: str | None = None,
        integration: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
        *,
        default_region: str = DEFAULT_REGION,
    ) -> tuple[builtins.list[Suppression], str | None]:
        """Newest first. `phone`: that number's entries; `integration`: the entries that apply to it
        (its own and the global ones). Pass the returned cursor back for the next page (None: no more)."""
        if not 1 <= limit <= 1000:
            raise ValidationFailed("limit: use 1 to 1000", field="limit")
        filters: builtins.list[tuple[str, Any]] = []
        if phone is not None:
            filters.append(("phone = {}", normalized_phone(phone, default_region)))
        if integration is not None:
            filters.append(("(integration = {} OR integration IS NULL)", _integration(integration)))
        sql, params = newest_first(
            f"SELECT {_COLUMNS} FROM happ_suppressions", "id", int, filters, limit, cursor
        )
        rows = await with_core_schema(self.pool, lambda: self.pool.fetch(sql, *params))
        return one_page([_entry(r) for r in rows], limit, lambda e: (e.created_at, e.id))

    async def import_rows(
        self,
        rows: Iterable[ImportRow],
        *,
        source: str = "import",
        evidence: str | None = None,
        regions: Mapping[str, str] | None = None,
        default_region: str = DEFAULT_REGION,
    ) -> tuple[int, int, builtins.list[RejectedRow]]:
        """Add many entries in one statement: `(added, skipped, rejected)`. `skipped` counts the rows
        whose number already had an entry of that scope, or came earlier in `rows`; `rejected` names
        each row that cannot be an entry (invalid number, integration or reason) by its index.
        `regions` (integration → default region), when given, is also the integrations a row may
        name; a global row, or one of an integration not in it, reads numbers in `default_region`."""
        source = _source(source)
        evidence = _text(evidence, "evidence", MAX_EVIDENCE)
        # Reading 100,000 numbers takes a second or two: not on the event loop.
        phones, scopes, reasons, valid, rejected = await asyncio.to_thread(
            _prepare, builtins.list(rows), regions, default_region
        )
        added = 0
        if phones:
            inserted = await with_core_schema(
                self.pool, lambda: self.pool.fetch(_IMPORT, phones, scopes, reasons, source, evidence)
            )
            added = len(inserted)
            log.info("%d numbers added to the do-not-call list by an import (source %s)", added, source)
        return added, valid - added, rejected

    async def _fetchrow(self, sql: str, *params: Any) -> asyncpg.Record | None:
        return await with_core_schema(self.pool, lambda: self.pool.fetchrow(sql, *params))


def _prepare(
    rows: builtins.list[ImportRow], regions: Mapping[str, str] | None, default_region: str
) -> tuple[
    builtins.list[str], builtins.list[str | None], builtins.list[str | None], int, builtins.list[RejectedRow]
]:
    """The columns to insert (each (number, scope) once), how many rows were valid, and the rejected."""
    if len(rows) > MAX_IMPORT_ROWS:
        raise ValidationFailed(f"more than {MAX_IMPORT_ROWS:,} rows: split them into several imports")
    rejected: builtins.list[RejectedRow] = []
    seen: set[tuple[str, str | None]] = set()
    phones: builtins.list[str] = []
    scopes: builtins.list[str | None] = []
    reasons: builtins.list[str | None] = []
    valid = 0
    for index, row in enumerate(rows):
        try:
            scope = _integration(row.integration or None)
            if scope is not None and regions is not None and scope not in regions:
                raise ValidationFailed(f"unknown integration {scope!r}", field="integration")
            region = (regions or {}).get(scope or "", default_region)
            key = (normalized_phone(row.phone, region), scope)
            reason = _text(row.reason or None, "reason", MAX_REASON)
        except ValidationFailed as exc:
            rejected.append(RejectedRow(index, exc.message))
            continue
        valid += 1
        if key in seen:
            continue
        seen.add(key)
        phones.append(key[0])
        scopes.append(key[1])
        reasons.append(reason)
    return phones, scopes, reasons, valid, rejected


def normalized_phone(raw: str, default_region: str = DEFAULT_REGION) -> str:
    """E.164 of `raw`, or ValidationFailed that does not quote it."""
    try:
        return normalize_phone(raw, default_region)
    except ValidationFailed:
        raise ValidationFailed("phone_number is not a valid phone number", field="phone_number") from None


def _integration(name: str | None) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not INTEGRATION_NAME.match(name):
        # Not quoted: a shifted CSV column could put a phone number here.
        raise ValidationFailed(
            "integration: not an integration name (lowercase letters, digits and _)", field="integration"
        )
    return name


def _source(source: str) -> str:
    if not isinstance(source, str) or not SOURCE.match(source):
        raise ValidationFailed(f"source: {SOURCES_NOTE}", field="source")
    return source


def _text(value: str | None, field: str, longest: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > longest or "\x00" in value:
        raise ValidationFailed(f"{field}: text of at most {longest} characters, without NUL", field=field)
    return value.strip() or None


def _one_line(text: str) -> str:
    return " ".join(text.split())[:200]


def _entry(row: asyncpg.Record) -> Suppression:
    return Suppression.model_validate(dict(row))
