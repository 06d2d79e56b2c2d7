"""The asyncpg pool, with JSON and JSONB decoded to Python values."""

from __future__ import annotations

import json
from typing import Any

import asyncpg


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(type_name, encoder=_dumps, decoder=json.loads, schema="pg_catalog")


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


class _Connection(asyncpg.Connection):  # type: ignore[misc]
    """A pooled connection returned without asyncpg's reset query (`RESET ALL`, `UNLISTEN *`,
    `CLOSE ALL`, advisory unlocks): a round trip to PostgreSQL on every release, for session state
    the stores never create (no SET, LISTEN, cursors or session advisory locks; the schema lock
    is a transaction lock). An open transaction is still rolled back on release."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        command_timeout=30,
        connection_class=_Connection,
    )
    assert pool is not None
    return pool
