"""ContactAttempts against a real PostgreSQL: the caps per number at their edges, counted across
integrations, one winner for the last attempt when workers race, retried activities counted once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from happ_integ.calls.contact_policy import AttemptGrant, ContactPolicy, NumberAttempts, decide_attempt
from happ_integ.errors import ValidationFailed
from happ_integ.stores.contact_attempts import ContactAttempt, ContactAttempts
from happ_integ.stores.pool import create_pool

T0 = datetime(2025, 3, 3, 10, 0, tzinfo=UTC)
THREE_NO_GAP = ContactPolicy(max_attempts_per_day=3, min_minutes_between_attempts=0)


def new_phone() -> str:
    """A number no other test dials (the table is shared by the whole session)."""
    return f"+1555{uuid.uuid4().int % 10**7:07d}"


@pytest.fixture
def phone() -> str:
    return new_phone()


@pytest.fixture
def ig(name: str) -> str:
    """The test's own integration name: (integration, call_id, attempt) is unique in the whole table."""
    return name


@pytest.fixture
def attempts(pool: asyncpg.Pool) -> ContactAttempts:
    return ContactAttempts(pool)


@pytest.fixture
async def other_pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A second pool on the same database: what another worker process sees."""
    second = await create_pool(pg_url, min_size=1, max_size=10)
    yield second
    await second.close()


async def rows(pool: asyncpg.Pool, phone: str) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM happ_contact_attempts WHERE phone = $1", phone)
    return count


async def test_the_daily_cap_is_rolling_24_hours_to_the_microsecond(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    for hour in range(3):
        grant = await attempts.take_attempt(
            phone, ig, f"c{hour}", 1, THREE_NO_GAP, now=T0 + timedelta(hours=hour)
        )
        assert grant == AttemptGrant(allowed=True)
    almost = T0 + timedelta(hours=24) - timedelta(microseconds=1)
    refused = await attempts.take_attempt(phone, ig, "c3", 1, THREE_NO_GAP, now=almost)
    assert refused == AttemptGrant(
        allowed=False,
        next_allowed_at=T0 + timedelta(hours=24),
        reason="3 attempts in 24 h (contact_policy.max_attempts_per_day: 3)",
    )
    assert await rows(attempts.pool, phone) == 3  # a refusal records nothing
    allowed = await attempts.take_attempt(phone, ig, "c3", 1, THREE_NO_GAP, now=T0 + timedelta(hours=24))
    assert allowed.allowed
    # 11:00, 12:00 and 10:00 the next day are in the window: the next frees at 11:00 the next day.
    full = await attempts.take_attempt(
        phone, ig, "c4", 1, THREE_NO_GAP, now=T0 + timedelta(hours=24, minutes=30)
    )
    assert full.next_allowed_at == T0 + timedelta(hours=25)
    assert (
        await attempts.take_attempt(phone, ig, "c4", 1, THREE_NO_GAP, now=T0 + timedelta(hours=25))
    ).allowed


async def test_the_gap_holds_until_exactly_min_minutes(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    policy = ContactPolicy()  # 3 a day, 60 minutes apart
    assert (await attempts.take_attempt(phone, ig, "c1", 1, policy, now=T0)).allowed
    refused = await attempts.take_attempt(phone, ig, "c1", 2, policy, now=T0 + timedelta(minutes=12))
    assert refused == AttemptGrant(
        allowed=False,
        next_allowed_at=T0 + timedelta(minutes=60),
        reason="last attempt 12 min ago (contact_policy.min_minutes_between_attempts: 60)",
    )
    just_before = T0 + timedelta(minutes=60) - timedelta(microseconds=1)
    assert not (await attempts.take_attempt(phone, ig, "c1", 2, policy, now=just_before)).allowed
    assert (await attempts.take_attempt(phone, ig, "c1", 2, policy, now=T0 + timedelta(minutes=60))).allowed


async def test_next_allowed_at_is_the_later_of_both_caps(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    policy = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=120)
    await attempts.take_attempt(phone, ig, "a", 1, policy, now=T0)
    await attempts.take_attempt(phone, ig, "a", 2, policy, now=T0 + timedelta(hours=23, minutes=30))
    refused = await attempts.take_attempt(phone, ig, "a", 3, policy, now=T0 + timedelta(hours=23, minutes=40))
    # The day frees up at T0 + 24 h, the gap only at T0 + 25 h 30.
    assert refused.next_allowed_at == T0 + timedelta(hours=25, minutes=30)
    assert refused.reason is not None
    assert "max_attempts_per_day: 2" in refused.reason and "last attempt 10 min ago" in refused.reason


async def test_a_lowered_cap_waits_for_enough_attempts_to_expire(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    for hour in range(5):
        await attempts.take_attempt(
            phone,
            ig,
            f"c{hour}",
            1,
            ContactPolicy(min_minutes_between_attempts=0, max_attempts_per_day=5),
            now=T0 + timedelta(hours=hour),
        )
    lowered = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=0)
    refused = await attempts.take_attempt(phone, ig, "c5", 1, lowered, now=T0 + timedelta(hours=5))
    # Five in the window, two allowed: the window must lose four, the 13:00 one (the 2nd most recent).
    assert refused.next_allowed_at == T0 + timedelta(hours=27)
    assert refused.reason == "5 attempts in 24 h (contact_policy.max_attempts_per_day: 2)"
    assert not (
        await attempts.take_attempt(phone, ig, "c5", 1, lowered, now=T0 + timedelta(hours=26))
    ).allowed
    assert (await attempts.take_attempt(phone, ig, "c5", 1, lowered, now=T0 + timedelta(hours=27))).allowed


async def test_a_retried_attempt_counts_once_and_is_allowed_again(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    first = await attempts.take_attempt(phone, ig, "c1", 1, THREE_NO_GAP, now=T0)
    again = await attempts.take_attempt(phone, ig, "c1", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=1))
    assert first == again == AttemptGrant(allowed=True)
    await attempts.take_attempt(phone, ig, "c2", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=2))
    await attempts.take_attempt(phone, ig, "c3", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=3))
    # The day is full; the retry of an attempt already taken is still allowed, and counted once.
    assert (
        await attempts.take_attempt(phone, ig, "c3", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=4))
    ).allowed
    assert not (
        await attempts.take_attempt(phone, ig, "c4", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=4))
    ).allowed
    assert await rows(attempts.pool, phone) == 3
    taken = await attempts.attempts_of(phone, since=T0 - timedelta(days=1))
    assert taken[0] == ContactAttempt(phone=phone, at=T0, integration=ig, call_id="c1", attempt=1)


async def test_the_same_call_id_in_two_integrations_is_two_attempts(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    await attempts.take_attempt(phone, ig, "c1", 1, THREE_NO_GAP, now=T0)
    await attempts.take_attempt(phone, f"{ig}k", "c1", 1, THREE_NO_GAP, now=T0 + timedelta(minutes=1))
    assert await rows(attempts.pool, phone) == 2


async def test_every_integration_counts_against_the_same_number(
    ig: str, attempts: ContactAttempts, phone: str
) -> None:
    policy = ContactPolicy(max_attempts_per_day=3, min_minutes_between_attempts=30)
    await attempts.take_attempt(phone, ig, "s1", 1, policy, now=T0)
    await attempts.take_attempt(phone, f"{ig}k", "k1", 1, policy, now=T0 + timedelta(hours=1))
    # Another integration's attempt 10 minutes ago holds this one back.
    gap = await attempts.take_attempt(phone, ig, "s1", 2, policy, now=T0 + timedelta(hours=1, minutes=10))
    assert gap.next_allowed_at == T0 + timedelta(hours=1, minutes=30)
    await attempts.take_attempt(phone, f"{ig}n", "n1", 1, policy, now=T0 + timedelta(hours=2))
    refused = await attempts.take_attempt(phone, ig, "s1", 2, policy, now=T0 + timedelta(hours=3))
    assert not refused.allowed and refused.next_allowed_at == T0 + timedelta(hours=24)
    # Another number is not affected.
    assert (
        await attempts.take_attempt(new_phone(), ig, "s2", 1, policy, now=T0 + timedelta(hours=3))
    ).allowed

    taken = await attempts.attempts_of(phone, since=T0)
    assert [(a.integration, a.call_id, a.at) for a in taken] == [
        (ig, "s1", T0),
        (f"{ig}k", "k1", T0 + timedelta(hours=1)),
        (f"{ig}n", "n1", T0 + timedelta(hours=2)),
    ]
    assert [a.call_id for a in await attempts.attempts_of(phone, since=T0 + timedelta(hours=1))] == [
        "k1",
        "n1",
    ]


async def test_the_last_attempt_goes_to_exactly_one_of_two_racing_workers(
    ig: str, pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    workers = (ContactAttempts(pool), ContactAttempts(other_pool))
    for round_ in range(50):
        phone = new_phone()
        for n in range(2):  # two of the day's three attempts are taken
            assert (await workers[0].take_attempt(phone, ig, f"old{round_}.{n}", 1, THREE_NO_GAP)).allowed
        grants = await asyncio.gather(
            workers[0].take_attempt(phone, ig, f"a{round_}", 1, THREE_NO_GAP),
            workers[1].take_attempt(phone, f"{ig}k", f"b{round_}", 1, THREE_NO_GAP),
        )
        assert sorted(g.allowed for g in grants) == [False, True], (round_, grants)
        [refused] = [g for g in grants if not g.allowed]
        assert refused.reason == "3 attempts in 24 h (contact_policy.max_attempts_per_day: 3)"
        assert await rows(pool, phone) == 3


async def test_racing_workers_share_a_fresh_number_exactly_up_to_the_cap(
    ig: str, pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    workers = (ContactAttempts(pool), ContactAttempts(other_pool))
    gap_only = ContactPolicy(max_attempts_per_day=50, min_minutes_between_attempts=60)
    for round_ in range(20):
        phone = new_phone()
        grants = await asyncio.gather(
            *(workers[i % 2].take_attempt(phone, ig, f"c{round_}.{i}", 1, THREE_NO_GAP) for i in range(8))
        )
        assert sum(g.allowed for g in grants) == 3, (round_, grants)
        assert await rows(pool, phone) == 3
        # The gap too: of racers on a fresh number, one dials.
        other = new_phone()
        grants = await asyncio.gather(
            *(workers[i % 2].take_attempt(other, ig, f"g{round_}.{i}", 1, gap_only) for i in range(4))
        )
        assert sum(g.allowed for g in grants) == 1, (round_, grants)


async def test_a_retry_racing_its_first_try_counts_once(
    ig: str, pool: asyncpg.Pool, other_pool: asyncpg.Pool
) -> None:
    workers = (ContactAttempts(pool), ContactAttempts(other_pool))
    for round_ in range(20):
        phone = new_phone()
        grants = await asyncio.gather(
            *(w.take_attempt(phone, ig, f"c{round_}", 1, ContactPolicy()) for w in workers)
        )
        assert all(g.allowed for g in grants)
        assert await rows(pool, phone) == 1


async def test_the_database_clock_times_an_attempt(ig: str, attempts: ContactAttempts, phone: str) -> None:
    before = await attempts.pool.fetchval("SELECT clock_timestamp()")
    assert (await attempts.take_attempt(phone, ig, "c1", 1, ContactPolicy())).allowed
    after = await attempts.pool.fetchval("SELECT clock_timestamp()")
    [taken] = await attempts.attempts_of(phone, since=before)
    assert before <= taken.at <= after
    refused = await attempts.take_attempt(phone, ig, "c2", 1, ContactPolicy())
    assert refused.next_allowed_at == taken.at + timedelta(minutes=60)
    assert refused.reason == "last attempt 0 s ago (contact_policy.min_minutes_between_attempts: 60)"


@pytest.mark.parametrize("bad", ["0994829573", "+0994829573", "+38099 482 95 73", "", "+1234"])
async def test_a_number_not_in_e164_is_refused_without_repeating_it(
    ig: str, attempts: ContactAttempts, bad: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        await attempts.take_attempt(bad, ig, "c1", 1, ContactPolicy())
    assert not bad or bad not in refused.value.message
    with pytest.raises(ValidationFailed):
        await attempts.attempts_of(bad, since=T0)


@pytest.mark.parametrize(
    ("integration", "call_id", "attempt", "now"),
    [
        ("Sofa!", "c1", 1, None),
        (ig, "", 1, None),
        (ig, "c1", 0, None),
        (ig, "c1", 1, datetime(2025, 1, 1)),  # naive
    ],
)
async def test_bad_arguments_are_refused(
    ig: str,
    attempts: ContactAttempts,
    phone: str,
    integration: str,
    call_id: str,
    attempt: int,
    now: datetime | None,
) -> None:
    with pytest.raises(ValidationFailed):
        await attempts.take_attempt(phone, integration, call_id, attempt, ContactPolicy(), now=now)


@pytest.fixture
async def fresh_pool(pool: asyncpg.Pool, pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on a new, empty database."""
    database = f"fresh_{uuid.uuid4().hex[:10]}"
    await pool.execute(f'CREATE DATABASE "{database}"')
    fresh = await create_pool(pg_url.rsplit("/", 1)[0] + f"/{database}", min_size=1, max_size=2)
    yield fresh
    await fresh.close()
    await pool.execute(f'DROP DATABASE "{database}"')


