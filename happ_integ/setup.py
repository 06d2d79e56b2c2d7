"""`setup`: everything an integration needs before its first request. Idempotent.

report = await setup_integration(resources, client, integration)
"""

from __future__ import annotations

from pydantic import BaseModel, Field
from temporalio.client import Client

from happ_integ.integration import Integration
from happ_integ.ops import Resources
from happ_integ.schedules import ensure_schedules
from happ_integ.stores.migrations import apply_migrations


class SetupReport(BaseModel):
    integration: str
    migrations_applied: list[str] = Field(default_factory=list)
    secrets_created: list[str] = Field(default_factory=list)
    configs_created: list[str] = Field(default_factory=list)
    schedules: dict[str, str] = Field(default_factory=dict)


async def setup_integration(
    resources: Resources, client: Client | None, integration: Integration
) -> SetupReport:
    report = SetupReport(integration=integration.name)
    report.migrations_applied = await apply_migrations(
        resources.pool, integration.name, integration.migrations
    )
    report.secrets_created = await resources.creds(integration.name).ensure_placeholders(
        integration.all_secret_names()
    )
    report.configs_created = await resources.config(integration.name).ensure_defaults()
    if client is not None:
        report.schedules = await ensure_schedules(client, integration)
    return report
