"""Db against a real PostgreSQL: prefixes, filters, coercion, JSON-shaped rows, errors, and raw
`query` confined to the integration's own tables."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from happ_integ.embedded import EmbeddedPostgres
from happ_integ.embedded.process import free_port
from happ_integ.errors import Conflict, Forbidden, NotFound, ValidationFailed
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.stores.db import Db
from happ_integ.stores.migrations import Migration, apply_migrations
from happ_integ.stores.pool import create_pool
from happ_integ.stores.query_roles import QueryRoles, role_name, scram_verifier
from happ_integ.stores.schema import ensure_core_schema
from tests.stores.conftest import CALLS


def iso(delta_minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=delta_minutes)).isoformat().replace("+00:00", "Z")


async def test_insert_lands_in_the_prefixed_table(db: Db, pool: asyncpg.Pool, name: str) -> None:
    row = await db.insert("calls", {"id": "c1", "status": "initiated"})
    assert row["id"] == "c1" and row["attempt"] == 0
    raw = await pool.fetch(f'SELECT id, status FROM "{name}_calls"')
    assert [dict(r) for r in raw] == [{"id": "c1", "status": "initiated"}]
    # Other integrations have their own table, or none at all.
    with pytest.raises(NotFound, match="calls"):
        await Db(pool, f"{name}x").select("calls")


async def test_rows_come_back_json_shaped(db: Db) -> None:
    row = await db.insert(
        "calls",
        {
            "id": "c1",
            "amount": "12.50",
            "score": 3,
            "active": "true",
            "metadata": {"tries": [1, 2], "who": "Олена"},
            "tags": ["a", "b"],
            "ref": "12345678-1234-5678-1234-567812345678",
            "blob": base64.b64encode(b"\x00\x01").decode(),
            "born": "1990-05-17",
            "local_at": "2025-03-01T10:00:00",
            "next_retry_at": "2025-03-01T10:00:00.000Z",
        },
    )
    assert row["amount"] == 12.5
    assert row["score"] == 3.0
    assert row["active"] is True
    assert row["metadata"] == {"tries": [1, 2], "who": "Олена"}
    assert row["tags"] == ["a", "b"]
    assert row["ref"] == "12345678-1234-5678-1234-567812345678"
    assert row["blob"] == "AAE="
    assert row["born"] == "1990-05-17"
    assert row["local_at"] == "2025-03-01T10:00:00"
    assert row["next_retry_at"] == "2025-03-01T10:00:00+00:00"
    assert isinstance(row["created_at"], str)
    assert await db.select("calls", {"id": "c1"}) == [row]


async def test_sqlite_style_values_are_coerced(db: Db) -> None:
    row = await db.insert(
        "calls", {"id": 42, "status": 7, "attempt": "3", "active": 0, "metadata": '{"isTestCall": true}'}
    )
    assert (row["id"], row["status"], row["attempt"], row["active"]) == ("42", "7", 3, False)
    assert row["metadata"] == {"isTestCall": True}
    assert [r["id"] for r in await db.select("calls", {"id": 42})] == ["42"]


async def test_filters(db: Db) -> None:
    for i, status in enumerate(["a", "b", "c", None]):
        await db.insert("calls", {"id": f"c{i}", "status": status, "attempt": i})

    async def ids(where: dict[str, object]) -> list[str]:
        return [r["id"] for r in await db.select("calls", where, order_by="id")]

    assert await ids({"status": "a"}) == ["c0"]
    assert await ids({"status": None}) == ["c3"]
    assert await ids({"status": {"$eq": "b"}}) == ["c1"]
    assert await ids({"status": {"$ne": "a"}}) == ["c1", "c2", "c3"]
    assert await ids({"status": {"$ne": None}}) == ["c0", "c1", "c2"]
    assert await ids({"attempt": {"$lt": 1}}) == ["c0"]
    assert await ids({"attempt": {"$lte": 1}}) == ["c0", "c1"]
    assert await ids({"attempt": {"$gt": 2}}) == ["c3"]
    assert await ids({"attempt": {"$gte": 1, "$lt": 3}}) == ["c1", "c2"]
    assert await ids({"status": {"$in": ["a", "c"]}}) == ["c0", "c2"]
    assert await ids({"status": {"$in": ["a", None]}}) == ["c0", "c3"]
    assert await ids({"status": {"$in": []}}) == []
    assert await ids({"attempt": {"$in": ["1", 2]}}) == ["c1", "c2"]
    assert await ids({"id": {"$like": "c%"}, "attempt": {"$in": [0, 3]}}) == ["c0", "c3"]
    with pytest.raises(ValidationFailed, match=r"\$regex"):
        await ids({"status": {"$regex": "a"}})


async def test_order_limit_offset(db: Db) -> None:
    for i in range(5):
        await db.insert("calls", {"id": f"c{i}", "attempt": i % 2})
    rows = await db.select("calls", order_by=["attempt", "-id"], limit=3)
    assert [r["id"] for r in rows] == ["c4", "c2", "c0"]
    rows = await db.select("calls", order_by="-id", limit=2, offset=1)
    assert [r["id"] for r in rows] == ["c3", "c2"]


async def test_iso_strings_compare_with_timestamptz(db: Db) -> None:
    await db.insert("calls", {"id": "due", "next_retry_at": iso(-5)})
    await db.insert("calls", {"id": "later", "next_retry_at": iso(+60)})
    await db.insert("calls", {"id": "never"})
    due = await db.select("calls", {"next_retry_at": {"$lte": iso(0)}})
    assert [r["id"] for r in due] == ["due"]
    assert await db.update("calls", {"status": "initiated"}, {"id": due[0]["id"]}) == 1
    after = await db.select("calls", {"next_retry_at": {"$gt": iso(0)}})
    assert [r["id"] for r in after] == ["later"]


async def test_update_and_delete_count_and_refuse_empty_where(db: Db) -> None:
    for i in range(3):
        await db.insert("calls", {"id": f"c{i}", "status": "initiated"})
    assert await db.update("calls", {"status": "failed"}, {"id": {"$in": ["c0", "c1"]}}) == 2
    assert await db.update("calls", {"status": "x"}, {"id": "nope"}) == 0
    with pytest.raises(ValidationFailed, match="where"):
        await db.update("calls", {"status": "x"}, {})
    with pytest.raises(ValidationFailed, match="where"):
        await db.delete("calls", {})
    assert await db.delete("calls", {"status": "failed"}) == 2
    assert [r["id"] for r in await db.select("calls")] == ["c2"]


async def test_injection_is_inert_or_refused(db: Db, pool: asyncpg.Pool, name: str) -> None:
    evil = f"x'; DROP TABLE {name}_calls; --"
    await db.insert("calls", {"id": evil, "status": 'a"b'})
    assert [r["id"] for r in await db.select("calls", {"id": evil})] == [evil]
    assert [r["status"] for r in await db.select("calls", {"status": {"$like": 'a"%'}})] == ['a"b']
    for bad_column in ("a; drop", 'id" = id; --', "id)"):
        with pytest.raises(ValidationFailed, match="invalid identifier"):
            await db.select("calls", {bad_column: 1})
        with pytest.raises(ValidationFailed, match="invalid identifier"):
            await db.insert("calls", {bad_column: 1})
    with pytest.raises(ValidationFailed, match="invalid identifier"):
        await db.select(f"calls; DROP TABLE {name}_calls")
    with pytest.raises(ValidationFailed, match="invalid identifier"):
        await db.select("calls", order_by="id; DROP TABLE x")
    assert await pool.fetchval(f'SELECT count(*) FROM "{name}_calls"') == 1


async def test_unknown_column_and_table(db: Db) -> None:
    with pytest.raises(ValidationFailed, match=r"'calls'.*no column 'nope'"):
        await db.insert("calls", {"id": "c1", "nope": 1})
    with pytest.raises(ValidationFailed, match="no column 'nope'"):
        await db.select("calls", {"nope": 1})
    with pytest.raises(ValidationFailed, match="no column 'nope'"):
        await db.select("calls", order_by="-nope")
    with pytest.raises(NotFound, match="leads"):
        await db.select("leads")
    with pytest.raises(ValidationFailed, match=r"next_retry_at is timestamptz"):
        await db.select("calls", {"next_retry_at": {"$lte": "not a date"}})


async def test_a_column_added_later_is_found(db: Db, pool: asyncpg.Pool, name: str) -> None:
    await db.select("calls")  # caches the columns
    await pool.execute(f'ALTER TABLE "{name}_calls" ADD COLUMN phone text')
    row = await db.insert("calls", {"id": "c1", "phone": 380})
    assert row["phone"] == "380"


async def test_unique_violation_is_conflict(db: Db) -> None:
    await db.insert("calls", {"id": "c1"})
    with pytest.raises(Conflict):
        await db.insert("calls", {"id": "c1"})


async def test_query_expands_tables_and_coerces_params(db: Db, name: str) -> None:
    await db.insert("calls", {"id": "c1", "status": "initiated", "next_retry_at": iso(-1)})
    await db.insert("calls", {"id": "c2", "status": "in_progress"})
    res = await db.query(
        "SELECT count(*) AS count FROM {{calls}} WHERE status = ANY($1)", ["initiated", "in_progress"]
    )
    assert res.data == [{"count": 2}] and res.row_count == 1
    res = await db.query("SELECT id FROM {{calls}} WHERE next_retry_at <= $1", iso(0))
    assert res.data == [{"id": "c1"}]
    # The raw table name, without the placeholder, works too.
    res = await db.query(f"SELECT count(*) AS n FROM {name}_calls")
    assert res.data == [{"n": 2}]
    res = await db.query("UPDATE {{calls}} SET status = $1 WHERE id = $2", "failed", 2)
    assert res.row_count == 0 and res.data == []
    with pytest.raises(ValidationFailed, match="parameters"):
        await db.query("SELECT * FROM {{calls}} WHERE id = $1")
    with pytest.raises(ValidationFailed, match="syntax"):
        await db.query("SELEC 1")
    with pytest.raises(NotFound, match="leads"):
        await db.query("SELECT * FROM {{leads}}")


# --- ctx.db.query runs as the integration's own role ----------------------------------------

NOTES = Migration("002_notes", "CREATE TABLE {{notes}} (id int PRIMARY KEY, body text)")


@pytest.fixture
async def other(pool: asyncpg.Pool, unique: str) -> str:
    """Another integration, with a row a neighbour must never read."""
    name = f"o{unique}"
    await apply_migrations(pool, name, [CALLS])
    await Db(pool, name).insert("calls", {"id": "theirs", "status": "private-of-another-integration"})
    return name


async def test_handlers_query_reaches_only_their_own_tables(
    db: Db, pool: asyncpg.Pool, pg_url: str, name: str, other: str
) -> None:
    """Through `Resources.db`, as every handler's `ctx.db.query` (inline or durable) runs."""
    await ensure_core_schema(pool)
    await db.insert("calls", {"id": "mine", "status": "initiated"})
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=Fernet.generate_key().decode())
    resources = await open_resources(settings, {})
    try:
        mine = resources.db(name)
        assert (await mine.query("SELECT id FROM {{calls}}")).data == [{"id": "mine"}]
        assert (await mine.query("UPDATE {{calls}} SET status = $1 WHERE id = 'mine'", "done")).row_count == 1
        assert (await mine.query(f"SELECT count(*)::int AS n FROM {name}_calls")).data == [{"n": 1}]
        refused = {
            "another integration's table": f"SELECT * FROM {other}_calls",
            "its table through a subquery": f"SELECT (SELECT status FROM {other}_calls LIMIT 1)",
            "the framework's secrets": "SELECT * FROM happ_secrets",
            "the framework's config": "SELECT * FROM happ_config",
            # The escape SET ROLE would allow: switch back, then a query run by a function.
            "a role switch": "SELECT set_config('role', 'postgres', true)",
            "a switch then a query run later": (
                "SELECT s.word FROM (SELECT set_config('role', 'none', true)) x, LATERAL "
                f"ts_stat('SELECT to_tsvector(''simple'', status) FROM {other}_calls') s"
            ),
            "DDL on its own table": "DROP TABLE {{calls}}",
            "a new table": "CREATE TABLE {{sneaky}} (id int)",
        }
        for what, sql in refused.items():
            with pytest.raises(Forbidden, match="own tables only") as caught:
                await mine.query(sql)
            assert "private-of-another-integration" not in str(caught.value), what
        assert await pool.fetchval(f"SELECT count(*) FROM {name}_calls") == 1, "DROP did nothing"
        # A table its migrations add later is its own too (granted on first use).
        await apply_migrations(pool, name, [CALLS, NOTES])
        assert (await mine.query("INSERT INTO {{notes}} VALUES (1, 'x') RETURNING id")).data == [{"id": 1}]
        # And the other integration still reads its own.
        theirs = await resources.db(other).query("SELECT status FROM {{calls}}")
        assert theirs.data == [{"status": "private-of-another-integration"}]
    finally:
        await close_resources(resources)


