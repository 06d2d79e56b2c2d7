"""`OutboundCall` on the time-skipping test server: every path a call can take, with the voice
assistant, the CRM handlers and the database replaced by the stand-ins in `fakes`."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from control.client import cancel_call, queue_state, send_postcall
from happ_integ.calls.config import CallHandling, CallingHours
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.calls.contracts import CallFlowHandlers
from happ_integ.calls.models import CallAnalysis, CallStatus, Outcome, PostcallEvent, PostcallInfo
from happ_integ.errors import Conflict, UpstreamError, UpstreamRejected
from tests.workflows.harness import Call, eventually, handling


async def test_a_normal_call_completes_with_the_crm_postcall(calls: Callable[..., object]) -> None:
    call: Call = await calls()  # type: ignore[misc]
    dialing = await call.dialing(1)
    assert dialing.variables == {"client_name": "Іван"} and dialing.record_id == "rec-1"
    assert (await call.event("call_start")).status is CallStatus.IN_PROGRESS  # type: ignore[attr-defined]
    answer = await call.event("call_end", 45, conversation_id="conv-1")
    assert answer.status is CallStatus.WAITING_POSTCALL and not answer.scheduled_retry  # type: ignore[attr-defined]
    await call.transcription(45)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempt == 1
    assert state.attempts[0].outcome is Outcome.ANSWERED and state.attempts[0].duration_seconds == 45
    payload = state.result["payload"]  # type: ignore[index]
    assert payload["record_id"] == "rec-1" and payload["call_successful"] == "success"
    assert payload["transcript_document_id"] == "transcript:conv-1" and payload["duration_seconds"] == 45
    # The originate carried our call id and the lookup's variables to the agent.
    _, originate = call.script.originates[0]
    assert originate.variables == {"client_name": "Іван", "call_id": call.call_id}
    assert call.script.statuses() == [
        "queued",
        "dialing",
        "in_progress",
        "waiting_postcall",
        "analyzing",
        "completed",
    ]


async def test_a_crm_down_at_dial_time_still_gets_the_outcome(calls: Callable[..., object]) -> None:
    call: Call = await calls(metadata={"crm_down_at_dial": True})  # type: ignore[misc]
    dialing = await call.dialing(1)
    assert dialing.variables == {} and dialing.record_id is None  # the call goes ahead without them
    assert "lookup failed" in (dialing.reason or "")
    await call.event("call_start")
    await call.event("call_end", 45, conversation_id="conv-1")
    await call.transcription(45)
    state = await call.result()
    # The lookup ran again after the call and found the record the outcome is written to.
    assert state.status is CallStatus.COMPLETED and state.record_id == "rec-1"
    assert state.result["payload"]["record_id"] == "rec-1"  # type: ignore[index]
    assert state.variables == {}  # what the call ran with, not what was found afterwards


async def test_a_short_call_is_retried_after_the_delay_then_completes(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(retry_delays_seconds=[120]))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start")
    answer = await call.event("call_end", 2)
    assert answer.scheduled_retry and answer.status is CallStatus.SCHEDULED  # type: ignore[attr-defined]
    retry_at = answer.next_retry_at  # type: ignore[attr-defined]
    scheduled = await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    assert scheduled.next_attempt_at == retry_at and scheduled.attempts[0].outcome is Outcome.SHORT
    await call.env.sleep(timedelta(seconds=121))
    await call.dialing(2)
    first, second = (moment for moment, _ in call.script.originates)
    assert second - first >= timedelta(seconds=120)
    await call.event("call_start")
    await call.event("call_end", 30)
    await call.transcription(30, "conv-2")
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempt == 2


async def test_a_call_never_answered_is_exhausted_after_max_attempts(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(max_attempts=3, retry_delays_seconds=[60, 90]))  # type: ignore[misc]
    for attempt in (1, 2, 3):
        await call.dialing(attempt)
        answer = await call.event("call_end", 0, provider_status="no_answer")
        if attempt < 3:
            assert answer.scheduled_retry  # type: ignore[attr-defined]
            await call.until(lambda s: s.status is CallStatus.SCHEDULED)
            await call.env.sleep(timedelta(seconds=91))
        else:
            assert answer.status is CallStatus.EXHAUSTED and not answer.scheduled_retry  # type: ignore[attr-defined]
    state = await call.result()
    assert state.status is CallStatus.EXHAUSTED
    assert [a.outcome for a in state.attempts] == [Outcome.NO_ANSWER] * 3
    assert len(call.script.originates) == 3


async def test_a_ring_timeout_ends_the_attempt(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(max_attempts=1, ring_timeout_seconds=45))  # type: ignore[misc]
    await call.dialing(1)
    state = await call.result()  # waiting for the result lets the server skip the 45 s
    assert state.status is CallStatus.EXHAUSTED and state.attempts[0].outcome is Outcome.RING_TIMEOUT


async def test_a_call_requested_at_night_is_dialled_when_the_window_opens(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    kyiv = ZoneInfo("Europe/Kyiv")
    now = (await time_skipping_env.get_current_time()).astimezone(kyiv)
    # Skip to the next Friday, 22:00 in Kyiv: Saturday is allowed (weekdays 1–6), so 09:00 Saturday.
    friday = now.date() + timedelta(days=(4 - now.weekday()) % 7 or 7)
    at_22 = datetime.combine(friday, datetime.min.time(), tzinfo=kyiv).replace(hour=22)
    await time_skipping_env.sleep(at_22 - now)
    hours = CallingHours(timezone="Europe/Kyiv", start="09:00", end="20:00", weekdays=[1, 2, 3, 4, 5, 6])
    call: Call = await calls(CallHandling(calling_hours=hours))  # type: ignore[misc]
    scheduled = await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    opens = datetime.combine(friday + timedelta(days=1), datetime.min.time(), tzinfo=kyiv).replace(hour=9)
    assert scheduled.next_attempt_at == opens.astimezone(UTC)
    assert not call.script.originates
    await time_skipping_env.sleep(opens - at_22 + timedelta(seconds=5))
    await call.dialing(1)
    dialled_at, _ = call.script.originates[0]
    assert dialled_at.astimezone(kyiv).isoweekday() == 6 and dialled_at.astimezone(kyiv).hour == 9


async def test_a_missing_postcall_is_read_from_the_elevenlabs_api(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(postcall_timeout_seconds=300))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start", conversation_id="conv-9")
    await call.event("call_end", 50)
    await call.until(lambda s: s.status is CallStatus.WAITING_POSTCALL)
    await call.env.sleep(timedelta(seconds=301))
    await call.until(lambda s: call.script.fetches >= 1)
    assert (await call.state()).status is CallStatus.WAITING_POSTCALL  # not done at ElevenLabs yet
    call.script.conversation = PostcallInfo(
        conversation_id="conv-9", document_id="transcript:conv-9", duration_seconds=50, source="api"
    )
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.postcall is not None
    assert state.postcall.source == "api" and call.script.fetches >= 2


async def test_a_postcall_that_never_comes_fails_the_call_after_a_day(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(postcall_timeout_seconds=60))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start", conversation_id="conv-x")
    await call.event("call_end", 50)
    state = await call.result()
    assert state.status is CallStatus.FAILED and state.reason == "postcall_missing"


async def test_cancel_while_scheduled_makes_no_further_attempt(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(retry_delays_seconds=[600]))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_end", 0)
    await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    await cancel_call(call.env.client, call.integration, call.call_id)
    state = await call.result()
    assert state.status is CallStatus.CANCELLED and len(call.script.originates) == 1


async def test_cancel_while_talking_lets_the_call_finish_and_its_postcall_run(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls()  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_start")
    cancelled = await cancel_call(call.env.client, call.integration, call.call_id)
    assert cancelled.cancel_requested
    await call.event("call_end", 40)
    await call.transcription(40)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and len(call.script.originates) == 1


async def test_a_4xx_from_originate_fails_the_call_without_retrying(calls: Callable[..., object]) -> None:
    call: Call = await calls()  # type: ignore[misc]
    call.script.originate_errors = [UpstreamRejected("HappVoice answered HTTP 400 to POST /sip/originate/")]
    state = await call.result()
    assert state.status is CallStatus.FAILED and "HTTP 400" in (state.reason or "")
    assert len(call.script.originates) == 1


async def test_an_unreachable_voice_assistant_counts_as_a_failed_attempt(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls(handling(max_attempts=2, retry_delays_seconds=[60]))  # type: ignore[misc]
    call.script.originate_errors = [UpstreamError("HappVoice timed out")] * 5
    await call.env.sleep(timedelta(minutes=2))  # the activity's five tries, spread over about two minutes
    state = await call.until(lambda s: s.status is CallStatus.SCHEDULED and s.attempt == 1)
    assert state.attempts[0].outcome is Outcome.ORIGINATE_FAILED
    assert len(call.script.originates) == 5  # Temporal's retries of the activity, then the call's rules
    await call.env.sleep(timedelta(seconds=61))
    await call.dialing(2)
    await call.event("call_end", 0)
    assert (await call.result()).status is CallStatus.EXHAUSTED


async def test_duplicate_and_late_events_change_nothing(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(retry_delays_seconds=[600]))  # type: ignore[misc]
    await call.dialing(1)
    first = await call.event("call_end", 0, provider_call_id="va-1")
    again = await call.event("call_end", 0, provider_call_id="va-1")
    assert first == again  # the redelivery is answered like the first
    await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    late = await call.event("call_end", 50, provider_call_id="va-1")
    assert late.status is CallStatus.SCHEDULED and "nothing changed" in late.message  # type: ignore[attr-defined]
    state = await call.state()
    assert state.attempt == 1 and state.attempts[0].outcome is Outcome.SHORT


async def test_the_analysis_reaches_the_postcall_and_a_callback_schedules_the_next_call(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls()  # type: ignore[misc]
    callback_at = datetime(2030, 1, 21, 10, 0, tzinfo=ZoneInfo("Europe/Kyiv"))
    call.script.analysis = CallAnalysis(
        outcome="callback",
        summary="Просить передзвонити",
        next_action="Call at 10:00",
        callback_at=callback_at,
    )
    await call.dialing(1)
    await call.event("call_start")
    await call.event("call_end", 45)
    await call.transcription(45)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.analysis is not None
    assert state.analysis.outcome == "callback"
    assert state.result["payload"]["analysis"]["outcome"] == "callback"  # type: ignore[index]
    (follow_up,) = call.script.callbacks
    assert follow_up.not_before == callback_at and follow_up.previous_call_id == call.call_id
    assert state.callback_call_id == follow_up.call_id and follow_up.phone_number == "+380994829573"


async def test_a_voicemail_is_dialled_again_when_the_rules_name_it(calls: Callable[..., object]) -> None:
    """`retry_delays_seconds.voicemail`: an answered call whose analysis heard a voicemail waits
    the rule's delay and is dialled again, the CRM untouched until the call's real end; late
    webhooks of the voicemail's conversation change nothing."""
    rules = handling(retry_delays_seconds={"voicemail": [3600], "default": [60]}, max_attempts=3)
    call: Call = await calls(rules)  # type: ignore[misc]
    call.script.analysis = CallAnalysis(outcome="voicemail", summary="Автовідповідач", source="llm")
    await call.dialing(1)
    await call.event("call_start", conversation_id="conv-1")
    await call.event("call_end", 30)
    await call.transcription(30, "conv-1")
    waiting = await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    first = waiting.attempts[0]
    assert first.outcome is Outcome.ANSWERED and first.reason is not None
    assert "voicemail" in first.reason and "retry_delays_seconds.voicemail" in first.reason
    assert waiting.next_attempt_at is not None
    assert timedelta(seconds=3590) < waiting.next_attempt_at - first.started_at < timedelta(seconds=3700)
    assert waiting.result is None  # no CRM write for a voicemail that is called again
    await call.transcription(30, "conv-1")  # a repeated webhook of the voicemail
    again = await call.state()
    assert again.status is CallStatus.SCHEDULED and again.attempt == 1 and again.result is None

    call.script.analysis = CallAnalysis(outcome="interested", summary="Так", source="llm")
    await call.env.sleep(timedelta(seconds=3601))
    await call.dialing(2)
    await call.transcription(30, "conv-1")  # late, while the next attempt rings: nothing changes
    ringing = await call.state()
    assert ringing.status is CallStatus.DIALING and ringing.postcall is None
    await call.event("call_start", conversation_id="conv-2")
    await call.event("call_end", 40)
    await call.transcription(40, "conv-2")
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempt == 2
    assert state.analysis is not None and state.analysis.outcome == "interested"
    assert state.result["payload"]["analysis"]["outcome"] == "interested"  # type: ignore[index]
    assert state.postcall is not None and state.postcall.conversation_id == "conv-2"
    assert len(call.script.originates) == 2


