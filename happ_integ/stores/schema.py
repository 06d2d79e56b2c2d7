"""The PostgreSQL layer the stores share: the framework's tables, value types, error mapping.

    from happ_integ.stores.schema import coerce_value, ensure_core_schema, pg_errors, to_json
    await ensure_core_schema(pool)      # idempotent; safe when several processes start at once
    with pg_errors():                   # asyncpg errors → DependencyUnavailable, Conflict, NotFound, …
        row = await pool.fetchrow(sql, coerce_value("timestamptz", "2025-01-01T10:00:00Z"))
    to_json(dict(row))                  # datetime → ISO string, Decimal → int/float, bytes → base64

Every table is shared by all integrations and keyed by `integration` first, so one
integration never sees another's rows. The stores create these tables on first use
(`with_core_schema`), so `setup` is not needed before a cache or config call.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from happ_integ.errors import (
    Conflict,
    DependencyUnavailable,
    HappError,
    NotFound,
    RetryableError,
    ValidationFailed,
)

T = TypeVar("T")
log = logging.getLogger("happ.db")

CORE_SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS happ_migrations (
    integration text NOT NULL,
    id          text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, id)
);
CREATE TABLE IF NOT EXISTS happ_cache (
    integration text NOT NULL,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    expires_at  timestamptz NULL,
    PRIMARY KEY (integration, key)
);
CREATE INDEX IF NOT EXISTS happ_cache_expires_idx
    ON happ_cache (integration, expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS happ_config (
    integration text NOT NULL,
    key         text NOT NULL,
    value       jsonb NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, key)
);
CREATE TABLE IF NOT EXISTS happ_secrets (
    integration text NOT NULL,
    name        text NOT NULL,
    ciphertext  bytea NULL,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, name)
);
CREATE TABLE IF NOT EXISTS happ_dedup (
    integration text NOT NULL,
    handler     text NOT NULL,
    key         text NOT NULL,
    response    jsonb NULL,
    status_code int NULL,
    expires_at  timestamptz NOT NULL,
    digest      text NULL,
    PRIMARY KEY (integration, handler, key)
);
CREATE INDEX IF NOT EXISTS happ_dedup_expires_idx ON happ_dedup (expires_at);
-- Databases made before an Idempotency-Key remembered its request (happ_integ.stores.dedup).
ALTER TABLE happ_dedup ADD COLUMN IF NOT EXISTS digest text NULL;
CREATE TABLE IF NOT EXISTS happ_writes (
    integration text NOT NULL,
    key         text NOT NULL,
    done        boolean NOT NULL DEFAULT false,
    result      jsonb NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration, key)
);
CREATE TABLE IF NOT EXISTS happ_rate_limits (
    integration  text NOT NULL,
    handler      text NOT NULL,
    window_start timestamptz NOT NULL,
    count        int NOT NULL DEFAULT 0,
    PRIMARY KEY (integration, handler, window_start)
);
CREATE TABLE IF NOT EXISTS happ_pacing (
    key        text PRIMARY KEY,
    next_at    timestamptz NOT NULL,
    held_until timestamptz NULL
);
-- Databases made before a peer's 429 could hold a key off (happ_integ.stores.pacing).
ALTER TABLE happ_pacing ADD COLUMN IF NOT EXISTS held_until timestamptz NULL;
-- Sign-in sessions (the Web UI's codec): a digest of the session id, never the id itself.
CREATE TABLE IF NOT EXISTS happ_sessions (
    digest      bytea PRIMARY KEY,
    purpose     text NOT NULL,
    token_id    text NOT NULL,
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS happ_sessions_expires_idx ON happ_sessions (expires_at);
-- Failed sign-ins per client address and in all, per window (happ_integ.stores.sessions).
CREATE TABLE IF NOT EXISTS happ_auth_failures (
    scope        text NOT NULL,
    window_start timestamptz NOT NULL,
    count        int NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, window_start)
);
-- Every dial of a number by any integration, for the per-number caps of `contact_policy`
-- (happ_integ.stores.contact_attempts); one row per (integration, call_id, attempt), so a retried
-- activity counts once.
CREATE TABLE IF NOT EXISTS happ_contact_attempts (
    phone       text NOT NULL,
    at          timestamptz NOT NULL,
    integration text NOT NULL,
    call_id     text NOT NULL,
    attempt     int NOT NULL,
    PRIMARY KEY (integration, call_id, attempt)
);
CREATE INDEX IF NOT EXISTS happ_contact_attempts_phone_at_idx ON happ_contact_attempts (phone, at);
-- The daily purge of attempts no cap looks at any more reads by age alone.
CREATE INDEX IF NOT EXISTS happ_contact_attempts_at_idx ON happ_contact_attempts (at);
-- The do-not-call list every integration shares (happ_integ.stores.suppressions): numbers in
-- E.164, each entry for every integration (integration NULL) or for one; one entry per number and
-- scope; entries never expire.
CREATE TABLE IF NOT EXISTS happ_suppressions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    phone       text NOT NULL,
    integration text NULL,
    reason      text NULL,
    source      text NOT NULL DEFAULT 'manual',
    evidence    text NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS happ_suppressions_phone_idx
    ON happ_suppressions (phone, COALESCE(integration, ''));
CREATE INDEX IF NOT EXISTS happ_suppressions_created_idx ON happ_suppressions (created_at DESC, id DESC);
-- Every committed change of an integration's config or secrets is announced to every process
-- (NOTIFY happ_changes '<table>:<integration>'), whose in-memory copies it ends
-- (happ_integ.stores.changes).
CREATE OR REPLACE FUNCTION happ_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('happ_changes', TG_ARGV[0] || ':' || COALESCE(NEW.integration, OLD.integration));
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER happ_config_changed AFTER INSERT OR UPDATE OR DELETE ON happ_config
    FOR EACH ROW EXECUTE FUNCTION happ_notify_change('config');
CREATE OR REPLACE TRIGGER happ_secrets_changed AFTER INSERT OR UPDATE OR DELETE ON happ_secrets
    FOR EACH ROW EXECUTE FUNCTION happ_notify_change('secrets');
"""

