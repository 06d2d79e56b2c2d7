"""The calls of an integration, for an operator (admin token): look one up, list them, cancel one.

GET  /{integration}/calls/{call_id}          the call's state (its workflow's query)
GET  /{integration}/calls?status=&limit=&cursor=
POST /{integration}/calls/{call_id}/cancel
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from api.body import GuardedRoute
from api.deps import AdminDep, RuntimeDep
from api.responses import error_responses
from control.client import call_state, cancel_call
from happ_integ.calls.models import CallState, CallStatus
from happ_integ.calls.phones import mask_phone
from happ_integ.errors import Conflict, NotFound
from happ_integ.integration import Integration

CallId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class CallRow(BaseModel):
    call_id: str
    status: CallStatus
    attempt: int
    phone_masked: str
    next_attempt_at: str | None = None
    outcome: str | None = None
    reason: str | None = None
    provider_call_id: str | None = None
    conversation_id: str | None = None
    created_at: str
    updated_at: str


class CallPage(BaseModel):
    calls: list[CallRow]
    next_cursor: str | None = Field(default=None, description="pass as `cursor` for the next page")


def calls_admin_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Calls"], route_class=GuardedRoute)
    name = integration.name

    @router.get("/calls", response_model=CallPage, responses=error_responses(401, 422, 503))
    async def list_calls(
        runtime: RuntimeDep,
        _: AdminDep,
        status: CallStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
    ) -> CallPage:
        """Calls from `{integration}_calls`, newest first."""
        rows, next_cursor = await runtime.resources.calls(name).list(status, limit, cursor)
        return CallPage(calls=[_row(r) for r in rows], next_cursor=next_cursor)

    @router.get("/calls/{call_id}", response_model=CallState, responses=error_responses(401, 404, 422, 503))
    async def get_call(call_id: CallId, runtime: RuntimeDep, _: AdminDep) -> CallState:
        """The call's whole state: status, attempts, next attempt, ids, variables, post-call result."""
        if await runtime.resources.calls(name).get(call_id) is None:
            raise NotFound(f"no call {call_id!r}")
        return await call_state(await runtime.temporal(), name, call_id)

    @router.post(
        "/calls/{call_id}/cancel",
        response_model=CallState,
        responses=error_responses(401, 404, 409, 422, 503),
    )
    async def cancel(call_id: CallId, runtime: RuntimeDep, _: AdminDep) -> CallState:
        """No further attempt; a call on the line finishes and its post-call still runs."""
        if await runtime.resources.calls(name).get(call_id) is None:
            raise NotFound(f"no call {call_id!r}")
        try:
            return await cancel_call(await runtime.temporal(), name, call_id)
        except NotFound:
            raise Conflict(f"call {call_id!r} has already ended") from None

    return router


def _row(row: dict[str, Any]) -> CallRow:
    return CallRow(
        **{k: v for k, v in row.items() if k in CallRow.model_fields}, phone_masked=mask_phone(row["phone"])
    )
