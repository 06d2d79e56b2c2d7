"""The call flow's four standard webhooks, served for every integration with a `call_flow`.

- `POST /webhook/call-originate` (bearer WEBHOOK_TOKEN): start one call or a batch;
- `POST /webhook/call-events`: the voice assistant's call_start / call_end;
- `POST /webhook/agent-init`: the agent's dynamic variables before it speaks (inline, fast);
- `POST /webhook/agent-postcall` (ElevenLabs signature): transcript, audio, initiation failure.

Each answer comes after Temporal accepted the start or update (503 with Retry-After when it
cannot be reached, so the sender retries); a redelivered event is answered like the first.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth import webhook_auth
from api.body import GuardedRoute
from api.call_models import (
    AgentInitPayload,
    AgentInitResponse,
    BatchOriginateResult,
    CallEventsPayload,
    OriginateRequest,
    OriginateResult,
    PostcallReply,
    PostcallWebhook,
)
from api.deps import RuntimeDep
from api.openapi import ELEVENLABS_SCHEME, WEBHOOK_TOKEN_SCHEME
from api.responses import error_responses
from api.runtime import ApiRuntime
from happ_integ.calls.clock import spoken_date
from happ_integ.calls.config import DEFAULT_TIMEZONE, CallHandling
from happ_integ.calls.models import (
    CallEventAnswer,
    CallStatus,
    LookupPayload,
    LookupResult,
    PostcallEvent,
    PostcallInfo,
)
from happ_integ.calls.phones import normalize_phone
from happ_integ.clients.elevenlabs import Conversation
from happ_integ.errors import HappError, NotFound, ValidationFailed, WorkflowFinished
from happ_integ.handler import BearerAuth, ElevenLabsAuth
from happ_integ.inline import run_inline
from happ_integ.integration import Integration
from happ_integ.logs import HandlerLogger
from workflows.control import OUR_CALL_ID, originate_call, send_call_event, send_postcall

AGENT_INIT_DEADLINE_SECONDS = 2.5
BATCH_CONCURRENCY = 16


def call_webhooks_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Calls"], route_class=GuardedRoute)
    name = integration.name
    flow = integration.call_flow
    assert flow is not None

    @router.post(
        "/webhook/call-originate",
        response_model=OriginateResult | BatchOriginateResult,
        responses=error_responses(400, 401, 413, 422, 503),
        openapi_extra={"security": [{WEBHOOK_TOKEN_SCHEME: []}]},
        dependencies=[Depends(webhook_auth(name, BearerAuth()))],
    )
    async def call_originate(body: OriginateRequest, runtime: RuntimeDep) -> Any:
        """Start an outbound call, or a batch; a number with a call in flight gets that call's id."""
        client = await runtime.temporal()
        handling = await _handling(runtime, name)
        if body.phone_number is not None:
            return await _originate(runtime, client, name, body.phone_number, body.metadata, handling)
        semaphore = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def one(phone: str, metadata: dict[str, Any]) -> OriginateResult:
            async with semaphore:
                try:
                    return await _originate(runtime, client, name, phone, metadata, handling)
                except HappError as exc:
                    return OriginateResult(success=False, error=exc.message)

        results = await asyncio.gather(*(one(c.phone_number, c.metadata) for c in body.calls or []))
        return BatchOriginateResult(success=all(r.success for r in results), calls=list(results))

    @router.post(
        "/webhook/call-events",
        response_model=CallEventAnswer,
        response_model_by_alias=True,
        responses=error_responses(400, 404, 413, 422, 503),
    )
    async def call_events(body: CallEventsPayload, runtime: RuntimeDep) -> JSONResponse:
        """call_start / call_end from the voice assistant; the answer is the call's own decision."""
        calls = runtime.resources.calls(name)
        row: dict[str, Any] | None = None
        if OUR_CALL_ID.fullmatch(body.callId):
            # Our own id, as originate gave it: it names the call's workflow, so the event goes
            # straight there and the row is read only if the workflow is gone.
            call_id = body.callId
        else:
            row = await calls.get(body.callId) or await calls.by_provider_id(body.callId)
            if row is None:
                raise NotFound(f"no call {body.callId!r}")
            call_id = row["call_id"]
        provider = body.callId if body.callId != call_id else None
        try:
            answer = await send_call_event(await runtime.temporal(), name, call_id, body.as_event(provider))
        except (NotFound, WorkflowFinished):
            # The call has ended: this event is late or repeated, and changes nothing.
            row = await calls.get(call_id) or row
            if row is None:
                raise NotFound(f"no call {body.callId!r}") from None
            answer = CallEventAnswer(
                status=CallStatus(row["status"]), message="the call has ended: nothing changed"
            )
        return JSONResponse(answer.model_dump(mode="json", by_alias=True))

    @router.post("/webhook/agent-init", response_model=AgentInitResponse, responses=error_responses(413, 422))
    async def agent_init(body: AgentInitPayload, runtime: RuntimeDep, request: Request) -> AgentInitResponse:
        """The agent's dynamic variables: date and time, the lookup's variables, and `call_id`."""
        timezone = DEFAULT_TIMEZONE
        variables: dict[str, Any] = {}
        try:
            async with asyncio.timeout(AGENT_INIT_DEADLINE_SECONDS):
                handling = await _handling(runtime, name)
                timezone = handling.timezone
                variables = await _agent_variables(runtime, integration, body, handling)
        except Exception as exc:  # the agent is waiting: it gets the date and time, whatever failed
            _log(runtime, name, "agent-init", request).error("agent-init answers without the CRM", exc)
        return AgentInitResponse(dynamic_variables={**variables, **spoken_date(datetime.now(UTC), timezone)})

    @router.post(
        "/webhook/agent-postcall",
        response_model=PostcallReply,
        responses={
            202: {"description": "Verified, but it matches no call: stored", "model": PostcallReply},
            **error_responses(400, 401, 413, 422, 503),
        },
        openapi_extra={"security": [{ELEVENLABS_SCHEME: []}]},
        dependencies=[Depends(webhook_auth(name, ElevenLabsAuth()))],
    )
    async def agent_postcall(body: PostcallWebhook, runtime: RuntimeDep) -> JSONResponse:
        """ElevenLabs' post-call webhooks: the transcript, the audio, or why a call did not start."""
        data = body.data
        conversation_id = str(data.get("conversation_id") or "")[:128] or None
        calls = runtime.resources.calls(name)
        row = await _postcall_call(runtime, name, body, conversation_id)
        key = conversation_id or uuid.uuid4().hex
        if row is None:
            stored = await calls.store_document(
                f"unmatched_{body.type}"[:64],
                key=key,
                body=_without_audio(body),
                conversation_id=conversation_id,
            )
            reply = PostcallReply(message="verified, but it matches no call: stored", stored=stored)
            return JSONResponse(reply.model_dump(mode="json"), 202)
        event = await _postcall_event(runtime, name, row["call_id"], body, key, conversation_id)
        if event is None:
            reply = PostcallReply(status=row["status"], message=f"{body.type}: nothing to do")
            return JSONResponse(reply.model_dump(mode="json"))
        try:
            answer = await send_postcall(await runtime.temporal(), name, row["call_id"], event)
            reply = PostcallReply(status=answer.status.value, message=answer.message)
        except (NotFound, WorkflowFinished):
            # The call has ended (e.g. the audio comes after the transcription was handled).
            ended = await calls.get(row["call_id"]) or row
            reply = PostcallReply(status=ended["status"], message="the call has ended: nothing changed")
        return JSONResponse(reply.model_dump(mode="json"))

    return router


