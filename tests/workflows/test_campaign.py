"""`Campaign` on the time-skipping test server: its recipients' real `OutboundCall`s through the
integration's real `CallQueue`, with the recipients, the voice assistant and the CRM replaced by the
stand-ins of `campaign_fakes` and `fakes`. The test plays the voice assistant and ElevenLabs: it
sends each dialled call its `call_start`, `call_end` and post-call, as the webhooks would
(`control.client.send_call_event`, `send_postcall`), either one call at a time or, where the order
does not matter, every call as it dials (`Campaigns.playing`).

The server skips time only while a client waits on a workflow's result, so no call rings out
while the test is busy elsewhere: a test waits for a campaign's end by polling (`Campaigns.outcome`),
and moves the clock on itself (`env.sleep`) where time must pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.campaigns import campaign_call_id
from control.campaigns import (
    cancel_campaign,
    pause_campaign,
    recipients_added,
    restart_campaign,
    resume_campaign,
    start_campaign,
)
from control.client import queue_state, start_call
from happ_integ import registry
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.calls.contracts import CallRequest, QueueState
from happ_integ.calls.models import CallAnalysis, CallStatus
from happ_integ.campaigns.models import CampaignRun, CampaignSettings, CampaignStatus
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from happ_integ.temporal import call_workflow_id, campaign_workflow_id, queue_workflow_id, task_queue_for
from tests.workflows.campaign_fakes import CampaignScript
from tests.workflows.fakes import FakeHandlerRun
from tests.workflows.harness import Call, call_flow_integration, eventually, handling
from worker import workflow_runner
from workflows import CallQueue, Campaign, OutboundCall

Outcome = Callable[[str], str]  # call id → "answered" or "no_answer"


def answered(call_id: str) -> str:
    return "answered"


@dataclass
class Campaigns:
    env: WorkflowEnvironment
    script: CampaignScript
    integration: str
    campaigns: list[str] = field(default_factory=list)  # campaign ids started
    persons: list[str] = field(default_factory=list)  # call ids of single calls started
    played: set[tuple[str, int]] = field(default_factory=set)  # (call id, attempt) played

    # Starting -------------------------------------------------------------------------------------

    async def start(self, recipients: int, campaign_id: str | None = None, **run: Any) -> str:
        """A campaign of `recipients` new recipients (r0, r1, …), its workflow started."""
        campaign_id = campaign_id or f"cmp_{uuid.uuid4().hex[:8]}"
        self.script.add(campaign_id, recipients)
        await start_campaign(self.env.client, self.run(campaign_id, **run), "test campaign")
        self.campaigns.append(campaign_id)
        return campaign_id

    def run(self, campaign_id: str, **run: Any) -> CampaignRun:
        return CampaignRun(integration=self.integration, campaign_id=campaign_id, **run)

    async def person_call(self) -> Call:
        """A single call a person asked for (no campaign)."""
        call_id = f"c_{uuid.uuid4().hex[:20]}"
        request = CallRequest(integration=self.integration, call_id=call_id, phone_number="+380994829573")
        handle = await start_call(self.env.client, request)
        self.persons.append(call_id)
        return Call(self.env, self.script, self.integration, call_id, handle)

    # Looking -------------------------------------------------------------------------------------

    def handle(self, campaign_id: str) -> WorkflowHandle[Campaign, CampaignStatus]:
        workflow_id = campaign_workflow_id(self.integration, campaign_id)
        return self.env.client.get_workflow_handle_for(Campaign.run, workflow_id)

    def call(self, call_id: str) -> Call:
        handle = self.env.client.get_workflow_handle_for(
            OutboundCall.run, call_workflow_id(self.integration, call_id)
        )
        return Call(self.env, self.script, self.integration, call_id, handle)

    def dials(self) -> list[str]:
        """The call id of each originate, in order."""
        return [o.call_id for _, o in self.script.originates]

    async def until_dials(self, count: int, seconds: float = 10) -> list[str]:
        async def read() -> list[str]:
            return self.dials()

        return await eventually(read, lambda d: len(d) >= count, seconds, lambda d: f"dialled only {d}")

    def campaign_of(self, call_id: str) -> str | None:
        for campaign_id, rows in self.script.recipients.items():
            if any(r["call_id"] == call_id for r in rows):
                return campaign_id
        return None

    async def queue(self) -> QueueState:
        return await queue_state(self.env.client, self.integration)

    async def until_queue(self, test: Callable[[QueueState], bool], seconds: float = 10) -> QueueState:
        return await eventually(self.queue, test, seconds, lambda s: f"the queue never got there: {s}")

    async def waiting(self, *call_ids: str) -> QueueState:
        """The queue, once exactly these calls wait in it."""
        ids = {call_workflow_id(self.integration, c) for c in call_ids}
        return await self.until_queue(lambda q: {w.holder for w in q.waiters} == ids)

    async def until_recipients(self, campaign_id: str, expected: dict[str, str], seconds: float = 10) -> None:
        async def read() -> dict[str, str]:
            return self.script.recipient_statuses(campaign_id)

        await eventually(read, lambda s: s == expected, seconds, lambda s: f"the recipients are {s}")

    async def running(self, campaign_id: str) -> bool:
        return (await self.handle(campaign_id).describe()).status == WorkflowExecutionStatus.RUNNING

    async def outcome(self, campaign_id: str, seconds: float = 20) -> CampaignStatus:
        """What the campaign returned, once it has (polled, so the server skips no time)."""
        handle = self.handle(campaign_id)
        await eventually(
            handle.describe,
            lambda d: d.status != WorkflowExecutionStatus.RUNNING,
            seconds,
            lambda d: (
                f"the campaign did not end: recipients {self.script.recipient_statuses(campaign_id)}, "
                f"dialled {len(self.dials())}, pending "
                f"{[a.activity_type.name for a in d.raw_description.pending_activities]}"
            ),
        )
        return await handle.result()

    # Playing the calls ---------------------------------------------------------------------------

    def _attempt(self, call_id: str) -> int:
        return sum(1 for c in self.dials() if c == call_id)

    async def answer(self, call_id: str, talk_seconds: float = 45) -> None:
        """The call dialled now is answered, talks, hangs up, and its post-call comes."""
        attempt = self._attempt(call_id)
        self.played.add((call_id, attempt))
        call = self.call(call_id)
        await call.event("call_start")
        await self.hang_up(call_id, talk_seconds)
        await call.transcription(talk_seconds, f"conv-{call_id}-{attempt}")

    async def hang_up(self, call_id: str, talk_seconds: float = 45) -> None:
        """The call on the line ends (its post-call still to come)."""
        attempt = self._attempt(call_id)
        self.script.hung_up.add((call_id, attempt))
        await self.call(call_id).event("call_end", talk_seconds, conversation_id=f"conv-{call_id}-{attempt}")

    async def no_answer(self, call_id: str) -> None:
        attempt = self._attempt(call_id)
        self.played.add((call_id, attempt))
        self.script.hung_up.add((call_id, attempt))
        await self.call(call_id).event("call_end", 0, provider_status="no_answer")

    @contextlib.asynccontextmanager
    async def playing(self, outcome: Outcome = answered, count: int | None = None) -> AsyncIterator[None]:
        """While the block runs, every attempt that dials and was not played yet is played
        (the first `count` only, when given): answered (with its post-call) or not answered, as
        `outcome` says for its call."""

        async def play_all() -> None:
            played = 0
            while count is None or played < count:
                for call_id in self.dials():
                    if (call_id, self._attempt(call_id)) not in self.played and played != count:
                        if outcome(call_id) == "answered":
                            await self.answer(call_id)
                        else:
                            await self.no_answer(call_id)
                        played += 1
                await asyncio.sleep(0.02)

        player = asyncio.create_task(play_all())
        try:
            yield
        finally:
            if player.done():
                player.result()  # what broke the player
            player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await player


def recipient_calls(campaign_id: str, count: int, round_: int = 0) -> list[str]:
    """The call ids of recipients r0 … r{count-1}: derived, as the real start_calls derives them."""
    return [campaign_call_id(campaign_id, f"r{i}", round_) for i in range(count)]


@pytest.fixture
async def campaigns(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Campaigns]:
    env = time_skipping_env
    name = f"k{uuid.uuid4().hex[:10]}"
    registry.install({name: call_flow_integration(name)}, CaptureSink(), Settings())
    script = CampaignScript(env.client, handling=handling())
    worker = Worker(
        env.client,
        task_queue=task_queue_for(name),
        workflows=[OutboundCall, CallQueue, Campaign, FakeHandlerRun],
        activities=script.activities(),
        workflow_runner=workflow_runner(),
    )
    under_test = Campaigns(env, script, name)
    async with worker:
        yield under_test
        # Nothing of this test may stay open: the server skips time only while no task is pending.
        ids = [
            *(campaign_workflow_id(name, c) for c in under_test.campaigns),
            *(call_workflow_id(name, c) for c in [*script.started, *under_test.persons]),
            queue_workflow_id(name),
        ]
        for workflow_id in ids:
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(workflow_id).terminate("the test is over")


async def test_a_paused_campaign_dials_nothing_new_until_resumed(campaigns: Campaigns) -> None:
    cid = await campaigns.start(8, settings=CampaignSettings(max_concurrency=2))
    r = recipient_calls(cid, 8)
    # Two shares of calls at once: two dial (its max_concurrency), two wait for a slot.
    first = await campaigns.until_dials(2)
    second = sorted(set(r[:4]) - set(first))
    assert set(first) < set(r[:4])
    await campaigns.waiting(*second)
    await campaigns.answer(first[0])
    await campaigns.answer(first[1])
    assert sorted((await campaigns.until_dials(4))[2:]) == second
    await campaigns.waiting(r[4], r[5])

    answer = await pause_campaign(campaigns.env.client, campaigns.integration, cid)
    assert answer.status is CampaignStatus.PAUSED
    at_pause = await campaigns.queue()
    assert at_pause.paused_campaigns == [cid]
    # The only calls holding a slot then are the two on the line, already dialled.
    assert set(at_pause.holders) == {call_workflow_id(campaigns.integration, c) for c in second}
    dialled, started = len(campaigns.dials()), list(campaigns.script.started)
    # The calls on the line finish, their post-calls included; their slots stay free.
    for call_id in second:
        await campaigns.answer(call_id)
    for call_id in second:
        await campaigns.call(call_id).until(lambda s: s.status is CallStatus.COMPLETED)
    await campaigns.env.sleep(timedelta(minutes=2))  # however long it stays paused
    paused = await campaigns.queue()
    assert campaigns.dials()[dialled:] == []  # nothing dialled after the pause's answer
    assert paused.granted_total == at_pause.granted_total and not paused.holders
    assert {w.holder for w in paused.waiters} == {call_workflow_id(campaigns.integration, c) for c in r[4:6]}
    assert campaigns.script.started == started  # and no new call started
    assert campaigns.script.recipient_statuses(cid) == {
        **{f"r{i}": "completed" for i in range(4)},
        "r4": "queued",
        "r5": "queued",
        "r6": "pending",
        "r7": "pending",
    }
    assert campaigns.script.campaign_status[cid] == "paused"

    answer = await resume_campaign(campaigns.env.client, campaigns.integration, cid)
    assert answer.status is CampaignStatus.RUNNING
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert set(campaigns.dials()[dialled:]) == set(r[4:])
    assert Counter(campaigns.dials()) == dict.fromkeys(r, 1)  # each recipient dialled once
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(8)}
    assert not (await campaigns.queue()).paused_campaigns


async def test_a_do_not_call_outcome_ends_the_numbers_callback_and_other_recipients_suppressed(
    campaigns: Campaigns,
) -> None:
    """r0's callee asks not to be called again: r0's call completes (its outcome goes to the CRM);
    r2, on the same number, and a callback already scheduled for that number end `suppressed`
    when their turn comes, never dialled; r1, another number, is called as usual. (Within one
    integration the callback would hold the number and r0 would wait for it; the fakes do not
    count a person's call, which stands here for one whose opt-out comes from elsewhere.)"""
    script, env = campaigns.script, campaigns.env
    number, other = "+380991110001", "+380991110002"
    script.analyses[number] = CallAnalysis(outcome="do_not_call", summary="Просить більше не дзвонити.")
    callback_id = f"c_{uuid.uuid4().hex[:20]}"
    at = await env.get_current_time() + timedelta(hours=2)
    await start_call(
        env.client,
        CallRequest(
            integration=campaigns.integration, call_id=callback_id, phone_number=number, not_before=at
        ),
    )
    campaigns.persons.append(callback_id)
    callback = campaigns.call(callback_id)
    await callback.until(lambda s: s.status is CallStatus.SCHEDULED and s.next_attempt_at == at)

    cid = f"cmp_{uuid.uuid4().hex[:8]}"
    script.add(cid, 3)
    for recipient_id, phone in (("r0", number), ("r1", other), ("r2", number)):
        script.recipient(cid, recipient_id)["phone"] = phone
    await start_campaign(
        env.client, campaigns.run(cid, settings=CampaignSettings(max_concurrency=1)), "test campaign"
    )
    campaigns.campaigns.append(cid)
    r = recipient_calls(cid, 3)
    # r2 waits for r0's call to end (the claim on the number), then finds the number listed.
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert campaigns.script.recipient_statuses(cid) == {
        "r0": "completed",
        "r1": "completed",
        "r2": "suppressed",
    }
    assert script.recipient(cid, "r0")["outcome"] == "do_not_call"
    assert sorted(campaigns.dials()) == sorted(r[:2]), "r2 was never dialled"

    await env.sleep(timedelta(hours=2, seconds=1))
    state = await callback.until(lambda s: s.status is CallStatus.SUPPRESSED)
    assert state.attempt == 0 and state.reason == "the number is on the do-not-call list"
    assert callback_id not in campaigns.dials()


async def test_calls_held_back_by_a_cap_leave_the_window_to_other_recipients(campaigns: Campaigns) -> None:
    """r0 and r1 were each dialled today under a cap of one a day: their calls wait a day, and
    the campaign's window (two shares of max_concurrency 1) goes on to r2 and r3 meanwhile."""
    script, env = campaigns.script, campaigns.env
    now = await env.get_current_time()
    cid = f"cmp_{uuid.uuid4().hex[:8]}"
    script.add(cid, 4)
    phones = [f"+38099222000{i}" for i in range(4)]
    for i, phone in enumerate(phones):
        script.recipient(cid, f"r{i}")["phone"] = phone
    script.contact_policy = ContactPolicy(max_attempts_per_day=1, min_minutes_between_attempts=0)
    script.clock = env.get_current_time
    script.contact_attempts = {phones[0]: [now - timedelta(hours=2)], phones[1]: [now - timedelta(hours=3)]}
    await start_campaign(
        env.client, campaigns.run(cid, settings=CampaignSettings(max_concurrency=1)), "test campaign"
    )
    campaigns.campaigns.append(cid)
    r = recipient_calls(cid, 4)
    async with campaigns.playing():
        await campaigns.until_recipients(
            cid, {"r0": "scheduled", "r1": "scheduled", "r2": "completed", "r3": "completed"}
        )
    assert sorted(campaigns.dials()) == sorted(r[2:]), "the capped numbers were not dialled"
    for call_id, dialled in ((r[0], now - timedelta(hours=2)), (r[1], now - timedelta(hours=3))):
        state = await campaigns.call(call_id).state()
        assert state.attempt == 0 and state.next_attempt_at == dialled + timedelta(hours=24)
        assert "max_attempts_per_day: 1" in (state.reason or "")


async def test_cancel_lets_the_call_on_the_line_finish_and_ends_every_other(campaigns: Campaigns) -> None:
    cid = await campaigns.start(6, settings=CampaignSettings(max_concurrency=2))
    r = recipient_calls(cid, 6)
    dialled = await campaigns.until_dials(2)
    # The recipients in the order their calls reached the queue: two dialled, two waiting.
    r[:4] = [*dialled, *sorted(set(r[:4]) - set(dialled))]
    name = {call_id: f"r{recipient_calls(cid, 6).index(call_id)}" for call_id in r}
    await campaigns.waiting(r[2], r[3])
    on_the_line, ringing = campaigns.call(r[0]), campaigns.call(r[1])
    await on_the_line.event("call_start")

    answer = await cancel_campaign(campaigns.env.client, campaigns.integration, cid)
    assert answer.cancel_requested and answer.status is CampaignStatus.RUNNING
    # Calls not yet dialled end cancelled, pending recipients too; the two dialled calls go on.
    await campaigns.until_recipients(
        cid,
        {
            name[r[0]]: "in_progress",
            name[r[1]]: "dialing",
            **{name[c]: "cancelled" for c in r[2:]},
        },
    )
    for call_id in r[2:4]:
        state = await campaigns.call(call_id).until(lambda s: s.status is CallStatus.CANCELLED)
        assert not state.attempts  # never dialled
    assert campaigns.script.call_ids(cid) == {**{name[c]: c for c in r[:4]}, "r4": None, "r5": None}
    # The ringing call nobody answers gets no further attempt.
    await campaigns.no_answer(r[1])
    state = await ringing.until(lambda s: s.status is CallStatus.CANCELLED)
    assert state.attempt == 1
    # The call on the line ends; the campaign waits for its post-call.
    await campaigns.hang_up(r[0])
    await on_the_line.until(lambda s: s.status is CallStatus.WAITING_POSTCALL)
    await asyncio.sleep(0.3)
    assert await campaigns.running(cid)
    await on_the_line.transcription(45, f"conv-{r[0]}-1")

    assert await campaigns.outcome(cid) is CampaignStatus.CANCELLED
    finished = await on_the_line.state()
    assert finished.status is CallStatus.COMPLETED and finished.result is not None  # the postcall ran
    assert sorted(campaigns.dials()) == sorted(r[:2])
    assert campaigns.script.recipient_statuses(cid) == {
        name[r[0]]: "completed",
        **{name[c]: "cancelled" for c in r[1:]},
    }
    log = campaigns.script.log
    assert log.index(("call", r[0], "completed")) < log.index(("campaign", cid, "cancelled"))
    assert campaigns.script.campaign_status[cid] == "cancelled"
    queue = await campaigns.until_queue(lambda q: not q.waiters and not q.holders)
    assert not queue.paused_campaigns  # the queue forgets the campaign


async def test_at_end_at_the_recipients_not_dialled_expire(campaigns: Campaigns) -> None:
    campaigns.script.handling = handling(max_attempts=1)
    end_at = await campaigns.env.get_current_time() + timedelta(minutes=5)
    cid = await campaigns.start(5, settings=CampaignSettings(max_concurrency=1, end_at=end_at))
    r = recipient_calls(cid, 5)
    (first,) = await campaigns.until_dials(1)
    (second,) = set(r[:2]) - {first}
    await campaigns.waiting(second)
    await campaigns.answer(first)
    assert (await campaigns.until_dials(2))[1] == second
    await campaigns.no_answer(second)  # exhausted: one attempt only
    assert (await campaigns.until_dials(3))[2] == r[2]
    await campaigns.waiting(r[3])
    await campaigns.call(r[2]).event("call_start")  # on the line when end_at comes

    await campaigns.env.sleep(end_at - await campaigns.env.get_current_time() + timedelta(seconds=1))
    name = {first: "r0", second: "r1"} if first == r[0] else {first: "r1", second: "r0"}
    await campaigns.until_recipients(
        cid,
        {
            name[first]: "completed",
            name[second]: "exhausted",
            "r2": "in_progress",
            "r3": "expired",
            "r4": "expired",
        },
    )
    await campaigns.call(r[3]).until(lambda s: s.status is CallStatus.CANCELLED)
    assert await campaigns.running(cid)  # r2 still talks
    await campaigns.hang_up(r[2])
    await campaigns.call(r[2]).transcription(45, f"conv-{r[2]}-1")

    assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert campaigns.dials() == [first, second, r[2]]
    assert campaigns.script.recipient_statuses(cid) == {
        name[first]: "completed",
        name[second]: "exhausted",
        "r2": "completed",
        "r3": "expired",
        "r4": "expired",
    }
    assert [s.expired for s in campaigns.script.stops] == [True]
    assert campaigns.script.campaign_status[cid] == "finished"


async def test_a_retry_calls_again_only_the_recipients_it_made_pending(campaigns: Campaigns) -> None:
    campaigns.script.handling = handling(max_attempts=1)
    cid = await campaigns.start(4, settings=CampaignSettings(max_concurrency=2))
    first = recipient_calls(cid, 4)
    unanswered = {first[1], first[3]}
    async with campaigns.playing(lambda c: "no_answer" if c in unanswered else "answered"):
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert campaigns.script.recipient_statuses(cid) == {
        "r0": "completed",
        "r1": "exhausted",
        "r2": "completed",
        "r3": "exhausted",
    }

    assert campaigns.script.retry(cid) == 2  # as the gateway's `retry` does
    dialled = len(campaigns.dials())
    await restart_campaign(
        campaigns.env.client, campaigns.run(cid, settings=CampaignSettings(max_concurrency=2)), "test"
    )
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    second = recipient_calls(cid, 4, round_=1)
    assert sorted(campaigns.dials()[dialled:]) == sorted([second[1], second[3]])
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(4)}
    assert campaigns.script.call_ids(cid) == {
        "r0": first[0],
        "r1": second[1],
        "r2": first[2],
        "r3": second[3],
    }
    assert campaigns.script.recipient(cid, "r1")["attempts"] == 2  # its first call's attempt counts


