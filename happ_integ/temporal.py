"""Temporal names and the client every process uses, with pydantic on the wire.

client = await connect_client(settings.temporal_address, settings.temporal_namespace)
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter

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


async def connect_client(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