async def test_the_table_is_created_on_first_use(ig: str, fresh_pool: asyncpg.Pool, phone: str) -> None:
    attempts = ContactAttempts(fresh_pool)
    assert await attempts.attempts_of(phone, since=T0) == []
    assert (await attempts.take_attempt(phone, ig, "c1", 1, ContactPolicy(), now=T0)).allowed
    indexes = await fresh_pool.fetch(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'happ_contact_attempts'"
    )
    assert any("(phone, at)" in r["indexdef"] for r in indexes)


async def test_states_of_reads_many_numbers_as_take_attempt_decides_them(
    ig: str, attempts: ContactAttempts
) -> None:
    """The preflight's read: each number's state, none taken, the same decision take_attempt makes."""
    busy, once, fresh = new_phone(), new_phone(), new_phone()
    policy = ContactPolicy(max_attempts_per_day=2, min_minutes_between_attempts=30)
    for n, hour in enumerate((0, 5)):
        await attempts.take_attempt(busy, ig, f"b{n}", 1, policy, now=T0 + timedelta(hours=hour))
    await attempts.take_attempt(once, ig, "o", 1, policy, now=T0 - timedelta(hours=30))
    at = T0 + timedelta(hours=6)
    now, states = await attempts.states_of([busy, once, fresh, busy], policy, now=at)
    assert now == at and set(states) == {busy, once}  # a number never dialled has no state
    assert states[busy] == NumberAttempts(latest_at=T0 + timedelta(hours=5), cap_at=T0, in_window=2)
    assert states[once] == NumberAttempts(latest_at=T0 - timedelta(hours=30), cap_at=None, in_window=0)
    decided = decide_attempt(policy, at, **states[busy].model_dump())
    taken = await attempts.take_attempt(busy, ig, "b2", 1, policy, now=at)
    assert decided == taken and decided.next_allowed_at == T0 + timedelta(hours=24)
    assert await rows(attempts.pool, busy) == 2 and await rows(attempts.pool, fresh) == 0
    with pytest.raises(ValidationFailed):
        await attempts.states_of(["12345"], policy)
