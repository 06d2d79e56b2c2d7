"""A small integration for the harness's own tests: one handler that reads its config and secrets,
writes the cache, and fails with NotFound when asked to."""

from __future__ import annotations

from pydantic import BaseModel

from happ_integ import Context, Integration, NotFound, define_handler


class Greeting(BaseModel):
    text: str = "Hello"


class Ask(BaseModel):
    name: str


class Answer(BaseModel):
    text: str
    token_set: bool
    mode: str


@define_handler(name="greet", endpoint="POST /webhook/greet", retries=2)
async def greet(ctx: Context[Ask]) -> Answer:
    if ctx.payload.name == "nobody":
        raise NotFound("no such person")
    greeting = await ctx.config.get("greeting", Greeting)
    secrets = await ctx.creds.get()
    await ctx.cache.set("last", {"name": ctx.payload.name}, ttl_seconds=60)
    return Answer(
        text=f"{greeting.text}, {ctx.payload.name}",
        token_set=not secrets.missing("WEBHOOK_TOKEN"),
        mode=ctx.mode,
    )


integration = Integration(name="probe", handlers=[greet], default_configs={"greeting": Greeting()})