async def test_recipients_appended_while_running_are_called_too(campaigns: Campaigns) -> None:
    cid = await campaigns.start(3, settings=CampaignSettings(max_concurrency=1))
    r = recipient_calls(cid, 6)
    (first,) = await campaigns.until_dials(1)
    await campaigns.answer(first)
    second = (await campaigns.until_dials(2))[1]
    assert {first, second} == set(r[:2])
    await campaigns.answer(second)
    assert (await campaigns.until_dials(3))[2] == r[2]

    async def asked() -> bool:
        return bool(campaigns.script.answers) and not campaigns.script.answers[-1].more

    await eventually(asked, bool, 10, lambda _: "the campaign never found its recipients all started")
    # r2 talks, nobody is pending: the gateway appends two and tells the campaign; one more comes
    # just as the campaign would finish.
    campaigns.script.add(cid, 2)
    await recipients_added(campaigns.env.client, campaigns.integration, cid)
    campaigns.script.append_on_finish.append((cid, 1))
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert Counter(campaigns.dials()) == dict.fromkeys(r, 1)
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(6)}
    log = campaigns.script.log
    assert log.index(("call", r[5], "completed")) < log.index(("campaign", cid, "finished"))


async def test_a_campaign_continued_as_new_calls_every_recipient_once(campaigns: Campaigns) -> None:
    cid = await campaigns.start(12, settings=CampaignSettings(max_concurrency=3), continue_after_events=40)
    handle = campaigns.handle(cid)
    first_run = (await handle.describe()).run_id
    r = recipient_calls(cid, 12)
    # Six calls played; the others wait on the line or in the queue while the run, its history
    # past the limit, continues as new (a run continues only between two changes).
    async with campaigns.playing(count=6):
        for call_id in (await campaigns.until_dials(6))[:6]:
            await campaigns.call(call_id).until(lambda s: s.status is CallStatus.COMPLETED)

    async def run_id() -> str:
        return (await handle.describe()).run_id

    await eventually(run_id, lambda run: run != first_run, 10, lambda _: "the run never continued as new")
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert Counter(campaigns.dials()) == dict.fromkeys(r, 1)  # each recipient called exactly once
    assert set(campaigns.script.started) == set(r)
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(12)}
    # The first run handed the calls in flight to the next.
    first = await campaigns.env.client.get_workflow_handle(handle.id, run_id=first_run).fetch_history()
    continued = first.events[-1]
    assert continued.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    (payload,) = continued.workflow_execution_continued_as_new_event_attributes.input.payloads
    carried = pydantic_data_converter.payload_converter.from_payload(payload, CampaignRun)
    assert carried.live and set(carried.live) <= set(r)
    assert carried.continue_after_events == 40


