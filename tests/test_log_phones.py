"""Phone numbers in logs: masked as the call's memo masks them, in both transports, by key and by
value, while dates, ids and amounts stay readable.

(Apart from tests/test_logs.py: that module's workflow runs in a sandbox that re-imports it, so it
imports nothing of the framework but the logs.)
"""

from __future__ import annotations

import io
from datetime import UTC

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

from happ_integ import Context, define_handler
from happ_integ.handler import handler_definition
from happ_integ.inline import run_inline
from happ_integ.logs import ConsoleTransport, JsonTransport, Redactor
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.settings import Settings

PHONE = "+380994829573"
MASKED = "+38099*****73"


class Lead(BaseModel):
    phone_number: str
    variables: dict[str, str]
    called_on: str


class LeadAnswer(BaseModel):
    found: bool


@define_handler(name="lead-lookup")
async def lead_lookup(ctx: Context[Lead]) -> LeadAnswer:
    """A lookup as integrations write them: the number goes into a search, a cache key, a message."""
    phone = ctx.payload.phone_number
    await ctx.step.run(
        "crm.search",
        lambda: [{"id": "000000000000000000000001", "fields": {"Phone": [phone], "Name": "Іван"}}],
        input={"query": f'"Phone":{phone}'},
    )
    await ctx.cache.set(f"lead:{phone}", {"callee": phone, **ctx.payload.variables})
    ctx.log.info(f"lead {phone} found", {"national": "099 482 95 73"})
    return LeadAnswer(found=True)


@pytest.mark.parametrize("kind", ["json", "console"])
async def test_a_handler_run_logs_no_phone_number_only_the_masked_one(pg_url: str, kind: str) -> None:
    """A real inline run (payload, step input and output, a cache operation, a message) through
    each transport: the number shows as the memo shows it, everything else as it was."""
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=Fernet.generate_key().decode())
    resources = await open_resources(settings, {})
    out = io.StringIO()
    transport = (
        JsonTransport(out, redactor=Redactor())
        if kind == "json"
        else ConsoleTransport(out, color=False, tz=UTC, redactor=Redactor())
    )
    payload = Lead(
        phone_number=PHONE, variables={"client_name": "Іван", "order": "12345"}, called_on="2026-01-21"
    )
    try:
        answer = await run_inline(
            resources, "sofa", handler_definition(lead_lookup), payload, "t-phone", transport
        )
    finally:
        await close_resources(resources)
    assert answer == LeadAnswer(found=True)
    text = out.getvalue()
    for shown in (PHONE, PHONE[1:], "0994829573", "099 482 95 73", "994829573"):
        assert shown not in text, f"{shown!r} in the {kind} log:\n{text}"
    assert text.count(MASKED) >= 5, text  # payload, step input, step output, cache key and value, message
    assert "09948***73" in text, "a national number is masked too"
    # Not every digit is a number: dates, ids and amounts stay readable.
    for kept in ("2026-01-21", "000000000000000000000001", "12345", "Іван"):
        assert kept in text, kept


def test_phone_masking_by_key_and_by_value() -> None:
    r = Redactor()
    data = r.redact(
        {
            "phoneNumber": "+380 (99) 482-95-73",
            "Phone": ["+380994829573", 380501234567],
            "callee": {"e164": "+442071838750"},
            "note": "call back 00380994829573 or +1 415 555 2671 at 14:30 on 2026-01-21",
            "+380994829573": "as a key",
            "quantity": 3,
            "short": "+380...",
            "trace": "38099482-9573-4abc-8def-0123456789ab",
        }
    )
    assert data == {
        "phoneNumber": MASKED,
        "Phone": [MASKED, "38050*****67"],
        "callee": {"e164": "+44207*****50"},
        "note": "call back +38099*****73 or +14155****71 at 14:30 on 2026-01-21",
        MASKED: "as a key",
        "quantity": 3,
        "short": "+380...",
        "trace": "38099482-9573-4abc-8def-0123456789ab",
    }
    assert r.clean(f"error: no lead for {PHONE}") == f"error: no lead for {MASKED}"
    # What hands data back to a handler keeps the number: only what is shown is masked.
    assert r.scrub_all({"phone": PHONE}) == {"phone": PHONE}
    assert Redactor(mask_phones=False).redact({"phone": PHONE}) == {"phone": PHONE}
