"""happ-integ: voice-AI outbound-call integrations on Temporal.

    from happ_integ import Context, Integration, define_handler

    @define_handler(name="agent-init", endpoint="POST /webhook/agent-init", retries=0, durable=False)
    async def agent_init(ctx: Context[AgentInitPayload]) -> AgentInitResponse: ...

    integration = Integration(name="sofa", handlers=[agent_init])

This module is the public surface; everything else is internal and may change.
"""

from happ_integ.calls.config import CallHandling, CallingHours
from happ_integ.calls.models import OUTCOMES, CallAnalysis, LookupPayload, LookupResult, PostcallPayload
from happ_integ.calls.phones import mask_phone, normalize_phone
from happ_integ.context import Context, current
from happ_integ.errors import (
    Conflict,
    DependencyUnavailable,
    Forbidden,
    HandlerDefinitionError,
    HappError,
    NonRetryableError,
    NotFound,
    RetryableError,
    SecretMissing,
    Unauthorized,
    UpstreamError,
    UpstreamRejected,
    ValidationFailed,
)
from happ_integ.handler import (
    BearerAuth,
    Dedup,
    ElevenLabsAuth,
    HandlerDefinition,
    OpenAPIOptions,
    RateLimit,
    define_handler,
    handler_definition,
)
from happ_integ.integration import CallFlow, Integration, Scheduled, discover_integrations, handlers_from
from happ_integ.secrets import SecretRef, Secrets
from happ_integ.settings import Settings
from happ_integ.stores.migrations import Migration

__all__ = [
    "OUTCOMES",
    "BearerAuth",
    "CallAnalysis",
    "CallFlow",
    "CallHandling",
    "CallingHours",
    "Conflict",
    "Context",
    "Dedup",
    "DependencyUnavailable",
    "ElevenLabsAuth",
    "Forbidden",
    "HandlerDefinition",
    "HandlerDefinitionError",
    "HappError",
    "Integration",
    "LookupPayload",
    "LookupResult",
    "Migration",
    "NonRetryableError",
    "NotFound",
    "OpenAPIOptions",
    "PostcallPayload",
    "RateLimit",
    "RetryableError",
    "Scheduled",
    "SecretMissing",
    "SecretRef",
    "Secrets",
    "Settings",
    "Unauthorized",
    "UpstreamError",
    "UpstreamRejected",
    "ValidationFailed",
    "current",
    "define_handler",
    "discover_integrations",
    "handler_definition",
    "handlers_from",
    "mask_phone",
    "normalize_phone",
]
