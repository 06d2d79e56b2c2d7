"""Admin routes: secrets (write-only values) and config, behind the admin token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel

from api.deps import AdminDep, RuntimeDep
from happ_integ.errors import NotFound
from happ_integ.integration import Integration
from happ_integ.ops.store import secret_status


class SecretsStatus(BaseModel):
    secrets: dict[str, bool]


class SecretsUpdated(BaseModel):
    success: bool = True
    updated: list[str]


class ConfigEntry(BaseModel):
    key: str
    value: dict[str, Any]


def admin_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Admin"])
    name = integration.name

    @router.get("/secrets", response_model=SecretsStatus)
    async def list_secrets(runtime: RuntimeDep, _: AdminDep) -> SecretsStatus:
        """Names and whether each is set; values are never returned."""
        return SecretsStatus(secrets=await secret_status(runtime.resources, name))

    @router.put("/secrets", response_model=SecretsUpdated)
    async def put_secrets(
        runtime: RuntimeDep, _: AdminDep, values: dict[str, str] = Body(...)
    ) -> SecretsUpdated:
        """Set secrets from a JSON object of names to values; an empty value clears one."""
        return SecretsUpdated(updated=await runtime.resources.creds(name).set_many(values))

    @router.get("/config/{key}", response_model=ConfigEntry)
    async def get_config(key: str, runtime: RuntimeDep, _: AdminDep) -> ConfigEntry:
        """The stored value, or the integration's default."""
        value = await runtime.resources.config(name).get_json(key)
        if value is None:
            raise NotFound(f"integration {name!r} has no config {key!r}")
        return ConfigEntry(key=key, value=value)

    @router.put("/config/{key}", response_model=ConfigEntry)
    async def put_config(
        key: str, runtime: RuntimeDep, _: AdminDep, value: dict[str, Any] = Body(...)
    ) -> ConfigEntry:
        """Store a config value, validated against the default's model when there is one."""
        store = runtime.resources.config(name)
        await store.set(key, value)
        return ConfigEntry(key=key, value=await store.get_json(key) or {})

    return router