# Two sessions running CREATE TABLE IF NOT EXISTS at once can still collide on pg_type's
# unique index, so schema changes are serialised on this advisory lock.
SCHEMA_LOCK_KEY = 0x68617070  # "happ"

CORE_TABLES = (
    "happ_migrations",
    "happ_cache",
    "happ_config",
    "happ_secrets",
    "happ_dedup",
    "happ_rate_limits",
    "happ_writes",
    "happ_pacing",
    "happ_sessions",
    "happ_auth_failures",
    "happ_suppressions",
    "happ_contact_attempts",
)


async def ensure_core_schema(pool: asyncpg.Pool) -> None:
    """Create the framework tables if they are missing.

    await ensure_core_schema(pool)
    """
    with pg_errors():
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
            await conn.execute(CORE_SCHEMA_SQL)


async def with_core_schema(pool: asyncpg.Pool, op: Callable[[], Awaitable[T]], *, redact: bool = False) -> T:
    """Run `op`; if a framework table is missing, create the schema and run it once more.

    value = await with_core_schema(pool, lambda: pool.fetchval("SELECT count(*) FROM happ_cache"))

    Retrying on the error costs nothing once the tables exist, unlike checking before every call.
    """
    with pg_errors(redact=redact):
        try:
            return await op()
        except asyncpg.UndefinedTableError as exc:
            if not any(table in str(exc) for table in CORE_TABLES):
                raise
        await ensure_core_schema(pool)
        return await op()


@contextmanager
def pg_errors(*, redact: bool = False, columns: Sequence[str] = ()) -> Iterator[None]:
    """Translate asyncpg's errors into the happ error tree, with short messages.

    with pg_errors(columns=["id", "quantity"]):      # the statement's parameters, in order
        await pool.execute(sql, *params)

    A caller sees what was refused and why in a few words ("column quantity: value out of int32
    range", "unique violation"), never SQL or the driver's own text; the full error is logged.
    `redact=True` (the secrets store) logs no PostgreSQL message either, as it may quote a value.
    """
    try:
        yield
    except HappError:
        raise
    except (OSError, TimeoutError) as exc:
        raise DependencyUnavailable(
            "PostgreSQL", f"PostgreSQL is unavailable ({type(exc).__name__})"
        ) from exc
    except asyncpg.PostgresError as exc:
        _log_refusal(exc, redact)
        if _ARGUMENT.search(str(exc)):
            raise ValidationFailed(_argument_message(str(exc), columns)) from None
        raise _translate(exc) from None
    except asyncpg.InterfaceError as exc:
        # The client-side "invalid input for query argument $N: <value> (<reason>)" error is a
        # DataError or an InterfaceError and ValueError; other interface errors (closed pool or
        # connection) mean the database is out of reach.
        if isinstance(exc, ValueError):
            _log_refusal(exc, redact)
            raise ValidationFailed(_argument_message(str(exc), columns)) from None
        raise DependencyUnavailable("PostgreSQL", "PostgreSQL is unavailable (connection lost)") from exc


_ARGUMENT = re.compile(r"query argument \$(\d+)")
_REASON = re.compile(r"\(([^()]*)\)\s*$")


def _argument_message(text: str, columns: Sequence[str]) -> str:
    number = _ARGUMENT.search(text)
    reason = _REASON.search(text)
    where = "a value"
    if number and 0 < int(number.group(1)) <= len(columns):
        where = f"column {columns[int(number.group(1)) - 1]}"
    return f"{where} does not fit its type" + (f" ({reason.group(1)})" if reason else "")


