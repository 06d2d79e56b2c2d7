"""The client side of campaigns: start a `Campaign` workflow, and pause, resume, cancel, append to
or retry it.

    await start_campaign(client, CampaignRun(integration="sofa", campaign_id="cmp_…", settings=s), "Webinar")
    answer = await pause_campaign(client, "sofa", "cmp_…")     # CampaignAnswer, once nothing new dials
    await recipients_added(client, "sofa", "cmp_…")            # after the gateway stored new ones
    await restart_campaign(client, run, name)                  # `retry`: a new run for a finished one

An update that finds the campaign's workflow closed raises `WorkflowFinished` (409 for the caller).
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)

from control.client import temporal_errors
from happ_integ.campaigns.models import CampaignAnswer, CampaignRun, CampaignStatus
from happ_integ.temporal import CAMPAIGN_ID_KEY, INTEGRATION_KEY, campaign_workflow_id, task_queue_for
from workflows.campaign import Campaign

# How long `restart_campaign` waits for the finished run to close before starting the next.
_CLOSING_SECONDS = 10.0


def _handle(client: Client, integration: str, campaign_id: str) -> WorkflowHandle[Any, CampaignStatus]:
    return client.get_workflow_handle_for(Campaign.run, campaign_workflow_id(integration, campaign_id))


async def start_campaign(client: Client, run: CampaignRun, name: str) -> None:
    """Start the campaign's workflow (a repeated start attaches to the running one)."""
    workflow_id = campaign_workflow_id(run.integration, run.campaign_id)
    with temporal_errors(workflow_id):
        await client.start_workflow(
            Campaign.run,
            run,
            id=workflow_id,
            task_queue=task_queue_for(run.integration),
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(INTEGRATION_KEY, run.integration),
                    SearchAttributePair(CAMPAIGN_ID_KEY, run.campaign_id),
                ]
            ),
            static_summary=f"{run.integration} campaign {name[:80]}",
        )


async def restart_campaign(client: Client, run: CampaignRun, name: str) -> None:
    """A new run for a finished campaign (`retry`): the last run is let close first."""
    handle = _handle(client, run.integration, run.campaign_id)
    try:
        await asyncio.wait_for(handle.result(), _CLOSING_SECONDS)
    except Exception:  # gone, failed, terminated or still closing: start (or attach) anyway
        pass
    await start_campaign(client, run, name)


async def _update(client: Client, integration: str, campaign_id: str, update: Any) -> CampaignAnswer:
    handle = _handle(client, integration, campaign_id)
    with temporal_errors(handle.id):
        answer: CampaignAnswer = await handle.execute_update(update)
        return answer


async def pause_campaign(client: Client, integration: str, campaign_id: str) -> CampaignAnswer:
    return await _update(client, integration, campaign_id, Campaign.pause)


async def resume_campaign(client: Client, integration: str, campaign_id: str) -> CampaignAnswer:
    return await _update(client, integration, campaign_id, Campaign.resume)


async def cancel_campaign(client: Client, integration: str, campaign_id: str) -> CampaignAnswer:
    return await _update(client, integration, campaign_id, Campaign.cancel)


async def recipients_added(client: Client, integration: str, campaign_id: str) -> None:
    handle = _handle(client, integration, campaign_id)
    with temporal_errors(handle.id):
        await handle.signal(Campaign.recipients_added)
