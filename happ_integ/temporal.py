"""The Temporal client every process uses, with pydantic on the wire.

    client = await connect_client(settings.temporal_address, settings.temporal_namespace)
"""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter


def task_queue_for(integration: str) -> str:
    return f"happ-{integration}"


async def connect_client(address: str, namespace: str = "default") -> Client:
    return await Client.connect(address, namespace=namespace, data_converter=pydantic_data_converter)
