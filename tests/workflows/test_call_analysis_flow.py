"""The call's analysis step on the time-skipping server, with the real `analysis.analyze` activity
talking to the simulated model: what each of its answers makes of the call."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.analysis import AnalysisActivities
from control.client import call_state, send_call_event, send_postcall, start_call
from happ_integ import CallFlow, Integration, registry
from happ_integ.calls.contracts import CallRequest
from happ_integ.calls.models import CallEvent, CallState, CallStatus, PostcallEvent, PostcallInfo
from happ_integ.embedded.process import free_port
from happ_integ.keys import generate_key
from happ_integ.logs import CaptureSink
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from happ_integ.temporal import queue_workflow_id
from simulator.llm import LlmState, create_llm_app
from tests.e2e.conftest import serve
from tests.workflows.fakes import CallScript, FakeHandlerRun
from tests.workflows.harness import lookup, postcall
from worker import workflow_runner
from workflows import CallQueue, OutboundCall

TRANSCRIPT = [{"role": "user", "message": "Так, цікаво, хочу на вебінар.", "time_in_call_secs": 2}]


@pytest.fixture(scope="module")
async def llm() -> AsyncIterator[tuple[LlmState, str]]:
    state = LlmState()
    server, task = await serve(create_llm_app(state), free_port())
    yield state, f"http://127.0.0.1:{server.config.port}/v1"
    server.should_exit = True
    await task


async def run_call(
    env: WorkflowEnvironment, pg_url: str, llm: tuple[LlmState, str], with_model: bool
) -> CallState:
    state, base = llm
    name = f"a{uuid.uuid4().hex[:10]}"
    integration = Integration(
        name, handlers=[lookup, postcall], call_flow=CallFlow(lookup="crm-lookup", postcall="crm-postcall")
    )
    model: dict[str, Any] = {
        "HAPP_LLM_BASE_URL": base,
        "HAPP_LLM_MODEL": state.model,
        "HAPP_LLM_API_KEY": state.api_key,
    }
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=generate_key(), **(model if with_model else {}))
    resources: Resources = await open_resources(settings, {name: integration})
    await prepare_integration(resources, integration)
    document = await resources.calls(name).store_document(
        "transcript", key="conv-1", body={"transcript": TRANSCRIPT}
    )
    registry.install({name: integration}, CaptureSink(), settings)
    script = CallScript(env.client)
    activities = [a for a in script.activities() if a.__name__ != "analyze"]
    worker = Worker(
        env.client,
        task_queue=f"happ-{name}",
        workflows=[OutboundCall, CallQueue, FakeHandlerRun],
        activities=[*activities, AnalysisActivities(resources).analyze],
        workflow_runner=workflow_runner(),
    )
    call_id = f"c_{uuid.uuid4().hex[:12]}"
    try:
        async with worker:
            handle = await start_call(
                env.client, CallRequest(integration=name, call_id=call_id, phone_number="+380994829573")
            )
            while (await call_state(env.client, name, call_id)).status is not CallStatus.DIALING:
                await asyncio.sleep(0.05)
            await send_call_event(env.client, name, call_id, CallEvent(event_type="call_start"))
            await send_call_event(env.client, name, call_id, CallEvent(event_type="call_end", duration=40))
            info = PostcallInfo(
                conversation_id="conv-1", document_id=document, duration_seconds=40, call_successful="failure"
            )
            await send_postcall(
                env.client, name, call_id, PostcallEvent(type="post_call_transcription", info=info)
            )
            result = await asyncio.wait_for(handle.result(), 60)
            with contextlib.suppress(RPCError):
                await env.client.get_workflow_handle(queue_workflow_id(name)).terminate("the test is over")
            return result
    finally:
        await close_resources(resources)


@pytest.mark.parametrize(
    ("invalid", "with_model", "source", "outcome", "asks"),
    [
        (0, True, "llm", "interested", 1),  # a valid answer
        (1, True, "llm", "interested", 2),  # an invalid one, then a valid one
        (
            2,
            True,
            "elevenlabs",
            "not_interested",
            2,
        ),  # invalid twice: ElevenLabs' own (call_successful failure)
        (0, False, "elevenlabs", "not_interested", 0),  # no model configured
    ],
)
async def test_the_analysis_the_postcall_handler_gets(
    time_skipping_env: WorkflowEnvironment,
    pg_url: str,
    llm: tuple[LlmState, str],
    invalid: int,
    with_model: bool,
    source: str,
    outcome: str,
    asks: int,
) -> None:
    state, _ = llm
    if invalid:
        state.invalid_next(invalid, "no_outcome")
    asked = len(state.requests)
    call = await run_call(time_skipping_env, pg_url, llm, with_model)
    assert call.status is CallStatus.COMPLETED
    assert call.analysis is not None and (call.analysis.source, call.analysis.outcome) == (source, outcome)
    assert call.result["payload"]["analysis"]["outcome"] == outcome  # type: ignore[index]
    assert len(state.requests) - asked == asks
