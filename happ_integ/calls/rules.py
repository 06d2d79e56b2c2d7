"""What happens after an attempt: the retry rules, as pure functions the workflow and its
update handlers share (so a webhook's answer is exactly what the workflow then does).

    outcome = classify_end(duration=2, answered=True, provider_status=None, handling=handling)  # SHORT
    decision = after_attempt(handling, attempt=1, outcome=outcome, now=now, cancelled=False)
    decision.kind, decision.retry_at                                       # "retry", now + 600 s
    decision.reason     # "short: attempt 2 of 3 in 600 s (retry_delays_seconds; max_attempts)"
    status_outcome("initiated", answered=False)     # RING_TIMEOUT: an ElevenLabs call still ringing

What an update (a webhook) does to the attempt on the line is `happ_integ.calls.attempts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import CallStatus, Outcome

_PROVIDER_OUTCOMES = {
    "no_answer": Outcome.NO_ANSWER,
    "no-answer": Outcome.NO_ANSWER,
    "noanswer": Outcome.NO_ANSWER,
    "busy": Outcome.BUSY,
    "failed": Outcome.FAILED,
    "unknown": Outcome.FAILED,
}


def provider_outcome(status: str | None) -> Outcome | None:
    """`metadata.status` of a call_end, or ElevenLabs' `failure_reason`, as an outcome."""
    return _PROVIDER_OUTCOMES.get((status or "").strip().lower()) if status else None


def status_outcome(status: str | None, *, answered: bool) -> Outcome | None:
    """How an ElevenLabs-dialled attempt that no webhook ended stands, from its conversation's
    status on the ElevenLabs API: None while it is on the line ("in-progress", "processing");
    otherwise it is over without a conversation: SHORT when it had been on the line, RING_TIMEOUT
    while still ringing ("initiated"), NO_ANSWER when it failed or ElevenLabs knows none (None)."""
    if status in ("in-progress", "processing"):
        return None
    if answered:
        return Outcome.SHORT
    return Outcome.RING_TIMEOUT if status == "initiated" else Outcome.NO_ANSWER


def classify_end(
    *, duration: float | None, answered: bool, provider_status: str | None, handling: CallHandling
) -> Outcome:
    """A call_end without a call_start before it, or without a duration, counts as duration 0."""
    reported = provider_outcome(provider_status)
    if reported is not None and not answered:
        return reported
    seconds = duration if (answered and duration is not None) else 0
    return Outcome.ANSWERED if seconds >= handling.short_call_seconds and seconds > 0 else Outcome.SHORT


@dataclass(frozen=True)
class Decision:
    """What the call does after an attempt. `reason` names the rule that decided (for a status
    reason or a log line); it takes no part in equality."""

    kind: Literal["postcall", "retry", "exhausted", "cancelled"]
    retry_at: datetime | None = None
    reason: str = field(default="", compare=False)

    @property
    def status(self) -> CallStatus:
        return {
            "postcall": CallStatus.WAITING_POSTCALL,
            "retry": CallStatus.SCHEDULED,
            "exhausted": CallStatus.EXHAUSTED,
            "cancelled": CallStatus.CANCELLED,
        }[self.kind]


def after_attempt(
    handling: CallHandling, *, attempt: int, outcome: Outcome, now: datetime, cancelled: bool
) -> Decision:
    """Answered → post-call (even when cancelled meanwhile); otherwise a retry until the
    `max_attempts` of this outcome, after its delay (`CallHandling.retry_delay`): attempt numbers
    count every attempt of the call."""
    if outcome is Outcome.ANSWERED:
        return Decision("postcall", reason="answered: the post-call follows")
    if cancelled:
        return Decision("cancelled", reason=f"{outcome.value}: cancelled, no further attempt")
    return _retry_or_exhausted(handling, attempt, outcome.value, now)


def after_analysis(
    handling: CallHandling, *, attempt: int, analysis_outcome: str, now: datetime, cancelled: bool
) -> Decision | None:
    """After an answered call's analysis: a retry when it says "voicemail" and
    `retry_delays_seconds` names "voicemail" (`CallHandling.retries_voicemail`) and
    `max_attempts_for("voicemail")` leaves an attempt; None otherwise (the call completes, as an
    answered call always has: nothing else is retried after an answer)."""
    if analysis_outcome != "voicemail" or cancelled or not handling.retries_voicemail:
        return None
    decision = _retry_or_exhausted(handling, attempt, "voicemail", now)
    return decision if decision.kind == "retry" else None


def _retry_or_exhausted(handling: CallHandling, attempt: int, outcome: str, now: datetime) -> Decision:
    limit, limit_rule = handling.max_attempts_rule(outcome)
    if attempt >= limit:
        return Decision(
            "exhausted", reason=f"{outcome}: no attempt left after {attempt} of {limit} ({limit_rule})"
        )
    delay, delay_rule = handling.retry_delay(attempt, outcome), handling.retry_delays_for(outcome)[1]
    return Decision(
        "retry",
        now + timedelta(seconds=delay),
        reason=f"{outcome}: attempt {attempt + 1} of {limit} in {delay} s ({delay_rule}; {limit_rule})",
    )