async def test_a_call_slow_to_queue_is_not_started_again_and_again(campaigns: Campaigns) -> None:
    # A recipient stays pending until its call writes its first status (after the call's CRM
    # lookup): meanwhile `start_calls` finds it pending and answers its call again (attached).
    cid = await campaigns.start(4, settings=CampaignSettings(max_concurrency=1))
    r = recipient_calls(cid, 4)
    campaigns.script.slow_first_record[r[2]] = 1.5
    (first,) = await campaigns.until_dials(1)
    await campaigns.answer(first)  # room for one more: r2's call starts, slow to queue

    async def started() -> list[str]:
        return campaigns.script.started

    await eventually(started, lambda s: r[2] in s, 10, lambda s: f"r2 never started: {s}")
    second = (await campaigns.until_dials(2))[1]
    await campaigns.answer(second)  # room again, while r2 is still pending
    await eventually(started, lambda s: r[3] in s, 10, lambda s: f"r3 never started: {s}")
    # Its call comes back only when a change woke the run (the other two calls' statuses), not
    # in a loop of start_calls until it queued (hundreds in those 1.5 s).
    assert Counter(campaigns.script.started)[r[2]] <= 4, Counter(campaigns.script.started)
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    assert Counter(campaigns.dials()) == dict.fromkeys(r, 1)
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(4)}


