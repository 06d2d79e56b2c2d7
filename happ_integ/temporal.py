"""Temporal names and the client every process uses, with pydantic on the wire.

client = await connect_settings(settings)      # TEMPORAL_ADDRESS, namespace, payload encryption
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

if TYPE_CHECKING:
    from happ_integ.settings import Settings

HANDLER_RUN_WORKFLOW = "HandlerRun"
INTEGRATION_KEY = SearchAttributeKey.for_keyword("Integration")
HANDLER_KEY = SearchAttributeKey.for_keyword("HandlerName")
CALL_STATUS_KEY = SearchAttributeKey.for_keyword("CallStatus")
CALL_ATTEMPT_KEY = SearchAttributeKey.for_int("CallAttempt")


class HandlerRunInput(BaseModel):
    integration: str
    handler: str
    payload: dict[str, Any] = Field(default_factory=dict)
    trace_id: str | None = None


class HandlerRunResult(BaseModel):
    response: dict[str, Any]


def task_queue_for(integration: str) -> str:
    return f"happ-{integration}"


def handler_workflow_id(integration: str, handler: str, key: str) -> str:
    return f"{integration}:handler:{handler}:{key}"


def schedule_id(integration: str, handler: str) -> str:
    return f"{integration}:{handler}"


def handler_search_attributes(integration: str, handler: str) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [SearchAttributePair(INTEGRATION_KEY, integration), SearchAttributePair(HANDLER_KEY, handler)]
    )


async def connect_client(address: str, namespace: str = "default", payload_key: str | None = None) -> Client:
    """A client with pydantic payloads, encrypted when `payload_key` is given (see `happ_integ.codec`)."""
    from happ_integ.codec import data_converter

    return await Client.connect(address, namespace=namespace, data_converter=data_converter(payload_key))


async def connect_settings(settings: Settings) -> Client:
    if not settings.temporal_address:
        raise RuntimeError(
            "TEMPORAL_ADDRESS is not set: run `happ dev`, or point TEMPORAL_ADDRESS at a Temporal frontend"
        )
    key = settings.payload_key.get_secret_value() if settings.payload_key else None
    return await connect_client(settings.temporal_address, settings.temporal_namespace, key)
