"""The activities of the `Campaign` workflow: reading its recipients in pages, starting their
calls, stopping them, and writing the campaign's status.

    campaigns = CampaignActivities(resources, control)   # control: a CallControl (the worker's)
    await workflow.execute_activity_method(CampaignActivities.start_calls, StartCalls(...), ...)

A recipient's call id is derived from the campaign, the recipient and the retry round, so a
`start_calls` cut short and tried again starts the same calls (Temporal attaches to the running
ones) and never a second call for one recipient.
"""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

from temporalio import activity

from happ_integ.calls.config import CallHandling
from happ_integ.calls.contracts import CallControl, CallRequest
from happ_integ.campaigns.models import (
    CampaignRef,
    CampaignStatusChange,
    RecipientStatus,
    StartCalls,
    StartedCalls,
    StopCalls,
)
from happ_integ.campaigns.recipients import shown_id
from happ_integ.durable import activity_failures
from happ_integ.ops import Resources
from happ_integ.temporal import call_workflow_id

# Calls started or cancelled at once by one activity.
_AT_ONCE = 8
# A pending recipient's reason while another call to its number is in flight.
_WAITING = "waiting: another call to the number is in flight"


def campaign_call_id(campaign_id: str, recipient_id: str, round_: int) -> str:
    """`c_` and 20 hex digits, the shape of every call id (webhooks naming it go straight to it)."""
    digest = hashlib.sha256(f"{campaign_id}/{recipient_id}/{round_}".encode()).hexdigest()
    return f"c_{digest[:20]}"


class CampaignActivities:
    def __init__(self, resources: Resources, control: CallControl) -> None:
        self._res = resources
        self._control = control

    @activity.defn(name="campaign.begin")
    async def begin(self, ref: CampaignRef) -> CallHandling:
        """The integration's `call_handling`, which the campaign's own settings override."""
        with activity_failures():
            return await self._res.call_handling(ref.integration)

    @activity.defn(name="campaign.start_calls")
    async def start_calls(self, arg: StartCalls) -> StartedCalls:
        """Start the calls of up to `limit` pending recipients, in the order they were added."""
        with activity_failures():
            store = self._res.campaigns(arg.integration)
            rows = await store.next_pending(arg.campaign_id, arg.limit, skip=arg.started)
            share = (
                arg.settings.max_concurrency
                or (await self._res.call_handling(arg.integration)).concurrency_limit
            )
            gate = asyncio.Semaphore(_AT_ONCE)

            async def one(row: dict[str, Any]) -> tuple[str, str] | None:
                async with gate:
                    started = await self._start_one(arg, row, share)
                    # A worker killed mid-batch is noticed within the heartbeat timeout, not the
                    # start-to-close one; what was started is found again (derived call ids).
                    activity.heartbeat()
                    return started

            # One recipient per number in a batch, the earliest: the others would only race it for
            # the number and wait anyway; they keep their place in the order.
            firsts: dict[str, dict[str, Any]] = {}
            for row in rows:
                firsts.setdefault(row["phone"], row)
            started = dict(
                s for s in await asyncio.gather(*(one(r) for r in firsts.values())) if s is not None
            )
            if len(rows) == arg.limit:
                return StartedCalls(started=started, more=True)
            # Fewer than asked for: the rest of the pending recipients (if any) wait for another
            # call to their number to end; each says so, and the campaign is not finished.
            left = await store.hold_waiting(arg.campaign_id, [*arg.started, *started], _WAITING)
            return StartedCalls(started=started, more=left > 0)

    async def _start_one(self, arg: StartCalls, row: dict[str, Any], share: int) -> tuple[str, str] | None:
        store = self._res.campaigns(arg.integration)
        calls = self._res.calls(arg.integration)
        recipient_id = row["recipient_id"]
        call_id = campaign_call_id(arg.campaign_id, recipient_id, row["round"])
        workflow_id = call_workflow_id(arg.integration, call_id)
        metadata = {**row["metadata"], "campaign_id": arg.campaign_id, "recipient_id": recipient_id}
        if await calls.get(call_id) is None:
            _, created = await calls.claim(call_id, row["phone"], workflow_id, metadata)
            if not created:
                # Another call to the number started since it was read (a person's, another
                # campaign's): two calls to one number at once are never made, so the recipient
                # stays pending and waits its turn.
                await store.link_call(arg.campaign_id, recipient_id, None, RecipientStatus.PENDING, _WAITING)
                activity.logger.info(
                    "recipient %s: the number has another call in flight",
                    shown_id(recipient_id, row["phone"]),
                )
                return None
        # Linked first (still pending): the call's first status then finds its recipient.
        await store.link_call(arg.campaign_id, recipient_id, call_id, RecipientStatus.PENDING)
        await self._control.start_call(
            CallRequest(
                integration=arg.integration,
                call_id=call_id,
                phone_number=row["phone"],
                metadata=metadata,
                campaign_id=arg.campaign_id,
                recipient_id=recipient_id,
                variables=row["variables"],
                handling_overrides=arg.settings.overrides(),
                max_concurrency=share,
            )
        )
        return call_id, recipient_id

    @activity.defn(name="campaign.stop_calls")
    async def stop_calls(self, arg: StopCalls) -> int:
        """Pending recipients end `cancelled` (or `expired`), and every call named gets no further
        attempt: those not yet dialled end, those on the line finish. Returns how many pending
        recipients were ended."""
        with activity_failures():
            store = self._res.campaigns(arg.integration)
            why = RecipientStatus.EXPIRED if arg.expired else RecipientStatus.CANCELLED
            stopped = await store.stop_pending(arg.campaign_id, why)
            if arg.expired:
                await store.expire_calls(arg.campaign_id, arg.call_ids)
            gate = asyncio.Semaphore(_AT_ONCE)

            async def one(call_id: str) -> bool:
                async with gate:
                    return await self._control.cancel_call(arg.integration, call_id)

            await asyncio.gather(*(one(c) for c in arg.call_ids))
            return stopped

    @activity.defn(name="campaign.set_status")
    async def set_status(self, arg: CampaignStatusChange) -> None:
        with activity_failures():
            await self._res.campaigns(arg.integration).set_status(
                arg.campaign_id, arg.status, arg.cancel_requested
            )

    @activity.defn(name="campaign.finish")
    async def finish(self, ref: CampaignRef) -> bool:
        """Finished, unless a recipient was appended meanwhile (False: go on)."""
        with activity_failures():
            return await self._res.campaigns(ref.integration).finish(ref.campaign_id)

    def all(self) -> list[Any]:
        return [self.begin, self.start_calls, self.stop_calls, self.set_status, self.finish]