async def test_a_persons_call_takes_the_next_free_slot_before_queued_recipients(campaigns: Campaigns) -> None:
    campaigns.script.capacity = 2
    cid = await campaigns.start(6, settings=CampaignSettings(max_concurrency=2))
    r = recipient_calls(cid, 6)
    first = await campaigns.until_dials(2)
    queued = set(r[:4]) - set(first)
    await campaigns.waiting(*queued)
    person = await campaigns.person_call()
    await campaigns.waiting(*queued, person.call_id)
    await campaigns.answer(first[0])
    assert (await campaigns.until_dials(3))[2] == person.call_id  # before the two queued earlier
    await campaigns.answer(first[1])
    assert (await campaigns.until_dials(4))[3] in queued
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
        await person.until(lambda s: s.status is CallStatus.COMPLETED)
    assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(6)}


async def test_two_campaigns_take_turns_within_the_integrations_limit(campaigns: Campaigns) -> None:
    campaigns.script.capacity = 4
    blockers = [await campaigns.person_call() for _ in range(4)]
    await campaigns.until_dials(4)  # four single calls hold every slot while both campaigns queue
    tag = uuid.uuid4().hex[:6]
    shares = CampaignSettings(max_concurrency=3)
    a = await campaigns.start(6, campaign_id=f"cmp_a{tag}", settings=shares)
    b = await campaigns.start(6, campaign_id=f"cmp_b{tag}", settings=shares)
    await campaigns.waiting(*recipient_calls(a, 6), *recipient_calls(b, 6))

    on_the_line = [c.call_id for c in blockers]
    turns: list[str | None] = []
    while len(turns) < 12:
        dialled = len(campaigns.dials())
        assert dialled == 4 + len(turns)  # one dial per freed slot, never two
        await campaigns.answer(on_the_line.pop(0))  # the longest on the line hangs up
        new = (await campaigns.until_dials(dialled + 1))[dialled]
        on_the_line.append(new)
        turns.append(campaigns.campaign_of(new))
        queue = await campaigns.queue()
        held = [queue.holder_campaigns.get(h) for h in queue.holders]
        assert len(held) <= 4 and held.count(a) <= 3 and held.count(b) <= 3, queue
    assert turns == [a, b] * 6  # the campaigns take turns, first come first served within each
    async with campaigns.playing():
        assert await campaigns.outcome(a) is CampaignStatus.FINISHED
        assert await campaigns.outcome(b) is CampaignStatus.FINISHED
    assert campaigns.script.most_on_the_line == 4  # never more than the limit dialing or talking
    for cid in (a, b):
        assert campaigns.script.recipient_statuses(cid) == {f"r{i}": "completed" for i in range(6)}


