"""A campaign checked before it is created (admin token): nothing is stored and nothing dialled.

POST /{integration}/campaigns/preflight     the body of POST /{integration}/campaigns → 200

Each recipient as creating would take it (valid or rejected, the same errors), its region, the
zones its calling window is read in, whether it is on the do-not-call list, the required variables
it lacks and when it could first be dialled; the counts; and when the campaign would end.
Numbers are shown masked.
"""

from __future__ import annotations

import asyncpg
from fastapi import APIRouter

from api.body import GuardedRoute
from api.campaign_models import CampaignCreate
from api.deps import AdminDep, RuntimeDep
from api.responses import error_responses
from api.runtime import ApiRuntime
from happ_integ.campaigns.preflight import DEFAULT_CALL_SECONDS, Preflight, preflight, required_names
from happ_integ.campaigns.recipients import check_recipients
from happ_integ.integration import Integration
from happ_integ.stores.db import quote_ident, table_name
from happ_integ.stores.schema import pg_errors

# The integration's completed calls of the last 30 days: their average length, in seconds.
_AVERAGE_SQL = """SELECT EXTRACT(EPOCH FROM avg(updated_at - created_at))::float8 FROM {calls}
WHERE status = 'completed' AND created_at > now() - interval '30 days'"""


def campaign_preflight_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Campaigns"], route_class=GuardedRoute)
    name = integration.name

    @router.post(
        "/campaigns/preflight", response_model=Preflight, responses=error_responses(401, 413, 422, 503)
    )
    async def campaign_preflight(body: CampaignCreate, runtime: RuntimeDep, _: AdminDep) -> Preflight:
        """What creating this campaign would do, without creating it: each recipient checked
        (number, do-not-call list, contact caps, time zones, required variables, first dial) and the projected
        end. Nothing is stored and nothing dialled."""
        config = runtime.resources.config(name)
        handling = await runtime.resources.call_handling(name)
        accepted, rejected = check_recipients(body.recipients, handling.default_region)
        phones = [r.phone for r in accepted]
        suppressed = await runtime.resources.suppressions().suppressed_among(phones, name)
        policy = await runtime.resources.contact_policy(name)
        now, attempts = await runtime.resources.contact_attempts().states_of(phones, policy)
        return preflight(
            body.recipients,
            accepted,
            rejected,
            hours=body.calling_hours if body.calling_hours is not None else handling.calling_hours,
            now=now,
            start_at=body.start_at,
            suppressed=suppressed,
            required_variables=required_names(await config.get("required_variables")),
            average_call_seconds=await _average_call_seconds(runtime, name),
            concurrency=body.max_concurrency or handling.concurrency_limit,
            contact_policy=policy,
            attempts=attempts,
        )

    return router


async def _average_call_seconds(runtime: ApiRuntime, integration: str) -> float:
    """The average length of the integration's completed calls of the last 30 days, or
    `DEFAULT_CALL_SECONDS` when it has none (or no calls table yet)."""
    sql = _AVERAGE_SQL.format(calls=quote_ident(table_name(integration, "calls")))
    with pg_errors():
        try:
            average = await runtime.resources.pool.fetchval(sql)
        except asyncpg.UndefinedTableError:
            return DEFAULT_CALL_SECONDS
    return float(average) if average else DEFAULT_CALL_SECONDS
