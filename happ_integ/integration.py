"""`Integration`: one client's handlers, migrations, secrets, configs and schedules.

    integration = Integration(
        name="sofa",
        handlers=handlers_from(handlers_package),     # or a list of @define_handler functions
        migrations=MIGRATIONS,
        secrets=["NETHUNT_EMAIL", "NETHUNT_API_KEY"],
        default_configs={"crm_fields": CrmFields()},
        scheduled=[Scheduled(cron="0 * * * *", handler="retry")],
    )

Integrations are discovered as packages under `integrations/` that expose `integration`.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal

from croniter import croniter
from pydantic import BaseModel, ValidationError

from happ_integ.calls.config import CallHandling
from happ_integ.calls.contact_policy import CONFIG_KEY as CONTACT_POLICY_KEY
from happ_integ.calls.contact_policy import ContactPolicy
from happ_integ.calls.models import LookupPayload, LookupResult, PostcallPayload
from happ_integ.errors import HandlerDefinitionError
from happ_integ.handler import HandlerDefinition, handler_definition, is_handler
from happ_integ.stores.calls import CALL_FLOW_MIGRATIONS
from happ_integ.stores.campaigns import CAMPAIGN_MIGRATIONS
from happ_integ.stores.db import INTEGRATION_NAME
from happ_integ.stores.migrations import Migration
from happ_integ.stores.retention import CONFIG_KEY as RETENTION_CONFIG_KEY
from happ_integ.stores.retention import RETENTION_MIGRATIONS, Retention
from happ_integ.temporal import task_queue_for

CALL_FLOW_SECRETS = (
    "SAAS_AUTH_TOKEN",
    "SAAS_SIP_ID",
    "SAAS_ASSISTANT_ID",
    "ELEVENLABS_WEBHOOK_SECRET",
    "ELEVENLABS_API_KEY",
    "WEBHOOK_TOKEN",
    # Optional: the token of the call's senders (call-events, agent-init); WEBHOOK_TOKEN when unset.
    "SENDER_TOKEN",
)
# What an integration with a call flow serves besides its handlers (api/routes/call_webhooks.py,
# api/routes/calls_admin.py).
CALL_FLOW_ROUTES = frozenset(
    {
        "POST /webhook/call-originate",
        "POST /webhook/call-events",
        "POST /webhook/agent-init",
        "POST /webhook/agent-postcall",
        "GET /calls",
        "GET /calls/{call_id}",
        "POST /calls/{call_id}/cancel",
    }
)


# The gateway's own routes under /{integration}; a handler may not take one of them.
BUILTIN_ROUTES = frozenset(
    {
        "POST /setup",
        "GET /health",
        "POST /cron/trigger",
        "GET /secrets",
        "PUT /secrets",
        "GET /openapi.json",
        "GET /docs",
        "GET /docs/oauth2-redirect",
        "GET /redoc",
    }
)


def route_of(definition: HandlerDefinition) -> str:
    """`METHOD /path` a handler is served at; event-only handlers at `POST /webhook/{name}`."""
    if definition.endpoint is not None:
        return str(definition.endpoint)
    return f"POST /webhook/{definition.name}"


@dataclass(frozen=True)
class Scheduled:
    """A cron entry: becomes the Temporal Schedule `{integration}:{handler}`."""

    cron: str
    handler: str
    payload: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not croniter.is_valid(self.cron):
            raise HandlerDefinitionError(
                f"scheduled {self.handler!r}: {self.cron!r} is not a valid cron expression "
                "(five fields: minute hour day month weekday)"
            )


@dataclass(frozen=True)
class CallFlow:
    """The handlers an outbound call runs: CRM lookup before dialling, CRM update after.

    `lookup` takes a `LookupPayload` and returns a `LookupResult`; `postcall` takes a
    `PostcallPayload` (both from `happ_integ.calls.models`). The call flow runs them (durably,
    as child runs of the call's workflow; agent-init runs the lookup inline for a number with no
    call in flight), so they get no HTTP route of their own.

    `sender_auth` is how the call's senders (the voice assistant's call-events, the ElevenLabs
    agent's agent-init) authenticate: `"token"` (the default) requires the integration's
    `SENDER_TOKEN`, or its `WEBHOOK_TOKEN` when that is unset, as a bearer header or a `token`
    query parameter; `"none"` accepts anyone, and the gateway says so in a warning at start.
    """

    lookup: str | None = None
    postcall: str | None = None
    sender_auth: Literal["token", "none"] = "token"

    def handler_names(self) -> set[str]:
        return {name for name in (self.lookup, self.postcall) if name}


class Integration:
    def __init__(
        self,
        name: str,
        handlers: Iterable[Any] = (),
        migrations: Sequence[Migration] = (),
        secrets: Sequence[str] = (),
        default_configs: Mapping[str, BaseModel | Mapping[str, Any]] | None = None,
        scheduled: Sequence[Scheduled] = (),
        call_flow: CallFlow | None = None,
        dev_only: bool = False,
    ) -> None:
        if not isinstance(name, str) or not INTEGRATION_NAME.match(name):
            raise HandlerDefinitionError(
                f"integration name {name!r} must be lower-case letters, digits and '_', starting with a letter, "
                "at most 40 characters: it prefixes table names"
            )
        self.name = name
        self.call_flow = call_flow
        # A demo (the `example` integration): `happ dev` serves it; elsewhere it loads only when
        # HAPP_INTEGRATIONS (or a command's names) lists it.
        self.dev_only = dev_only
        self.handlers: dict[str, HandlerDefinition] = {}
        # Handlers only the call flow runs: they get no HTTP route.
        self.internal_handlers: set[str] = set()
        internal = call_flow.handler_names() if call_flow else set()
        reserved = BUILTIN_ROUTES | (CALL_FLOW_ROUTES if call_flow else frozenset())
        endpoints: dict[str, str] = {}
        for fn in handlers:
            definition = handler_definition(fn)
            if definition.name in self.handlers:
                raise HandlerDefinitionError(
                    f"integration {name!r}: two handlers are named {definition.name!r}"
                )
            if definition.name in internal and definition.endpoint is None:
                self.handlers[definition.name] = definition
                self.internal_handlers.add(definition.name)
                continue
            key = route_of(definition)
            if key in endpoints:
                raise HandlerDefinitionError(
                    f"integration {name!r}: handlers {endpoints[key]!r} and {definition.name!r} both serve {key}"
                )
            method, _, path = key.partition(" ")
            if key in reserved or (method in ("GET", "PUT") and path.startswith("/config/")):
                raise HandlerDefinitionError(
                    f"integration {name!r}: handler {definition.name!r} would shadow the built-in route {key}; "
                    "choose another path"
                )
            endpoints[key] = definition.name
            self.handlers[definition.name] = definition
        # The call flow's own tables come first, so the integration's migrations may refer to them.
        self.migrations = (
            *((*CALL_FLOW_MIGRATIONS, *RETENTION_MIGRATIONS, *CAMPAIGN_MIGRATIONS) if call_flow else ()),
            *migrations,
        )
        ids = [mig.id for mig in self.migrations]
        if len(set(ids)) != len(ids):
            raise HandlerDefinitionError(f"integration {name!r}: migration ids must be unique, got {ids}")
        self.secrets = tuple(secrets)
        self.default_configs = dict(default_configs or {})
        if call_flow:
            self.default_configs.setdefault("call_handling", CallHandling())
            # How long transcripts and audio are kept (a daily Schedule deletes older ones).
            self.default_configs.setdefault(RETENTION_CONFIG_KEY, Retention())
            # How often one number may be dialled, across every call, campaign and integration.
            self.default_configs.setdefault(CONTACT_POLICY_KEY, ContactPolicy())
        self.scheduled = tuple(scheduled)
        for entry in self.scheduled:
            self._require_handler(entry.handler, "scheduled")
            try:
                self.handlers[entry.handler].payload_model.model_validate(dict(entry.payload))
            except ValidationError as exc:
                raise HandlerDefinitionError(
                    f"integration {name!r}: the scheduled payload for {entry.handler!r} is invalid: "
                    f"{exc.errors()[0]['msg']} at {'.'.join(map(str, exc.errors()[0]['loc'])) or 'payload'}"
                ) from None
        if call_flow:
            for role, payload in (("lookup", LookupPayload), ("postcall", PostcallPayload)):
                handler = getattr(call_flow, role)
                if not handler:
                    continue
                self._require_handler(handler, f"call_flow.{role}")
                model = self.handlers[handler].payload_model
                if not issubclass(model, payload):
                    raise HandlerDefinitionError(
                        f"integration {name!r}: call_flow.{role} handler {handler!r} must take "
                        f"Context[{payload.__name__}] (from happ_integ), not Context[{model.__name__}]"
                    )
            if call_flow.lookup and not issubclass(
                self.handlers[call_flow.lookup].response_model, LookupResult
            ):
                raise HandlerDefinitionError(
                    f"integration {name!r}: call_flow.lookup handler {call_flow.lookup!r} must return a LookupResult"
                )

    def _require_handler(self, handler: str, where: str) -> None:
        if handler not in self.handlers:
            raise HandlerDefinitionError(
                f"integration {self.name!r}: {where} names handler {handler!r}, which is not among its handlers "
                f"({', '.join(sorted(self.handlers)) or 'none'})"
            )

    @property
    def task_queue(self) -> str:
        return task_queue_for(self.name)

    def routed_handlers(self) -> list[HandlerDefinition]:
        """The handlers served over HTTP (the call flow's own lookup and postcall are not)."""
        return [d for name, d in self.handlers.items() if name not in self.internal_handlers]

    def handler(self, name: str) -> HandlerDefinition:
        from happ_integ.errors import NotFound

        try:
            return self.handlers[name]
        except KeyError:
            raise NotFound(f"integration {self.name!r} has no handler {name!r}") from None

    def all_secret_names(self) -> list[str]:
        names = list(self.secrets)
        if self.call_flow:
            names += [n for n in CALL_FLOW_SECRETS if n not in names]
        # The secret each routed handler authenticates with (WEBHOOK_TOKEN by default), so
        # setup lists it to be set even when the integration did not name it.
        for definition in self.routed_handlers():
            if definition.auth is not None and definition.auth.secret not in names:
                names.append(definition.auth.secret)
        return names

    def __repr__(self) -> str:
        return f"Integration({self.name!r}, handlers={sorted(self.handlers)})"


def handlers_from(package: ModuleType) -> list[Any]:
    """Every @define_handler function in a package and its modules (a package's handlers collected in one call)."""
    modules = [package]
    if hasattr(package, "__path__"):
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            modules.append(importlib.import_module(f"{package.__name__}.{info.name}"))
    found: dict[int, Any] = {}
    for module in modules:
        for value in vars(module).values():
            if is_handler(value):
                found.setdefault(id(value), value)
    return list(found.values())


def discover_integrations(
    names: Sequence[str] | None = None, package: str = "integrations", *, dev: bool = False
) -> dict[str, Integration]:
    """Import `integrations.<name>` packages and return their `integration` objects by name.

    Without `names`, every package, except the `dev_only` ones (the example) unless `dev` is
    set (`happ dev`): a production gateway with HAPP_INTEGRATIONS unset serves no demo routes.
    A name given explicitly always loads.
    """
    root = importlib.import_module(package)
    available = sorted(info.name for info in pkgutil.iter_modules(root.__path__) if info.ispkg)
    wanted = list(names) if names else available
    result: dict[str, Integration] = {}
    for name in wanted:
        if name not in available:
            raise HandlerDefinitionError(
                f"no integration {name!r} under {package}/ (found: {', '.join(available)})"
            )
        module = importlib.import_module(f"{package}.{name}")
        integration = getattr(module, "integration", None)
        if not isinstance(integration, Integration):
            raise HandlerDefinitionError(f"{package}.{name} must define `integration = Integration(...)`")
        if integration.dev_only and not names and not dev:
            continue
        result[integration.name] = integration
    return result
