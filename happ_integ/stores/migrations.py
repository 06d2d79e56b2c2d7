"""Ordered SQL migrations of one integration, each applied once.

    MIGRATIONS = [
        Migration("001_calls", "CREATE TABLE {{calls}} (id text PRIMARY KEY, status text NOT NULL)"),
        Migration("002_retry", "ALTER TABLE {{calls}} ADD COLUMN next_retry_at timestamptz"),
    ]
    await apply_migrations(pool, "sofa", MIGRATIONS)   # → ["001_calls", "002_retry"], then [] next time

`{{calls}}` becomes the integration's quoted table name (`"sofa_calls"`). Each migration runs in
its own transaction, so it cannot use statements that refuse one (CREATE INDEX CONCURRENTLY).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import asyncpg

from happ_integ.errors import DependencyUnavailable, NonRetryableError, ValidationFailed
from happ_integ.stores.db import check_integration, expand_tables, forget_columns
from happ_integ.stores.schema import ensure_core_schema, pg_errors

# Session-level, not per transaction: the lock must cover reading what is applied and every
# migration after it, across several transactions.
_LOCK = "SELECT pg_advisory_lock(hashtext('happ_migrations'), hashtext($1))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtext('happ_migrations'), hashtext($1))"
# A migration may rewrite a big table, and waits for another process's migrations to finish: its
# statements get this long, not the pool's per-statement deadline (HAPP_DB_TIMEOUT_SECONDS).
MIGRATION_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True)
class Migration:
    """One step of an integration's schema: `Migration("001_calls", "CREATE TABLE {{calls}} (...)")`."""

    id: str
    sql: str


class MigrationFailed(NonRetryableError):
    """A migration's SQL failed; it was rolled back, the ones before it stay applied."""

    status_code: ClassVar[int] = 500

    def __init__(self, integration: str, migration_id: str, reason: str) -> None:
        super().__init__(
            f"migration {migration_id!r} of {integration} failed and was rolled back: {reason}",
            integration=integration,
            migration_id=migration_id,
        )
        self.migration_id = migration_id


def _check(migrations: Sequence[Migration]) -> None:
    seen: set[str] = set()
    for migration in migrations:
        if not isinstance(migration.id, str) or not migration.id.strip():
            raise ValidationFailed("a migration needs a non-empty id")
        if migration.id in seen:
            raise ValidationFailed(f"migration id {migration.id!r} appears twice")
        seen.add(migration.id)


async def applied_migrations(pool: asyncpg.Pool, integration: str) -> list[str]:
    """Ids already applied for `integration`, oldest first."""
    check_integration(integration)
    await ensure_core_schema(pool)
    with pg_errors():
        rows = await pool.fetch(
            "SELECT id FROM happ_migrations WHERE integration = $1 ORDER BY applied_at, id", integration
        )
    return [r["id"] for r in rows]


async def apply_migrations(
    pool: asyncpg.Pool, integration: str, migrations: Sequence[Migration]
) -> list[str]:
    """Apply, in order, the migrations not applied yet; return their ids. Safe to run concurrently."""
    check_integration(integration)
    _check(migrations)
    # Expanding first means a bad {{name}} fails before anything runs.
    expanded = [(m.id, expand_tables(m.sql, integration)) for m in migrations]
    await ensure_core_schema(pool)
    applied_now: list[str] = []
    with pg_errors():
        async with pool.acquire() as conn:
            await conn.execute(_LOCK, integration, timeout=MIGRATION_TIMEOUT_SECONDS)
            try:
                done = {
                    r["id"]
                    for r in await conn.fetch(
                        "SELECT id FROM happ_migrations WHERE integration = $1", integration
                    )
                }
                for migration_id, sql in expanded:
                    if migration_id in done:
                        continue
                    await _apply_one(conn, integration, migration_id, sql)
                    applied_now.append(migration_id)
            finally:
                if applied_now:
                    forget_columns(pool, integration)
                if not conn.is_closed():
                    await conn.execute(_UNLOCK, integration)
    return applied_now


async def _apply_one(conn: asyncpg.Connection, integration: str, migration_id: str, sql: str) -> None:
    try:
        async with conn.transaction():
            await conn.execute(sql, timeout=MIGRATION_TIMEOUT_SECONDS)
            await conn.execute(
                "INSERT INTO happ_migrations (integration, id) VALUES ($1, $2)", integration, migration_id
            )
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise DependencyUnavailable(
            "PostgreSQL", f"PostgreSQL went away during migration {migration_id!r}"
        ) from exc
    except asyncpg.PostgresError as exc:
        raise MigrationFailed(integration, migration_id, str(exc)) from exc