async def test_a_voicemail_completes_when_the_rules_do_not_name_it(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(retry_delays_seconds={"no_answer": [60]}))  # type: ignore[misc]
    call.script.analysis = CallAnalysis(outcome="voicemail", summary="Автовідповідач", source="llm")
    await call.dialing(1)
    await call.event("call_start")
    await call.event("call_end", 30)
    await call.transcription(30)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempt == 1
    assert state.result["payload"]["analysis"]["outcome"] == "voicemail"  # type: ignore[index]


async def test_when_the_analysis_model_fails_the_call_still_completes_with_elevenlabs_analysis(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls()  # type: ignore[misc]
    call.script.analysis_fails = True
    await call.dialing(1)
    await call.event("call_start")
    await call.event("call_end", 45)
    await call.transcription(45)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED
    assert state.analysis is not None and state.analysis.source == "elevenlabs"
    assert state.analysis.outcome == "interested"  # ElevenLabs said call_successful = success
    assert not call.script.callbacks


async def test_a_callback_call_waits_for_its_time(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    not_before = await time_skipping_env.get_current_time() + timedelta(hours=3)
    call: Call = await calls(handling(max_attempts=1), not_before=not_before, previous_call_id="c_first")  # type: ignore[misc]
    scheduled = await call.until(lambda s: s.next_attempt_at is not None)
    assert scheduled.status is CallStatus.SCHEDULED and scheduled.previous_call_id == "c_first"
    assert scheduled.next_attempt_at == not_before and not call.script.originates
    state = await call.result()  # the server skips the three hours, then the ring timeout
    assert state.status is CallStatus.EXHAUSTED
    ((dialled_at, _),) = call.script.originates
    assert dialled_at >= not_before


async def test_an_elevenlabs_call_ends_by_its_postcall_webhooks(calls: Callable[..., object]) -> None:
    call: Call = await calls(handling(provider="elevenlabs_sip", retry_delays_seconds=[60]))  # type: ignore[misc]
    # The call is dialing before the provider answers with its ids.
    dialing = await call.until(lambda s: s.status is CallStatus.DIALING and s.conversation_id is not None)
    assert dialing.conversation_id == "conv-el-1" and dialing.provider_call_id == "sip-1"
    failure = PostcallEvent(
        type="call_initiation_failure", failure_reason="busy", info=PostcallInfo(conversation_id="conv-el-1")
    )
    answer = await send_postcall(call.env.client, call.integration, call.call_id, failure)
    assert answer.status is CallStatus.SCHEDULED
    await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    await call.env.sleep(timedelta(seconds=61))
    await call.dialing(2)
    await call.transcription(50, "conv-el-2")
    state = await call.result()
    assert state.status is CallStatus.COMPLETED
    assert [a.outcome for a in state.attempts] == [Outcome.BUSY, Outcome.ANSWERED]
    assert (
        all(moment for moment, _ in call.script.originates)
        and call.script.originates[0][1].provider == "elevenlabs_sip"
    )


async def test_an_elevenlabs_call_without_webhooks_is_read_from_the_api(calls: Callable[..., object]) -> None:
    call: Call = await calls(
        handling(provider="elevenlabs_twilio", ring_timeout_seconds=30, max_call_seconds=60)
    )  # type: ignore[misc]
    call.script.conversation = PostcallInfo(
        conversation_id="conv-el-1", duration_seconds=42, call_successful="success", source="api"
    )
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempts[0].outcome is Outcome.ANSWERED
    assert state.postcall is not None and state.postcall.source == "api"


async def test_an_elevenlabs_call_nobody_answers_ends_at_its_ring_timeout(
    calls: Callable[..., object],
) -> None:
    # No webhook comes; the API says the conversation is still "initiated" (ringing) when asked.
    call: Call = await calls(handling(provider="elevenlabs_sip", max_attempts=1))  # type: ignore[misc]
    call.script.live_statuses = ["initiated"]
    state = await call.result()
    assert state.status is CallStatus.EXHAUSTED
    (attempt,) = state.attempts
    assert attempt.outcome is Outcome.RING_TIMEOUT and attempt.ended_at is not None
    # Its slot went back within the ring timeout (60 s) and a few seconds, not after the longest call.
    assert attempt.ended_at - attempt.started_at < timedelta(seconds=70)
    assert call.script.status_reads == 1 and call.script.fetches == 0


async def test_an_elevenlabs_call_the_api_knows_nothing_of_is_not_answered(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls(handling(provider="elevenlabs_twilio", max_attempts=1))  # type: ignore[misc]
    call.script.live_statuses = [None]  # 404: ElevenLabs holds no conversation for it
    state = await call.result()
    (attempt,) = state.attempts
    assert state.status is CallStatus.EXHAUSTED and attempt.outcome is Outcome.NO_ANSWER
    assert attempt.ended_at is not None and attempt.ended_at - attempt.started_at < timedelta(seconds=70)


async def test_an_elevenlabs_call_on_the_line_is_followed_until_it_is_done(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls(handling(provider="elevenlabs_sip"))  # type: ignore[misc]
    call.script.live_statuses = ["in-progress", "in-progress", "processing"]
    await call.dialing(1)
    await call.env.sleep(timedelta(seconds=61))  # past the ring timeout, with no webhook
    on = await call.until(lambda s: s.status is CallStatus.IN_PROGRESS)
    assert on.attempts[0].answered_at is not None
    call.script.conversation = PostcallInfo(
        conversation_id="conv-el-1", duration_seconds=42, call_successful="success", source="api"
    )
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.attempts[0].outcome is Outcome.ANSWERED
    assert "in_progress" in call.script.statuses() and call.script.status_reads >= 2


async def test_an_event_with_another_provider_call_id_is_refused_and_changes_nothing(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls()  # type: ignore[misc]
    await call.until(lambda s: s.status is CallStatus.DIALING and s.provider_call_id == "va-1")
    with pytest.raises(Conflict):
        await call.event("call_end", 0, provider_call_id="va-forged", provider_status="busy")
    state = await call.state()
    assert state.status is CallStatus.DIALING and state.attempts[0].outcome is None
    # The call's own events still work; an event that carries no provider id is judged as before.
    assert (await call.event("call_start", provider_call_id="va-1")).status is CallStatus.IN_PROGRESS  # type: ignore[attr-defined]
    answer = await call.event("call_end", 45, conversation_id="conv-1")
    assert answer.status is CallStatus.WAITING_POSTCALL  # type: ignore[attr-defined]


async def test_cancel_while_queued_leaves_the_queue_without_dialling(calls: Callable[..., object]) -> None:
    call: Call = await calls()  # type: ignore[misc]
    call.script.capacity = 0  # every slot taken: the call waits in the queue
    queued = await call.until(lambda s: s.status is CallStatus.QUEUED)
    assert queued.attempt == 0
    waiting = await eventually(
        lambda: queue_state(call.env.client, call.integration),
        lambda q: any(w.holder == call.handle.id for w in q.waiters),
        10,
        lambda q: f"the call never asked the queue: {q}",
    )
    assert not waiting.holders
    await cancel_call(call.env.client, call.integration, call.call_id)
    state = await call.result()
    assert state.status is CallStatus.CANCELLED and not call.script.originates
    left = await eventually(
        lambda: queue_state(call.env.client, call.integration),
        lambda q: not q.waiters and not q.holders,
        10,
        lambda q: f"the call is still in the queue: {q}",
    )
    assert left.granted_total == 0


async def test_the_handlers_call_begin_names_are_the_ones_the_call_runs(calls: Callable[..., object]) -> None:
    # The registry names a lookup; call.begin, read when the call started, names none: the call
    # goes by what it was started with, never by the registry of the process replaying it.
    call: Call = await calls(call_flow=CallFlowHandlers(lookup=None, postcall="crm-postcall"))  # type: ignore[misc]
    dialing = await call.dialing(1)
    assert dialing.variables == {} and dialing.record_id is None
    await call.event("call_start")
    await call.event("call_end", 45, conversation_id="conv-1")
    await call.transcription(45)
    state = await call.result()
    assert state.status is CallStatus.COMPLETED and state.result is not None  # the postcall ran
    assert state.result["payload"]["record_id"] is None


async def test_a_number_put_on_the_do_not_call_list_between_attempts_is_never_dialled_again(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls(handling(max_attempts=3, retry_delays_seconds=[60]))  # type: ignore[misc]
    await call.dialing(1)
    await call.event("call_end", 0, provider_status="no_answer")
    await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    call.script.suppressed.add("+380994829573")  # e.g. another call's analysis said do_not_call
    await call.env.sleep(timedelta(seconds=61))
    state = await call.result()
    assert state.status is CallStatus.SUPPRESSED and state.attempt == 1
    assert state.reason == "the number is on the do-not-call list"
    assert len(call.script.originates) == 1  # the second attempt never dialled
    assert [c.attempt for c in call.script.dial_checks] == [1, 2]
    assert not (await queue_state(call.env.client, call.integration)).holders, "its slot went back"


NUMBER = "+380994829573"  # what every call of the harness dials


async def test_a_capped_number_is_dialled_at_the_first_moment_its_cap_allows(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    """Two dials in the last 24 hours under `max_attempts_per_day` 2: the call waits, spending no
    attempt, until the older one is 24 hours old, then dials at once."""
    now = await time_skipping_env.get_current_time()
    older, newer = now - timedelta(hours=23), now - timedelta(minutes=10)
    policy = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=60)
    call: Call = await calls(  # type: ignore[misc]
        handling(), contact_policy=policy, dialled_before={NUMBER: [older, newer]}
    )
    held = await call.until(lambda s: s.status is CallStatus.SCHEDULED and s.next_attempt_at is not None)
    assert held.next_attempt_at == older + timedelta(hours=24)  # later than the hour's gap
    assert held.attempt == 0 and held.attempts == [] and call.script.originates == []
    assert held.reason is not None and "contact_policy.max_attempts_per_day: 2" in held.reason
    assert "contact_policy.min_minutes_between_attempts: 60" in held.reason  # both caps hold it

    await time_skipping_env.sleep(
        older + timedelta(hours=24, seconds=1) - await time_skipping_env.get_current_time()
    )
    await call.dialing(1)
    ((dialled_at, _),) = call.script.originates
    assert older + timedelta(hours=24) <= dialled_at < older + timedelta(hours=24, minutes=1)
    state = await call.state()
    assert state.reason is None, "the cap no longer holds it: it is not why the call is where it is"
    assert [c.attempt for c in call.script.dial_checks] == [1, 1], "the refused check spent no attempt"
    assert len(call.script.contact_attempts[NUMBER]) == 3


async def test_a_cap_that_frees_the_number_after_hours_waits_for_the_next_window(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    """At 10:00, with calling hours 09:00–12:00 UTC, the cap frees the number at 13:00: the call is
    dialled at 09:00 the next day, the first moment both allow."""
    now = await time_skipping_env.get_current_time()
    tomorrow = now.date() + timedelta(days=1)
    at_10 = datetime.combine(tomorrow, datetime.min.time(), tzinfo=UTC).replace(hour=10)
    await time_skipping_env.sleep(at_10 - now)
    hours = CallingHours(timezone="UTC", start="09:00", end="12:00", weekdays=list(range(1, 8)))
    frees_at = at_10.replace(hour=13)
    call: Call = await calls(  # type: ignore[misc]
        CallHandling(calling_hours=hours),
        contact_policy=ContactPolicy(max_attempts_per_day=1, min_minutes_between_attempts=0),
        dialled_before={NUMBER: [frees_at - timedelta(hours=24)]},
    )
    held = await call.until(lambda s: s.status is CallStatus.SCHEDULED and s.reason is not None)
    # The moment shown is the one the call will be dialled at, not the cap's own (13:00, after hours).
    next_window = at_10.replace(hour=9) + timedelta(days=1)
    assert held.next_attempt_at == next_window and "max_attempts_per_day: 1" in (held.reason or "")
    await time_skipping_env.sleep(
        frees_at + timedelta(seconds=1) - await time_skipping_env.get_current_time()
    )
    still = await call.state()
    assert still.next_attempt_at == next_window and still.reason == held.reason  # held by the cap still
    assert call.script.originates == []
    await time_skipping_env.sleep(
        next_window + timedelta(seconds=1) - await time_skipping_env.get_current_time()
    )
    await call.dialing(1)
    ((dialled_at, _),) = call.script.originates
    assert next_window <= dialled_at < next_window + timedelta(minutes=1)


async def test_a_call_in_the_callees_own_time_zone_waits_for_their_window(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    """`calling_hours.timezone: "recipient"`: a Ukrainian number's window is read in Kyiv. At
    05:00 UTC (07:00 or 08:00 in Kyiv), with a window from 10:00, the call waits for 10:00 in Kyiv."""
    now = await time_skipping_env.get_current_time()  # the server's clock: earlier tests moved it
    at_5 = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC).replace(hour=5)
    await time_skipping_env.sleep(at_5 - now)
    hours = CallingHours(timezone="recipient", start="10:00", end="23:59", weekdays=list(range(1, 8)))
    call: Call = await calls(CallHandling(calling_hours=hours))  # type: ignore[misc]
    state = await call.until(lambda s: s.status is CallStatus.SCHEDULED and s.next_attempt_at is not None)
    assert state.timezones == ["Europe/Kyiv"]
    assert state.next_attempt_at is not None
    local = state.next_attempt_at.astimezone(ZoneInfo("Europe/Kyiv"))
    assert (local.date(), local.hour, local.minute) == (at_5.date(), 10, 0)
    assert call.script.originates == []


async def test_a_zone_the_crm_gives_for_the_callee_wins_over_the_numbers(
    calls: Callable[..., object], time_skipping_env: WorkflowEnvironment
) -> None:
    """At 12:00 UTC a Ukrainian number's window (09:00–18:00) is open in Kyiv, but the CRM says
    the callee lives in Tokyo (21:00 there): the call waits for 09:00 in Tokyo, 00:00 UTC."""
    now = await time_skipping_env.get_current_time()
    noon = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC).replace(hour=12)
    await time_skipping_env.sleep(noon - now)
    hours = CallingHours(timezone="recipient", start="09:00", end="18:00", weekdays=list(range(1, 8)))
    call: Call = await calls(  # type: ignore[misc]
        CallHandling(calling_hours=hours), metadata={"crm_timezone": "Asia/Tokyo"}
    )
    held = await call.until(lambda s: s.status is CallStatus.SCHEDULED and s.next_attempt_at is not None)
    assert held.timezones == ["Asia/Tokyo"] and held.variables["timezone"] == "Asia/Tokyo"
    assert held.next_attempt_at == noon.replace(hour=0) + timedelta(days=1)
    assert call.script.originates == []
    await time_skipping_env.sleep(timedelta(hours=12, seconds=1))
    await call.dialing(1)  # looked up once: the variables stay the CRM's
    assert (await call.state()).variables == {"client_name": "Іван", "timezone": "Asia/Tokyo"}


async def test_retries_follow_the_rule_of_the_attempts_outcome_and_say_which(
    calls: Callable[..., object],
) -> None:
    call: Call = await calls(  # type: ignore[misc]
        handling(
            retry_delays_seconds={"busy": [120], "default": [3600]}, max_attempts={"busy": 2, "default": 5}
        )
    )
    await call.dialing(1)
    answer = await call.event("call_end", 0, provider_status="busy")
    assert answer.scheduled_retry  # type: ignore[attr-defined]
    state = await call.until(lambda s: s.status is CallStatus.SCHEDULED)
    assert state.next_attempt_at is not None and state.attempts[0].started_at is not None
    assert state.next_attempt_at - state.attempts[0].ended_at == timedelta(seconds=120)  # type: ignore[operator]
    assert state.attempts[0].reason is not None and "retry_delays_seconds.busy" in state.attempts[0].reason
    await call.env.sleep(timedelta(seconds=121))
    await call.dialing(2)
    await call.event("call_end", 0, provider_status="busy")
    state = await call.result()
    assert state.status is CallStatus.EXHAUSTED and state.attempt == 2  # max_attempts.busy, not default's 5
    assert state.reason is not None and "max_attempts.busy" in state.reason
