"""What each Temporal client error becomes at the gateway: the status a webhook sender sees."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from happ_integ.errors import WorkflowFinished
from workflows.control import temporal_error


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
