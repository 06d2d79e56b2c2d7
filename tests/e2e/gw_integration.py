"""A small integration that exercises the gateway's guards: rate limit, dedup, auth, errors.

Most routes here are public on purpose (`auth="none"`, said out loud as any public route must):
they test one guard each, and tests elsewhere call them without credentials. `secure`, `signed`
and `once-typed` take credentials (`once-typed` by the default, WEBHOOK_TOKEN).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from pydantic import BaseModel, Field

from happ_integ import (
    BearerAuth,
    Context,
    Dedup,
    ElevenLabsAuth,
    Integration,
    Migration,
    RateLimit,
    define_handler,
)


class Echo(BaseModel):
    id: str | None = None
    text: str = Field(min_length=1)
    count: int = 1


class Echoed(BaseModel):
    success: bool = True
    text: str
    runs: int = 0


class Item(BaseModel):
    name: str
    qty: int = Field(ge=1)


class Order(BaseModel):
    customer: str
    items: list[Item] = Field(min_length=1)


@define_handler(
    name="echo",
    endpoint="POST /echo",
    durable=False,
    rate_limit=RateLimit(requests=3, per_seconds=3600),
    auth="none",
)
async def echo(ctx: Context[Echo]) -> Echoed:
    return Echoed(text=ctx.payload.text * ctx.payload.count)


@define_handler(name="order", endpoint="POST /order", durable=False, auth="none")
async def order(ctx: Context[Order]) -> Echoed:
    return Echoed(text=ctx.payload.customer)


async def _count_run(ctx: Context[Echo]) -> Echoed:
    await ctx.db.insert("runs", {"id": ctx.uuid(), "key": ctx.payload.id, "handler": ctx.handler_name})
    result = await ctx.db.query("SELECT count(*)::int AS n FROM {{runs}} WHERE key = $1", ctx.payload.id)
    return Echoed(text=ctx.payload.text, runs=result.data[0]["n"])


@define_handler(
    name="once-inline", endpoint="POST /once-inline", durable=False, dedup=Dedup(ttl_seconds=60), auth="none"
)
async def once_inline(ctx: Context[Echo]) -> Echoed:
    return await _count_run(ctx)


@define_handler(name="once-durable", endpoint="POST /once-durable", dedup=Dedup(ttl_seconds=60), auth="none")
async def once_durable(ctx: Context[Echo]) -> Echoed:
    return await _count_run(ctx)


@define_handler(name="boom", endpoint="POST /boom", durable=False, auth="none")
async def boom(ctx: Context[Echo]) -> Echoed:
    raise RuntimeError(f"kaboom: {ctx.payload.text}")


@define_handler(name="boom-durable", endpoint="POST /boom-durable", retries=0, auth="none")
async def boom_durable(ctx: Context[Echo]) -> Echoed:
    await ctx.db.insert("runs", {"id": ctx.uuid(), "key": ctx.payload.id, "handler": ctx.handler_name})
    raise RuntimeError(f"kaboom: {ctx.payload.text}")


@define_handler(name="secure", endpoint="POST /secure", durable=False, auth=BearerAuth("WEBHOOK_TOKEN"))
async def secure(ctx: Context[Echo]) -> Echoed:
    return Echoed(text=ctx.payload.text)


@define_handler(name="signed", endpoint="POST /signed", durable=False, auth=ElevenLabsAuth())
async def signed(ctx: Context[Echo]) -> Echoed:
    return Echoed(text=ctx.payload.text)


@define_handler(name="lookup", endpoint="GET /lookup", durable=False, auth="none")
async def lookup(ctx: Context[Echo]) -> Echoed:
    return Echoed(text=ctx.payload.text, runs=ctx.payload.count)


class Typed(BaseModel):
    """A dedup key by the default fields (`id`, `recordId`, …), whichever type it comes in."""

    id: int | str | None = None
    recordId: str | None = None
    text: str = Field(min_length=1)


@define_handler(name="once-typed", endpoint="POST /once-typed", durable=False, dedup=Dedup(ttl_seconds=60))
async def once_typed(ctx: Context[Typed]) -> Echoed:
    """Counts its runs per `text`: each test sends a text of its own."""
    await ctx.db.insert("runs", {"id": ctx.uuid(), "key": ctx.payload.text, "handler": ctx.handler_name})
    result = await ctx.db.query("SELECT count(*)::int AS n FROM {{runs}} WHERE key = $1", ctx.payload.text)
    return Echoed(text=ctx.payload.text, runs=result.data[0]["n"])


class Number(BaseModel):
    n: int


@define_handler(name="number", endpoint="POST /number", durable=False, retries=0, auth="none")
async def number(ctx: Context[Number]) -> Echoed:
    """Stores a number the model does not bound: a column type refuses the large ones."""
    await ctx.db.insert("numbers", {"id": ctx.uuid(), "n": ctx.payload.n})
    return Echoed(text=str(ctx.payload.n))


class Forward(BaseModel):
    note: str


@define_handler(name="forward", endpoint="POST /forward", durable=False, auth="none")
async def forward(ctx: Context[Forward]) -> Echoed:
    """Sends the caller's note and our token to the voice peer's probe path."""
    secrets = await ctx.creds.get()
    assert ctx.env is not None and ctx.env.saas_api_url
    resp = await ctx.http.post(
        f"{ctx.env.saas_api_url}/_sim/echo",
        json={"note": ctx.payload.note},
        headers={"X-Token": f"{secrets.WEBHOOK_TOKEN}"},
    )
    return Echoed(text=resp.text, runs=resp.status_code)


class Aliased(BaseModel):
    record_id: str = Field(alias="recordId")


class AliasedOut(BaseModel):
    success: bool = True
    record_id: str = Field(alias="recordId")


@define_handler(name="aliased", endpoint="POST /aliased", auth="none")
async def aliased(ctx: Context[Aliased]) -> AliasedOut:
    return AliasedOut(recordId=ctx.payload.record_id)


@define_handler(name="sleepy", endpoint="POST /sleepy", durable=False, timeout_seconds=0.3, auth="none")
async def sleepy(ctx: Context[Echo]) -> Echoed:
    await asyncio.sleep(5)
    return Echoed(text="late")


@define_handler(name="wall-clock", endpoint="POST /wall-clock", auth="none")
async def wall_clock(ctx: Context[Echo]) -> Echoed:
    """Wrong on purpose: reads the wall clock instead of ctx.now()."""
    return Echoed(text=datetime.now().isoformat())


gw = Integration(
    name="gw",
    handlers=[
        echo,
        order,
        once_inline,
        once_durable,
        boom,
        boom_durable,
        secure,
        signed,
        lookup,
        forward,
        aliased,
        sleepy,
        wall_clock,
        number,
        once_typed,
    ],
    migrations=[
        Migration("001_runs", "CREATE TABLE {{runs}} (id text PRIMARY KEY, key text, handler text)"),
        Migration("002_numbers", "CREATE TABLE {{numbers}} (id text PRIMARY KEY, n int NOT NULL)"),
    ],
    secrets=["WEBHOOK_TOKEN", "ELEVENLABS_WEBHOOK_SECRET"],
)
