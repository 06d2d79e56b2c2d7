"""Following an ElevenLabs conversation from the call's workflow, when no webhook tells how it went:
its status and its transcript read from the ElevenLabs API, asked again after growing pauses, and
what was found handed back (the workflow decides what it means).

    conversations = Conversations(request.integration, request.call_id)
    found = await conversations.follow_attempt(attempt, handling, ended=..., on_the_line=...)
    found.info, found.outcome          # the conversation once done; how it ended without one
    info = await conversations.recover_postcall(conversation_id=..., received=...)

Each read is an activity (`elevenlabs.conversation_status`, `elevenlabs.get_conversation`) tried
three times; an API that cannot be asked is asked again after the next pause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.calls import CallActivities
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.contracts import ConversationRequest, ConversationStatus
    from happ_integ.calls.models import Attempt, Outcome, PostcallInfo
    from happ_integ.calls.rules import status_outcome

from workflows import timers

T = TypeVar("T")

# An ElevenLabs-dialled attempt no webhook ended by its ring timeout: its conversation's status is
# read then, and again while the call is on (runs from before the patch first read the
# conversation after the longest call).
STATUS_PATCH = "elevenlabs-status-after-ring-timeout"
_RECOVERY_WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Backoff:
    """Pauses that double from `first` up to `longest`; `summary` names their timers."""

    first: timedelta
    longest: timedelta
    summary: str


_STATUS = Backoff(timedelta(seconds=5), timedelta(minutes=5), "ElevenLabs status, asked again")
_RECOVERY = Backoff(timedelta(minutes=1), timedelta(hours=1), "ElevenLabs conversation, asked again")
_BEFORE_THE_PATCH = Backoff(timedelta(seconds=30), timedelta(minutes=10), _RECOVERY.summary)


@dataclass(frozen=True)
class Found:
    """What the API said about an attempt: `info`, its conversation once done; `outcome`, how it
    ended without one. Neither: the attempt ended meanwhile (a webhook), nothing to apply."""

    info: PostcallInfo | None = None
    outcome: Outcome | None = None


async def poll(
    read: Callable[[], Awaitable[T | None]],
    *,
    stopped: Callable[[], bool],
    within: timedelta,
    backoff: Backoff,
    read_at_deadline: bool,
) -> T | None:
    """What `read` found (not None), asked again after each pause until `stopped()` or `within` has
    passed; None then. `read_at_deadline`: ask once more when the time is up (the status reader);
    the transcript readers stop at the deadline. Each keeps the commands its recorded runs made."""
    deadline = workflow.now() + within
    pause = backoff.first
    while not stopped() and (read_at_deadline or workflow.now() < deadline):
        found = await read()
        if found is not None:
            return found
        if read_at_deadline and workflow.now() >= deadline:
            return None
        await timers.wait(stopped, min(pause, deadline - workflow.now()), backoff.summary)
        pause = min(pause * 2, backoff.longest)
    return None


class Conversations:
    """One call's ElevenLabs conversations."""

    def __init__(self, integration: str, call_id: str) -> None:
        self._integration = integration
        self._call_id = call_id

    async def follow_attempt(
        self,
        attempt: Attempt,
        handling: CallHandling,
        *,
        ended: Callable[[], bool],
        on_the_line: Callable[[], Awaitable[None]],
    ) -> Found | None:
        """An attempt ElevenLabs dials sends no call events: its post-call webhooks end it
        (`ended()` comes true). When none has by the ring timeout, the conversation's status tells
        how it stands: nobody answered (still "initiated", "failed", or no conversation at all)
        is found at once, so its slot is free within the ring timeout; a call on the line is
        marked answered (`on_the_line()`) and asked about again until it is done, for at most its
        longest time plus the post-call timeout. None: nothing found (nobody answered)."""
        conversation_id = attempt.conversation_id
        if not (conversation_id and workflow.patched(STATUS_PATCH)):
            return await self._follow_before_the_patch(attempt, handling, ended)
        if not ended():
            await timers.wait(ended, timedelta(seconds=handling.ring_timeout_seconds), "ring timeout")

        async def read() -> Found | None:
            found: ConversationStatus | None = await self._ask(
                CallActivities.conversation_status, conversation_id
            )
            if ended():
                return Found()
            if found is None:
                return None  # the API could not be asked: ask again
            if found.info is not None:
                return Found(info=found.info)
            outcome = status_outcome(found.status, answered=attempt.answered_at is not None)
            if outcome is None and attempt.answered_at is None:
                attempt.answered_at = workflow.now()
                await on_the_line()
            return Found(outcome=outcome) if outcome is not None else None

        within = timedelta(seconds=handling.max_call_seconds + handling.postcall_timeout_seconds)
        return await poll(read, stopped=ended, within=within, backoff=_STATUS, read_at_deadline=True)

    async def _follow_before_the_patch(
        self, attempt: Attempt, handling: CallHandling, ended: Callable[[], bool]
    ) -> Found | None:
        """Runs from before the patch (and an attempt without a conversation id): the API is first
        asked after the longest call, then for the post-call timeout."""
        if not ended():
            longest = handling.ring_timeout_seconds + handling.max_call_seconds
            await timers.wait(ended, timedelta(seconds=longest), "ring timeout and longest call")

        async def read() -> Found | None:
            assert attempt.conversation_id is not None
            info = await self._ask(CallActivities.fetch_conversation, attempt.conversation_id)
            return Found(info=info) if info is not None and not ended() else None

        return await poll(
            read,
            stopped=lambda: ended() or not attempt.conversation_id,
            within=timedelta(seconds=handling.postcall_timeout_seconds),
            backoff=_BEFORE_THE_PATCH,
            read_at_deadline=False,
        )

    async def recover_postcall(
        self, *, conversation_id: Callable[[], str | None], received: Callable[[], bool]
    ) -> PostcallInfo | None:
        """ElevenLabs does not retry a post-call webhook by default: the conversation read from its
        API, with growing pauses, for up to a day, while the webhook may still come (`received()`).
        None when neither came."""

        async def read() -> PostcallInfo | None:
            conversation = conversation_id()
            if not conversation:
                return None
            # The API down or refusing us is no answer yet: the webhook may still come.
            info: PostcallInfo | None = await self._ask(CallActivities.fetch_conversation, conversation)
            return info if info is not None and not received() else None

        return await poll(
            read, stopped=received, within=_RECOVERY_WINDOW, backoff=_RECOVERY, read_at_deadline=False
        )

    async def _ask(self, activity: Any, conversation_id: str) -> Any:
        """One of the ElevenLabs conversation activities, tried three times; None when it failed."""
        try:
            return await workflow.execute_activity_method(
                activity,
                ConversationRequest(
                    integration=self._integration, call_id=self._call_id, conversation_id=conversation_id
                ),
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
        except ActivityError:
            return None
