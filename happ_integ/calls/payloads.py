"""What the integration's call-flow handlers receive, built from the call.

lookup_payload(request)            # LookupPayload: the number to find in the CRM
postcall_payload(request, state)   # PostcallPayload: the answered attempt, its post-call, the analysis
"""

from __future__ import annotations

from happ_integ.calls.contracts import CallRequest
from happ_integ.calls.models import CallState, LookupPayload, PostcallInfo, PostcallPayload


def lookup_payload(request: CallRequest) -> LookupPayload:
    return LookupPayload(
        call_id=request.call_id, phone_number=request.phone_number, metadata=request.metadata
    )


def postcall_payload(request: CallRequest, state: CallState) -> PostcallPayload:
    """The last attempt is the answered one; the post-call's duration and ids win over the attempt's."""
    attempt = state.attempts[-1]
    info = state.postcall or PostcallInfo()
    return PostcallPayload(
        call_id=request.call_id,
        phone_number=request.phone_number,
        attempt=attempt.number,
        record_id=state.record_id,
        variables=state.variables,
        started_at=attempt.answered_at or attempt.started_at,
        ended_at=attempt.ended_at,
        duration_seconds=info.duration_seconds or attempt.duration_seconds or 0,
        conversation_id=info.conversation_id or attempt.conversation_id,
        transcript_document_id=info.document_id,
        call_successful=info.call_successful,
        transcript_summary=info.transcript_summary,
        data_collection_results=info.data_collection_results,
        analysis=state.analysis,
    )
