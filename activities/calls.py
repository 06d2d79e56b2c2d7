"""The activities of the call workflows, bound to this process's resources and Temporal client.

    calls = CallActivities(resources, client, control)   # control: a happ_integ.calls.contracts.CallControl
    Worker(..., activities=[calls.begin, calls.record, calls.originate, ...])
    await workflow.execute_activity_method(CallActivities.originate, OriginateCall(...), ...)

Secrets are read here, inside the activity (`SAAS_AUTH_TOKEN`, `ELEVENLABS_API_KEY` …), so no
value ever reaches workflow history. Each activity takes one input model.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from happ_integ import registry
from happ_integ.calls.clock import ZonesUsed, callee_zones
from happ_integ.calls.config import CallHandling
from happ_integ.calls.contracts import (
    CallBegin,
    CallControl,
    CallFlowHandlers,
    CallRecord,
    CallRequest,
    ConversationRequest,
    ConversationStatus,
    DialCheck,
    DialPermit,
    OriginateCall,
    Originated,
    QueueRef,
    WorkflowIds,
)
from happ_integ.calls.models import PostcallInfo
from happ_integ.clients.elevenlabs import ElevenLabsApi
from happ_integ.clients.happ_voice import HappVoiceApi
from happ_integ.durable import activity_failures
from happ_integ.errors import HappError, NotFound, UpstreamRejected
from happ_integ.ops import Resources
from happ_integ.ops.secrets import SecretResolver
from happ_integ.stores.writes import WriteLedger
from happ_integ.temporal import call_workflow_id


def call_zones(handling: CallHandling, req: CallRequest) -> ZonesUsed:
    """The zones the call's window is read in: its campaign's calling hours when it has them, the
    recipient's own `timezone` variable over the number's zones (an unknown zone name is ignored)."""
    hours = handling.with_overrides(req.handling_overrides).calling_hours
    return callee_zones(hours, req.phone_number, req.variables)


def registered_handlers(integration: str) -> CallFlowHandlers:
    """The handler names of the integration's `call_flow`, from this process's registry."""
    flow = registry.integration(integration).call_flow
    return CallFlowHandlers(lookup=flow.lookup, postcall=flow.postcall) if flow else CallFlowHandlers()


class CallActivities:
    def __init__(self, resources: Resources, client: Client, control: CallControl) -> None:
        self._res = resources
        self._client = client  # to describe workflows: is a slot's holder still running?
        # Starting workflows is the client side's (`control.client`), handed in by the worker.
        self._control = control

    @activity.defn(name="call.begin")
    async def begin(self, req: CallRequest) -> CallBegin:
        """The options and handler names the call runs with (read once, when it starts: a replay
        of the call goes by its history, not by the replaying process's registry), and its row
        in the calls table."""
        with activity_failures():
            await self._res.calls(req.integration).ensure(
                req.call_id, req.phone_number, call_workflow_id(req.integration, req.call_id), req.metadata
            )
            handling = await self._res.call_handling(req.integration)
            return CallBegin(
                handling=handling,
                call_flow=registered_handlers(req.integration),
                zones=call_zones(handling, req),
            )

    @activity.defn(name="call.may_dial")
    async def may_dial(self, check: DialCheck) -> DialPermit:
        """Right before a dial: is the number on the do-not-call list (the call ends `suppressed`),
        or do `contact_policy`'s caps hold it back (the call waits until `next_allowed_at`)? Read
        here, at each attempt, so an entry added or a cap reached after the call was created holds."""
        with activity_failures():
            entry = await self._res.suppressions().is_suppressed(check.phone_number, check.integration)
            if entry is not None:
                why = f": {entry.reason}" if entry.reason else ""
                reason = f"the number is on the do-not-call list of {entry.scope}{why}"
                return DialPermit(allowed=False, suppressed=True, reason=reason)
            # The caps, checked and the attempt counted in one step (a retry of this activity
            # asks with the same attempt number and is counted once).
            policy = await self._res.contact_policy(check.integration)
            grant = await self._res.contact_attempts().take_attempt(
                check.phone_number, check.integration, check.call_id, check.attempt, policy
            )
            if not grant.allowed:
                return DialPermit(allowed=False, next_allowed_at=grant.next_allowed_at, reason=grant.reason)
            return DialPermit()

    @activity.defn(name="call.record")
    async def record(self, rec: CallRecord) -> None:
        """One status change written to `{integration}_calls` (and, for a campaign's call, to its
        recipient in `{integration}_campaign_recipients`)."""
        with activity_failures():
            await self._res.calls(rec.integration).record(rec)
            if rec.campaign_id is not None:
                await self._res.campaigns(rec.integration).record_call(rec)

    @activity.defn(name="voice.originate")
    async def originate(self, arg: OriginateCall) -> Originated:
        """Ask the voice assistant (`POST {HAPP_SAAS_API_URL}/{SAAS_SIP_ID}/originate/`), or
        ElevenLabs (its SIP-trunk or Twilio outbound-call API), to dial the number."""
        with activity_failures():
            # One attempt dials once: a retry after a worker died mid-request may not dial again
            # (the number may already be ringing); the call's events, or its timers, tell how
            # the attempt went.
            info = activity.info()
            ledger = WriteLedger(self._res.pool, arg.integration)
            key = f"{info.workflow_id}/{info.activity_id}"
            entry = await ledger.begin(key)
            if entry.done:
                done = Originated.model_validate(entry.result)
                await self._learn_ids(arg, done)
                return done
            if entry.interrupted:
                activity.logger.warning("an earlier try of this originate was cut short: not dialling again")
                result = Originated(uncertain=True)
                await ledger.finish(key, result.model_dump(mode="json"))
                return result
            try:
                result = await (
                    self._dial_happ_voice(arg) if arg.provider == "happ_voice" else self._dial_elevenlabs(arg)
                )
            except BaseException:
                await ledger.forget(key)
                raise
            await ledger.finish(key, result.model_dump(mode="json"))
            await self._learn_ids(arg, result)
            return result

    async def _learn_ids(self, arg: OriginateCall, result: Originated) -> None:
        """Write the ids the dial answered to the call's row now, then apply the webhooks that came
        first and were stored unmatched (a fast failure can beat this answer): the gateway looks
        again after storing one, so whichever of the two runs second finds the other's write."""
        try:
            await self._res.calls(arg.integration).learn_ids(
                arg.call_id, result.provider_call_id, result.conversation_id
            )
            if result.conversation_id:
                applied = await self._control.apply_stored_webhooks(
                    arg.integration, arg.call_id, result.conversation_id
                )
                if applied:
                    activity.logger.info("applied %d webhook(s) that came before the dial's answer", applied)
        except HappError as exc:
            # The call was dialled: failing now would count it as not dialled. Without this the
            # call still learns how the attempt went (its status write, the ElevenLabs API after
            # the ring timeout).
            activity.logger.warning("the dial's ids were not recorded at once: %s", exc.message)

    async def _dial_happ_voice(self, arg: OriginateCall) -> Originated:
        base = self._res.settings.saas_api_url
        if not base:
            raise UpstreamRejected("HAPP_SAAS_API_URL is not set: the voice assistant cannot be reached")
        secrets = SecretResolver(self._res, arg.integration)
        token = await secrets.named("SAAS_AUTH_TOKEN")
        sip_id = await secrets.named("SAAS_SIP_ID")
        assistant_id = await self._res.creds(arg.integration).reveal("SAAS_ASSISTANT_ID")
        answer = await HappVoiceApi(self._res.http, base, token).originate(
            sip_id,
            arg.phone_number,
            assistant_id,
            dynamic_variables=arg.variables,
            call_id=arg.call_id,
            metadata={"attempt": arg.attempt},
        )
        return Originated(provider_call_id=answer.provider_call_id)

    async def _dial_elevenlabs(self, arg: OriginateCall) -> Originated:
        secrets = SecretResolver(self._res, arg.integration)
        api = ElevenLabsApi(
            self._res.http, self._res.settings.elevenlabs_api_url, await secrets.named("ELEVENLABS_API_KEY")
        )
        answer = await api.outbound_call(
            "sip" if arg.provider == "elevenlabs_sip" else "twilio",
            agent_id=await secrets.named("ELEVENLABS_AGENT_ID"),
            agent_phone_number_id=await secrets.named("ELEVENLABS_PHONE_NUMBER_ID"),
            to_number=arg.phone_number,
            dynamic_variables=arg.variables,
        )
        return Originated(provider_call_id=answer.call_sid, conversation_id=answer.conversation_id)

    @activity.defn(name="call.schedule_callback")
    async def schedule_callback(self, req: CallRequest) -> str:
        """Start the call a client asked for (`not_before` its time): returns its id, or the id of
        the call already in flight to that number."""
        with activity_failures():
            calls = self._res.calls(req.integration)
            call_id, created = await calls.claim(
                req.call_id, req.phone_number, call_workflow_id(req.integration, req.call_id), req.metadata
            )
            if created:
                await self._control.start_call(req)
            return call_id

    @activity.defn(name="elevenlabs.get_conversation")
    async def fetch_conversation(self, arg: ConversationRequest) -> PostcallInfo | None:
        """The conversation from the ElevenLabs API once it is done (None before), stored like a
        post-call webhook: the transcript goes to PostgreSQL, only its summary to history."""
        with activity_failures():
            return (await self._conversation_status(arg)).info

    @activity.defn(name="elevenlabs.conversation_status")
    async def conversation_status(self, arg: ConversationRequest) -> ConversationStatus:
        """How an ElevenLabs-dialled attempt stands when no webhook has ended it: the conversation's
        status (None: ElevenLabs knows none), and once it is done, what `fetch_conversation` gives."""
        with activity_failures():
            return await self._conversation_status(arg)

    async def _conversation_status(self, arg: ConversationRequest) -> ConversationStatus:
        key = await SecretResolver(self._res, arg.integration).named("ELEVENLABS_API_KEY")
        api = ElevenLabsApi(self._res.http, self._res.settings.elevenlabs_api_url, key)
        try:
            conversation = await api.get_conversation(arg.conversation_id)
        except NotFound:
            return ConversationStatus()
        if not conversation.done:
            return ConversationStatus(status=conversation.status)
        document = await self._res.calls(arg.integration).store_document(
            "transcript",
            key=arg.conversation_id,
            body=conversation.model_dump(mode="json"),
            call_id=arg.call_id,
            conversation_id=arg.conversation_id,
        )
        info = PostcallInfo(
            conversation_id=arg.conversation_id,
            document_id=document,
            duration_seconds=conversation.duration_seconds,
            call_successful=conversation.call_successful,
            transcript_summary=conversation.transcript_summary,
            data_collection_results=conversation.data_collection_results,
            source="api",
        )
        return ConversationStatus(status=conversation.status, info=info)

    @activity.defn(name="queue.start")
    async def start_queue(self, ref: QueueRef) -> None:
        """Start the integration's CallQueue if it is not running (it is started on first use)."""
        with activity_failures():
            await self._control.start_call_queue(ref.integration)

    @activity.defn(name="queue.capacity")
    async def queue_capacity(self, ref: QueueRef) -> int:
        """`call_handling.concurrency_limit`, read now (a change applies to the next acquisition)."""
        with activity_failures():
            return (await self._res.call_handling(ref.integration)).concurrency_limit

    @activity.defn(name="queue.closed_holders")
    async def closed_workflows(self, arg: WorkflowIds) -> list[str]:
        """The ids among `arg.ids` whose workflow is no longer running (terminated, timed out …)."""
        closed = []
        for workflow_id in arg.ids:
            try:
                description = await self._client.get_workflow_handle(workflow_id).describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                closed.append(workflow_id)
                continue
            if description.status != WorkflowExecutionStatus.RUNNING:
                closed.append(workflow_id)
        return closed

    def all(self) -> list[Any]:
        return [
            self.begin,
            self.may_dial,
            self.record,
            self.originate,
            self.fetch_conversation,
            self.conversation_status,
            self.schedule_callback,
            self.start_queue,
            self.queue_capacity,
            self.closed_workflows,
        ]
