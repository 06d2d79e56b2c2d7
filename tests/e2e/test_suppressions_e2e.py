"""The do-not-call routes at the gateway's root, over real HTTP (a gateway of its own, lifespan and
all, on the session's stack): the admin token, 201 then 200, numbers masked in every answer, the
scoped integration's default region, 404 on an unknown entry, removals logged, CSV imports with
their rejected rows by line, and the root OpenAPI document describing every answer."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from happ_integ.calls.phones import mask_phone
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.logs import CaptureSink
from tests.e2e.conftest import ADMIN_TOKEN, Stack, serve

pytestmark = pytest.mark.timeout(120)
# A block of numbers no other test dials: +38063 BBB NNNN.
BLOCK = f"+38063{random.randrange(100, 1000)}"
PL_LOCAL, PL_E164 = "512 345 678", "+48512345678"
PL2_LOCAL, PL2_E164 = "512 345 679", "+48512345679"


def number(n: int) -> str:
    return f"{BLOCK}{n:04d}"


def local(e164: str) -> str:
    """The UA number as dialled at home: 0 63 … ."""
    return "0" + e164.removeprefix("+380")


@dataclass
class Gateway:
    http: httpx.AsyncClient
    admin: dict[str, str]
    stack: Stack

    async def add(self, body: dict[str, Any], status: int = 201) -> dict[str, Any]:
        resp = await self.http.post("/suppressions", json=body, headers=self.admin)
        assert resp.status_code == status, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def page(self, **params: Any) -> dict[str, Any]:
        resp = await self.http.get("/suppressions", params=params, headers=self.admin)
        assert resp.status_code == 200, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def upload(self, text: str | bytes, status: int = 200, **params: str) -> dict[str, Any]:
        content = text.encode() if isinstance(text, str) else text
        headers = {**self.admin, "Content-Type": "text/csv"}
        resp = await self.http.post("/suppressions/import", content=content, params=params, headers=headers)
        assert resp.status_code == status, resp.text
        return resp.json()  # type: ignore[no-any-return]

    async def stored(self, phone: str) -> list[tuple[str | None, str | None, str]]:
        rows = await self.stack.resources.pool.fetch(
            "SELECT integration, reason, source FROM happ_suppressions WHERE phone = $1 ORDER BY integration NULLS FIRST",
            phone,
        )
        return [(r["integration"], r["reason"], r["source"]) for r in rows]


@pytest.fixture(scope="module")
async def gateway(stack: Stack) -> AsyncIterator[Gateway]:
    """A gateway serving example, gw and sofa (whose call_handling reads local numbers as Polish)."""
    pool = stack.resources.pool
    saved = await pool.fetchval(
        "SELECT value FROM happ_config WHERE integration = 'sofa' AND key = 'call_handling'"
    )
    await pool.execute(
        """INSERT INTO happ_config (integration, key, value) VALUES ('sofa', 'call_handling', $1)
           ON CONFLICT (integration, key) DO UPDATE SET value = EXCLUDED.value""",
        {"default_region": "PL"},
    )
    integrations = {**stack.runtime.integrations, **discover_integrations(["sofa"])}
    app = create_app(stack.settings, integrations, sink=CaptureSink())
    port = free_port()
    server, task = await serve(app, port, lifespan="on")
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    try:
        yield Gateway(http, {"Authorization": f"Bearer {ADMIN_TOKEN}"}, stack)
    finally:
        await http.aclose()
        server.should_exit = True
        await task
        await pool.execute(
            "DELETE FROM happ_suppressions WHERE phone LIKE $1 OR phone = ANY($2::text[])",
            f"{BLOCK}%",
            [PL_E164, PL2_E164],
        )
        if saved is None:
            await pool.execute("DELETE FROM happ_config WHERE integration = 'sofa' AND key = 'call_handling'")
        else:
            await pool.execute(
                "UPDATE happ_config SET value = $1 WHERE integration = 'sofa' AND key = 'call_handling'",
                saved,
            )


async def test_every_route_needs_the_admin_token(gateway: Gateway) -> None:
    wrong = {"Authorization": "Bearer not-the-admin-token"}
    requests = [
        ("POST", "/suppressions", {"json": {"phone_number": number(1), "reason": "x"}}),
        ("GET", "/suppressions", {}),
        ("DELETE", f"/suppressions/{number(1)}", {}),
        ("POST", "/suppressions/import", {"content": f"phone_number\n{number(1)}\n"}),
    ]
    for method, path, kw in requests:
        for headers in ({}, wrong):
            resp = await gateway.http.request(method, path, headers=headers, **kw)
            assert resp.status_code == 401, (method, path, resp.text)
            assert resp.json()["success"] is False
    assert await gateway.stored(number(1)) == []


async def test_added_is_201_then_200_and_every_answer_masks_the_number(gateway: Gateway) -> None:
    phone = number(2)
    first = await gateway.add({"phone_number": phone, "reason": "asked not to be called", "evidence": "c_1"})
    assert first["created"] is True and first["phone_masked"] == mask_phone(phone)
    assert first["integration"] is None and first["source"] == "manual" and first["evidence"] == "c_1"
    # The same number written as dialled at home (UA: a global entry's region) is the same entry.
    again = await gateway.add(
        {"phone_number": local(phone), "reason": "another", "source": "api"}, status=200
    )
    assert again["created"] is False and again["reason"] == "asked not to be called"
    assert again["created_at"] == first["created_at"]
    assert await gateway.stored(phone) == [(None, "asked not to be called", "manual")]

    page = await gateway.page(phone_number=local(phone))
    assert [(e["phone_masked"], e["reason"]) for e in page["suppressions"]] == [
        (mask_phone(phone), "asked not to be called")
    ]
    everything = await gateway.http.get("/suppressions", params={"limit": 500}, headers=gateway.admin)
    for text in (json.dumps(first), json.dumps(again), json.dumps(page), everything.text):
        assert phone not in text and local(phone) not in text


async def test_a_scoped_entry_reads_numbers_in_its_integration_s_region(gateway: Gateway) -> None:
    scoped = await gateway.add({"phone_number": PL_LOCAL, "integration": "sofa", "reason": "complained"})
    assert scoped["integration"] == "sofa" and scoped["phone_masked"] == mask_phone(PL_E164)
    assert await gateway.stored(PL_E164) == [("sofa", "complained", "manual")]
    # The global entry of the same number is another entry.
    await gateway.add({"phone_number": PL_E164, "reason": "everyone"})
    listed = await gateway.page(phone_number=PL_LOCAL, integration="sofa")
    assert [e["integration"] for e in listed["suppressions"]] == [None, "sofa"]
    only_global = await gateway.page(phone_number=PL_E164, integration="example")
    assert [e["integration"] for e in only_global["suppressions"]] == [None]

    for request in (
        gateway.http.post(
            "/suppressions",
            json={"phone_number": PL_E164, "integration": "nosuch", "reason": "x"},
            headers=gateway.admin,
        ),
        gateway.http.get("/suppressions", params={"integration": "nosuch"}, headers=gateway.admin),
        gateway.http.delete(
            f"/suppressions/{PL_E164}", params={"integration": "nosuch"}, headers=gateway.admin
        ),
    ):
        resp = await request
        assert resp.status_code == 422, resp.text
        assert "unknown integration 'nosuch': this gateway serves example, gw, sofa" in resp.json()["error"]


async def test_bad_input_is_a_422_that_does_not_quote_the_number(gateway: Gateway) -> None:
    bad = f"{BLOCK}99999"  # a digit too many
    cases = [
        ("POST", "/suppressions", {"json": {"phone_number": bad, "reason": "x"}}),
        ("POST", "/suppressions", {"json": {"phone_number": number(3)}}),  # no reason
        ("POST", "/suppressions", {"json": {"phone_number": number(3), "reason": ""}}),
        ("POST", "/suppressions", {"json": {"phone_number": number(3), "reason": "x", "phone": 1}}),
        ("POST", "/suppressions", {"json": {"phone_number": number(3), "reason": "x", "source": "Bad!"}}),
        (
            "POST",
            "/suppressions",
            {"json": {"phone_number": number(3), "reason": "x", "integration": "+380"}},
        ),
        ("POST", "/suppressions", {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
        ("GET", "/suppressions", {"params": {"phone_number": bad}}),
        ("GET", "/suppressions", {"params": {"cursor": "bm90IGEgY3Vyc29y"}}),
        ("GET", "/suppressions", {"params": {"limit": 0}}),
        ("DELETE", f"/suppressions/{bad}", {}),
        ("DELETE", "/suppressions/12345", {}),
    ]
    for method, path, kw in cases:
        headers = {**gateway.admin, **kw.pop("headers", {})}
        resp = await gateway.http.request(method, path, headers=headers, **kw)
        assert resp.status_code == 422, (method, path, kw, resp.text)
        body = resp.json()
        assert body["success"] is False and body["error"]
        assert bad not in resp.text and bad.removeprefix("+") not in resp.text, resp.text
    resp = await gateway.http.post(
        "/suppressions", json={"phone_number": bad, "reason": "x"}, headers=gateway.admin
    )
    assert resp.json()["error"] == "phone_number is not a valid phone number"
    assert await gateway.stored(number(3)) == []


async def test_delete_takes_off_one_entry_logs_it_and_is_404_when_there_is_none(
    gateway: Gateway, caplog: pytest.LogCaptureFixture
) -> None:
    phone = number(4)
    resp = await gateway.http.delete(f"/suppressions/{phone}", headers=gateway.admin)
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"] == f"{mask_phone(phone)} is not on the do-not-call list of every integration"
    assert phone not in resp.text

    await gateway.add({"phone_number": phone, "reason": "everyone"})
    await gateway.add({"phone_number": phone, "integration": "gw", "reason": "gw only"})
    with caplog.at_level(logging.INFO, logger="happ.suppressions"):
        resp = await gateway.http.delete(
            f"/suppressions/{local(phone)}",
            params={"integration": "gw", "reason": "wrong number"},
            headers=gateway.admin,
        )
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"removed": True, "phone_masked": mask_phone(phone), "integration": "gw"}
    assert await gateway.stored(phone) == [(None, "everyone", "manual")]
    assert (
        f"{mask_phone(phone)} removed from the do-not-call list of integration gw by the admin API (from 127.0.0.1): "
        "wrong number"
    ) in caplog.text
    assert phone not in caplog.text
    again = await gateway.http.delete(
        f"/suppressions/{phone}", params={"integration": "gw"}, headers=gateway.admin
    )
    assert again.status_code == 404 and "integration gw" in again.json()["error"]
    # The + may come percent-encoded too.
    resp = await gateway.http.delete(f"/suppressions/%2B{phone[1:]}", headers=gateway.admin)
    assert resp.status_code == 200, resp.text
    assert await gateway.stored(phone) == []


async def test_a_csv_import_adds_the_rows_and_names_the_rejected_ones_by_line(gateway: Gateway) -> None:
    await gateway.add({"phone_number": number(10), "reason": "already"})
    body = (
        "\ufeffPhone_Number;integration;reason;name\n"
        f"{number(11)};;asked;Олена\n"  # 2: added, global
        f"{local(number(12))};gw;complained;\n"  # 3: added, gw
        f"{number(10)};;again;\n"  # 4: skipped, on the list already
        "12345;;x;\n"  # 5: rejected
        "\n"  # 6: blank, not counted
        f"{number(13)};nosuch;;\n"  # 7: rejected
        f';gw;"no number\nover two lines";\n'  # 8-9: rejected
        f"{number(14)};;x;y;extra\n"  # 10: rejected
        f"{number(11)};;twice;\n"  # 11: skipped: earlier in the file
        f'{number(15)};;"a reason\non two lines";\n'  # 12-13: added
        f"{PL2_LOCAL};sofa;;\n"  # 14: added, read as Polish (sofa's region), reason from the query
    )
    answer = await gateway.upload(body, reason="from the complaints list")
    assert answer["rows"] == 10 and answer["added"] == 4 and answer["skipped"] == 2
    assert answer["rejected_count"] == 4 and answer["ignored_columns"] == ["name"]
    assert [(r["line"], r["error"]) for r in answer["rejected"]] == [
        (5, "phone_number is not a valid phone number"),
        (7, "unknown integration 'nosuch'"),
        (8, "no phone_number"),
        (10, "5 cells, but the header names 4 columns"),
    ]
    assert await gateway.stored(number(11)) == [(None, "asked", "import")]
    assert await gateway.stored(number(12)) == [("gw", "complained", "import")]
    assert await gateway.stored(number(10)) == [(None, "already", "manual")]
    assert await gateway.stored(number(15)) == [(None, "a reason\non two lines", "import")]
    assert await gateway.stored(PL2_E164) == [("sofa", "from the complaints list", "import")]
    assert number(11) not in json.dumps(answer) and "12345" not in json.dumps(answer)

    # The query's integration for rows whose cell is empty.
    scoped = await gateway.upload(f"phone_number\n{number(16)}\n", integration="gw")
    assert (scoped["added"], scoped["rejected"]) == (1, [])
    assert await gateway.stored(number(16)) == [("gw", None, "import")]


async def test_a_body_the_import_cannot_read_is_refused(gateway: Gateway) -> None:
    cases = [
        (b"", "the body is empty"),
        (b"   \n", "the body is empty"),
        (b"phone,reason\n1,2\n", "has no phone_number column (its columns: phone, reason)"),
        (f"{number(20)},gw\n".encode(), "has no phone_number column (its columns: (a number), gw)"),
        (b"phone_number,phone_number\n", "names the column 'phone_number' twice"),
        ("phone_number\n+380…\n".encode("utf-16"), "not UTF-8"),
        (b"phone_number\n\x00\n", "NUL"),
    ]
    for content, message in cases:
        answer = await gateway.upload(content, status=422)
        assert message in answer["error"], answer
        assert number(20) not in json.dumps(answer)
    too_many = "phone_number\n" + "1\n" * 100_001
    assert "more than 100,000 rows" in (await gateway.upload(too_many, status=422))["error"]
    # Past HAPP_MAX_CAMPAIGN_BODY_BYTES (16 MiB), the limit of uploads.
    huge = "phone_number,reason\n" + f"{number(21)},{'x' * 4000}\n" * 4300
    resp = await gateway.http.post(
        "/suppressions/import", content=huge.encode(), headers={**gateway.admin, "Content-Type": "text/csv"}
    )
    assert resp.status_code == 413, resp.text
    resp = await gateway.http.post(
        "/suppressions/import",
        params={"integration": "nosuch"},
        content=b"phone_number\n",
        headers=gateway.admin,
    )
    assert resp.status_code == 422 and "unknown integration" in resp.json()["error"]
    assert await gateway.stored(number(20)) == [] and await gateway.stored(number(21)) == []


async def test_pages_follow_the_cursor(gateway: Gateway) -> None:
    for n in range(30, 35):
        await gateway.add({"phone_number": number(n), "integration": "example", "reason": f"r{n}"})
    seen, cursor = [], None
    while True:
        page = await gateway.page(integration="example", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [e for e in page["suppressions"] if e["integration"] == "example"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["reason"] for e in seen][:5] == ["r34", "r33", "r32", "r31", "r30"]


async def test_the_root_openapi_document_describes_every_answer(gateway: Gateway) -> None:
    document = (await gateway.http.get("/openapi.json")).json()
    paths = document["paths"]

    def codes(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert codes("/suppressions", "post") == {"200", "201", "401", "409", "422", "503"}
    assert codes("/suppressions", "get") == {"200", "401", "422", "503"}
    assert codes("/suppressions/{phone_number}", "delete") == {"200", "401", "404", "422", "503"}
    assert codes("/suppressions/import", "post") == {"200", "401", "413", "422", "503"}
    assert "text/csv" in paths["/suppressions/import"]["post"]["requestBody"]["content"]
    for path, operations in paths.items():
        if path.startswith("/suppressions"):
            for operation in operations.values():
                assert operation["security"] == [{"AdminToken": []}], (path, operation)
                assert operation["tags"] == ["Suppressions"]
    error = paths["/suppressions"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ValidationErrorBody"}
