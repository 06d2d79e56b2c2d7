"""Today: per integration, the calls in flight by status (live), the latest calls, and what the
calls that ended in the last 24 hours and 7 days came to.

GET /console/today
GET /console/today/live/{integration}     the live part (htmx, every 3 s)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.auth import ConsoleRoute
from api.console.charts import bar_chart
from api.console.pages import call_flow, call_flows
from api.console.render import page
from api.deps import RuntimeDep
from api.runtime import ApiRuntime
from happ_integ.stores.call_views import calls_now, period

router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)
PERIODS = (("24h", "24 hours", timedelta(hours=24)), ("7d", "7 days", timedelta(days=7)))
LATEST = 8


async def _live(runtime: ApiRuntime, name: str) -> dict[str, Any]:
    latest, _ = await runtime.resources.calls(name).list(limit=LATEST)
    return {"name": name, "now": await calls_now(runtime.resources.pool, name), "latest": latest}


@router.get("/today", response_class=HTMLResponse)
async def today(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    sections = []
    for name in call_flows(runtime):
        section = await _live(runtime, name)
        section["periods"] = []
        for key, title, window in PERIODS:
            data = await period(runtime.resources.pool, name, window)
            section["periods"].append(
                {"key": key, "title": title, "data": data, "chart": bar_chart(data.outcomes)}
            )
        sections.append(section)
    return page(request, "today.html", title="Today", sections=sections, now=datetime.now(UTC))


@router.get("/today/live/{integration}", response_class=HTMLResponse)
async def today_live(integration: str, request: Request, runtime: RuntimeDep) -> HTMLResponse:
    section = await _live(runtime, call_flow(runtime, integration))
    return page(request, "_today_live.html", s=section, now=datetime.now(UTC))
