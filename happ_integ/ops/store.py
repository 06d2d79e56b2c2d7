"""db.*, cache.*, config.get and creds.get: the operations over the PostgreSQL stores.

Each is a local activity in a durable run (`local=True`): quick, and in the worker's own database.
"""

from __future__ import annotations

import happ_integ.ops.models as m
from happ_integ.ops.operation import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import issue_tags


@operation("db.insert", m.DbInsert, m.Row, local=True)
async def db_insert(res: Resources, arg: m.DbInsert) -> m.Row:
    return m.Row(row=await res.db(arg.integration).insert(arg.table, arg.row))


@operation("db.update", m.DbUpdate, m.Count, local=True)
async def db_update(res: Resources, arg: m.DbUpdate) -> m.Count:
    return m.Count(count=await res.db(arg.integration).update(arg.table, arg.values, arg.where))


@operation("db.select", m.DbSelect, m.Rows, local=True)
async def db_select(res: Resources, arg: m.DbSelect) -> m.Rows:
    rows = await res.db(arg.integration).select(
        arg.table, arg.where, order_by=arg.order_by, limit=arg.limit, offset=arg.offset
    )
    return m.Rows(rows=rows)


@operation("db.delete", m.DbDelete, m.Count, local=True)
async def db_delete(res: Resources, arg: m.DbDelete) -> m.Count:
    return m.Count(count=await res.db(arg.integration).delete(arg.table, arg.where))


@operation("db.query", m.DbQuery, m.QueryResult, local=True)
async def db_query(res: Resources, arg: m.DbQuery) -> m.QueryResult:
    return await res.db(arg.integration).query(arg.sql, *arg.params)


@operation("cache.get", m.CacheGet, m.CacheValue, local=True)
async def cache_get(res: Resources, arg: m.CacheGet) -> m.CacheValue:
    value = await res.cache(arg.integration).get(arg.key)
    return m.CacheValue(found=value is not None, value=value)


@operation("cache.set", m.CacheSet, m.Empty, local=True)
async def cache_set(res: Resources, arg: m.CacheSet) -> m.Empty:
    await res.cache(arg.integration).set(arg.key, arg.value, arg.ttl_seconds)
    return m.Empty()


@operation("cache.delete", m.CacheDelete, m.Empty, local=True)
async def cache_delete(res: Resources, arg: m.CacheDelete) -> m.Empty:
    await res.cache(arg.integration).delete(arg.key)
    return m.Empty()


@operation("config.get", m.ConfigGet, m.ConfigValue, local=True)
async def config_get(res: Resources, arg: m.ConfigGet) -> m.ConfigValue:
    return m.ConfigValue(value=await res.config(arg.integration).get_json(arg.key))


@operation("creds.get", m.CredsGet, m.SecretStatus, local=True)
async def creds_get(res: Resources, arg: m.CredsGet) -> m.SecretStatus:
    status = await secret_status(res, arg.integration)
    # Tags bound to this run: its references resolve in this run only (happ_integ.ops.secrets).
    return m.SecretStatus(names=status, tags=issue_tags(res, arg.integration, status))


async def secret_status(res: Resources, integration: str) -> dict[str, bool]:
    """Every declared secret and every stored one, with whether it is set; sorted by name."""
    status = await res.creds(integration).status()
    for name in res.integration(integration).all_secret_names():
        status.setdefault(name, False)
    return dict(sorted(status.items()))
