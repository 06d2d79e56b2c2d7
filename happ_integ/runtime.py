"""Opening what a process needs: the pool, the secret box, the HTTP client, the Temporal client.

resources = await open_resources(settings, integrations)
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from happ_integ.integration import Integration
from happ_integ.ops import Resources
from happ_integ.settings import Settings
from happ_integ.stores.changes import ChangeFeed
from happ_integ.stores.creds import SecretBox
from happ_integ.stores.pool import create_pool


def require_database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError(
            "DATABASE_URL is not set: run `happ dev`, or point DATABASE_URL at a PostgreSQL server"
        )
    return settings.database_url


async def open_resources(
    settings: Settings,
    integrations: Mapping[str, Integration],
    *,
    lazy_pool: bool = False,
    max_pool: int = 10,
    change_feed: bool = False,
) -> Resources:
    """`lazy_pool` opens no connection yet, so an API can start (and answer 503) while PostgreSQL is
    down; `change_feed` keeps config and secrets in memory, ended by PostgreSQL's notifications
    (`happ_integ.stores.changes`)."""
    pool = await create_pool(
        require_database_url(settings),
        min_size=0 if lazy_pool else 1,
        max_size=max_pool,
        timeout_seconds=settings.db_timeout_seconds,
    )
    http = httpx.AsyncClient(
        timeout=httpx.Timeout(30.0), follow_redirects=False, headers={"User-Agent": "happ-integ/0.1"}
    )
    changes = None
    if change_feed:
        changes = ChangeFeed(require_database_url(settings))
        await changes.start()
    return Resources(
        pool=pool,
        settings=settings,
        http=http,
        box=SecretBox(settings.require_secret_key()),
        integrations=dict(integrations),
        changes=changes,
    )


async def close_resources(resources: Resources) -> None:
    if resources.changes is not None:
        await resources.changes.stop()
    if "query_roles" in resources.__dict__:  # opened only if a handler ran ctx.db.query
        await resources.query_roles.close()
    await resources.http.aclose()
    await resources.pool.close()
