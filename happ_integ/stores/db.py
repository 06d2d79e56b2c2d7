"""An integration's own tables: prefixed names, Mongo-style filters, JSON-shaped rows.

    db = Db(pool, "sofa")
    await db.insert("calls", {"id": "c1", "status": "initiated", "next_retry_at": "2025-01-01T10:00:00Z"})
    due = await db.select("calls", {"next_retry_at": {"$lte": now_iso}}, order_by="-created_at", limit=10)
    await db.update("calls", {"status": "failed"}, {"id": "c1"})
    res = await db.query("SELECT count(*) AS n FROM {{calls}} WHERE status = ANY($1)", ["initiated"])
    res.data[0]["n"]

Values are bound, identifiers validated and quoted. Values are coerced to the column's type
(handlers written for SQLite pass ISO strings for timestamps, numbers for text), and rows come
back JSON-shaped, so a handler sees the same thing in-process and through a Temporal activity.

`query` takes any SQL, so for handlers (`Resources.db`) it runs as the integration's own
PostgreSQL role (`happ_integ.stores.query_roles`): its tables (`sofa_*`) and nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg
from pydantic import BaseModel

from happ_integ.errors import Forbidden, NotFound, ValidationFailed
from happ_integ.stores.schema import coerce_value, pg_errors, to_json

if TYPE_CHECKING:
    from happ_integ.stores.query_roles import QueryRoles

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
INTEGRATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}")
_COMPARISONS = {"$eq": "=", "$ne": "IS DISTINCT FROM", "$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}
OPERATORS = (*_COMPARISONS, "$in", "$like")

Coerce = Callable[[str, Any], Any]


def _as_is(_column: str, value: Any) -> Any:
    return value


def quote_ident(name: str) -> str:
    """`quote_ident("calls")` → `'"calls"'`; anything but a plain identifier is ValidationFailed."""
    if not isinstance(name, str) or not IDENTIFIER.match(name):
        raise ValidationFailed(f"invalid identifier {name!r}: use letters, digits and _ (at most 63)")
    return f'"{name}"'


def check_integration(name: str) -> str:
    """`check_integration("sofa")` → `"sofa"`; the name becomes a table prefix, so it is strict."""
    if not isinstance(name, str) or not INTEGRATION_NAME.match(name):
        raise ValidationFailed(f"invalid integration name {name!r}: use lowercase letters, digits and _")
    return name


def table_name(integration: str, table: str) -> str:
    """`table_name("sofa", "calls")` → `"sofa_calls"` (unquoted, validated)."""
    full = f"{check_integration(integration)}_{table}"
    quote_ident(table)
    quote_ident(full)
    return full


def expand_tables(sql: str, integration: str) -> str:
    """`expand_tables("SELECT * FROM {{calls}}", "sofa")` → `'SELECT * FROM "sofa_calls"'`."""
    return _PLACEHOLDER.sub(lambda m: quote_ident(table_name(integration, m.group(1).strip())), sql)


def build_where(where: Mapping[str, Any] | None, params: list[Any], coerce: Coerce = _as_is) -> str:
    """`build_where({"a": 1, "b": {"$in": [2, 3]}}, params)` → `' WHERE "a" = $1 AND "b" = ANY($2)'`.

    Appends the bound values to `params`; returns "" for no filter.
    """
    clauses: list[str] = []
    for column, condition in (where or {}).items():
        col = quote_ident(column)
        for op, value in _operators(column, condition):
            clauses.append(_clause(col, column, op, value, params, coerce))
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def _operators(column: str, condition: Any) -> list[tuple[str, Any]]:
    if not (isinstance(condition, Mapping) and any(str(k).startswith("$") for k in condition)):
        return [("$eq", condition)]
    for op in condition:
        if op not in OPERATORS:
            raise ValidationFailed(
                f"unknown filter operator {op!r} on column {column!r}; use one of {', '.join(OPERATORS)}"
            )
    return list(condition.items())


def _clause(col: str, column: str, op: str, value: Any, params: list[Any], coerce: Coerce) -> str:
    if op in ("$eq", "$ne") and value is None:
        return f"{col} IS {'NOT ' if op == '$ne' else ''}NULL"
    if value is None:
        raise ValidationFailed(f"filter {op} on column {column!r} needs a value, not null")
    if op == "$in":
        if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
            raise ValidationFailed(f"filter $in on column {column!r} takes a list")
        items = list(value)
        params.append([coerce(column, item) for item in items if item is not None])
        any_of = f"{col} = ANY(${len(params)})"
        return f"({any_of} OR {col} IS NULL)" if None in items else any_of
    if op == "$like":
        params.append(str(value))
        return f"{col} LIKE ${len(params)}"
    params.append(coerce(column, value))
    return f"{col} {_COMPARISONS[op]} ${len(params)}"


def order_columns(order_by: str | Sequence[str] | None) -> list[tuple[str, bool]]:
    """`order_columns(["-created_at", "id"])` → `[("created_at", True), ("id", False)]` (True: DESC)."""
    if order_by is None:
        return []
    items = [order_by] if isinstance(order_by, str) else list(order_by)
    return [(item[1:], True) if item.startswith("-") else (item, False) for item in items]


def _page(value: int | None, what: str, params: list[Any]) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationFailed(f"{what.lower()} must be a non-negative integer")
    params.append(value)
    return f" {what} ${len(params)}"


def build_select(
    table_q: str,
    where: Mapping[str, Any] | None = None,
    *,
    order_by: str | Sequence[str] | None = None,
    limit: int | None = None,
    offset: int | None = None,
    coerce: Coerce = _as_is,
) -> tuple[str, list[Any]]:
    """`build_select('"sofa_calls"', {"id": "c1"}, order_by="-id", limit=1)` → (sql, params)."""
    params: list[Any] = []
    sql = f"SELECT * FROM {table_q}{build_where(where, params, coerce)}"
    order = [f"{quote_ident(c)}{' DESC' if desc else ''}" for c, desc in order_columns(order_by)]
    if order:
        sql += f" ORDER BY {', '.join(order)}"
    return sql + _page(limit, "LIMIT", params) + _page(offset, "OFFSET", params), params


def build_insert(table_q: str, row: Mapping[str, Any], coerce: Coerce = _as_is) -> tuple[str, list[Any]]:
    """`build_insert('"sofa_calls"', {"id": "c1"})` → `('INSERT INTO … ("id") VALUES ($1) RETURNING *', ["c1"])`."""
    if not row:
        return f"INSERT INTO {table_q} DEFAULT VALUES RETURNING *", []
    columns = ", ".join(quote_ident(c) for c in row)
    params = [coerce(c, v) for c, v in row.items()]
    marks = ", ".join(f"${i}" for i in range(1, len(params) + 1))
    return f"INSERT INTO {table_q} ({columns}) VALUES ({marks}) RETURNING *", params


def build_update(
    table_q: str, values: Mapping[str, Any], where: Mapping[str, Any], coerce: Coerce = _as_is
) -> tuple[str, list[Any]]:
    """`build_update('"sofa_calls"', {"status": "x"}, {"id": "c1"})` → (sql, params); empty where refused."""
    if not values:
        raise ValidationFailed("update needs at least one value to set")
    if not where:
        raise ValidationFailed("update needs a non-empty where: refusing to change every row")
    params: list[Any] = []
    sets = []
    for column, value in values.items():
        sets.append(f"{quote_ident(column)} = ${len(params) + 1}")
        params.append(coerce(column, value))
    return f"UPDATE {table_q} SET {', '.join(sets)}{build_where(where, params, coerce)}", params


def build_delete(table_q: str, where: Mapping[str, Any], coerce: Coerce = _as_is) -> tuple[str, list[Any]]:
    """`build_delete('"sofa_calls"', {"id": "c1"})` → `('DELETE FROM "sofa_calls" WHERE "id" = $1', ["c1"])`."""
    if not where:
        raise ValidationFailed("delete needs a non-empty where: refusing to delete every row")
    params: list[Any] = []
    return f"DELETE FROM {table_q}{build_where(where, params, coerce)}", params


class QueryResult(BaseModel):
    """What `Db.query` (and so `ctx.db.query`, the `db.query` operation) returns: JSON-shaped rows
    and the number of rows the statement touched."""

    data: list[dict[str, Any]]
    row_count: int = 0


_COLUMNS_SQL = """
SELECT a.attname AS name,
       CASE WHEN t.typcategory = 'A' THEN e.typname || '[]' ELSE t.typname END AS type