def _log_refusal(exc: Exception, redact: bool) -> None:
    sqlstate = getattr(exc, "sqlstate", None) or "-"
    if redact:
        log.warning("PostgreSQL refused a statement: %s (SQLSTATE %s)", type(exc).__name__, sqlstate)
    else:
        log.warning("PostgreSQL refused a statement: %s: %s (SQLSTATE %s)", type(exc).__name__, exc, sqlstate)


def _words(exc: asyncpg.PostgresError) -> str:
    """`NumericValueOutOfRangeError` → "numeric value out of range"; `PostgresSyntaxError` → "syntax"."""
    name = type(exc).__name__.removesuffix("Error").removeprefix("Postgres") or "error"
    return re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()


def _translate(exc: asyncpg.PostgresError) -> HappError:
    sqlstate = str(getattr(exc, "sqlstate", "") or "")
    reason = _words(exc)
    if sqlstate[:2] == "42":
        # Syntax and naming errors quote identifiers (`relation "sofa_leads" does not exist`), never values.
        reason = str(getattr(exc, "message", "") or reason)
    elif getattr(exc, "constraint_name", None):
        reason = f"{reason} of {exc.constraint_name}"  # type: ignore[attr-defined]
    message = f"the database refused the statement: {reason} (SQLSTATE {sqlstate})"
    if sqlstate[:2] in ("08", "53", "57"):
        return DependencyUnavailable("PostgreSQL", f"PostgreSQL is unavailable: {_words(exc)}")
    if sqlstate[:2] == "40":
        return RetryableError(message)
    if sqlstate == "23505":
        return Conflict(message)
    if sqlstate == "42P01":
        return NotFound(message)
    return ValidationFailed(message)


_TEXT = {"text", "varchar", "bpchar", "name", "citext"}
_INTS = {"int2", "int4", "int8"}
_FLOATS = {"float4", "float8"}
_TRUE = {"true", "t", "1", "yes", "y", "on"}
_FALSE = {"false", "f", "0", "no", "n", "off"}


def coerce_value(pg_type: str, value: Any) -> Any:
    """Turn a JSON-ish value into what asyncpg needs for a column of `pg_type`.

    coerce_value("timestamptz", "2025-01-01T10:00:00Z")   # → datetime(2025, 1, 1, 10, tzinfo=UTC)
    coerce_value("text", 42)                              # → "42"

    Raises ValueError/TypeError when the value cannot be read as that type; a value that needs
    no change (or a type it does not know) is returned as it is.
    """
    if value is None:
        return None
    if pg_type.endswith("[]"):
        if isinstance(value, str | bytes | dict):
            raise TypeError(f"{pg_type} takes a list")
        return [coerce_value(pg_type[:-2], item) for item in value]
    if pg_type in ("json", "jsonb"):
        if isinstance(value, BaseModel):
            return value.model_dump(mode="json")
        # SQLite-era handlers store JSON.stringify(...) output; keep it a document, not a JSON string.
        if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    if isinstance(value, bool):
        if pg_type in _TEXT:
            return "true" if value else "false"
        return int(value) if pg_type in _INTS else value
    if pg_type == "bool":
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("not a boolean")
    if pg_type in _TEXT:
        if isinstance(value, int | float | Decimal | UUID):
            return str(value)
        if isinstance(value, date | time):
            return value.isoformat()
        return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else value
    if pg_type in ("timestamptz", "timestamp"):
        moment = _datetime(value)
        if pg_type == "timestamptz":
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment
    if pg_type == "date":
        return value if type(value) is date else _datetime(value).date()
    if pg_type in ("time", "timetz"):
        return time.fromisoformat(value) if isinstance(value, str) else value
    if pg_type == "numeric":
        return Decimal(str(value).strip()) if isinstance(value, str | int | float) else value
    if pg_type in _INTS:
        if isinstance(value, str):
            return int(value.strip())
        if isinstance(value, float | Decimal) and value == int(value):
            return int(value)
        return value
    if pg_type in _FLOATS:
        return float(value) if isinstance(value, str | int | Decimal) else value
    if pg_type == "uuid":
        return UUID(value) if isinstance(value, str) else value
    if pg_type == "bytea":
        if isinstance(value, str):
            return base64.b64decode(value, validate=True)
        return bytes(value) if isinstance(value, bytearray | memoryview) else value
    if pg_type == "interval" and isinstance(value, int | float):
        return timedelta(seconds=value)
    return value


def _datetime(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time())
    if isinstance(value, str):
        return datetime.fromisoformat(value.strip())
    raise TypeError("not an ISO 8601 date-time")


def to_json(value: Any) -> Any:
    """A row (or any value from asyncpg) with only JSON types left in it.

    to_json({"at": datetime(2025, 1, 1, tzinfo=UTC), "n": Decimal("2")})  # → {"at": "2025-01-01T00:00:00+00:00", "n": 2}
    """
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value.is_finite() and value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, timedelta):
        return value.total_seconds()
    return str(value)
