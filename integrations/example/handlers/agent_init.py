"""agent-init: context for the voice agent before it speaks (inline: the agent waits for it)."""

from __future__ import annotations

from happ_integ import Context, define_handler
from integrations.example.config import CrmFields
from integrations.example.models import InitContext, InitWebhookPayload, InitWebhookResponse


def default_response() -> InitWebhookResponse:
    return InitWebhookResponse(
        firstMessage="Привет! Чем могу помочь?", context=InitContext(clientName="Клиент")
    )


@define_handler(name="agent-init", endpoint="POST /webhook/agent-init", retries=0, durable=False)
async def agent_init(ctx: Context[InitWebhookPayload]) -> InitWebhookResponse:
    """Client context for the agent, cached per phone for an hour."""
    phone, conversation_id = ctx.payload.phone, ctx.payload.conversationId
    if not phone or not conversation_id:
        ctx.log.info("Missing required fields")
        return default_response()

    cache_key = f"context:{phone}"
    cached = await ctx.step.run("cache.get", lambda: ctx.cache.get(cache_key), optional=True)
    if cached:
        ctx.log.info("Found cached context")
        return InitWebhookResponse.model_validate(cached)

    secrets = await ctx.step.run("creds.get", ctx.creds.get, skip_output=True)
    response = default_response()
    if secrets.NETHUNT_API_KEY and secrets.NETHUNT_FOLDER_ID:
        fields = await ctx.config.get("crm_fields", CrmFields)
        records = await ctx.step.run(
            "crm.search",
            lambda: ctx.nethunt().search_records(
                secrets.NETHUNT_FOLDER_ID, f'"{fields.phone}":{phone}', limit=1
            ),
            input={"phone": phone},
            transform=lambda found: {"records": len(found)},
            # The agent is waiting: without the CRM it still gets the default greeting.
            optional=True,
            default=[],
        )
        if records:
            values = records[0].get("fields", {})
            response.context = InitContext(
                clientName=str(values.get(fields.name) or "Клиент"), company=values.get(fields.company)
            )

    await ctx.step.run("cache.set", lambda: ctx.cache.set(cache_key, response, 3600))
    return response