async def test_a_longer_name_sharing_the_prefix_is_not_the_shorter_ones(
    pool: asyncpg.Pool, pg_url: str, name: str, db: Db
) -> None:
    longer = f"{name}_x"  # its tables are f"{name}_x_calls": "{name}_" + "x_calls"
    await apply_migrations(pool, longer, [CALLS])
    roles = QueryRoles(pool, pg_url, Fernet.generate_key().decode(), other_integrations=[name, longer])
    try:
        with pytest.raises(Forbidden):
            await Db(pool, name, roles).query(f"SELECT * FROM {longer}_calls")
        assert (await Db(pool, longer, roles).query("SELECT count(*)::int AS n FROM {{calls}}")).data == [
            {"n": 0}
        ]
    finally:
        await roles.close()


def test_the_role_password_is_set_as_a_scram_verifier() -> None:
    verifier = scram_verifier("pw", salt=b"0123456789abcdef", iterations=4096)
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$") and "pw" not in verifier
    assert role_name("sofa", "happ") != role_name("sofa", "staging"), "one role per database"
    assert role_name("sofa", "happ").startswith("happ_q_") and role_name("sofa", "happ").endswith("_sofa")


async def test_the_role_logs_in_by_password_through_a_key_rotation(tmp_path: Path) -> None:
    """A server that wants passwords from everyone but its superuser (as compose's and managed
    ones do): each replica logs in whichever of HAPP_SECRET_KEY's keys set the password."""
    server = EmbeddedPostgres(tmp_path / "pg", port=free_port())
    server.start()
    try:
        pool = await create_pool(server.url, min_size=1, max_size=2)
        await pool.execute("CREATE TABLE sofa_calls (id int); INSERT INTO sofa_calls VALUES (7)")
        hba = next((tmp_path / "pg").rglob("pg_hba.conf"))
        hba.write_text(
            "local all all trust\nhost all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
        )
        await pool.execute("SELECT pg_reload_conf()")
        old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
        for keys in (old, f"{new},{old}", new, f"{new},{old}"):  # before, during, after, a late replica
            roles = QueryRoles(pool, server.url, keys)
            try:
                assert (await Db(pool, "sofa", roles).query("SELECT id FROM {{calls}}")).data == [{"id": 7}]
            finally:
                await roles.close()
        role = await roles.role("sofa")
        with pytest.raises(asyncpg.InvalidPasswordError):
            await asyncpg.connect(server.url.replace("postgres@", f"{role}:guess@"))
        # As PostgreSQL before 15 is set up: anyone may create in `public`. Not confined: refused.
        await pool.execute("GRANT CREATE ON SCHEMA public TO PUBLIC")
        roles = QueryRoles(pool, server.url, new)
        with pytest.raises(Forbidden, match="REVOKE CREATE ON SCHEMA public FROM PUBLIC"):
            await Db(pool, "acme", roles).query("SELECT 1")
        await roles.close()
        await pool.close()
    finally:
        server.stop()