async def _handling(runtime: ApiRuntime, integration: str) -> CallHandling:
    handling = await runtime.resources.config(integration).get("call_handling", CallHandling)
    assert handling is not None
    return handling


async def _originate(
    runtime: ApiRuntime,
    client: Any,
    integration: str,
    raw_phone: str,
    metadata: dict[str, Any],
    handling: CallHandling,
) -> OriginateResult:
    call_id, created = await originate_call(
        runtime.resources, client, integration, raw_phone, metadata, handling
    )
    return OriginateResult(success=True, callId=call_id, existing=not created)


async def _agent_variables(
    runtime: ApiRuntime, integration: Integration, body: AgentInitPayload, handling: CallHandling
) -> dict[str, Any]:
    calls = runtime.resources.calls(integration.name)
    raw = body.phone_number or body.called_number
    phone = normalize_phone(raw, handling.default_region) if raw else None
    row = await calls.get(body.call_id) if body.call_id else None
    if row is None and phone is not None:
        row = await calls.in_flight_by_phone(phone)
    if row is not None and row.get("variables") is not None:
        # A call in flight: what its lookup found, with no new CRM request.
        return {**row["variables"], "call_id": row["call_id"]}
    flow = integration.call_flow
    if phone is None or flow is None or flow.lookup is None:
        return {"call_id": row["call_id"]} if row else {}
    definition = integration.handler(flow.lookup)
    payload = LookupPayload(call_id=row["call_id"] if row else None, phone_number=phone)
    found = await run_inline(
        runtime.resources, integration.name, definition, payload, uuid.uuid4().hex, runtime.sink
    )
    variables: dict[str, Any] = dict(LookupResult.model_validate(found.model_dump()).variables)
    if row is not None:
        variables["call_id"] = row["call_id"]
    return variables


