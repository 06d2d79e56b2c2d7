"""A campaign's routes, for an operator (admin token): create one, append to it, read it, pause,
resume, cancel or retry it, and its report.

POST /{integration}/campaigns                          {name, recipients, start_at?, …} → 201
POST /{integration}/campaigns/{id}/recipients          append, while it is not finished or cancelled
GET  /{integration}/campaigns?status=&limit=&cursor=   newest first
GET  /{integration}/campaigns/{id}                     status, counts by status and outcome
GET  /{integration}/campaigns/{id}/recipients?status=&limit=&cursor=
GET  /{integration}/campaigns/{id}/report.csv          one row per recipient, streamed
POST /{integration}/campaigns/{id}/pause|resume|cancel|retry

Reads come from PostgreSQL (`happ_integ.stores.campaigns`); changes go to the campaign's
workflow (`control.campaigns`) and are answered once in force. Numbers are shown masked.
"""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, Path, Query
from fastapi.responses import StreamingResponse

from api.body import GuardedRoute
from api.campaign_models import (
    CampaignCreate,
    CampaignCreated,
    CampaignPage,
    CampaignView,
    RecipientPage,
    RecipientRow,
    RecipientsAppend,
    RetryAnswer,
    RetryFilter,
)
from api.deps import AdminDep, RuntimeDep
from api.idempotency import body_digest
from api.responses import error_responses
from api.runtime import ApiRuntime
from control.campaigns import (
    cancel_campaign,
    pause_campaign,
    recipients_added,
    restart_campaign,
    resume_campaign,
    start_campaign,
)
from happ_integ.calls.phones import mask_phone
from happ_integ.campaigns.models import (
    CLOSED_CAMPAIGN,
    RETRY_OUTCOMES,
    RETRY_STATUSES,
    CampaignAnswer,
    CampaignRun,
    CampaignSettings,
    CampaignStatus,
    RecipientStatus,
)
from happ_integ.campaigns.recipients import Rejected, check_recipients, shown_id
from happ_integ.errors import Conflict, HappError, NotFound, ValidationFailed, WorkflowFinished
from happ_integ.integration import Integration

CampaignId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description="The same request sent again with the same key answers the same campaign; "
        "the same key with another body is a 409.",
    ),
]
REPORT_COLUMNS = (
    "id",
    "number",
    "status",
    "outcome",
    "attempts",
    "call_id",
    "last_attempt_at",
    "summary",
    "reason",
)


