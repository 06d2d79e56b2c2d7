"""POST /{integration}/campaigns/preflight over real HTTP, on a stack of its own (no worker: nothing
is dialled): each recipient checked, the counts, the projected end; nothing stored."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from tests.e2e.call_stack import ADMIN, CallStack, phone, start_call_stack

pytestmark = pytest.mark.timeout(300)
AUTH = {"Authorization": f"Bearer {ADMIN}"}


@pytest.fixture(scope="module")
async def stack(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[CallStack]:
    stack = await start_call_stack(pg_url, tmp_path_factory.mktemp("preflight-logs"), None)
    try:
        yield stack
    finally:
        await stack.close()


async def test_preflight_answers_each_recipient_and_stores_nothing(stack: CallStack) -> None:
    name = stack.integration
    pool = stack.resources.pool
    numbers = [phone(9100 + n) for n in range(4)]
    await stack.resources.suppressions().add(numbers[1], name, "asked not to be called")
    await stack.resources.config(name).set("required_variables", {"variables": ["webinar"]})
    # One completed call of 60 s: the average the projection uses.
    await pool.execute(
        f"""INSERT INTO {name}_calls (call_id, workflow_id, phone, status, created_at, updated_at)
            VALUES ('c_pre', 'w_pre', $1, 'completed', now() - interval '60 seconds', now())""",
        phone(9199),
    )
    body = {
        "name": "Preflight",
        "max_concurrency": 2,
        "recipients": [
            {"phone_number": numbers[0], "id": "lead-0", "variables": {"webinar": "12 Dec"}},
            {"phone_number": numbers[1], "variables": {"webinar": "12 Dec"}},
            {"phone_number": "12"},
            {"phone_number": numbers[2]},
            {"phone_number": numbers[3], "variables": {"webinar": "12 Dec"}},
        ],
    }
    before = datetime.now().astimezone()
    resp = await stack.http.post(f"/{name}/campaigns/preflight", json=body, headers=AUTH)
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    rows = answer["recipients"]
    assert [r["valid"] for r in rows] == [True, True, False, True, True]
    assert rows[2]["error"] == "phone_number is not a valid phone number"
    assert [r["suppressed"] for r in rows] == [False, True, False, False, False]
    assert [r["missing_variables"] for r in rows] == [[], [], [], ["webinar"], []]
    assert rows[0]["id"] == "lead-0" and rows[0]["region"] == "UA"
    assert rows[0]["timezones"] == ["Europe/Kyiv"] and rows[0]["ambiguous_timezone"] is False
    for row, number in zip([rows[0], rows[1], rows[3], rows[4]], numbers, strict=True):
        assert row["phone_number"] == number[:6] + "*****" + number[-2:]
    for number in numbers:
        assert number not in resp.text
    assert answer["counts"] == {
        "total": 5,
        "valid": 4,
        "invalid": 1,
        "suppressed": 1,
        "capped": 0,
        "ambiguous_timezone": 0,
        "missing_variables": 1,
    }
    # No calling hours in this stack's call_handling: the first dial is now.
    assert rows[1]["first_dial_at"] is None
    first = datetime.fromisoformat(rows[0]["first_dial_at"])
    assert before - timedelta(seconds=1) <= first <= datetime.now().astimezone()
    # Three to call, two at once, 60 s each: two rounds.
    end = datetime.fromisoformat(answer["projected_end_at"])
    assert abs((end - first).total_seconds() - 120) < 2

    # Nothing stored.
    listed = await stack.http.get(f"/{name}/campaigns", headers=AUTH)
    assert listed.status_code == 200 and listed.json()["campaigns"] == []
    assert await pool.fetchval(f"SELECT count(*) FROM {name}_campaign_recipients") == 0
    assert await pool.fetchval(f"SELECT count(*) FROM {name}_campaigns") == 0


async def test_preflight_needs_the_admin_token_and_a_valid_body(stack: CallStack) -> None:
    url = f"/{stack.integration}/campaigns/preflight"
    body = {"name": "x", "recipients": [{"phone_number": phone(9300)}]}
    assert (await stack.http.post(url, json=body)).status_code == 401
    assert (await stack.http.post(url, json={"name": "x", "recipients": []}, headers=AUTH)).status_code == 422
    assert (await stack.http.post(url, json={"recipients": "no"}, headers=AUTH)).status_code == 422


async def test_preflight_is_in_the_openapi_document(stack: CallStack) -> None:
    doc = (await stack.http.get(f"/{stack.integration}/openapi.json")).json()
    operation = doc["paths"]["/campaigns/preflight"]["post"]
    assert set(operation["responses"]) >= {"200", "401", "413", "422", "503"}
    assert "Preflight" in doc["components"]["schemas"]


async def test_suppressed_among_reads_global_and_own_entries_only(stack: CallStack) -> None:
    store = stack.resources.suppressions()
    mine, everyone, others, free = (phone(9400 + n) for n in range(4))
    await store.add(mine, stack.integration)
    await store.add(everyone, None)
    await store.add(others, "someone_else")
    assert await store.suppressed_among([mine, everyone, others, free, mine], stack.integration) == {
        mine,
        everyone,
    }
    assert await store.suppressed_among([mine, everyone, others, free], None) == {everyone}
    assert await store.suppressed_among([], stack.integration) == set()