async def _postcall_call(
    runtime: ApiRuntime, integration: str, body: PostcallWebhook, conversation_id: str | None
) -> dict[str, Any] | None:
    """The call a post-call webhook is about: by our `call_id` dynamic variable, else by the
    conversation id call-events reported, else by the number's call waiting for its post-call."""
    calls = runtime.resources.calls(integration)
    variables = _dynamic_variables(body.data)
    call_id = variables.get("call_id")
    if isinstance(call_id, str) and call_id and (row := await calls.get(call_id[:128])):
        return row
    if conversation_id and (row := await calls.by_conversation(conversation_id)):
        return row
    raw = variables.get("phone_number") or variables.get("system__called_number")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        phone = normalize_phone(raw, (await _handling(runtime, integration)).default_region)
    except ValidationFailed:
        return None
    if body.type == "post_call_transcription":
        return await calls.waiting_postcall_by_phone(phone) or await calls.in_flight_by_phone(phone)
    return await calls.in_flight_by_phone(phone)


async def _postcall_event(
    runtime: ApiRuntime,
    integration: str,
    call_id: str,
    body: PostcallWebhook,
    key: str,
    conversation_id: str | None,
) -> PostcallEvent | None:
    """Store what the webhook carries in PostgreSQL; the workflow gets its summary and the ids."""
    calls = runtime.resources.calls(integration)
    if body.type == "post_call_audio":
        try:
            audio = base64.b64decode(str(body.data.get("full_audio") or ""), validate=True)
        except (binascii.Error, ValueError):
            raise ValidationFailed("data.full_audio is not base64", field="data.full_audio") from None
        document = await calls.store_document(
            "audio", key=key, data=audio, call_id=call_id, conversation_id=conversation_id
        )
        return PostcallEvent(
            type="post_call_audio",
            audio_document_id=document,
            info=PostcallInfo(conversation_id=conversation_id),
        )
    if body.type == "call_initiation_failure":
        reason = str(body.data.get("failure_reason") or "")[:64] or None
        return PostcallEvent(
            type="call_initiation_failure",
            failure_reason=reason,
            info=PostcallInfo(conversation_id=conversation_id),
        )
    if body.type != "post_call_transcription":
        return None
    conversation = Conversation.from_webhook_data(body.data)
    document = await calls.store_document(
        "transcript", key=key, body=body.data, call_id=call_id, conversation_id=conversation_id
    )
    info = PostcallInfo(
        conversation_id=conversation_id,
        document_id=document,
        duration_seconds=conversation.duration_seconds,
        call_successful=conversation.call_successful,
        transcript_summary=conversation.transcript_summary,
        data_collection_results=_collected_values(conversation.data_collection_results),
    )
    return PostcallEvent(type="post_call_transcription", info=info)


def _collected_values(results: dict[str, Any]) -> dict[str, Any]:
    """`{"webinar": {"value": "yes", "rationale": …}}` → `{"webinar": "yes"}`: the values travel, the rest stays stored."""
    return {k: v.get("value") if isinstance(v, dict) else v for k, v in results.items()}


def _without_audio(body: PostcallWebhook) -> dict[str, Any]:
    data = {k: v for k, v in body.data.items() if k != "full_audio"}
    return {"type": body.type, "event_timestamp": body.event_timestamp, "data": data}


def _log(runtime: ApiRuntime, integration: str, handler: str, request: Request) -> HandlerLogger:
    trace_id = getattr(request.state, "trace_id", None) or uuid.uuid4().hex
    return HandlerLogger(runtime.sink, integration=integration, handler=handler, trace_id=trace_id)


def _dynamic_variables(data: dict[str, Any]) -> dict[str, Any]:
    initiation = data.get("conversation_initiation_client_data")
    variables = initiation.get("dynamic_variables") if isinstance(initiation, dict) else None
    return variables if isinstance(variables, dict) else {}
