"""test-call: originate one call through the voice API, within the configured concurrency."""

from __future__ import annotations

from happ_integ import Context, HappError, define_handler
from integrations.example.config import CallLimits
from integrations.example.models import TestCallPayload, TestCallResponse


# It dials on the company's voice account: callers present WEBHOOK_TOKEN (the default, said
# here out loud because this route must never become public).
@define_handler(name="test-call", endpoint="POST /test-call", retries=0, auth="bearer")
async def test_call(ctx: Context[TestCallPayload]) -> TestCallResponse:
    """Checks the concurrency limit, records the call, asks the voice API to dial."""
    p = ctx.payload
    if not p.phoneNumber:
        return TestCallResponse(success=False, error="phoneNumber is required")
    if not p.sip:
        return TestCallResponse(success=False, error="sip is required")
    base_url = ctx.env.saas_api_url if ctx.env else None
    if not base_url:
        return TestCallResponse(success=False, error="HAPP_SAAS_API_URL is not set")

    secrets = await ctx.creds.get()
    if not p.authToken and not secrets.SAAS_AUTH_TOKEN:
        return TestCallResponse(success=False, error="authToken is required (or set SAAS_AUTH_TOKEN)")
    token = p.authToken or str(secrets.SAAS_AUTH_TOKEN)
    assistant_id = p.assistantId if p.assistantId is not None else str(secrets.SAAS_ASSISTANT_ID)

    limits = await ctx.config.get("call_handling", CallLimits)
    result = await ctx.db.query(
        "SELECT COUNT(*)::int AS count FROM {{calls}} WHERE status IN ('initiated', 'in_progress')"
    )
    active = result.data[0]["count"] if result.data else 0
    if active >= limits.concurrency_limit:
        ctx.log.info("Max concurrent calls reached", {"activeCalls": active})
        return TestCallResponse(success=False, error=f"Max calls limit reached ({limits.concurrency_limit})")

    call_id = f"call_{ctx.uuid().replace('-', '')[:16]}"
    await ctx.db.insert(
        "calls",
        {
            "id": call_id,
            "call_id": call_id,
            "status": "initiated",
            "callee": p.phoneNumber,
            "metadata": {"isTestCall": True},
        },
    )
    ctx.log.info("Call record created", {"callId": call_id})

    try:
        response = await ctx.step.run(
            "voice.originate",
            lambda: ctx.http.post(
                f"{base_url.rstrip('/')}/{p.sip}/originate/",
                headers={"Authorization": f"Bearer {token}"},
                json={"phone_number": p.phoneNumber, "assistant_id": assistant_id, "call_id": call_id},
            ),
            input={"sip": p.sip},
            transform=lambda r: {"status": r.status_code},
        )
    except HappError as exc:
        # Never leave the row `initiated`: it would count against the concurrency limit forever.
        ctx.log.error("Test call failed", exc)
        await ctx.db.update("calls", {"status": "failed"}, {"id": call_id})
        return TestCallResponse(success=False, error=exc.message, callId=call_id)
    if not response.ok:
        await ctx.db.update("calls", {"status": "failed"}, {"id": call_id})
        return TestCallResponse(success=False, error=f"API error: {response.status_code}", callId=call_id)

    await ctx.db.update("calls", {"status": "in_progress"}, {"id": call_id})
    return TestCallResponse(success=True, callId=call_id, message="Call initiated")