# Recorded histories ------------------------------------------------------------------------------
# A change to `Campaign` that alters the commands a running campaign already made would strand it:
# a recorded run (paused, resumed, a retry round, every call answered) must replay against the
# current code. Re-record on purpose with `HAPP_RECORD_HISTORIES=1`.

HISTORIES = Path(__file__).parent.parent / "histories"


def campaign_replayer() -> Replayer:
    return Replayer(
        workflows=[Campaign], data_converter=pydantic_data_converter, workflow_runner=workflow_runner()
    )


async def test_a_fresh_campaign_history_replays(campaigns: Campaigns) -> None:
    cid = await campaigns.start(4, settings=CampaignSettings(max_concurrency=1))
    await campaigns.until_dials(1)
    await pause_campaign(campaigns.env.client, campaigns.integration, cid)
    await resume_campaign(campaigns.env.client, campaigns.integration, cid)
    async with campaigns.playing():
        assert await campaigns.outcome(cid) is CampaignStatus.FINISHED
    history = await campaigns.handle(cid).fetch_history()
    if os.environ.get("HAPP_RECORD_HISTORIES"):
        (HISTORIES / "campaign_paused_resumed.json").write_text(history.to_json())
    await campaign_replayer().replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("campaign_*.json")), ids=lambda p: p.stem)
async def test_recorded_campaign_history_replays(path: Path) -> None:
    await campaign_replayer().replay_workflow(WorkflowHistory.from_json("recorded", path.read_text()))


def test_a_campaign_history_is_recorded() -> None:
    assert (HISTORIES / "campaign_paused_resumed.json").exists()
