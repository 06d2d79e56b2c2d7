"""define_handler and Integration refuse mistakes at import time, with a message that names the fix."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from happ_integ import (
    CallFlow,
    Context,
    Dedup,
    HandlerDefinitionError,
    Integration,
    Scheduled,
    define_handler,
    handler_definition,
)


class In(BaseModel):
    id: str | None = None


class Out(BaseModel):
    success: bool


async def body(ctx: Context[In]) -> Out:
    return Out(success=True)


def make(name: str = "ok", **options: object) -> object:
    async def handler(ctx: Context[In]) -> Out:
        return Out(success=True)

    return define_handler(name=name, **options)(handler)  # type: ignore[arg-type]


def test_a_valid_handler_keeps_its_function_and_carries_a_definition() -> None:
    fn = make("agent-init", endpoint="POST /webhook/agent-init", retries=0, durable=False)
    definition = handler_definition(fn)
    assert callable(fn) and definition.name == "agent-init"
    assert str(definition.endpoint) == "POST /webhook/agent-init"
    assert definition.payload_model is In and definition.response_model is Out
    assert definition.retries == 0 and definition.durable is False
    assert make("x").__name__ == "handler"  # type: ignore[attr-defined]
    assert handler_definition(make("y")).retries == 3, "the documented default"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"name": "Bad Name"}, "kebab-case"),
        ({"name": "-x"}, "kebab-case"),
        ({"retries": 21}, "0 to 20"),
        ({"retries": -1}, "0 to 20"),
        ({"retries": True}, "0 to 20"),
        ({"endpoint": "post /x"}, "upper-case method"),
        ({"endpoint": "FETCH /x"}, "upper-case method"),
        ({"endpoint": "POST x"}, "must start with '/'"),
        ({"endpoint": "POST"}, "must look like"),
        ({"dedup": Dedup(ttl_seconds=0)}, "ttl_seconds must be positive"),
        ({"auth": "basic"}, "auth must be"),
        ({"openapi": {"summry": "typo"}}, "openapi options are"),
    ],
)
def test_bad_options_are_refused(options: dict[str, object], fragment: str) -> None:
    name = options.pop("name", "h")
    with pytest.raises(HandlerDefinitionError, match=fragment):
        make(str(name), **options)


def test_missing_or_wrong_annotations_are_refused() -> None:
    async def no_annotations(ctx):  # type: ignore[no-untyped-def]
        return None

    async def plain_return(ctx: Context[In]) -> dict:  # type: ignore[type-arg]
        return {}

    async def two_params(ctx: Context[In], extra: int) -> Out:
        return Out(success=True)

    def not_async(ctx: Context[In]) -> Out:
        return Out(success=True)

    for fn, fragment in (
        (no_annotations, "Context\\[YourPayload\\]"),
        (plain_return, "return annotation"),
        (two_params, "exactly one parameter"),
        (not_async, "async def"),
    ):
        with pytest.raises(HandlerDefinitionError, match=fragment):
            define_handler(name="h")(fn)  # type: ignore[type-var]


def test_reading_an_undecorated_function_says_what_is_missing() -> None:
    with pytest.raises(HandlerDefinitionError, match="decorated with @define_handler"):
        handler_definition(body)


def test_integration_refuses_duplicates_and_dangling_names() -> None:
    a, b = make("same", endpoint="POST /a"), make("same", endpoint="POST /b")
    with pytest.raises(HandlerDefinitionError, match="two handlers are named 'same'"):
        Integration("x", handlers=[a, b])
    c, d = make("c", endpoint="POST /hook"), make("d", endpoint="POST /hook")
    with pytest.raises(HandlerDefinitionError, match="both serve POST /hook"):
        Integration("x", handlers=[c, d])
    with pytest.raises(HandlerDefinitionError, match="scheduled names handler 'nope'"):
        Integration("x", handlers=[c], scheduled=[Scheduled(cron="0 * * * *", handler="nope")])
    with pytest.raises(HandlerDefinitionError, match=r"call_flow\.lookup"):
        Integration("x", handlers=[c], call_flow=CallFlow(lookup="missing"))
    with pytest.raises(HandlerDefinitionError, match="prefixes table names"):
        Integration("My-Integration", handlers=[c])
    with pytest.raises(HandlerDefinitionError, match="not a valid cron"):
        Scheduled(cron="every hour", handler="c")


def test_integration_exposes_its_task_queue_and_call_flow_secrets() -> None:
    lookup = make("crm-lookup")
    integration = Integration(
        "sofa", handlers=[lookup], secrets=["NETHUNT_API_KEY"], call_flow=CallFlow(lookup="crm-lookup")
    )
    assert integration.task_queue == "happ-sofa"
    assert integration.all_secret_names()[:2] == ["NETHUNT_API_KEY", "SAAS_AUTH_TOKEN"]
    assert "ELEVENLABS_WEBHOOK_SECRET" in integration.all_secret_names()


def test_routes_that_would_be_shadowed_or_collide_are_refused() -> None:
    for endpoint in ("POST /setup", "GET /health", "PUT /secrets", "GET /config/anything"):
        with pytest.raises(HandlerDefinitionError, match="shadow the built-in route"):
            Integration("x", handlers=[make("h", endpoint=endpoint)])
    explicit = make("other", endpoint="POST /webhook/ping")
    with pytest.raises(HandlerDefinitionError, match="both serve POST /webhook/ping"):
        Integration("x", handlers=[make("ping"), explicit])


def test_dedup_key_field_must_be_a_payload_field() -> None:
    assert handler_definition(make("ok", dedup=Dedup(ttl_seconds=5, key_field="id"))).dedup is not None
    with pytest.raises(HandlerDefinitionError, match="key_field 'recordid' is not a field of In"):
        make("bad", dedup=Dedup(ttl_seconds=5, key_field="recordid"))


class Strict(BaseModel):
    limit: int


def test_a_scheduled_payload_must_fit_the_handler() -> None:
    async def strict(ctx: Context[Strict]) -> Out:
        return Out(success=True)

    handler = define_handler(name="strict")(strict)
    with pytest.raises(HandlerDefinitionError, match="scheduled payload for 'strict' is invalid"):
        Integration(
            "x",
            handlers=[handler],
            scheduled=[Scheduled(cron="* * * * *", handler="strict", payload={"limit": "many"})],
        )
