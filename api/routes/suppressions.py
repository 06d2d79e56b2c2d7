"""The do-not-call list, at the gateway's root (admin token): every integration shares it, and an
entry may be scoped to one integration.

POST   /suppressions                    {phone_number, integration?, reason, source?, evidence?}
                                        → 201 (200 when the number already had an entry of that scope)
GET    /suppressions?phone_number=&integration=&cursor=&limit=     newest first, numbers masked
DELETE /suppressions/{phone_number}?integration=&reason=           404 when there is no such entry
POST   /suppressions/import?integration=&reason=                   a text/csv body

Numbers are stored in E.164 (`happ_integ.stores.suppressions`). A number written without a
country code is read in the scoped integration's `call_handling.default_region`; for a global
entry (no `integration`), and for an integration without a call flow, in "UA". An integration
must be one this gateway serves (else 422). Answers never carry a whole number: entries show it
masked, and an invalid number is refused without quoting it.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.body import GuardedRoute
from api.deps import AdminDep, RuntimeDep
from api.responses import error_responses
from api.runtime import ApiRuntime
from happ_integ.calls.phones import mask_phone
from happ_integ.errors import NotFound, ValidationFailed
from happ_integ.stores.suppressions import (
    DEFAULT_REGION,
    MAX_EVIDENCE,
    MAX_IMPORT_ROWS,
    MAX_REASON,
    ImportRow,
    Suppression,
    normalized_phone,
)

INTEGRATION_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
SOURCE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
PHONE_COLUMN, INTEGRATION_COLUMN, REASON_COLUMN = "phone_number", "integration", "reason"
COLUMNS = (PHONE_COLUMN, INTEGRATION_COLUMN, REASON_COLUMN)
MAX_REJECTED_SHOWN = 1000
CSV_EXAMPLE = (
    "phone_number,integration,reason\n+380994829573,,asked not to be called\n0994829574,sofa,complained\n"
)

PhoneQuery = Annotated[
    str | None, Query(min_length=1, max_length=32, description="only this number's entries")
]
IntegrationQuery = Annotated[str | None, Query(pattern=INTEGRATION_PATTERN)]


class SuppressionAdd(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone_number: str = Field(
        min_length=1, max_length=32, description="E.164, or local to the integration's default region"
    )
    integration: str | None = Field(
        default=None,
        pattern=INTEGRATION_PATTERN,
        description="only this integration may not call the number; left out: no integration may",
    )
    reason: str = Field(min_length=1, max_length=MAX_REASON, examples=["asked not to be called"])
    source: str = Field(
        default="manual",
        pattern=SOURCE_PATTERN,
        description="who put it there: manual, analysis, import, api, …",
    )
    evidence: str | None = Field(
        default=None, max_length=MAX_EVIDENCE, description="e.g. the call id where the person asked"
    )


class SuppressionRow(BaseModel):
    phone_masked: str = Field(examples=["+38099*****73"])
    integration: str | None = Field(description="null: every integration")
    reason: str | None
    source: str
    evidence: str | None
    created_at: datetime


class SuppressionAnswer(SuppressionRow):
    created: bool = Field(description="false: the number already had this entry, shown as it was")


class SuppressionPage(BaseModel):
    suppressions: list[SuppressionRow]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


class SuppressionRemoved(BaseModel):
    removed: bool = True
    phone_masked: str
    integration: str | None = Field(description="null: the global entry")


class ImportRejected(BaseModel):
    line: int = Field(description="where the row starts in the body (the header is line 1)")
    index: int = Field(description="the row's position among the body's non-blank data rows, from 0")
    error: str


class ImportAnswer(BaseModel):
    rows: int = Field(description="non-blank data rows read")
    added: int
    skipped: int = Field(description="already on the list (or earlier in the file) with the same scope")
    rejected_count: int
    rejected: list[ImportRejected] = Field(description=f"the first {MAX_REJECTED_SHOWN} rejected rows")
    ignored_columns: list[str] = Field(description="columns other than phone_number, integration, reason")


router = APIRouter(prefix="/suppressions", tags=["Suppressions"], route_class=GuardedRoute)


@router.post(
    "",
    status_code=201,
    response_model=SuppressionAnswer,
    responses={
        200: {"model": SuppressionAnswer, "description": "Already on the list: the entry as it was"},
        **error_responses(401, 409, 422, 503),
    },
)
async def add_suppression(
    body: SuppressionAdd, response: Response, runtime: RuntimeDep, _: AdminDep
) -> SuppressionAnswer:
    """Put a number on the do-not-call list: of every integration, or only of `integration`. 201
    when added, 200 when the number already had an entry of that scope (kept as it was)."""
    integration = served_integration(runtime, body.integration)
    entry, created = await runtime.resources.suppressions().add(
        body.phone_number,
        integration,
        body.reason,
        body.source,
        body.evidence,
        default_region=await integration_region(runtime, integration),
    )
    if not created:
        response.status_code = 200
    return SuppressionAnswer(**_row(entry).model_dump(), created=created)


@router.get("", response_model=SuppressionPage, responses=error_responses(401, 422, 503))
async def list_suppressions(
    runtime: RuntimeDep,
    _: AdminDep,
    phone_number: PhoneQuery = None,
    integration: Annotated[
        str | None,
        Query(
            pattern=INTEGRATION_PATTERN,
            description="only the entries that apply to it: its own and the global ones",
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> SuppressionPage:
    """The entries, newest first, numbers masked."""
    integration = served_integration(runtime, integration)
    rows, next_cursor = await runtime.resources.suppressions().list(
        phone_number,
        integration,
        cursor,
        limit,
        default_region=await integration_region(runtime, integration),
    )
    return SuppressionPage(suppressions=[_row(r) for r in rows], next_cursor=next_cursor)


@router.delete(
    "/{phone_number}", response_model=SuppressionRemoved, responses=error_responses(401, 404, 422, 503)
)
async def remove_suppression(
    request: Request,
    phone_number: Annotated[str, Path(min_length=1, max_length=32)],
    runtime: RuntimeDep,
    _: AdminDep,
    integration: Annotated[
        str | None,
        Query(pattern=INTEGRATION_PATTERN, description="the entry scoped to it; left out: the global entry"),
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=MAX_REASON, description="why it is removed, for the log")
    ] = None,
) -> SuppressionRemoved:
    """Take the number's entry of this scope off the list (the global one unless `integration` is
    given; an entry of the other scope stays). The removal is logged with the masked number, the
    caller's address and `reason`."""
    integration = served_integration(runtime, integration)
    region = await integration_region(runtime, integration)
    phone = normalized_phone(phone_number, region)
    client = request.client.host if request.client else "unknown"
    removed = await runtime.resources.suppressions().remove(
        phone, integration, by=f"the admin API (from {client})", why=reason, default_region=region
    )
    scope = "every integration" if integration is None else f"integration {integration}"
    if not removed:
        raise NotFound(f"{mask_phone(phone)} is not on the do-not-call list of {scope}")
    return SuppressionRemoved(phone_masked=mask_phone(phone), integration=integration)


