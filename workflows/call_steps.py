"""The steps a call has run elsewhere: the dial, the integration's call-flow handlers (child
`HandlerRun`s named after the call), the analysis model, and the call a callback asks for.

    steps = CallSteps(request, begin.call_flow)
    originated = await steps.originate(1, variables, handling)   # ActivityError: not dialled
    found = await steps.lookup()                   # a LookupResult; None without a lookup handler
    result = await steps.postcall(payload)         # the postcall handler's answer; None without one
    analysis = await steps.analyze(info)           # the model's verdict, or ElevenLabs' own
    await steps.schedule_callback("c_…", at)       # after the call: a new call for that time

A dial that fails for good raises `ActivityError`, a handler that fails `ChildWorkflowError` (its
run is `Failed` in the Web UI); the model never fails the call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.analysis import AnalysisActivities
    from activities.calls import CallActivities
    from happ_integ.calls.analysis import from_elevenlabs
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.contracts import (
        AnalysisRequest,
        CallFlowHandlers,
        CallRequest,
        OriginateCall,
        Originated,
    )
    from happ_integ.calls.models import CallAnalysis, LookupResult, PostcallInfo, PostcallPayload
    from happ_integ.calls.payloads import lookup_payload
    from happ_integ.temporal import HandlerRunInput, HandlerRunResult, handler_workflow_id

from workflows.call_record import STORE
from workflows.handler_run import HandlerRun

# About five tries over two minutes; a 4xx answer (non-retryable) is not tried again.
_ORIGINATE = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
)


class CallSteps:
    def __init__(self, request: CallRequest, handlers: CallFlowHandlers) -> None:
        self._request = request
        self._handlers = handlers

    async def originate(self, attempt: int, variables: dict[str, Any], handling: CallHandling) -> Originated:
        """Ask the voice assistant (or ElevenLabs, as `handling.provider` says) to dial: the
        activity `voice.originate` with the summary `attempt N`."""
        request = self._request
        result: Originated = await workflow.execute_activity_method(
            CallActivities.originate,
            OriginateCall(
                integration=request.integration,
                call_id=request.call_id,
                phone_number=request.phone_number,
                attempt=attempt,
                variables=variables,
                provider=handling.provider,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_ORIGINATE,
            summary=f"attempt {attempt}",
        )
        return result

    async def lookup(self, *, again: bool = False) -> LookupResult | None:
        """The CRM lookup (`again`: its second run, `{call_id}-again`, after an answered call
        whose first one failed)."""
        if self._handlers.lookup is None:
            return None
        payload = lookup_payload(self._request).model_dump(mode="json")
        found = await self._child(self._handlers.lookup, payload, key="-again" if again else "")
        return LookupResult.model_validate(found)

    async def postcall(self, payload: PostcallPayload) -> dict[str, Any] | None:
        if self._handlers.postcall is None:
            return None
        return await self._child(self._handlers.postcall, payload.model_dump(mode="json"))

    async def analyze(self, info: PostcallInfo) -> CallAnalysis:
        """The analysis model's verdict; ElevenLabs' own when the model cannot be had: the call
        never fails for the model's sake."""
        try:
            return await workflow.execute_activity_method(
                AnalysisActivities.analyze,
                AnalysisRequest(
                    integration=self._request.integration, call_id=self._request.call_id, info=info
                ),
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=5)),
            )
        except ActivityError:
            return from_elevenlabs(info)

    async def schedule_callback(self, call_id: str, not_before: datetime | None) -> None:
        """Start the call a callback asked for (same number and metadata), linked to this one."""
        await workflow.execute_activity_method(
            CallActivities.schedule_callback,
            CallRequest(
                integration=self._request.integration,
                call_id=call_id,
                phone_number=self._request.phone_number,
                metadata=self._request.metadata,
                not_before=not_before,
                previous_call_id=self._request.call_id,
            ),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE,
        )

    async def _child(self, handler: str, payload: dict[str, Any], key: str = "") -> dict[str, Any]:
        """Run one of the integration's handlers as a child HandlerRun named after the call (and `key`)."""
        result: HandlerRunResult = await workflow.execute_child_workflow(
            HandlerRun.run,
            HandlerRunInput(integration=self._request.integration, handler=handler, payload=payload),
            id=handler_workflow_id(self._request.integration, handler, self._request.call_id + key),
            static_summary=handler,
        )
        return result.response
