"""Stand-ins for what the `Campaign` workflow talks to, for time-skipping tests of the workflows alone.

`CampaignScript` is the `CallScript` of `fakes` plus the campaign's activities, under their real
names (`campaign.begin`, `campaign.start_calls`, `campaign.stop_calls`, `campaign.set_status`,
`campaign.finish`), over recipients held in memory: one dict per recipient with the columns of
`{integration}_campaign_recipients` the workflow's story touches (`status`, `call_id`, `round`,
`attempts`, …). As the real activities do, `start_calls` starts each recipient's `OutboundCall`
(`control.client.start_call`, with the call id `activities.campaigns.campaign_call_id` derives)
and `stop_calls` cancels calls through `control.client.cancel_call`; the call's own `call.record`
moves its recipient, as the real one does through `CampaignStore.record_call`.

    script = CampaignScript(client)
    script.add("cmp_1", 8)                       # eight pending recipients r0 … r7
    script.recipient_statuses("cmp_1")           # {"r0": "completed", …}
    script.retry("cmp_1")                        # as CampaignStore.retry: round + 1, pending again

The claim of a number is modelled among the campaigns' own calls: a recipient whose number has
another campaign call in flight stays pending until that call ends (the real `start_calls` checks
every call in `{integration}_calls`, a person's and a callback's too).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from dataclasses import dataclass, field
from typing import Any

from temporalio import activity

from activities.campaigns import campaign_call_id
from control.client import cancel_call, start_call
from happ_integ.calls.config import CallHandling
from happ_integ.calls.contracts import CallRecord, CallRequest, OriginateCall, Originated
from happ_integ.calls.models import FINAL_STATUSES
from happ_integ.campaigns.models import (
    FINAL_RECIPIENT,
    RETRY_STATUSES,
    CampaignRef,
    CampaignStatus,
    CampaignStatusChange,
    RecipientStatus,
    StartCalls,
    StartedCalls,
    StopCalls,
)
from happ_integ.errors import NotFound, WorkflowFinished
from tests.workflows.fakes import CallScript


@dataclass
class CampaignScript(CallScript):
    # campaign id → its recipients, in the order they were added (`seq`)
    recipients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # campaign id → its status, as `set_status` and `finish` write it
    campaign_status: dict[str, str] = field(default_factory=dict)
    # What happened, in order: ("call", call_id, status) for each campaign call's record,
    # ("campaign", campaign_id, status) for each campaign status written.
    log: list[tuple[str, str, str]] = field(default_factory=list)
    started: list[str] = field(default_factory=list)  # call ids `start_calls` started, in order
    answers: list[StartedCalls] = field(default_factory=list)  # what each `start_calls` answered
    number_busy: dict[str, str] = field(default_factory=dict)  # number → its campaign call in flight
    stops: list[StopCalls] = field(default_factory=list)
    # Recipients the gateway appends just as `finish` is asked (before it looks for pending ones).
    append_on_finish: list[tuple[str, int]] = field(default_factory=list)
    # The attempts (call id, attempt) the test has hung up (sent their call_end), and the most
    # attempts dialing or talking at once, counted at each originate.
    hung_up: set[tuple[str, int]] = field(default_factory=set)
    most_on_the_line: int = 0
    # call id → seconds its first status write takes (a slow database; a call whose CRM lookup
    # is slow leaves its recipient pending as long)
    slow_first_record: dict[str, float] = field(default_factory=dict)

    # The recipients -----------------------------------------------------------------------------------

    def add(self, campaign_id: str, count: int) -> list[str]:
        """Append `count` pending recipients (as the gateway stores them); their ids."""
        rows = self.recipients.setdefault(campaign_id, [])
        added = []
        for _ in range(count):
            seq = len(rows)
            recipient_id = f"r{seq}"
            rows.append(
                {
                    "recipient_id": recipient_id,
                    "seq": seq,
                    "phone": f"+38099{zlib.crc32(campaign_id.encode()) % 10000:04d}{seq:03d}",
                    "variables": {"webinar": "12 Dec"},
                    "metadata": {"lead": recipient_id},
                    "status": RecipientStatus.PENDING.value,
                    "round": 0,
                    "call_id": None,
                    "outcome": None,
                    "attempts": 0,
                    "attempts_before": 0,
                }
            )
            added.append(recipient_id)
        return added

    def recipient(self, campaign_id: str, recipient_id: str) -> dict[str, Any]:
        (row,) = [r for r in self.recipients[campaign_id] if r["recipient_id"] == recipient_id]
        return row

    def recipient_statuses(self, campaign_id: str) -> dict[str, str]:
        return {r["recipient_id"]: r["status"] for r in self.recipients[campaign_id]}

    def call_ids(self, campaign_id: str) -> dict[str, str | None]:
        """recipient id → the call id linked to it (None: no call started)."""
        return {r["recipient_id"]: r["call_id"] for r in self.recipients[campaign_id]}

    def all_final(self, campaign_id: str) -> bool:
        return all(RecipientStatus(r["status"]) in FINAL_RECIPIENT for r in self.recipients[campaign_id])

    def retry(self, campaign_id: str, statuses: tuple[RecipientStatus, ...] = RETRY_STATUSES) -> int:
        """`CampaignStore.retry`: recipients that ended with one of `statuses` pending again, for a
        new call each (round + 1); the campaign must be finished."""
        assert self.campaign_status[campaign_id] == CampaignStatus.FINISHED.value
        count = 0
        for row in self.recipients[campaign_id]:
            if row["status"] in {s.value for s in statuses}:
                row.update(
                    status=RecipientStatus.PENDING.value,
                    round=row["round"] + 1,
                    call_id=None,
                    outcome=None,
                    attempts_before=row["attempts"],
                )
                count += 1
        if count:
            self.campaign_status[campaign_id] = CampaignStatus.RUNNING.value
        return count

    # The call's record moves its recipient ----------------------------------------------------------

    @activity.defn(name="call.record")
    async def record(self, rec: CallRecord) -> None:
        """The call's status written (`CallScript.record`), and for a campaign's call on its
        recipient too, as `CampaignStore.record_call` does (an `expired` recipient stays so when its
        call reports `cancelled`)."""
        await asyncio.sleep(self.slow_first_record.pop(rec.call_id, 0))
        self.records.append(rec)
        if rec.status in FINAL_STATUSES:
            for phone in [p for p, c in self.number_busy.items() if c == rec.call_id]:
                del self.number_busy[phone]
        if rec.campaign_id is None:
            return
        self.log.append(("call", rec.call_id, rec.status.value))
        for row in self.recipients.get(rec.campaign_id, []):
            if row["call_id"] == rec.call_id:
                keep = row["status"] == RecipientStatus.EXPIRED.value and rec.status.value == "cancelled"
                row["status"] = row["status"] if keep else rec.status.value
                row["attempts"] = row["attempts_before"] + rec.attempt
                row["outcome"] = rec.analysis_outcome or row["outcome"]

    @activity.defn(name="voice.originate")
    async def originate(self, arg: OriginateCall) -> Originated:
        """`CallScript.originate`, counting the attempts dialing or talking once this one dials."""
        originated = await super().originate(arg)
        on_the_line = {(o.call_id, o.attempt) for _, o in self.originates} - self.hung_up
        self.most_on_the_line = max(self.most_on_the_line, len(on_the_line))
        return originated

    # The campaign's activities --------------------------------------------------------------------------

    @activity.defn(name="campaign.begin")
    async def campaign_begin(self, ref: CampaignRef) -> CallHandling:
        return self.handling

    @activity.defn(name="campaign.start_calls")
    async def start_calls(self, arg: StartCalls) -> StartedCalls:
        """Start the calls of up to `limit` pending recipients, in the order they were added: a
        recipient stays `pending` (its call linked) until its call's first status, as in the table,
        and one whose call the campaign follows already (`arg.started`) is skipped."""
        pending = [
            r
            for r in self.recipients.get(arg.campaign_id, [])
            if r["status"] == "pending" and r.get("call_id") not in arg.started
        ]
        # As the real claim on a number: a recipient whose number has another campaign call in
        # flight waits its turn (calls started otherwise are not counted here).
        rows = [r for r in pending if self.number_busy.get(r["phone"], r.get("call_id")) == r.get("call_id")]
        held = len(rows) < len(pending)
        rows = sorted(rows, key=lambda r: r["seq"])[: arg.limit]
        share = arg.settings.max_concurrency or self.handling.concurrency_limit
        started: dict[str, str] = {}
        for row in rows:
            recipient_id = row["recipient_id"]
            call_id = campaign_call_id(arg.campaign_id, recipient_id, row["round"])
            row["call_id"] = call_id  # linked first, still pending
            self.number_busy[row["phone"]] = call_id
            await start_call(
                self.client,
                CallRequest(
                    integration=arg.integration,
                    call_id=call_id,
                    phone_number=row["phone"],
                    metadata={
                        **row["metadata"],
                        "campaign_id": arg.campaign_id,
                        "recipient_id": recipient_id,
                    },
                    campaign_id=arg.campaign_id,
                    recipient_id=recipient_id,
                    variables=row["variables"],
                    handling_overrides=arg.settings.overrides(),
                    max_concurrency=share,
                ),
            )
            self.started.append(call_id)
            started[call_id] = recipient_id
        answer = StartedCalls(started=started, more=len(rows) == arg.limit or held)
        self.answers.append(answer)
        return answer

    @activity.defn(name="campaign.stop_calls")
    async def stop_calls(self, arg: StopCalls) -> int:
        """Pending recipients end `cancelled` (or `expired`: then so do those whose calls are
        still queued or scheduled), every call named is cancelled; how many pending were ended."""
        self.stops.append(arg)
        why = RecipientStatus.EXPIRED if arg.expired else RecipientStatus.CANCELLED
        stopped = 0
        for row in self.recipients.get(arg.campaign_id, []):
            if row["status"] == RecipientStatus.PENDING.value:
                row["status"] = why.value
                stopped += 1
            elif arg.expired and row["call_id"] in arg.call_ids and row["status"] in ("scheduled", "queued"):
                row["status"] = RecipientStatus.EXPIRED.value
        for call_id in arg.call_ids:
            with contextlib.suppress(NotFound, WorkflowFinished):  # it has ended already
                await cancel_call(self.client, arg.integration, call_id)
        return stopped

    @activity.defn(name="campaign.set_status")
    async def set_status(self, arg: CampaignStatusChange) -> None:
        self.campaign_status[arg.campaign_id] = arg.status.value
        self.log.append(("campaign", arg.campaign_id, arg.status.value))

    @activity.defn(name="campaign.finish")
    async def finish(self, ref: CampaignRef) -> bool:
        """Finished, unless a recipient is pending (one was appended meanwhile)."""
        for campaign_id, count in self.append_on_finish:
            self.add(campaign_id, count)
        self.append_on_finish.clear()
        if any(r["status"] == "pending" for r in self.recipients.get(ref.campaign_id, [])):
            return False
        self.campaign_status[ref.campaign_id] = CampaignStatus.FINISHED.value
        self.log.append(("campaign", ref.campaign_id, CampaignStatus.FINISHED.value))
        return True

    def activities(self) -> list[Any]:
        return [
            *super().activities(),
            self.campaign_begin,
            self.start_calls,
            self.stop_calls,
            self.set_status,
            self.finish,
        ]
