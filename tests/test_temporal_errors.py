"""What each Temporal client error becomes at the gateway: the status a webhook sender sees."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from control.client import _patient_update, temporal_error
from happ_integ.errors import WorkflowFinished


@pytest.mark.parametrize(
    ("error", "status"),
    [
        # An update the worker did not answer within the RPC's time: the sender resends (same
        # update id, so it is applied once) instead of seeing a 500.
        (WorkflowUpdateRPCTimeoutOrCancelledError(), 503),
        (RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b""), 503),
        (RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b""), 503),
        (RPCError("no such workflow", RPCStatusCode.NOT_FOUND, b""), 404),
        (RPCError("closed", RPCStatusCode.FAILED_PRECONDITION, b""), 409),
        (RPCError("bad search attribute", RPCStatusCode.INVALID_ARGUMENT, b""), 422),
        (WorkflowAlreadyStartedError("sofa:call:c_1", "OutboundCall"), 409),
    ],
)
def test_each_client_error_has_its_status(error: BaseException, status: int) -> None:
    mapped = temporal_error(error, "sofa:call:c_1")
    assert mapped is not None and mapped.status_code == status
    assert mapped.details["workflow_id"] == "sofa:call:c_1"


def test_an_update_that_races_the_end_of_its_run_is_workflow_finished() -> None:
    # A webhook that reaches a call while its run completes: the routes answer it like one for an
    # ended call (200, nothing changed) instead of passing the 409 to the sender.
    closing = RPCError("workflow execution already completed", RPCStatusCode.FAILED_PRECONDITION, b"")
    assert isinstance(temporal_error(closing), WorkflowFinished)


def test_anything_else_is_not_mapped() -> None:
    assert temporal_error(ValueError("a bug")) is None


class Flaky:
    """An `execute_update` that fails with each of `failures` in turn, then answers."""

    def __init__(self, *failures: BaseException) -> None:
        self.failures = list(failures)
        self.ids: list[str] = []

    async def __call__(self, update: object, event: object, *, id: str) -> str:
        self.ids.append(id)
        if self.failures:
            raise self.failures.pop(0)
        return "answered"


def timed_out(cause: BaseException) -> WorkflowUpdateRPCTimeoutOrCancelledError:
    error = WorkflowUpdateRPCTimeoutOrCancelledError()
    error.__cause__ = cause
    return error


async def test_a_slow_update_is_sent_again_with_the_same_id() -> None:
    deadline = RPCError("deadline", RPCStatusCode.DEADLINE_EXCEEDED, b"")
    aborted = RPCError("workflow update was aborted", RPCStatusCode.UNAVAILABLE, b"")
    execute = Flaky(timed_out(deadline), aborted, timed_out(deadline))
    assert await _patient_update(execute, "call_event", {}, "call-event:abc") == "answered"
    assert execute.ids == ["call-event:abc"] * 4  # Temporal answers a resent id once

    fresh = Flaky(timed_out(deadline))
    assert await _patient_update(fresh, "call_event", {}, None) == "answered"
    assert len(set(fresh.ids)) == 1 and fresh.ids[0].startswith("delivery:")


@pytest.mark.parametrize(
    "failure",
    [
        timed_out(asyncio.CancelledError()),  # the sender hung up: nothing to wait for
        RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b""),  # Temporal down: 503 now
        RPCError("no such workflow", RPCStatusCode.NOT_FOUND, b""),
    ],
)
async def test_other_failures_are_not_waited_out(failure: BaseException) -> None:
    execute = Flaky(failure)
    with pytest.raises(type(failure)):
        await _patient_update(execute, "call_event", {}, "call-event:abc")
    assert len(execute.ids) == 1
