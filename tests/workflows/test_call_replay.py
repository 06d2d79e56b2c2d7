"""Determinism of the call workflows: recorded `OutboundCall` histories replay against the current
code, and a change that alters the commands a running call already made is caught here, before a
deploy strands the calls in flight. A deliberate change to the workflow goes behind
`workflow.patched(...)` (see the README's "Changing a workflow"); re-record on purpose with
`HAPP_RECORD_HISTORIES=1 make test PYTEST_ARGS=tests/workflows/test_call_replay.py`.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from happ_integ import registry
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.calls.contracts import CallRequest
from happ_integ.calls.models import CallAnalysis, CallState, CallStatus, PostcallInfo
from happ_integ.logs import CaptureSink
from happ_integ.settings import Settings
from tests.workflows.harness import Call, call_flow_integration, calls_fixture, handling
from worker import workflow_runner
from workflows import CallQueue, HandlerRun, OutboundCall

HISTORIES = Path(__file__).parent.parent / "histories"
RECORD = bool(os.environ.get("HAPP_RECORD_HISTORIES"))


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [OutboundCall, CallQueue, HandlerRun],
        data_converter=pydantic_data_converter,
        workflow_runner=workflow_runner(),
    )


async def keep(call: Call, name: str) -> WorkflowHistory:
    history = await call.handle.fetch_history()
    if RECORD:
        (HISTORIES / f"outbound_call_{name}.json").write_text(history.to_json())
    return history


async def answered(call: Call, duration: float = 45, conversation: str = "conv-1") -> CallState:
    await call.event("call_start", conversation_id=conversation)
    await call.event("call_end", duration)
    await call.transcription(duration, conversation)
    return await call.result()


NAME = "callreplay"  # the recorded histories' integration, served again when they replay


@pytest.fixture
async def replay_calls(time_skipping_env: WorkflowEnvironment) -> AsyncIterator[Callable[..., object]]:
    async for start in calls_fixture(time_skipping_env, NAME):
        yield start


@pytest.fixture(autouse=True)
def served() -> None:
    registry.install({NAME: call_flow_integration(NAME)}, CaptureSink(), Settings())


async def test_fresh_call_histories_replay(
    replay_calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    start = replay_calls
    histories = []
    normal: Call = await start()  # type: ignore[operator]
    normal.script.analysis = CallAnalysis(outcome="interested", summary="Так", source="llm")
    await normal.dialing(1)
    await answered(normal)
    histories.append(await keep(normal, "answered"))

    retried: Call = await start(handling(retry_delays_seconds=[60], max_attempts=3))  # type: ignore[operator]
    await retried.dialing(1)
    await retried.event("call_end", 0, provider_status="busy")
    await retried.until(lambda s: s.status.value == "scheduled")
    await retried.env.sleep(timedelta(seconds=61))
    await retried.dialing(2)
    await answered(retried, 30, "conv-2")
    histories.append(await keep(retried, "busy_then_answered"))

    recovered: Call = await start(handling(postcall_timeout_seconds=120))  # type: ignore[operator]
    recovered.script.conversation = PostcallInfo(conversation_id="conv-9", duration_seconds=50, source="api")
    await recovered.dialing(1)
    await recovered.event("call_start", conversation_id="conv-9")
    await recovered.event("call_end", 50)
    await recovered.result()
    histories.append(await keep(recovered, "postcall_from_the_api"))

    # Dialled by ElevenLabs, no webhook: its status read after the ring timeout, the call followed
    # on the line until its conversation is done (named timers, cancelled when their wait ends).
    followed: Call = await start(handling(provider="elevenlabs_sip"))  # type: ignore[operator]
    followed.script.conversation, followed.script.live_statuses = None, ["in-progress"]
    await followed.dialing(1)
    await followed.env.sleep(timedelta(seconds=61))
    await followed.until(lambda s: s.status is CallStatus.IN_PROGRESS)
    followed.script.conversation = PostcallInfo(
        conversation_id="conv-el-1", duration_seconds=42, call_successful="success", source="api"
    )
    assert (await followed.result()).status is CallStatus.COMPLETED
    histories.append(await keep(followed, "elevenlabs_followed"))

    # Held back by contact_policy's daily cap (no attempt spent), then dialled when it allows.
    now = await time_skipping_env.get_current_time()
    capped: Call = await start(  # type: ignore[operator]
        handling(),
        contact_policy=ContactPolicy(max_attempts_per_day=1, min_minutes_between_attempts=0),
        dialled_before={"+380994829573": [now - timedelta(hours=23)]},
    )
    await capped.until(lambda s: s.status is CallStatus.SCHEDULED and s.reason is not None)
    await capped.env.sleep(timedelta(hours=1, seconds=1))
    await capped.dialing(1)
    await answered(capped)
    histories.append(await keep(capped, "capped_then_dialled"))

    # Reached a voicemail, dialled again after the voicemail rule's delay, then answered.
    rules = handling(retry_delays_seconds={"voicemail": [600], "default": [60]}, max_attempts=3)
    roomy = ContactPolicy(max_attempts_per_day=50, min_minutes_between_attempts=0)  # no cap in the way
    voicemail: Call = await start(rules, contact_policy=roomy, dialled_before={})  # type: ignore[operator]
    voicemail.script.analysis = CallAnalysis(outcome="voicemail", summary="Автовідповідач", source="llm")
    await voicemail.dialing(1)
    await voicemail.event("call_start", conversation_id="conv-vm")
    await voicemail.event("call_end", 20)
    await voicemail.transcription(20, "conv-vm")
    await voicemail.until(lambda s: s.status is CallStatus.SCHEDULED)
    voicemail.script.analysis = CallAnalysis(outcome="interested", summary="Так", source="llm")
    await voicemail.env.sleep(timedelta(seconds=601))
    await voicemail.dialing(2)
    await answered(voicemail, 30, "conv-vm-2")
    histories.append(await keep(voicemail, "voicemail_then_answered"))

    for history in histories:
        await replayer().replay_workflow(history)


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("outbound_call_*.json")), ids=lambda p: p.stem)
async def test_recorded_call_history_replays(path: Path) -> None:
    await replayer().replay_workflow(WorkflowHistory.from_json("recorded", path.read_text()))


def test_call_histories_are_recorded() -> None:
    names = {p.stem for p in HISTORIES.glob("outbound_call_*.json")}
    assert {
        "outbound_call_answered",
        "outbound_call_busy_then_answered",
        "outbound_call_postcall_from_the_api",
        "outbound_call_elevenlabs_followed",
        "outbound_call_capped_then_dialled",
        "outbound_call_voicemail_then_answered",
    } <= names


@workflow.defn(name="OutboundCall")
class ChangedOutboundCall(OutboundCall):
    """The call with one more status write before the first attempt: not replay-compatible."""

    @workflow.init
    def __init__(self, request: CallRequest) -> None:
        super().__init__(request)

    @workflow.run
    async def run(self, request: CallRequest) -> CallState:
        return await super().run(request)

    async def _attempts(self) -> bool:
        await self._record.status(self._state.status)
        return await super()._attempts()


async def test_a_change_to_the_commands_is_caught_by_the_replay() -> None:
    history = WorkflowHistory.from_json("recorded", (HISTORIES / "outbound_call_answered.json").read_text())
    with pytest.raises(workflow.NondeterminismError):
        await replayer(ChangedOutboundCall, CallQueue, HandlerRun).replay_workflow(history)
