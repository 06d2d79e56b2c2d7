"""The PostgreSQL role each integration's raw SQL (`ctx.db.query`) runs as: its own tables, nothing else.

    roles = QueryRoles(pool, database_url, secret_keys) # one per process (Resources holds it)
    conn_pool = await roles.pool_for("sofa")           # logged in as happ_q_<db>_sofa
    await roles.grant("sofa")                          # after migrations made a new table

Why a login of its own, not `SET ROLE` on the framework's connection: the session user would still be
the framework's (the tables' owner, a superuser in development), and one statement can switch back
to it and read anything (`SELECT set_config('role', 'none', true)` next to `ts_stat('SELECT … FROM
other_table')`, which runs its query after the switch). A connection that logs in as the integration's
role has nothing to switch back to: `happ_q_<db>_sofa` may read and write `sofa_*` tables (SELECT, INSERT,
UPDATE, DELETE; their sequences), and nothing else — not another integration's tables, not the
framework's (`happ_secrets`, `happ_config` …), no DDL (migrations do that, as the owner).

The role is created by the framework's own login (it needs CREATEROLE, which a superuser, the
compose stack's user and a managed database's admin user have). Its password is derived from
HAPP_SECRET_KEY (each key while rotating: no replica locks another out) and set as a SCRAM verifier,
so no password appears in a statement the server could log.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from happ_integ.errors import Forbidden
from happ_integ.keys import KeyRing
from happ_integ.stores.db import check_integration, quote_ident
from happ_integ.stores.schema import SCHEMA_LOCK_KEY

ROLE_PREFIX = "happ_q_"
_DENIED_TABLE = re.compile(r'permission denied for (?:table|relation|sequence|view) "?([A-Za-z0-9_]+)"?')

_OWN_RELATIONS = """
SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
  AND starts_with(c.relname, $1)
"""


def role_name(integration: str, database: str) -> str:
    """`role_name("sofa", "happ")` → `"happ_q_e0f722_sofa"`: roles belong to the whole server, so the
    database is in the name (two deployments on one server never share, nor fight over, a role)."""
    return (
        f"{ROLE_PREFIX}{hashlib.sha256(database.encode()).hexdigest()[:6]}_{check_integration(integration)}"
    )


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = 4096) -> str:
    """What PostgreSQL stores for a SCRAM-SHA-256 password (RFC 5802/7677): `ALTER ROLE … PASSWORD`
    with it sets the password without the password itself being in the statement."""
    salt = salt or os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def _passwords(secret_keys: Iterable[str], role: str) -> list[str]:
    """One candidate per HAPP_SECRET_KEY key, the encrypting one first."""
    return [
        hmac.new(key.encode(), b"happ-query-role:" + role.encode(), hashlib.sha256).hexdigest()
        for key in secret_keys
    ]


def _as_role(dsn: str, role: str, password: str) -> str:
    parts = urlsplit(dsn)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{role}:{quote(password, safe='')}@{host}"))


class QueryRoles:
    """Per-integration roles and their small connection pools; see the module docstring."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        dsn: str,
        secret_keys: str,
        *,
        other_integrations: Iterable[str] = (),
        timeout_seconds: float = 5.0,
    ) -> None:
        self.pool = pool
        self.dsn = dsn
        self.keys = KeyRing.parse(secret_keys, "HAPP_SECRET_KEY").raw
        # Names that extend another's prefix (`sofa` and `sofa_x`): `sofa_x_*` is not sofa's.
        self.others = tuple(other_integrations)
        self.timeout_seconds = timeout_seconds
        self._pools: dict[str, asyncpg.Pool] = {}
        self._lock = asyncio.Lock()
        self._database: str | None = None

    async def role(self, integration: str) -> str:
        """The integration's role in this database."""
        if self._database is None:
            self._database = str(await self.pool.fetchval("SELECT current_database()"))
        return role_name(integration, self._database)

    async def pool_for(self, integration: str) -> asyncpg.Pool:
        """A pool logged in as the integration's role (created, and granted its tables, on first use)."""
        found = self._pools.get(integration)
        if found is not None:
            return found
        async with self._lock:
            if integration not in self._pools:
                self._pools[integration] = await self._open(integration)
            return self._pools[integration]

    def _owned(self, integration: str, relation: str) -> bool:
        if not relation.startswith(f"{integration}_"):
            return False
        longer = [o for o in self.others if o != integration and o.startswith(f"{integration}_")]
        return not any(relation.startswith(f"{o}_") for o in longer)

    async def grant(self, integration: str) -> None:
        """Create the role if need be and grant it the integration's tables as they are now."""
        name = await self.role(integration)
        role = quote_ident(name)
        async with self.pool.acquire() as conn, conn.transaction():
            # Serialised with schema changes: two replicas creating one role would collide.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name)
            if not exists:
                verifier = scram_verifier(_passwords(self.keys, name)[0])
                await conn.execute(
                    f"CREATE ROLE {role} LOGIN NOINHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    f"NOREPLICATION NOBYPASSRLS PASSWORD '{verifier}'"
                )
            if await conn.fetchval("SELECT has_schema_privilege($1, current_schema(), 'CREATE')", name):
                # PostgreSQL before 15 lets every role create in `public`: a function planted there
                # could be picked by the framework's own statements, run as the owner.
                raise Forbidden(
                    f"ctx.db.query is confined to {name}, but that role may create objects in the "
                    "schema (PostgreSQL before 15 allows everyone): run REVOKE CREATE ON SCHEMA public "
                    "FROM PUBLIC (15's default)"
                )
            for row in await conn.fetch(_OWN_RELATIONS, f"{integration}_"):
                if not self._owned(integration, row["relname"]):
                    continue
                name = quote_ident(row["relname"])
                if row["relkind"] == "S":
                    await conn.execute(f"GRANT USAGE, SELECT, UPDATE ON SEQUENCE {name} TO {role}")
                else:
                    await conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {role}")

    async def _open(self, integration: str) -> asyncpg.Pool:
        try:
            await self.grant(integration)
        except asyncpg.InsufficientPrivilegeError as exc:
            raise Forbidden(
                f"ctx.db.query runs as the integration's own PostgreSQL role ({await self.role(integration)}), and "
                f"the database user cannot create or grant it ({exc}): give that user CREATEROLE"
            ) from None
        role = await self.role(integration)
        candidates = _passwords(self.keys, role)
        for password in candidates:
            try:
                return await self._login(role, password)
            except asyncpg.InvalidPasswordError:
                continue  # set by another replica from another key, while keys rotate
        # None of ours works (a key since dropped set it): set the current one.
        await self.pool.execute(f"ALTER ROLE {quote_ident(role)} PASSWORD '{scram_verifier(candidates[0])}'")
        return await self._login(role, candidates[0])

    async def _login(self, role: str, password: str) -> asyncpg.Pool:
        from happ_integ.stores.pool import create_pool

        # One connection opened now (a wrong password shows here); at most two, closed when idle.
        return await create_pool(
            _as_role(self.dsn, role, password), min_size=1, max_size=2, timeout_seconds=self.timeout_seconds
        )

    def owns_denied_table(self, integration: str, exc: BaseException) -> bool:
        """A permission error about one of the integration's own tables: one made after the grant."""
        match = _DENIED_TABLE.search(str(exc))
        return match is not None and self._owned(integration, match.group(1))

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close()
