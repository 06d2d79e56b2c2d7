"""`define_handler`: declare what a handler needs; the framework wires the rest.

    @define_handler(name="agent-init", endpoint="POST /webhook/agent-init", retries=0, durable=False)
    async def agent_init(ctx: Context[AgentInitPayload]) -> AgentInitResponse:
        ...

The decorator validates at decoration time, attaches a frozen `HandlerDefinition` to the
function (`handler_definition(fn)` reads it back) and returns the function unchanged, so a
handler stays a plain coroutine function a test can call.
"""

from __future__ import annotations

import inspect
import json
import re
import typing
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from happ_integ.context import Context
from happ_integ.errors import HandlerDefinitionError

_NAME = re.compile(r"^[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*$")
_PATH = re.compile(r"^/[A-Za-z0-9_\-./{}]*$")
HTTP_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
DEFAULT_DEDUP_FIELDS = ("id", "recordId", "conversationId")
_ATTR = "__happ_handler__"

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str

    @classmethod
    def parse(cls, spec: str) -> Endpoint:
        method, sep, path = spec.strip().partition(" ")
        if not sep or method.upper() != method or method not in HTTP_METHODS:
            raise HandlerDefinitionError(
                f"endpoint {spec!r} must look like 'POST /webhook/x': an upper-case method of "
                f"{', '.join(HTTP_METHODS)}, one space, then a path"
            )
        path = path.strip()
        if not _PATH.match(path) or "//" in path:
            raise HandlerDefinitionError(
                f"endpoint {spec!r}: the path must start with '/' and use URL-safe characters"
            )
        return cls(method, path.rstrip("/") or "/")

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Dedup:
    """A repeated key within `ttl_seconds` is answered with the first response; nothing runs twice."""

    ttl_seconds: int
    key_field: str | None = None

    def key_of(self, payload: Mapping[str, Any]) -> str | None:
        """The field's name and its value with the value's JSON type, e.g. `recordId:s.rec-1`.

        `{"id": 1}`, `{"id": "1"}` and `{"recordId": "1"}` are three keys: the name and the type
        are part of it (`id:n.1`, `id:s.1`, `recordId:s.1`), so two events that merely print alike
        never answer for each other.
        """
        fields = (self.key_field,) if self.key_field else DEFAULT_DEDUP_FIELDS
        for name in fields:
            value = payload.get(name)
            if value not in (None, ""):
                return typed_key(name, value)
        return None


_KEY_FIELD = re.compile(r"[A-Za-z0-9_]{1,64}")


