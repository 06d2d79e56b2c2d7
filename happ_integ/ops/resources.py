"""What operations run against, and how a process opens and closes it: the pool, the secret box,
one shared HTTP client, the settings.

    resources = await open_resources(settings, integrations)   # happ api, happ worker, scripts, tests
    ...
    await close_resources(resources)
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import asyncpg
import httpx

from happ_integ.settings import Settings
from happ_integ.stores.changes import ChangeFeed
from happ_integ.stores.creds import CredsStore, SecretBox
from happ_integ.stores.pool import create_pool

if TYPE_CHECKING:
    from happ_integ.calls.config import CallHandling
    from happ_integ.calls.contact_policy import ContactPolicy
    from happ_integ.integration import Integration
    from happ_integ.stores.cache import Cache
    from happ_integ.stores.calls import CallStore
    from happ_integ.stores.campaigns import CampaignStore
    from happ_integ.stores.config import ConfigStore
    from happ_integ.stores.contact_attempts import ContactAttempts
    from happ_integ.stores.db import Db
    from happ_integ.stores.dedup import DedupStore
    from happ_integ.stores.query_roles import QueryRoles
    from happ_integ.stores.rate_limits import RateLimiter
    from happ_integ.stores.suppressions import SuppressionStore


@dataclass
class Resources:
    pool: asyncpg.Pool
    settings: Settings
    http: httpx.AsyncClient
    box: SecretBox
    integrations: Mapping[str, Integration]
    # In-memory config and secret rows, ended by PostgreSQL's notifications (`happ api` and
    # `happ worker` open one: agent-init and every CRM activity read them); None reads PostgreSQL
    # every time.
    changes: ChangeFeed | None = None

    @functools.cached_property
    def handler_env(self) -> Settings:
        """`ctx.env` for inline runs: made once, not per request."""
        return self.settings.for_handlers()

    def integration(self, name: str) -> Integration:
        from happ_integ.errors import NotFound

        try:
            return self.integrations[name]
        except KeyError:
            raise NotFound(f"unknown integration {name!r}") from None

    @functools.cached_property
    def query_roles(self) -> QueryRoles:
        """The integrations' own PostgreSQL roles, which `ctx.db.query` runs as."""
        from happ_integ.stores.query_roles import QueryRoles

        return QueryRoles(
            self.pool,
            self.settings.database_url or "",
            self.settings.require_secret_key(),
            other_integrations=self.integrations,
            timeout_seconds=self.settings.db_timeout_seconds,
        )

    def db(self, integration: str) -> Db:
        from happ_integ.stores.db import Db

        # The roles are made on the first `ctx.db.query`: insert, select … never need them.
        return Db(self.pool, integration, lambda: self.query_roles)

    def cache(self, integration: str) -> Cache:
        from happ_integ.stores.cache import Cache

        return Cache(self.pool, integration)

    def config(self, integration: str) -> ConfigStore:
        from happ_integ.stores.config import ConfigStore

        defaults: Mapping[str, Any] = (
            self.integrations[integration].default_configs if integration in self.integrations else {}
        )
        return ConfigStore(self.pool, integration, defaults, changes=self.changes)

    async def call_handling(self, integration: str) -> CallHandling:
        """The integration's `call_handling` config: what is stored over the defaults."""
        from happ_integ.calls.config import CallHandling

        handling = await self.config(integration).get("call_handling", CallHandling)
        return handling or CallHandling()

    async def contact_policy(self, integration: str) -> ContactPolicy:
        """The integration's `contact_policy` config: what is stored over the defaults (an
        integration without the default registered gets the defaults too)."""
        from happ_integ.calls.contact_policy import CONFIG_KEY, ContactPolicy

        policy = await self.config(integration).get(CONFIG_KEY, ContactPolicy)
        return policy or ContactPolicy()

    def calls(self, integration: str) -> CallStore:
        from happ_integ.stores.calls import CallStore

        return CallStore(self.pool, integration)

    def suppressions(self) -> SuppressionStore:
        """The do-not-call list every integration shares (`happ_suppressions`)."""
        from happ_integ.stores.suppressions import SuppressionStore

        return SuppressionStore(self.pool)

    def contact_attempts(self) -> ContactAttempts:
        """The dials of every number by every integration: `contact_policy`'s caps."""
        from happ_integ.stores.contact_attempts import ContactAttempts

        return ContactAttempts(self.pool)

    def campaigns(self, integration: str) -> CampaignStore:
        from happ_integ.stores.campaigns import CampaignStore

        return CampaignStore(self.pool, integration)

    def dedup(self, integration: str, handler: str) -> DedupStore:
        from happ_integ.stores.dedup import DedupStore

        return DedupStore(self.pool, integration, handler)

    def rate_limiter(self, integration: str, handler: str) -> RateLimiter:
        from happ_integ.stores.rate_limits import RateLimiter

        return RateLimiter(self.pool, integration, handler)

    def creds(self, integration: str) -> CredsStore:
        from happ_integ.logs import redactor

        # Every value revealed in this process is masked in its logs too, wherever it turns up.
        return CredsStore(
            self.pool, integration, self.box, on_reveal=redactor.add_secret, changes=self.changes
        )


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
