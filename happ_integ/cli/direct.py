"""Commands that go straight to PostgreSQL and Temporal (call, originate, setup, trigger, rotate-key).

    async with direct(settings, {"sofa": integration}) as (resources, client):
        await require_calls_table(resources, "sofa")
        ...

Unreachable servers and missing settings become one `CliError` naming the setting to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from pydantic import SecretStr

from happ_integ.cli.common import CliError, CliSettings, without_password

if TYPE_CHECKING:
    from temporalio.client import Client

    from happ_integ.integration import Integration
    from happ_integ.ops import Resources

CONNECT_SECONDS = 15.0
DEV_HINT = "start `make dev` (or `happ dev`) in this folder"


async def connect_temporal(settings: CliSettings) -> Client:
    from happ_integ.codec import PayloadEncryptionRequired, require_payload_encryption
    from happ_integ.temporal import connect_settings

    if not settings.temporal_address:
        raise CliError(
            f"TEMPORAL_ADDRESS is not set: {DEV_HINT}, or point TEMPORAL_ADDRESS at a Temporal frontend"
        )
    try:
        # What this command starts or schedules (a call's number, a schedule's payload) is encrypted.
        require_payload_encryption(settings, "happ")
    except PayloadEncryptionRequired as exc:
        raise CliError(str(exc).removeprefix("happ: ")) from None
    try:
        return await asyncio.wait_for(connect_settings(settings), CONNECT_SECONDS)
    except (RuntimeError, OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else "connection refused"
        if "refused" not in str(exc).lower() and not isinstance(exc, TimeoutError):
            reason = str(exc).split(":", 1)[0]
        raise CliError(
            f"cannot reach Temporal at {settings.temporal_address} ({reason}): {DEV_HINT}, "
            "or point TEMPORAL_ADDRESS at a running Temporal frontend"
        ) from None


async def open_database(
    settings: CliSettings, integrations: Mapping[str, Integration], *, need_secret_key: bool
) -> Resources:
    import asyncpg

    from happ_integ.keys import generate_key
    from happ_integ.ops.resources import open_resources

    database_url = settings.database_url
    if not database_url:
        raise CliError(f"DATABASE_URL is not set: {DEV_HINT}, or point DATABASE_URL at the PostgreSQL server")
    if settings.secret_key is None:
        if need_secret_key:
            raise CliError(
                "HAPP_SECRET_KEY is not set: export the key the API and workers run with "
                "(`happ dev` keeps it in .happ/dev-secrets.json)"
            )
        # This command reads and writes no secret: a throwaway key, never used, opens the stores.
        settings = settings.model_copy(update={"secret_key": SecretStr(generate_key())})
    where = without_password(database_url)
    try:
        return await asyncio.wait_for(open_resources(settings, integrations, max_pool=4), CONNECT_SECONDS)
    except (OSError, TimeoutError) as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise CliError(
            f"cannot reach PostgreSQL at {where} ({reason}): {DEV_HINT}, or point DATABASE_URL at a "
            "running server"
        ) from None
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise CliError(f"PostgreSQL at {where} refused the connection ({exc}): fix DATABASE_URL") from None


@asynccontextmanager
async def direct(
    settings: CliSettings,
    integrations: Mapping[str, Integration],
    *,
    temporal: bool = True,
    need_secret_key: bool = False,
) -> AsyncIterator[tuple[Resources, Client | None]]:
    from happ_integ.ops.resources import close_resources

    client = await connect_temporal(settings) if temporal else None
    resources = await open_database(settings, integrations, need_secret_key=need_secret_key)
    try:
        yield resources, client
    finally:
        await close_resources(resources)


async def require_calls_table(resources: Resources, integration: str) -> None:
    """The call flow's table exists, i.e. `happ setup` has run for the integration."""
    from happ_integ.stores.db import table_name

    found = await resources.pool.fetchval("SELECT to_regclass($1)", table_name(integration, "calls"))
    if found is None:
        raise CliError(
            f"integration {integration!r} is not set up in this database (no {integration}_calls table): "
            f"run `happ setup {integration}` first"
        )
