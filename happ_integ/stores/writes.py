"""The ledger of writes to outside services, so a durable run makes each of them once.

    ledger = WriteLedger(pool, "sofa")
    entry = await ledger.begin("sofa:handler:crm-postcall:c_1/7")   # the activity's own key
    if entry.done: use entry.result                  # a retry after the write succeeded
    elif entry.interrupted: ask the service whether the write landed, since entry.started_at
    ... write ...
    await ledger.finish(key, result)

An activity is retried after a timeout or a crash; its key (workflow id and activity id) is the
same for every attempt, so the ledger tells a retry from a first attempt. An attempt that fails
with an error it could report gives its entry back (`forget`): its retry is a first attempt again.
Only an attempt that died mid-request (a killed worker) leaves an entry `interrupted`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema


@dataclass(frozen=True)
class LedgerEntry:
    done: bool
    interrupted: bool  # an earlier attempt began and never finished: the write may have landed
    started_at: datetime
    result: Any = None


class WriteLedger:
    def __init__(self, pool: asyncpg.Pool, integration: str) -> None:
        self.pool = pool
        self.integration = check_integration(integration)

    async def begin(self, key: str) -> LedgerEntry:
        async def begin() -> LedgerEntry:
            inserted = await self.pool.fetchrow(
                "INSERT INTO happ_writes (integration, key) VALUES ($1, $2)"
                " ON CONFLICT DO NOTHING RETURNING started_at",
                self.integration,
                key,
            )
            if inserted is not None:
                return LedgerEntry(done=False, interrupted=False, started_at=inserted["started_at"])
            row = await self.pool.fetchrow(
                "SELECT done, result, started_at FROM happ_writes WHERE integration = $1 AND key = $2",
                self.integration,
                key,
            )
            assert row is not None
            return LedgerEntry(
                done=row["done"],
                interrupted=not row["done"],
                started_at=row["started_at"],
                result=row["result"],
            )

        return await with_core_schema(self.pool, begin)

    async def finish(self, key: str, result: Any) -> None:
        await with_core_schema(
            self.pool,
            lambda: self.pool.execute(
                "UPDATE happ_writes SET done = true, result = $3 WHERE integration = $1 AND key = $2",
                self.integration,
                key,
                result,
            ),
        )

    async def forget(self, key: str) -> None:
        await with_core_schema(
            self.pool,
            lambda: self.pool.execute(
                "DELETE FROM happ_writes WHERE integration = $1 AND key = $2 AND NOT done",
                self.integration,
                key,
            ),
        )
