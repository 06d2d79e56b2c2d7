"""Built-ins every integration has: /setup, /health, /cron/trigger."""

from __future__ import annotations

from fastapi import APIRouter, Body, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from api.body import GuardedRoute
from api.deps import AdminDep, RuntimeDep, health_response
from api.responses import error_responses
from happ_integ.health import HealthReport, check_health
from happ_integ.integration import Integration
from happ_integ.setup import SetupReport
from workflows.schedules import setup_integration, trigger_schedules


class CronTrigger(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    handler_name: str | None = Field(default=None, alias="handlerName")


class CronTriggered(BaseModel):
    success: bool = True
    triggered: list[str]


def builtins_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Built-ins"], route_class=GuardedRoute)

    @router.post("/setup", response_model=SetupReport, responses=error_responses(401, 500, 503))
    async def setup(runtime: RuntimeDep, _: AdminDep) -> SetupReport:
        """Migrations, placeholder secrets, default configs and Schedules; safe to run again."""
        return await setup_integration(runtime.resources, await runtime.temporal(), integration)

    @router.get(
        "/health",
        response_model=HealthReport,
        responses={
            503: {"description": "A dependency is down: which one is in `checks`", "model": HealthReport}
        },
    )
    async def health(request: Request, runtime: RuntimeDep) -> JSONResponse:
        """PostgreSQL, cache, secrets, Temporal and a worker polling this integration's task queue."""
        report = await check_health(runtime.resources_or_none, await runtime.temporal_or_none(), integration)
        return health_response(report, request, runtime)

    @router.post(
        "/cron/trigger", response_model=CronTriggered, responses=error_responses(400, 401, 404, 413, 422, 503)
    )
    async def cron_trigger(
        runtime: RuntimeDep, _: AdminDep, body: CronTrigger | None = Body(default=None)
    ) -> CronTriggered:
        """Fire every scheduled handler now, or the one named `handlerName`, through its Schedule."""
        handler = body.handler_name if body else None
        return CronTriggered(
            triggered=await trigger_schedules(await runtime.temporal(), integration, handler)
        )

    return router