def typed_key(name: str, value: Any) -> str:
    """`name:tag.value` for a plain field name and a string or number (readable in a workflow id);
    anything else as JSON. Different names, types or values never give the same text."""
    if _KEY_FIELD.fullmatch(name):
        if isinstance(value, str):
            return f"{name}:s.{value}"
        if isinstance(value, bool):
            return f"{name}:b.{'true' if value else 'false'}"
        if isinstance(value, int | float):
            return f"{name}:n.{json.dumps(value)}"
    # This form starts `j:[`; a plain one never does (after its name and `:` comes a tag letter).
    return "j:" + json.dumps([name, value], sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class RateLimit:
    """At most `requests` per `per_seconds` for this handler, shared by every API replica."""

    requests: int
    per_seconds: int = 60


@dataclass(frozen=True)
class BearerAuth:
    """`Authorization: Bearer <value of the integration secret>`."""

    secret: str = "WEBHOOK_TOKEN"


@dataclass(frozen=True)
class ElevenLabsAuth:
    """ElevenLabs webhook signature: `ElevenLabs-Signature: t=<unix>,v0=<hmac-sha256 hex>`."""

    secret: str = "ELEVENLABS_WEBHOOK_SECRET"
    tolerance_seconds: int = 1800


# None: a public route, which a handler only gets by saying `auth="none"`.
Auth = BearerAuth | ElevenLabsAuth | None
AuthSpec = BearerAuth | ElevenLabsAuth | Literal["none", "bearer", "elevenlabs"]


@dataclass(frozen=True)
class OpenAPIOptions:
    """A handler's `openapi` options: summary, tags, examples … shown in the integration's OpenAPI document."""

    summary: str | None = None
    description: str | None = None
    tags: tuple[str, ...] = ("Webhooks",)
    deprecated: bool = False
    request_body: Mapping[str, Any] | None = None
    responses: Mapping[str, Mapping[str, Any]] | None = None
    examples: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class HandlerDefinition:
    name: str
    fn: Callable[..., Awaitable[Any]] = field(repr=False, compare=False)
    payload_model: type[BaseModel]
    response_model: type[BaseModel]
    endpoint: Endpoint | None
    retries: int
    durable: bool
    dedup: Dedup | None
    rate_limit: RateLimit | None
    auth: Auth
    openapi: OpenAPIOptions
    timeout_seconds: float

    @property
    def event_only(self) -> bool:
        return self.endpoint is None


def define_handler(
    *,
    name: str,
    endpoint: str | None = None,
    retries: int = 3,
    durable: bool = True,
    dedup: Dedup | None = None,
    rate_limit: RateLimit | None = None,
    auth: AuthSpec = "bearer",
    openapi: OpenAPIOptions | Mapping[str, Any] | None = None,
    timeout_seconds: float = 60.0,
) -> Callable[[F], F]:
    """Declare a handler. See the module docstring for an example.

    `retries` is how often a failing operation is tried again (inline, and as the activities' retry
    policy when durable). `timeout_seconds` bounds the whole handler inline (504 past it) and each
    operation durably (a durable run as a whole may wait on Temporal timers for longer).

    `auth` defaults to `"bearer"`: callers send `Authorization: Bearer <the integration's
    WEBHOOK_TOKEN>`. `"elevenlabs"` checks ElevenLabs' signature; `BearerAuth("OTHER_SECRET")`
    names another secret. A public route says `auth="none"`, and the gateway names it in a
    warning when it starts.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise HandlerDefinitionError(
            f"handler name {name!r} must be kebab-case or snake_case: lower-case letters and digits "
            "separated by single '-' or '_', starting with a letter (e.g. 'agent-init')"
        )
    if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 20:
        raise HandlerDefinitionError(
            f"handler {name!r}: retries must be a whole number from 0 to 20, got {retries!r}"
        )
    parsed_endpoint = Endpoint.parse(endpoint) if endpoint is not None else None
    if dedup is not None and dedup.ttl_seconds <= 0:
        raise HandlerDefinitionError(f"handler {name!r}: dedup ttl_seconds must be positive")
    if rate_limit is not None and (rate_limit.requests < 1 or rate_limit.per_seconds < 1):
        raise HandlerDefinitionError(f"handler {name!r}: rate_limit needs requests >= 1 and per_seconds >= 1")
    if timeout_seconds <= 0:
        raise HandlerDefinitionError(f"handler {name!r}: timeout_seconds must be positive")
    auth_spec = _parse_auth(name, auth)
    openapi_options = _parse_openapi(name, openapi)

    def decorate(fn: F) -> F:
        if not inspect.iscoroutinefunction(fn):
            raise HandlerDefinitionError(f"handler {name!r}: decorate an `async def` function, got {fn!r}")
        if hasattr(fn, _ATTR):
            raise HandlerDefinitionError(
                f"handler {name!r}: {fn.__qualname__} is already decorated with @define_handler"
            )
        payload_model, response_model = _models_of(name, fn)
        if dedup is not None and dedup.key_field is not None:
            known = {f.alias or n for n, f in payload_model.model_fields.items()} | set(
                payload_model.model_fields
            )
            if dedup.key_field not in known:
                raise HandlerDefinitionError(
                    f"handler {name!r}: dedup key_field {dedup.key_field!r} is not a field of "
                    f"{payload_model.__name__} ({', '.join(sorted(known))})"
                )
        definition = HandlerDefinition(
            name=name,
            fn=fn,
            payload_model=payload_model,
            response_model=response_model,
            endpoint=parsed_endpoint,
            retries=retries,
            durable=durable,
            dedup=dedup,
            rate_limit=rate_limit,
            auth=auth_spec,
            openapi=openapi_options,
            timeout_seconds=timeout_seconds,
        )
        setattr(fn, _ATTR, definition)
        return typing.cast(F, fn)

    return decorate


def handler_definition(fn: object) -> HandlerDefinition:
    definition = getattr(fn, _ATTR, None)
    if not isinstance(definition, HandlerDefinition):
        raise HandlerDefinitionError(f"{fn!r} is not a handler: was it decorated with @define_handler?")
    return definition


def is_handler(fn: object) -> bool:
    return isinstance(getattr(fn, _ATTR, None), HandlerDefinition)


def _parse_auth(name: str, auth: AuthSpec) -> Auth:
    if auth is None:
        # Once the default (a public route); now a public route is said out loud.
        raise HandlerDefinitionError(
            f"handler {name!r}: auth=None is ambiguous: leave auth out for the default "
            "(Authorization: Bearer <WEBHOOK_TOKEN>), or write auth='none' for a public route"
        )
    if auth == "none":
        return None
    if auth == "bearer":
        return BearerAuth()
    if auth == "elevenlabs":
        return ElevenLabsAuth()
    if isinstance(auth, BearerAuth | ElevenLabsAuth):
        return auth
    raise HandlerDefinitionError(
        f"handler {name!r}: auth must be 'bearer' (the default), 'elevenlabs', 'none', BearerAuth(...) or "
        f"ElevenLabsAuth(...), got {auth!r}"
    )


def _parse_openapi(name: str, options: OpenAPIOptions | Mapping[str, Any] | None) -> OpenAPIOptions:
    if options is None:
        return OpenAPIOptions()
    if isinstance(options, OpenAPIOptions):
        return options
    aliases = {"requestBody": "request_body"}
    values = {aliases.get(key, key): value for key, value in options.items()}
    if "tags" in values:
        values["tags"] = tuple(values["tags"])
    try:
        return OpenAPIOptions(**values)
    except TypeError as exc:
        allowed = "summary, description, tags, deprecated, requestBody, responses, examples"
        raise HandlerDefinitionError(f"handler {name!r}: openapi options are {allowed}: {exc}") from None


def _models_of(name: str, fn: Callable[..., Any]) -> tuple[type[BaseModel], type[BaseModel]]:
    params = list(inspect.signature(fn).parameters.values())
    if len(params) != 1:
        raise HandlerDefinitionError(
            f"handler {name!r}: take exactly one parameter, `ctx: Context[YourPayload]`"
        )
    try:
        hints = typing.get_type_hints(fn)
    except NameError as exc:
        raise HandlerDefinitionError(
            f"handler {name!r}: cannot resolve its annotations ({exc}); import the models at module level"
        ) from None
    ctx_hint = hints.get(params[0].name)
    if typing.get_origin(ctx_hint) is not Context or not typing.get_args(ctx_hint):
        raise HandlerDefinitionError(
            f"handler {name!r}: annotate the parameter as `ctx: Context[YourPayload]` with a pydantic model"
        )
    payload_model = typing.get_args(ctx_hint)[0]
    response_model = hints.get("return")
    for role, model in (("payload", payload_model), ("return", response_model)):
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise HandlerDefinitionError(
                f"handler {name!r}: the {role} annotation must be a pydantic BaseModel subclass, got {model!r}"
            )
    return payload_model, typing.cast(type[BaseModel], response_model)