def campaigns_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Campaigns"], route_class=GuardedRoute)
    name = integration.name

    @router.post(
        "/campaigns",
        status_code=201,
        response_model=CampaignCreated,
        responses=error_responses(401, 409, 413, 422, 503),
    )
    async def create(
        body: CampaignCreate, runtime: RuntimeDep, _: AdminDep, idempotency_key: IdempotencyKey = None
    ) -> CampaignCreated:
        """Store the campaign and its recipients, then start it. Invalid numbers and repeated ids
        are rejected by index; the rest are accepted."""
        store = runtime.resources.campaigns(name)
        handling = await runtime.resources.call_handling(name)
        accepted, rejected = check_recipients(body.recipients, handling.default_region)
        if not accepted:
            first = "; ".join(f"index {r.index}: {r.error}" for r in rejected[:5])
            more = f" (and {len(rejected) - 5} more)" if len(rejected) > 5 else ""
            raise ValidationFailed(f"no recipient was accepted: {first}{more}")
        digest = body_digest(body)
        campaign_id = _campaign_id(name, idempotency_key)
        settings = body.settings()
        created, row = await store.create(campaign_id, body.name, settings, accepted, digest)
        if not created:
            if row["request_hash"] != digest:
                raise Conflict(
                    "this Idempotency-Key was used with another body: send a new key for a new request"
                )
            if row["answer"] is not None:
                return CampaignCreated.model_validate(row["answer"])
        run = CampaignRun(integration=name, campaign_id=campaign_id, settings=settings)
        try:
            await start_campaign(await runtime.temporal(), run, body.name)
        except HappError:
            if created:
                await store.delete(campaign_id)
            raise
        answer = CampaignCreated(campaign_id=campaign_id, accepted=len(accepted), rejected=rejected)
        await store.save_answer(campaign_id, answer.model_dump(mode="json"))
        return answer

    @router.post(
        "/campaigns/{campaign_id}/recipients",
        response_model=CampaignCreated,
        responses=error_responses(401, 404, 409, 413, 422, 503),
    )
    async def append(
        campaign_id: CampaignId, body: RecipientsAppend, runtime: RuntimeDep, _: AdminDep
    ) -> CampaignCreated:
        """Add recipients (same rules as creating); 409 once the campaign is finished or cancelled."""
        store = runtime.resources.campaigns(name)
        handling = await runtime.resources.call_handling(name)
        accepted, rejected = check_recipients(body.recipients, handling.default_region)
        stored, row = await store.append(campaign_id, accepted)
        for recipient, item in ((r, body.recipients[r.index]) for r in accepted):
            if recipient.recipient_id not in stored:
                error = (
                    "this id is already in the campaign"
                    if item.id
                    else "this number is already in the campaign"
                )
                rejected.append(Rejected(index=recipient.index, id=item.id, error=error))
        rejected.sort(key=lambda r: r.index)
        if stored:
            await _wake(runtime, name, row)
        return CampaignCreated(campaign_id=campaign_id, accepted=len(stored), rejected=rejected)

    @router.get("/campaigns", response_model=CampaignPage, responses=error_responses(401, 422, 503))
    async def list_campaigns(
        runtime: RuntimeDep,
        _: AdminDep,
        status: CampaignStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> CampaignPage:
        """Newest first, each with its counts."""
        store = runtime.resources.campaigns(name)
        rows, next_cursor = await store.list(status, limit, cursor)
        return CampaignPage(
            campaigns=[await campaign_view(runtime, name, r) for r in rows], next_cursor=next_cursor
        )

    @router.get(
        "/campaigns/{campaign_id}", response_model=CampaignView, responses=error_responses(401, 404, 422, 503)
    )
    async def get_campaign(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminDep) -> CampaignView:
        """The campaign's status and its recipients counted by status and by outcome."""
        row = await runtime.resources.campaigns(name).require(campaign_id)
        return await campaign_view(runtime, name, row)

    @router.get(
        "/campaigns/{campaign_id}/recipients",
        response_model=RecipientPage,
        responses=error_responses(401, 404, 422, 503),
    )
    async def list_recipients(
        campaign_id: CampaignId,
        runtime: RuntimeDep,
        _: AdminDep,
        status: RecipientStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> RecipientPage:
        """In the order they were added, numbers masked."""
        store = runtime.resources.campaigns(name)
        await store.require(campaign_id)
        rows, next_cursor = await store.recipients_page(campaign_id, status, limit, cursor)
        return RecipientPage(recipients=[recipient_row(r) for r in rows], next_cursor=next_cursor)

    @router.get(
        "/campaigns/{campaign_id}/report.csv",
        response_class=StreamingResponse,
        responses={200: {"content": {"text/csv": {}}}, **error_responses(401, 404, 422, 503)},
    )
    async def report(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminDep) -> StreamingResponse:
        """One row per recipient: id, number (masked), status, outcome, attempts, call id, last
        attempt's time, summary, reason; streamed a few hundred rows at a time."""
        return await campaign_report(runtime, name, campaign_id)

    change_responses = error_responses(401, 404, 409, 422, 503)

    @router.post("/campaigns/{campaign_id}/pause", response_model=CampaignAnswer, responses=change_responses)
    async def pause(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminDep) -> CampaignAnswer:
        """Nothing new is dialled once this answers; calls on the line finish, post-call included;
        queued calls give their place back."""
        return await change_campaign(runtime, name, campaign_id, pause_campaign)

    @router.post("/campaigns/{campaign_id}/resume", response_model=CampaignAnswer, responses=change_responses)
    async def resume(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminDep) -> CampaignAnswer:
        """Go on where it stopped."""
        return await change_campaign(runtime, name, campaign_id, resume_campaign)

    @router.post("/campaigns/{campaign_id}/cancel", response_model=CampaignAnswer, responses=change_responses)
    async def cancel(campaign_id: CampaignId, runtime: RuntimeDep, _: AdminDep) -> CampaignAnswer:
        """No new dial; every call not yet dialled ends `cancelled`; calls on the line finish. The
        campaign shows `cancelled` once they have."""
        return await change_campaign(runtime, name, campaign_id, cancel_campaign)

    @router.post("/campaigns/{campaign_id}/retry", response_model=RetryAnswer, responses=change_responses)
    async def retry(
        campaign_id: CampaignId,
        runtime: RuntimeDep,
        _: AdminDep,
        body: Annotated[RetryFilter | None, Body()] = None,
    ) -> RetryAnswer:
        """After the campaign finished: a new call for each recipient that ended `exhausted`,
        `failed` or with outcome `no_conversation`, or those the filter names."""
        return await retry_campaign(runtime, name, campaign_id, body or RetryFilter())

    return router


# What a route does, callable by the operator console (api/console) too --------------------------


async def campaign_report(runtime: ApiRuntime, integration: str, campaign_id: str) -> StreamingResponse:
    """The report CSV of a campaign (NotFound when there is none)."""
    store = runtime.resources.campaigns(integration)
    await store.require(campaign_id)
    filename = f"{integration}-{campaign_id}.csv"
    return StreamingResponse(
        _report_lines(store.report_rows(campaign_id)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


async def change_campaign(
    runtime: ApiRuntime, integration: str, campaign_id: str, change: Any
) -> CampaignAnswer:
    """Pause, resume or cancel (`change` is one of control.campaigns' functions); Conflict once it ended."""
    row = await runtime.resources.campaigns(integration).require(campaign_id)
    if row["status"] in CLOSED_CAMPAIGN:
        raise Conflict(f"campaign {campaign_id!r} is {row['status']}")
    try:
        answer: CampaignAnswer = await change(await runtime.temporal(), integration, campaign_id)
    except (NotFound, WorkflowFinished):
        raise Conflict(f"campaign {campaign_id!r} has ended") from None
    return answer


async def retry_campaign(
    runtime: ApiRuntime, integration: str, campaign_id: str, chosen: RetryFilter
) -> RetryAnswer:
    """A new call for each recipient the filter names (its defaults when it names none)."""
    store = runtime.resources.campaigns(integration)
    if chosen.statuses is None and chosen.outcomes is None:
        statuses, outcomes = [s.value for s in RETRY_STATUSES], list(RETRY_OUTCOMES)
    else:
        statuses, outcomes = [s.value for s in chosen.statuses or []], list(chosen.outcomes or [])
    retried = await store.retry(campaign_id, statuses, outcomes)
    row = await store.require(campaign_id)
    if retried:
        settings = CampaignSettings.model_validate(row["settings"])
        run = CampaignRun(integration=integration, campaign_id=campaign_id, settings=settings)
        await restart_campaign(await runtime.temporal(), run, row["name"])
    return RetryAnswer(campaign_id=campaign_id, retried=retried, status=CampaignStatus(row["status"]))


def _campaign_id(integration: str, idempotency_key: str | None) -> str:
    """A new id, or the one an Idempotency-Key always gives (so a repeated request finds its campaign)."""
    if idempotency_key is None:
        return f"cmp_{uuid.uuid4().hex[:20]}"
    digest = hashlib.sha256(f"campaign\0{integration}\0{idempotency_key}".encode()).hexdigest()
    return f"cmp_{digest[:20]}"


async def _wake(runtime: ApiRuntime, integration: str, row: dict[str, Any]) -> None:
    """Tell the campaign's workflow recipients were added (start it if it is not running)."""
    client = await runtime.temporal()
    try:
        await recipients_added(client, integration, row["campaign_id"])
    except (NotFound, WorkflowFinished):
        settings = CampaignSettings.model_validate(row["settings"])
        run = CampaignRun(integration=integration, campaign_id=row["campaign_id"], settings=settings)
        await start_campaign(client, run, row["name"])


async def campaign_view(runtime: ApiRuntime, integration: str, row: dict[str, Any]) -> CampaignView:
    """A campaign's row with its recipients counted by status and outcome."""
    counts, outcomes, total = await runtime.resources.campaigns(integration).counts(row["campaign_id"])
    settings = CampaignSettings.model_validate(row["settings"])
    return CampaignView(
        campaign_id=row["campaign_id"],
        name=row["name"],
        status=CampaignStatus(row["status"]),
        cancel_requested=row["cancel_requested"],
        created_at=row["created_at"],
        start_at=settings.start_at,
        end_at=settings.end_at,
        max_concurrency=settings.max_concurrency,
        counts=counts,
        outcomes=outcomes,
        total=total,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


def recipient_row(row: dict[str, Any]) -> RecipientRow:
    """A recipient as the API shows it: the number masked."""
    fields = {k: v for k, v in row.items() if k in RecipientRow.model_fields}
    fields["recipient_id"] = shown_id(row["recipient_id"], row["phone"])
    return RecipientRow(**fields, phone_masked=mask_phone(row["phone"]))


async def _report_lines(rows: AsyncIterator[dict[str, Any]]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(REPORT_COLUMNS)
    async for row in rows:
        last = row["last_attempt_at"]
        writer.writerow(
            (
                shown_id(row["recipient_id"], row["phone"]),
                mask_phone(row["phone"]),
                row["status"],
                row["outcome"] or "",
                row["attempts"],
                row["call_id"] or "",
                last.isoformat() if last else "",
                row["summary"] or "",
                row["reason"] or "",
            )
        )
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