FROM pg_attribute a
JOIN pg_type d ON d.oid = a.atttypid
JOIN pg_type t ON t.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END
LEFT JOIN pg_type e ON e.oid = t.typelem
WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
"""

# Per pool, then per table: the pool is the key (not its id) so a new pool can never inherit
# a dead one's entries. Pools live as long as the process, so this does not leak in practice.
_column_cache: dict[asyncpg.Pool, dict[str, dict[str, str]]] = {}


def forget_columns(pool: asyncpg.Pool, integration: str | None = None) -> None:
    """Drop cached column types (all, or one integration's) after the schema changed."""
    tables = _column_cache.get(pool, {})
    for name in [n for n in tables if integration is None or n.startswith(f"{integration}_")]:
        del tables[name]


def _status_count(status: str | None, fallback: int) -> int:
    last = (status or "").rsplit(" ", 1)[-1]
    return int(last) if last.isdigit() else fallback


class _Denied(Exception):
    """PostgreSQL refused the confined role a privilege (kept apart from `pg_errors`' translation)."""

    def __init__(self, error: asyncpg.InsufficientPrivilegeError) -> None:
        super().__init__(str(error))
        self.error = error


class Db:
    """The tables of one integration; see the module docstring for usage.

    With `query_roles` (what handlers get, through `Resources.db`), `query` runs as the
    integration's own PostgreSQL role, which may read and write its tables and nothing else; the
    other methods build their SQL themselves from validated, prefixed names.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        integration: str,
        query_roles: QueryRoles | Callable[[], QueryRoles] | None = None,
    ) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        # A callable is asked only when `query` runs: the other methods never need a role.
        self._query_roles = query_roles

    @property
    def query_roles(self) -> QueryRoles | None:
        roles = self._query_roles
        return roles() if callable(roles) else roles

    def table(self, table: str) -> str:
        """`Db(pool, "sofa").table("calls")` → `'"sofa_calls"'`, ready to paste into SQL."""
        return quote_ident(table_name(self.integration, table))

    async def columns(self, table: str, *, refresh: bool = False) -> dict[str, str]:
        """Column name → PostgreSQL type name (`timestamptz`, `text[]`, …); NotFound for a missing table."""
        full = table_name(self.integration, table)
        tables = _column_cache.setdefault(self.pool, {})
        if refresh or full not in tables:
            with pg_errors():
                rows = await self.pool.fetch(_COLUMNS_SQL, quote_ident(full))
            if not rows:
                tables.pop(full, None)
                raise NotFound(f"table {table!r} ({full}) does not exist: have the migrations run?")
            tables[full] = {r["name"]: r["type"] for r in rows}
        return tables[full]

    async def _coercer(self, table: str, used: Iterable[str]) -> Coerce:
        used = list(used)
        for column in used:
            quote_ident(column)
        types = await self.columns(table)
        if any(c not in types for c in used):
            # The table may have gained the column since it was cached (a migration in another process).
            types = await self.columns(table, refresh=True)
        full = table_name(self.integration, table)
        for column in used:
            if column not in types:
                raise ValidationFailed(f"table {table!r} ({full}) has no column {column!r}")

        def coerce(column: str, value: Any) -> Any:
            try:
                return coerce_value(types[column], value)
            except (ValueError, TypeError, ArithmeticError):
                raise ValidationFailed(
                    f"column {full}.{column} is {types[column]}: a {type(value).__name__} value does not fit"
                ) from None

        return coerce

    async def insert(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        """Insert one row and return it as stored (defaults filled in), JSON-shaped."""
        sql, params = build_insert(self.table(table), row, await self._coercer(table, row))
        with pg_errors(columns=list(row)):
            record = await self.pool.fetchrow(sql, *params)
        assert record is not None
        return to_json(dict(record))

    async def update(self, table: str, values: Mapping[str, Any], where: Mapping[str, Any]) -> int:
        """Set `values` on the rows matching `where` (never empty); return how many changed."""
        coerce = await self._coercer(table, [*values, *(where or {})])
        sql, params = build_update(self.table(table), values, where, coerce)
        # The values come first among the parameters, so an error about one can name its column.
        with pg_errors(columns=list(values)):
            return _status_count(await self.pool.execute(sql, *params), 0)

    async def select(
        self,
        table: str,
        where: Mapping[str, Any] | None = None,
        *,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        """Rows matching `where`; `order_by="-created_at"` sorts descending."""
        used = [*(where or {}), *(c for c, _ in order_columns(order_by))]
        coerce = await self._coercer(table, used)
        sql, params = build_select(
            self.table(table), where, order_by=order_by, limit=limit, offset=offset, coerce=coerce
        )
        with pg_errors():
            rows = await self.pool.fetch(sql, *params)
        return [to_json(dict(r)) for r in rows]

    async def delete(self, table: str, where: Mapping[str, Any]) -> int:
        """Delete the rows matching `where` (never empty); return how many went."""
        sql, params = build_delete(self.table(table), where, await self._coercer(table, where or {}))
        with pg_errors():
            return _status_count(await self.pool.execute(sql, *params), 0)

    async def query(self, sql: str, *params: Any) -> QueryResult:
        """Run one statement; `{{calls}}` becomes this integration's quoted table name.

        Parameters are coerced to the types PostgreSQL infers for them, as for the other methods.
        With `query_roles`, the statement runs as the integration's role: another integration's
        table, a framework table or DDL is Forbidden (403); a table of its own made since the
        role's grant is granted and the statement run again.
        """
        sql = expand_tables(sql, self.integration)
        roles = self.query_roles
        if roles is None:
            return await self._query(self.pool, sql, params)
        pool = await roles.pool_for(self.integration)
        for attempt in (1, 2):
            try:
                return await self._query(pool, sql, params)
            except _Denied as denied:
                if attempt == 1 and roles.owns_denied_table(self.integration, denied.error):
                    await roles.grant(self.integration)
                    continue
                raise Forbidden(
                    f"ctx.db.query may use this integration's own tables only ({self.integration}_*, "
                    f"no DDL: migrations make tables): {denied.error.message}"
                ) from None
        raise AssertionError("unreachable")

    async def _query(self, pool: asyncpg.Pool, sql: str, params: Sequence[Any]) -> QueryResult:
        with pg_errors():
            async with pool.acquire() as conn:
                try:
                    return await self._run(conn, sql, params)
                except asyncpg.InsufficientPrivilegeError as exc:
                    raise _Denied(exc) from None

    async def _run(self, conn: asyncpg.Connection, sql: str, params: Sequence[Any]) -> QueryResult:
        stmt = await conn.prepare(sql)
        types = stmt.get_parameters()
        if len(types) != len(params):
            raise ValidationFailed(f"the query takes {len(types)} parameters, {len(params)} given")
        bound = []
        for i, (t, value) in enumerate(zip(types, params, strict=True), start=1):
            # asyncpg names arrays "text[]"; "_text" (PostgreSQL's own spelling) is read the same way.
            type_name = f"{t.name[1:]}[]" if t.kind == "array" and t.name.startswith("_") else t.name
            try:
                bound.append(coerce_value(type_name, value))
            except (ValueError, TypeError, ArithmeticError):
                raise ValidationFailed(
                    f"query parameter ${i} is {type_name}: a {type(value).__name__} value does not fit"
                ) from None
        rows = await stmt.fetch(*bound)
        data = [to_json(dict(r)) for r in rows]
        return QueryResult(data=data, row_count=_status_count(stmt.get_statusmsg(), len(data)))
