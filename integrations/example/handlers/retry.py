"""retry: event-only, hourly: put calls whose retry time has come back to `initiated`."""

from __future__ import annotations

from happ_integ import Context, define_handler
from integrations.example.models import RetryPayload, RetryResponse


@define_handler(name="retry", retries=3, endpoint=None)
async def retry(ctx: Context[RetryPayload]) -> RetryResponse:
    """Calls with `next_retry_at <= now` become `initiated` again."""
    try:
        calls = await ctx.db.select("calls", {"next_retry_at": {"$lte": ctx.now().isoformat()}})
        if not calls:
            return RetryResponse(success=True, processed=0)
        processed = 0
        for call in calls:
            try:
                await ctx.db.update(
                    "calls", {"status": "initiated", "next_retry_at": None}, {"id": call["id"]}
                )
                processed += 1
            except Exception as exc:
                ctx.log.error(f"Failed to retry call {call['id']}", exc)
        return RetryResponse(success=True, processed=processed)
    except Exception as exc:
        ctx.log.error("Retry failed", exc)
        return RetryResponse(success=False, processed=0, error=str(exc))