@router.post(
    "/import",
    response_model=ImportAnswer,
    responses=error_responses(401, 413, 422, 503),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": CSV_EXAMPLE}},
        }
    },
)
async def import_suppressions(
    request: Request,
    runtime: RuntimeDep,
    _: AdminDep,
    integration: Annotated[
        str | None,
        Query(pattern=INTEGRATION_PATTERN, description="for rows whose integration cell is empty"),
    ] = None,
    reason: Annotated[
        str | None, Query(max_length=MAX_REASON, description="for rows whose reason cell is empty")
    ] = None,
) -> ImportAnswer:
    """Add the rows of a CSV file (UTF-8, comma, semicolon or tab separated): a `phone_number`
    column, optional `integration` (empty: every integration) and `reason` columns; other columns
    are ignored and named in the answer. At most 100,000 rows and HAPP_MAX_BODY_BYTES (else 413;
    `happ dnc import` sends a big file in parts). Rows that cannot be entries are rejected by line;
    the others are added in one statement (source `import`), those already on the list skipped."""
    return await import_csv(runtime, await request.body(), integration, reason)


# Helpers (the operator console, api/console, calls the public ones too) -------------------------


async def import_csv(
    runtime: ApiRuntime, body: bytes, integration: str | None, reason: str | None
) -> ImportAnswer:
    """What `POST /suppressions/import` does with a CSV file's bytes."""
    integration = served_integration(runtime, integration)
    table = await asyncio.to_thread(_read_csv, body)
    rows = [ImportRow(r.phone, r.integration or integration, r.reason or reason) for r in table.rows]
    named = {r.integration for r in rows if r.integration in runtime.integrations}
    regions = {name: await integration_region(runtime, name) for name in named if name is not None}
    added, skipped, store_rejected = await runtime.resources.suppressions().import_rows(
        rows, source="import", regions=regions
    )
    rejected = table.rejected + [
        ImportRejected(line=table.rows[r.index].line, index=table.rows[r.index].index, error=r.error)
        for r in store_rejected
    ]
    rejected.sort(key=lambda r: r.index)
    return ImportAnswer(
        rows=table.count,
        added=added,
        skipped=skipped,
        rejected_count=len(rejected),
        rejected=rejected[:MAX_REJECTED_SHOWN],
        ignored_columns=table.ignored,
    )


