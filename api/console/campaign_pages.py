"""Campaigns: the list with each one's progress, a campaign's page with its recipients, pause,
resume, cancel and retry (each after a confirmation page), and the report CSV. Reads and changes
are the API's own (`api.routes.campaigns`), so the console and `POST …/pause` do the same thing.

GET  /console/campaigns?integration=&cursor=                     (live part: …/campaigns/live)
GET  /console/{integration}/campaigns/{id}?status=&cursor=       (live part: …/{id}/live)
GET  /console/{integration}/campaigns/{id}/report.csv
GET  /console/{integration}/campaigns/{id}/{pause|resume|cancel|retry}    the confirmation
POST /console/{integration}/campaigns/{id}/{pause|resume|cancel|retry}    (CSRF token) → 303
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from api.campaign_models import CampaignView, RetryFilter
from api.console.auth import ConsoleRoute
from api.console.charts import campaign_progress
from api.console.pages import call_flow, call_flows
from api.console.render import page
from api.deps import RuntimeDep
from api.routes.campaigns import (
    campaign_report,
    campaign_view,
    change_campaign,
    recipient_row,
    retry_campaign,
)
from api.runtime import ApiRuntime
from control.campaigns import cancel_campaign, pause_campaign, resume_campaign
from happ_integ.campaigns.models import CampaignStatus, RecipientStatus
from happ_integ.errors import NotFound

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
CampaignId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Cursor = Annotated[str | None, Query(max_length=512)]
Action = Literal["pause", "resume", "cancel", "retry"]
PAGE = 20
RECIPIENTS_PAGE = 50

# What each action does, as the confirmation page and the notice after it say.
ACTIONS: dict[str, dict[str, str]] = {
    "pause": {
        "verb": "Pause",
        "past": "paused",
        "explain": "Nothing new is dialled once it is paused; calls on the line finish, post-call "
        "included; queued calls give their place back. Resume goes on where it stopped.",
        "done": "Paused: nothing new is dialled.",
    },
    "resume": {
        "verb": "Resume",
        "past": "resumed",
        "explain": "The campaign goes on dialling where it stopped.",
        "done": "Resumed: dialling goes on.",
    },
    "cancel": {
        "verb": "Cancel",
        "past": "cancelled",
        "explain": "No new dial; every call not yet dialled ends cancelled; calls on the line "
        "finish. This cannot be undone.",
        "done": "Cancelled: nothing new is dialled, and the calls not yet dialled end.",
    },
    "retry": {
        "verb": "Retry",
        "past": "retried",
        "explain": "A new call for each recipient that ended exhausted, failed, or with the outcome "
        "no conversation.",
        "done": "Retried.",
    },
}
_CHANGES = {"pause": pause_campaign, "resume": resume_campaign, "cancel": cancel_campaign}


def actions_for(view: CampaignView) -> list[str]:
    """The actions that can be taken now, in the order the buttons show them."""
    if view.cancel_requested:
        return []
    return {
        CampaignStatus.SCHEDULED: ["pause", "cancel"],
        CampaignStatus.RUNNING: ["pause", "cancel"],
        CampaignStatus.PAUSED: ["resume", "cancel"],
        CampaignStatus.FINISHED: ["retry"],
    }.get(view.status, [])


def _shown(integration: str, view: CampaignView) -> dict[str, Any]:
    return {
        "integration": integration,
        "view": view,
        "progress": campaign_progress(view.counts, view.total),
        "actions": actions_for(view),
        "base": f"/console/{integration}/campaigns/{view.campaign_id}",
    }


async def _list(runtime: ApiRuntime, integration: str, cursor: str | None) -> dict[str, Any]:
    rows, next_cursor = await runtime.resources.campaigns(integration).list(None, PAGE, cursor)
    shown = [_shown(integration, await campaign_view(runtime, integration, r)) for r in rows]
    return {"integration": integration, "campaigns": shown, "next_cursor": next_cursor, "cursor": cursor}


def _chosen(runtime: ApiRuntime, integration: str | None) -> str:
    flows = call_flows(runtime)
    if integration is None:
        if not flows:
            raise NotFound("no integration served here has a call flow")
        return flows[0]
    return call_flow(runtime, integration)


@router.get("/campaigns", response_class=HTMLResponse)
async def campaigns(
    request: Request, runtime: RuntimeDep, integration: str | None = None, cursor: Cursor = None
) -> HTMLResponse:
    listing = await _list(runtime, _chosen(runtime, integration), cursor)
    return page(request, "campaigns.html", title="Campaigns", flows=call_flows(runtime), **listing)


@router.get("/campaigns/live", response_class=HTMLResponse)
async def campaigns_live(
    request: Request, runtime: RuntimeDep, integration: str | None = None, cursor: Cursor = None
) -> HTMLResponse:
    listing = await _list(runtime, _chosen(runtime, integration), cursor)
    return page(request, "_campaigns_table.html", **listing)


async def _campaign(
    runtime: ApiRuntime,
    integration: str,
    campaign_id: str,
    status: RecipientStatus | None,
    cursor: str | None,
) -> dict[str, Any]:
    store = runtime.resources.campaigns(call_flow(runtime, integration))
    view = await campaign_view(runtime, integration, await store.require(campaign_id))
    rows, next_cursor = await store.recipients_page(campaign_id, status, RECIPIENTS_PAGE, cursor)
    return {
        **_shown(integration, view),
        "recipients": [recipient_row(r) for r in rows],
        "status_filter": status.value if status else "",
        "statuses": [s.value for s in RecipientStatus],
        "cursor": cursor,
        "next_cursor": next_cursor,
    }


@router.get("/{integration}/campaigns/{campaign_id}", response_class=HTMLResponse)
async def campaign(
    request: Request,
    integration: str,
    campaign_id: CampaignId,
    runtime: RuntimeDep,
    status: RecipientStatus | None = None,
    cursor: Cursor = None,
    done: Action | None = None,
    retried: int | None = None,
) -> HTMLResponse:
    shown = await _campaign(runtime, integration, campaign_id, status, cursor)
    notice = ACTIONS[done]["done"] if done else None
    if done == "retry" and retried is not None:
        notice = f"Retried: {retried} recipients get a new call." if retried else "No recipient to retry."
    return page(request, "campaign.html", title=shown["view"].name, notice=notice, **shown)


@router.get("/{integration}/campaigns/{campaign_id}/live", response_class=HTMLResponse)
async def campaign_live(
    request: Request,
    integration: str,
    campaign_id: CampaignId,
    runtime: RuntimeDep,
    status: RecipientStatus | None = None,
    cursor: Cursor = None,
) -> HTMLResponse:
    shown = await _campaign(runtime, integration, campaign_id, status, cursor)
    return page(request, "_campaign_live.html", **shown)


@router.get("/{integration}/campaigns/{campaign_id}/report.csv")
async def report(integration: str, campaign_id: CampaignId, runtime: RuntimeDep) -> StreamingResponse:
    return await campaign_report(runtime, call_flow(runtime, integration), campaign_id)


@router.get("/{integration}/campaigns/{campaign_id}/{action}", response_class=HTMLResponse)
async def confirm(
    request: Request, integration: str, campaign_id: CampaignId, action: Action, runtime: RuntimeDep
) -> HTMLResponse:
    store = runtime.resources.campaigns(call_flow(runtime, integration))
    view = await campaign_view(runtime, integration, await store.require(campaign_id))
    return page(
        request,
        "confirm.html",
        title=f"{ACTIONS[action]['verb']} {view.name}",
        action=action,
        what=ACTIONS[action],
        possible=action in actions_for(view),
        **_shown(integration, view),
    )


@router.post("/{integration}/campaigns/{campaign_id}/{action}")
async def act(
    integration: str, campaign_id: CampaignId, action: Action, runtime: RuntimeDep
) -> RedirectResponse:
    name = call_flow(runtime, integration)
    where = f"/console/{name}/campaigns/{campaign_id}?done={action}"
    if action == "retry":
        answer = await retry_campaign(runtime, name, campaign_id, RetryFilter())
        where += f"&retried={answer.retried}"
    else:
        await change_campaign(runtime, name, campaign_id, _CHANGES[action])
    return RedirectResponse(where, 303)
