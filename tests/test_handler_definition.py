"""define_handler and Integration refuse mistakes at import time, with a message that names the fix."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from happ_integ import (
    BearerAuth,
    CallFlow,
    Context,
    Dedup,
    ElevenLabsAuth,
    HandlerDefinitionError,
    Integration,
    Migration,
    Scheduled,
    define_handler,
    handler_definition,
)
from happ_integ.calls.config import CallHandling
from happ_integ.calls.models import LookupPayload, LookupResult, PostcallPayload


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
        ({"auth": None}, "write auth='none' for a public route"),
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


@define_handler(name="crm-lookup")
async def lookup(ctx: Context[LookupPayload]) -> LookupResult:
    return LookupResult()


@define_handler(name="crm-postcall")
async def postcall(ctx: Context[PostcallPayload]) -> Out:
    return Out(success=True)


def test_integration_exposes_its_task_queue_and_call_flow_secrets() -> None:
    integration = Integration(
        "sofa", handlers=[lookup], secrets=["NETHUNT_API_KEY"], call_flow=CallFlow(lookup="crm-lookup")
    )
    assert integration.task_queue == "happ-sofa"
    assert integration.all_secret_names()[:2] == ["NETHUNT_API_KEY", "SAAS_AUTH_TOKEN"]
    assert {"ELEVENLABS_WEBHOOK_SECRET", "ELEVENLABS_API_KEY", "WEBHOOK_TOKEN"} <= set(
        integration.all_secret_names()
    )


def test_a_call_flow_brings_its_tables_config_and_routes() -> None:
    integration = Integration(
        "sofa",
        handlers=[lookup, postcall],
        migrations=[Migration("001_mine", "SELECT 1")],
        call_flow=CallFlow(lookup="crm-lookup", postcall="crm-postcall"),
    )
    # The call flow's own migrations first (happ_calls_001, …, its retention and campaign tables),
    # then the integration's.
    ids = [m.id for m in integration.migrations]
    assert ids[0] == "happ_calls_001" and ids[-1] == "001_mine"
    assert all(i.startswith("happ_") for i in ids[:-1])
    assert "happ_campaigns_001" in ids
    assert isinstance(integration.default_configs["call_handling"], CallHandling)
    # The call flow runs its handlers itself: they get no route of their own.
    assert set(integration.handlers) == {"crm-lookup", "crm-postcall"}
    assert integration.routed_handlers() == []
    with pytest.raises(HandlerDefinitionError, match="shadow the built-in route POST /webhook/call-events"):
        Integration("x", handlers=[make("call-events")], call_flow=CallFlow())
    assert Integration("x", handlers=[make("call-events")]).handlers  # no call flow: the name is free


def test_call_flow_handlers_must_take_the_call_flow_payloads() -> None:
    with pytest.raises(HandlerDefinitionError, match=r"must take Context\[LookupPayload\]"):
        Integration("x", handlers=[make("crm-lookup")], call_flow=CallFlow(lookup="crm-lookup"))
    with pytest.raises(HandlerDefinitionError, match=r"must take Context\[PostcallPayload\]"):
        Integration("x", handlers=[make("crm-postcall")], call_flow=CallFlow(postcall="crm-postcall"))


def test_routes_that_would_be_shadowed_or_collide_are_refused() -> None:
    for endpoint in ("POST /setup", "GET /health", "PUT /secrets", "GET /config/anything"):
        with pytest.raises(HandlerDefinitionError, match="shadow the built-in route"):
            Integration("x", handlers=[make("h", endpoint=endpoint)])
    explicit = make("other", endpoint="POST /webhook/ping")
    with pytest.raises(HandlerDefinitionError, match="both serve POST /webhook/ping"):
        Integration("x", handlers=[make("ping"), explicit])


def test_a_route_authenticates_unless_it_says_auth_none() -> None:
    """Secure by default: a handler that says nothing takes the integration's WEBHOOK_TOKEN."""
    assert handler_definition(make("quiet")).auth == BearerAuth("WEBHOOK_TOKEN")
    assert handler_definition(make("open", auth="none")).auth is None
    assert handler_definition(make("signed", auth="elevenlabs")).auth == ElevenLabsAuth()
    assert handler_definition(make("other", auth=BearerAuth("CRM_HOOK"))).auth == BearerAuth("CRM_HOOK")


def test_the_secret_a_route_authenticates_with_is_among_the_integrations_secrets() -> None:
    integration = Integration(
        "x", handlers=[make("a"), make("b", auth=BearerAuth("CRM_HOOK")), make("c", auth="none")]
    )
    assert integration.all_secret_names() == ["WEBHOOK_TOKEN", "CRM_HOOK"]
    # The call flow's own handlers have no route: they ask for no secret of their own.
    flow = Integration("y", handlers=[lookup, postcall], call_flow=CallFlow(lookup="crm-lookup"))
    assert flow.all_secret_names().count("WEBHOOK_TOKEN") == 1


def test_dedup_keys_keep_the_fields_name_and_the_values_type() -> None:
    dedup = Dedup(ttl_seconds=60)
    keys = [dedup.key_of(p) for p in ({"id": 1}, {"id": "1"}, {"recordId": "1"}, {"id": 1.0}, {"id": True})]
    assert keys == ["id:n.1", "id:s.1", "recordId:s.1", "id:n.1.0", "id:b.true"]
    assert len(set(keys)) == len(keys)
    # A value of another shape, or a name a plain key cannot carry, is JSON: still its own key.
    assert dedup.key_of({"id": {"a": 1}}) == 'j:["id",{"a":1}]'
    assert Dedup(ttl_seconds=60, key_field="a:b").key_of({"a:b": "x"}) == 'j:["a:b","x"]'
    assert dedup.key_of({"id": ""}) is None and dedup.key_of({}) is None


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


def test_the_example_loads_only_in_happ_dev_or_when_named() -> None:
    from happ_integ.integration import discover_integrations

    assert "example" not in discover_integrations(), "a production gateway serves no demo routes"
    assert {"sofa", "keycrm"} <= set(discover_integrations())
    assert "example" in discover_integrations(dev=True)
    assert list(discover_integrations(["example"])) == ["example"]


async def test_a_gateway_without_happ_integrations_does_not_serve_the_example() -> None:
    import httpx

    from api.app import create_app
    from happ_integ.settings import Settings

    app = create_app(Settings(_env_file=None, HAPP_INTEGRATIONS=""), sink=lambda event: None)  # type: ignore[call-arg]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://happ") as http:
        index = (await http.get("/")).json()["integrations"]
        assert "example" not in index and "sofa" in index
        resp = await http.post("/example/webhook/create-order", json={"phone": "+380", "product_id": "p"})
        assert resp.status_code == 404