def served_integration(runtime: ApiRuntime, integration: str | None) -> str | None:
    if integration is not None and integration not in runtime.integrations:
        served = ", ".join(sorted(runtime.integrations)) or "none"
        raise ValidationFailed(
            f"unknown integration {integration!r}: this gateway serves {served}", field="integration"
        )
    return integration


async def integration_region(runtime: ApiRuntime, integration: str | None) -> str:
    """The scoped integration's call_handling.default_region; "UA" for a global entry."""
    if integration is None or runtime.integrations[integration].call_flow is None:
        return DEFAULT_REGION
    return (await runtime.resources.call_handling(integration)).default_region


def _row(entry: Suppression) -> SuppressionRow:
    return SuppressionRow(
        phone_masked=entry.phone_masked,
        integration=entry.integration,
        reason=entry.reason,
        source=entry.source,
        evidence=entry.evidence,
        created_at=entry.created_at,
    )


@dataclass
class _CsvRow:
    line: int
    index: int
    phone: str
    integration: str | None
    reason: str | None


@dataclass
class _Table:
    rows: list[_CsvRow]
    rejected: list[ImportRejected]
    ignored: list[str]
    count: int


def _read_csv(body: bytes) -> _Table:
    """The body's rows, each with its line; a row that is not one (no number, cells past the header)
    is rejected here. A header the import cannot use is a 422."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("the body is not UTF-8 text: send the CSV file as UTF-8") from None
    if not text.strip():
        raise ValidationFailed(f"the body is empty: send a CSV file with a {PHONE_COLUMN} column")
    if "\x00" in text:
        raise ValidationFailed("the body has a NUL character: it is not a text CSV file")
    first = text.split("\n", 1)[0]
    delimiter = max(",;\t", key=first.count)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
        where = {name: header.index(name) for name in COLUMNS if name in header}
        for name in COLUMNS:
            if header.count(name) > 1:
                raise ValidationFailed(f"the header names the column {name!r} twice")
        if PHONE_COLUMN not in where:
            shown = ", ".join(_column_name(h) for h in header[:10]) or "none"
            raise ValidationFailed(f"the header has no {PHONE_COLUMN} column (its columns: {shown})")
        rows: list[_CsvRow] = []
        rejected: list[ImportRejected] = []
        index = 0
        start = reader.line_num + 1
        for cells in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if index >= MAX_IMPORT_ROWS:
                raise ValidationFailed(
                    f"more than {MAX_IMPORT_ROWS:,} rows: split the file into several imports"
                )

            def cell(name: str, cells: list[str] = cells) -> str | None:
                at = where.get(name)
                value = cells[at].strip() if at is not None and at < len(cells) else ""
                return value or None

            phone = cell(PHONE_COLUMN)
            if phone is None:
                rejected.append(ImportRejected(line=line, index=index, error=f"no {PHONE_COLUMN}"))
            elif any(c.strip() for c in cells[len(header) :]):
                error = f"{len(cells)} cells, but the header names {len(header)} columns"
                rejected.append(ImportRejected(line=line, index=index, error=error))
            else:
                rows.append(_CsvRow(line, index, phone, cell(INTEGRATION_COLUMN), cell(REASON_COLUMN)))
            index += 1
    except csv.Error as exc:
        raise ValidationFailed(f"the CSV cannot be read at line {reader.line_num}: {exc}") from None
    ignored = [_column_name(h) for h in header if h not in COLUMNS]
    return _Table(rows=rows, rejected=rejected, ignored=ignored, count=index)


def _column_name(name: str) -> str:
    """A header cell as an answer may show it: a number (a file without a header row) is not quoted."""
    if len(re.sub(r"\D", "", name)) >= 5:
        return "(a number)"
    return name if len(name) <= 40 else name[:40] + "…"
