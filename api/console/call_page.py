"""A call: its attempts on a timeline, the CRM variables the agent got, the transcript (from
PostgreSQL), the analysis, the CRM writes, and a link to its workflow in the Temporal Web UI.
The only console page that shows the number whole.

GET /console/{integration}/calls/{call_id}

The call's row and its transcripts come from PostgreSQL; its attempts, variables and analysis
from its workflow (the query `GET /{integration}/calls/{call_id}` answers with): when Temporal
cannot be reached the page says so and shows what PostgreSQL has.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from api.console.auth import ConsoleRoute
from api.console.pages import call_flow
from api.console.render import page
from api.deps import RuntimeDep
from api.runtime import ApiRuntime
from control.client import call_state
from happ_integ.calls.models import CallState
from happ_integ.errors import HappError, NotFound
from happ_integ.stores.call_views import handler_writes, transcripts

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
CallId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


def workflow_link(runtime: ApiRuntime, workflow_id: str) -> str | None:
    """The Web UI's list of the workflow's runs (HAPP_TEMPORAL_UI_URL), or None when it is not set."""
    ui = runtime.settings.temporal_ui_url
    if not ui:
        return None
    namespace = quote(runtime.settings.temporal_namespace, safe="")
    query = quote(f'WorkflowId="{workflow_id}"', safe="")
    return f"{ui.rstrip('/')}/namespaces/{namespace}/workflows?query={query}"


@router.get("/{integration}/calls/{call_id}", response_class=HTMLResponse)
async def call(request: Request, integration: str, call_id: CallId, runtime: RuntimeDep) -> HTMLResponse:
    name = call_flow(runtime, integration)
    row = await runtime.resources.calls(name).get(call_id)
    if row is None:
        raise NotFound(f"no call {call_id!r} in {name}")
    state: CallState | None = None
    unavailable = None
    try:
        state = await call_state(await runtime.temporal(), name, call_id)
    except HappError as exc:
        unavailable = exc.message
    pool = runtime.resources.pool
    return page(
        request,
        "call.html",
        title=f"Call {call_id}",
        integration=name,
        row=row,
        state=state,
        unavailable=unavailable,
        conversations=await transcripts(pool, name, call_id),
        writes=await handler_writes(pool, name, call_id),
        workflow_id=row["workflow_id"],
        workflow_url=workflow_link(runtime, row["workflow_id"]),
    )
