"""Durable mode: inside a `HandlerRun` workflow every operation is a Temporal activity.

    executor = DurableExecutor(retries=definition.retries, timeout_seconds=definition.timeout_seconds)

The activity is named after the operation (`db.insert`), its summary is the enclosing step's name,
and the handler's `retries` is its retry policy. Errors come back as the same `HappError` classes
an inline run raises, so one handler source behaves the same in both modes.

The operations registered `local=True` (the framework's own quick ones on PostgreSQL: `db.*`,
`cache.*`, `config.get`, `creds.get`) run as local activities: in the worker that runs the
workflow, recorded as a marker with the same name and summary, without the server round trip a
regular activity costs (about 50 ms each on the dev server). Calls to the outside world (CRM,
HTTP) stay regular activities: they may be slow, and each shows in the Web UI with its attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, ChildWorkflowError
from temporalio.exceptions import TimeoutError as TemporalTimeout

from happ_integ import errors
from happ_integ.ops import Operation
from happ_integ.steps import current_step

In = TypeVar("In", bound=BaseModel)
Out = TypeVar("Out", bound=BaseModel)

# Runs that started before context operations became local replay them as regular activities.
LOCAL_OPERATIONS_PATCH = "context-ops-local"
LOCAL_ERRORS_PATCH = "context-op-errors-keep-their-kind"


class DurableExecutor:
    mode: Literal["inline", "durable"] = "durable"

    def __init__(self, retries: int, timeout_seconds: float) -> None:
        self._retry = RetryPolicy(
            maximum_attempts=retries + 1,
            initial_interval=timedelta(seconds=1),
            backoff_coefficient=2.0,
            maximum_interval=timedelta(seconds=60),
        )
        self._timeout = timedelta(seconds=timeout_seconds)

    async def call(self, op: Operation[In, Out], arg: In) -> Out:
        # Asked only for a local operation: `patched` marks the history, and recorded runs were
        # made asking it only then.
        local = op.local and workflow.patched(LOCAL_OPERATIONS_PATCH)
        execute = workflow.execute_local_activity if local else workflow.execute_activity
        try:
            return await execute(
                op.name,
                arg,
                result_type=op.result_model,
                start_to_close_timeout=self._timeout,
                retry_policy=self._retry,
                summary=current_step() or op.name,
            )
        except ActivityError as exc:
            raise error_from_failure(exc.cause) from None
        except (ApplicationError, TemporalTimeout) as exc:
            # A local activity's failure comes as the error itself, not wrapped in ActivityError:
            # it is the same happ error (422, 409 …), not a handler bug (runs from before kept
            # the old way, which answered it as a 500).
            if local and workflow.patched(LOCAL_ERRORS_PATCH):
                raise error_from_failure(exc) from None
            raise

    def now(self) -> datetime:
        return workflow.now()

    def uuid(self) -> str:
        return str(workflow.uuid4())


def error_to_failure(exc: BaseException) -> ApplicationError:
    """What an activity raises for a `HappError`: its class name as type, retryable or not."""
    if isinstance(exc, errors.HappError):
        details = {
            "status_code": exc.status_code,
            **{k: v for k, v in exc.details.items() if isinstance(v, str | int)},
        }
        # A peer that said when to come back (429 / 503 with Retry-After) is tried again then, not
        # on the policy's own schedule.
        retry_after = exc.details.get("retry_after")
        delay = (
            timedelta(seconds=min(float(retry_after), 3600))
            if exc.retryable and isinstance(retry_after, int | float) and retry_after > 0
            else None
        )
        return ApplicationError(
            exc.message,
            details,
            type=type(exc).__name__,
            non_retryable=not exc.retryable,
            next_retry_delay=delay,
        )
    return ApplicationError(str(exc) or type(exc).__name__, type=type(exc).__name__)


@contextmanager
def activity_failures() -> Iterator[None]:
    """Inside an activity: a happ error leaves it as the failure Temporal should see (retryable or not).

    with activity_failures():
        return await something_that_may_raise_a_happ_error()
    """
    try:
        yield
    except errors.HappError as exc:
        raise error_to_failure(exc) from None


def error_from_failure(cause: BaseException | None) -> errors.HappError:
    """The `HappError` an activity or workflow failed with, rebuilt with its message and details."""
    if isinstance(cause, ActivityError | ChildWorkflowError) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        cls = getattr(errors, cause.type or "", None)
        if isinstance(cls, type) and issubclass(cls, errors.HappError):
            first = cause.details[0] if cause.details else None
            details = (
                {k: v for k, v in first.items() if k != "status_code"} if isinstance(first, dict) else {}
            )
            # Not cls(...): subclasses take their own constructor arguments; the state is the same.
            err = cls.__new__(cls)
            errors.HappError.__init__(err, cause.message, **details)
            if isinstance(err, errors.DependencyUnavailable):
                err.dependency = str(details.get("dependency", "unknown"))
            return err
        # Not one of ours: a bug in an operation, reported the way an inline run reports it.
        return errors.HandlerFailed(f"{cause.type}: {cause.message}" if cause.type else cause.message)
    if isinstance(cause, TemporalTimeout):
        return errors.HandlerTimedOut(
            f"an operation timed out ({cause.type.name.lower() if cause.type else 'timeout'})"
        )
    return errors.HandlerFailed(str(cause) if cause else "activity failed")


def workflow_clock() -> float:
    return workflow.time()
