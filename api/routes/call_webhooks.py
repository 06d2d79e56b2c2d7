"""The call flow's four standard webhooks, served for every integration with a `call_flow`.

- `POST /webhook/call-originate` (bearer WEBHOOK_TOKEN): start one call or a batch;
- `POST /webhook/call-events` (sender token): the voice assistant's call_start / call_end;
- `POST /webhook/agent-init` (sender token): the agent's dynamic variables before it speaks
  (inline, fast); without a valid token only the date and time;
- `POST /webhook/agent-postcall` (ElevenLabs signature): transcript, audio, initiation failure.

The sender token is the integration's `SENDER_TOKEN`, else its `WEBHOOK_TOKEN`, as a bearer
header or a `token` query parameter (`api.auth`). Each answer comes after Temporal accepted the
start or update (503 with Retry-After when it cannot be reached, so the sender retries); a
redelivered event is answered like the first.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth import check_sender, sender_auth, webhook_auth
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
from api.openapi import ELEVENLABS_SCHEME, SENDER_SECURITY, WEBHOOK_TOKEN_SCHEME
from api.responses import error_responses
from api.runtime import ApiRuntime
from control.client import OUR_CALL_ID, originate_call, send_call_event, send_postcall
from happ_integ.calls.clock import spoken_date, spoken_zone
from happ_integ.calls.config import DEFAULT_TIMEZONE, CallHandling, CallingHours
from happ_integ.calls.models import CallEventAnswer, CallStatus, LookupPayload, LookupResult
from happ_integ.calls.phones import normalize_phone
from happ_integ.campaigns.models import CampaignSettings
from happ_integ.errors import (
    HappError,
    NotFound,
    SecretMissing,
    Unauthorized,
    ValidationFailed,
    WorkflowFinished,
)
from happ_integ.handler import BearerAuth, ElevenLabsAuth
from happ_integ.inline import run_inline
from happ_integ.integration import Integration
from happ_integ.logs import HandlerLogger
from happ_integ.stores.calls import UNMATCHED_PREFIX

# The agent waits for agent-init before it speaks: past this, whatever was not read yet (a silent
# database, a slow CRM) is left out and the agent still gets the date and time.
AGENT_INIT_DEADLINE_SECONDS = 1.2
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
        handling = await runtime.resources.call_handling(name)
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
        responses=error_responses(400, 401, 404, 409, 413, 422, 503),
        openapi_extra={"security": SENDER_SECURITY},
        dependencies=[Depends(sender_auth(integration))],
    )
    async def call_events(body: CallEventsPayload, runtime: RuntimeDep) -> JSONResponse:
        """call_start / call_end from the voice assistant; the answer is the call's own decision.
        An event whose provider call id is not the one the call's attempt got is refused (409)."""
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

    @router.post(
        "/webhook/agent-init",
        response_model=AgentInitResponse,
        responses=error_responses(413, 422),
        openapi_extra={"security": SENDER_SECURITY},
    )
    async def agent_init(body: AgentInitPayload, runtime: RuntimeDep, request: Request) -> AgentInitResponse:
        """The agent's dynamic variables: date and time, the lookup's variables, and `call_id`.
        A request without the sender token gets the date and time only (the agent still speaks)."""
        timezone = DEFAULT_TIMEZONE
        variables: dict[str, Any] = {}
        log = _log(runtime, name, "agent-init", request)
        try:
            async with asyncio.timeout(AGENT_INIT_DEADLINE_SECONDS):
                try:
                    await check_sender(request, runtime, integration)
                except (Unauthorized, SecretMissing) as exc:
                    # Nothing of the CRM, and no call id, for a caller we cannot tell from a stranger.
                    request.state.auth_refused = "sender"
                    log.warning(
                        f"agent-init without a valid sender token: date and time only ({exc.message})"
                    )
                    authenticated = False
                else:
                    authenticated = True
                handling = await runtime.resources.call_handling(name)
                timezone = handling.timezone
                if authenticated:
                    variables, phone, hours = await _agent_variables(runtime, integration, body, handling)
                    # With calling hours in the callee's zone, the agent tells the callee's date
                    # and time when the number (or their `timezone` variable) names one zone.
                    timezone = spoken_zone(hours, phone, variables) or timezone
        except Exception as exc:  # the agent is waiting: it gets the date and time, whatever failed
            log.error("agent-init answers without the CRM", exc)
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
                f"{UNMATCHED_PREFIX}{body.type}"[:64],
                key=key,
                body=_without_audio(body),
                conversation_id=conversation_id,
            )
            # A fast failure (SIP 486) can come before the outbound-call answer that names its
            # conversation has reached the call. The originate activity writes that id, then looks
            # for webhooks stored under it; looking again here, after storing, means one of the two
            # sees the other, whichever order they ran in (the Update's id makes both one).
            row = await calls.by_conversation(conversation_id) if conversation_id else None
            if row is None:
                reply = PostcallReply(message="verified, but it matches no call: stored", stored=stored)
                return JSONResponse(reply.model_dump(mode="json"), 202)
            await calls.claim_document(stored, row["call_id"])
        event = await calls.store_postcall(
            row["call_id"], body.type, body.data, key=key, conversation_id=conversation_id
        )
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
) -> tuple[dict[str, Any], str | None, CallingHours | None]:
    """The agent's variables, the callee's number (E.164) when it is known, and the calling hours
    the call reads its window by (its campaign's when the campaign overrides them)."""
    calls = runtime.resources.calls(integration.name)
    raw = body.phone_number or body.called_number
    phone = normalize_phone(raw, handling.default_region) if raw else None
    row = await calls.get(body.call_id) if body.call_id else None
    if row is None and phone is not None:
        row = await calls.in_flight_by_phone(phone)
    hours = handling.calling_hours
    if row is not None:
        phone = row["phone"]
        hours = (await _call_handling(runtime, integration.name, row, handling)).calling_hours
    if row is not None and row.get("variables") is not None:
        # A call in flight: what its lookup found, with no new CRM request.
        return {**row["variables"], "call_id": row["call_id"]}, phone, hours
    flow = integration.call_flow
    if phone is None or flow is None or flow.lookup is None:
        return ({"call_id": row["call_id"]} if row else {}), phone, hours
    definition = integration.handler(flow.lookup)
    payload = LookupPayload(call_id=row["call_id"] if row else None, phone_number=phone)
    found = await run_inline(
        runtime.resources, integration.name, definition, payload, uuid.uuid4().hex, runtime.sink
    )
    variables: dict[str, Any] = dict(LookupResult.model_validate(found.model_dump()).variables)
    if row is not None:
        variables["call_id"] = row["call_id"]
    return variables, phone, hours


async def _call_handling(
    runtime: ApiRuntime, integration: str, row: dict[str, Any], handling: CallHandling
) -> CallHandling:
    """The `call_handling` a call runs by: the integration's, with its campaign's overrides (as
    the call itself applies them) when it belongs to one: one read by key."""
    campaign_id = (row.get("metadata") or {}).get("campaign_id")
    campaign = (
        await runtime.resources.campaigns(integration).get(campaign_id)
        if isinstance(campaign_id, str)
        else None
    )
    if campaign is None:
        return handling
    return CampaignSettings.model_validate(campaign["settings"]).handling(handling)


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
        phone = normalize_phone(raw, (await runtime.resources.call_handling(integration)).default_region)
    except ValidationFailed:
        return None
    if body.type == "post_call_transcription":
        return await calls.waiting_postcall_by_phone(phone) or await calls.in_flight_by_phone(phone)
    return await calls.in_flight_by_phone(phone)


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
