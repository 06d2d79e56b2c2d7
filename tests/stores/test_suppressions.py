"""The do-not-call list against a real PostgreSQL (a database of this module's own, so the counts
and plans are this module's): numbers kept in E.164, global and scoped entries, the match as one
read of the unique index, idempotent adds, removal (logged, masked), paging and CSV-style imports."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from happ_integ.errors import ValidationFailed
from happ_integ.stores.pool import create_pool
from happ_integ.stores.schema import CORE_TABLES
from happ_integ.stores.suppressions import (
    MATCH_SQL,
    ImportRow,
    RejectedRow,
    SuppressionStore,
)

PHONE = "+380994829573"
MASKED = "+38099*****73"


@pytest.fixture(scope="module")
async def db_pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    database = f"dnc_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(pg_url)
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    pool = await create_pool(pg_url.rsplit("/", 1)[0] + f"/{database}", min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def store(db_pool: asyncpg.Pool) -> SuppressionStore:
    """An empty list (the table is made by the store's first use, in the first test)."""
    if await db_pool.fetchval("SELECT to_regclass('happ_suppressions') IS NOT NULL"):
        await db_pool.execute("DELETE FROM happ_suppressions")
    return SuppressionStore(db_pool)


def test_the_table_is_a_core_table() -> None:
    assert "happ_suppressions" in CORE_TABLES


async def test_the_table_is_made_on_first_use_and_numbers_are_kept_in_e164(
    store: SuppressionStore, db_pool: asyncpg.Pool
) -> None:
    entry, created = await store.add("099 482 95 73", None, "asked not to be called")
    assert created and entry.phone == PHONE and entry.phone_masked == MASKED
    assert entry.integration is None and entry.source == "manual" and entry.reason == "asked not to be called"
    assert await db_pool.fetchval("SELECT phone FROM happ_suppressions") == PHONE
    # Another region reads a local number as its own.
    pl, _ = await store.add("512 345 678", "sofa", "complained", default_region="PL")
    assert pl.phone == "+48512345678"


async def test_adding_again_keeps_the_first_entry(store: SuppressionStore) -> None:
    first, created = await store.add(PHONE, None, "asked", "analysis", "c_1")
    again, created_again = await store.add("0994829573", None, "another reason", "manual")
    assert created and not created_again
    assert (
        again == first and again.reason == "asked" and again.source == "analysis" and again.evidence == "c_1"
    )
    scoped, created_scoped = await store.add(PHONE, "sofa", "only sofa")
    assert created_scoped and scoped.id != first.id
    assert (await store.add(PHONE, "sofa", "x"))[1] is False
    rows, _ = await store.list(phone=PHONE)
    assert [(r.integration, r.reason) for r in rows] == [("sofa", "only sofa"), (None, "asked")]


async def test_a_global_entry_stops_every_integration_a_scoped_one_only_its_own(
    store: SuppressionStore,
) -> None:
    assert await store.is_suppressed(PHONE, "sofa") is None
    await store.add(PHONE, "keycrm", "keycrm only")
    assert await store.is_suppressed(PHONE, "sofa") is None
    assert (await store.is_suppressed(PHONE, "keycrm")).reason == "keycrm only"  # type: ignore[union-attr]
    assert await store.is_suppressed(PHONE, None) is None  # only a global entry matches no integration
    await store.add(PHONE, None, "everyone")
    assert (await store.is_suppressed("0994829573", "sofa")).reason == "everyone"  # type: ignore[union-attr]
    assert (await store.is_suppressed(PHONE, None)).reason == "everyone"  # type: ignore[union-attr]
    # Both apply to keycrm: its own entry comes first.
    assert (await store.is_suppressed(PHONE, "keycrm")).reason == "keycrm only"  # type: ignore[union-attr]
    assert await store.is_suppressed("+380994829574", "keycrm") is None


async def test_the_match_is_one_read_of_the_unique_index(
    store: SuppressionStore, db_pool: asyncpg.Pool
) -> None:
    rows = [ImportRow(f"+38099{n:07d}", None if n % 3 else "sofa", "bulk") for n in range(5000)]
    added, skipped, rejected = await store.import_rows(rows)
    assert (added, skipped, rejected) == (5000, 0, [])
    await db_pool.execute("ANALYZE happ_suppressions")
    plan = "\n".join(r[0] for r in await db_pool.fetch(f"EXPLAIN {MATCH_SQL}", "+380990000042", "sofa"))
    # Index Scan using happ_suppressions_phone_idx, Index Cond: phone = … AND COALESCE(integration, '') = ANY (…)
    assert "Index Scan using happ_suppressions_phone_idx" in plan, plan
    assert "Seq Scan" not in plan and "Filter" not in plan, plan
    assert "phone = " in plan and "COALESCE(integration, ''::text) = ANY" in plan, plan
    assert (await store.is_suppressed("+380990000043", "keycrm")).reason == "bulk"  # type: ignore[union-attr]
    assert await store.is_suppressed("+380990000042", "keycrm") is None  # scoped to sofa


async def test_remove_takes_off_one_scope_and_logs_it_masked(
    store: SuppressionStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.add(PHONE, None, "everyone")
    await store.add(PHONE, "sofa", "sofa")
    with caplog.at_level(logging.INFO, logger="happ.suppressions"):
        assert await store.remove("0994829573", "sofa", by="an operator", why="added by\nmistake") is True
    assert await store.remove(PHONE, "sofa") is False
    assert (await store.is_suppressed(PHONE, "sofa")).integration is None  # type: ignore[union-attr]
    text = caplog.text
    assert (
        f"{MASKED} removed from the do-not-call list of integration sofa by an operator: added by mistake"
        in text
    )
    assert PHONE not in text
    assert await store.remove(PHONE) is True
    assert await store.is_suppressed(PHONE, "sofa") is None
    assert await store.remove(PHONE) is False


async def test_list_pages_newest_first_and_filters(store: SuppressionStore) -> None:
    numbers = [f"+38067{n:07d}" for n in range(7)]
    for n, number in enumerate(numbers):
        await store.add(number, "sofa" if n % 2 else None, f"r{n}")
    await store.add(numbers[0], "keycrm", "keycrm")
    seen, cursor = [], None
    while True:
        page, cursor = await store.list(limit=3, cursor=cursor)
        assert len(page) <= 3
        seen += page
        if cursor is None:
            break
    assert [e.reason for e in seen] == ["keycrm", "r6", "r5", "r4", "r3", "r2", "r1", "r0"]
    sofa, _ = await store.list(integration="sofa")
    assert [e.reason for e in sofa] == [
        "r6",
        "r5",
        "r4",
        "r3",
        "r2",
        "r1",
        "r0",
    ]  # its own and the global ones
    keycrm, _ = await store.list(integration="keycrm")
    assert {e.reason for e in keycrm} == {"keycrm", "r0", "r2", "r4", "r6"}
    one, more = await store.list(phone="0670000000")
    assert [e.reason for e in one] == ["keycrm", "r0"] and more is None
    with pytest.raises(ValidationFailed, match="cursor"):
        await store.list(cursor="bm90IGEgY3Vyc29y")
    with pytest.raises(ValidationFailed, match="limit"):
        await store.list(limit=0)


async def test_import_adds_in_one_go_and_names_each_bad_row(store: SuppressionStore) -> None:
    await store.add(PHONE, None, "already there")
    rows = [
        ImportRow("0994829574", None, "new"),  # 0: added (UA)
        ImportRow(PHONE),  # 1: skipped, already on the list
        ImportRow("12"),  # 2: rejected
        ImportRow("+380994829575", "sofa", "only sofa"),  # 3: added
        ImportRow("+380994829575", "sofa", "twice"),  # 4: skipped, earlier in the rows
        ImportRow("+380994829575", "nosuch"),  # 5: rejected: unknown integration
        ImportRow("+380994829576", "Not A Name"),  # 6: rejected
        ImportRow("+380994829577", None, "x" * 501),  # 7: rejected
        ImportRow("512 345 678", "pl_crm"),  # 8: added, read in pl_crm's region
        ImportRow("", None),  # 9: rejected
    ]
    added, skipped, rejected = await store.import_rows(rows, regions={"sofa": "UA", "pl_crm": "PL"})
    assert (added, skipped) == (3, 2)
    assert rejected == [
        RejectedRow(2, "phone_number is not a valid phone number"),
        RejectedRow(5, "unknown integration 'nosuch'"),
        RejectedRow(6, "integration: not an integration name (lowercase letters, digits and _)"),
        RejectedRow(7, "reason: text of at most 500 characters, without NUL"),
        RejectedRow(9, "phone_number is not a valid phone number"),
    ]
    assert (await store.is_suppressed("+380994829574", "sofa")).source == "import"  # type: ignore[union-attr]
    assert (await store.is_suppressed("+48512345678", "pl_crm")) is not None
    assert await store.is_suppressed("+380994829575", "keycrm") is None
    assert (await store.import_rows([])) == (0, 0, [])


async def test_bad_input_is_refused_without_quoting_the_number(store: SuppressionStore) -> None:
    for call in (
        store.add("+38099482957", None, "x"),
        store.is_suppressed("12345", "sofa"),
        store.remove("099482957"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            await call
        assert refused.value.message == "phone_number is not a valid phone number"
    with pytest.raises(ValidationFailed, match="source"):
        await store.add(PHONE, None, "x", source="Bad Source")
    with pytest.raises(ValidationFailed, match="integration"):
        await store.add(PHONE, "Sofa", "x")
    with pytest.raises(ValidationFailed, match="reason"):
        await store.add(PHONE, None, "a\x00b")
