"""Provisioning an integration's stores, the part of `happ setup` (`POST /{integration}/setup`) that
is not Temporal's: migrations, placeholder secrets, default configs. Idempotent.

    report = await prepare_integration(resources, integration)

The schedules are the rest of `setup` (`control.schedules.setup_integration` does both).
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from happ_integ.integration import Integration
from happ_integ.ops import Resources
from happ_integ.stores.migrations import apply_migrations


class SetupReport(BaseModel):
    integration: str
    migrations_applied: list[str] = Field(default_factory=list)
    secrets_created: list[str] = Field(default_factory=list)
    configs_created: list[str] = Field(default_factory=list)
    schedules: dict[str, str] = Field(default_factory=dict)


async def prepare_integration(resources: Resources, integration: Integration) -> SetupReport:
    report = SetupReport(integration=integration.name)
    report.migrations_applied = await apply_migrations(
        resources.pool, integration.name, integration.migrations
    )
    report.secrets_created = await resources.creds(integration.name).ensure_placeholders(
        integration.all_secret_names()
    )
    report.configs_created = await resources.config(integration.name).ensure_defaults()
    return report
