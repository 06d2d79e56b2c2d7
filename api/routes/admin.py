"""Admin routes: secrets (write-only values) and config, behind the admin token."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, StringConstraints

from api.body import GuardedRoute
from api.deps import AdminDep, RuntimeDep
from api.responses import error_responses
from happ_integ.errors import NotFound
from happ_integ.integration import Integration
from happ_integ.ops.store import secret_status
from happ_integ.stores.config import CONFIG_KEY
from happ_integ.stores.creds import SECRET_NAME

SecretName = Annotated[str, StringConstraints(pattern=SECRET_NAME.pattern)]
SecretValue = Annotated[str, StringConstraints(max_length=8192)]
ConfigKey = Annotated[str, Path(pattern=CONFIG_KEY.pattern, description="letters, digits and _ . : -")]


class SecretsStatus(BaseModel):
    secrets: dict[str, bool]


class SecretsUpdated(BaseModel):
    success: bool = True
    updated: list[str]


class ConfigEntry(BaseModel):
    key: str
    value: dict[str, Any]


def admin_router(integration: Integration) -> APIRouter:
    router = APIRouter(tags=["Admin"], route_class=GuardedRoute)
    name = integration.name

    @router.get("/secrets", response_model=SecretsStatus, responses=error_responses(401, 503))
    async def list_secrets(runtime: RuntimeDep, _: AdminDep) -> SecretsStatus:
        """Names and whether each is set; values are never returned."""
        return SecretsStatus(secrets=await secret_status(runtime.resources, name))

    @router.put("/secrets", response_model=SecretsUpdated, responses=error_responses(400, 401, 413, 422, 503))
    async def put_secrets(
        runtime: RuntimeDep, _: AdminDep, values: dict[SecretName, SecretValue] = Body(...)
    ) -> SecretsUpdated:
        """Set secrets from a JSON object of names to values; an empty value clears one."""
        return SecretsUpdated(updated=await runtime.resources.creds(name).set_many(values))

    @router.get("/config/{key}", response_model=ConfigEntry, responses=error_responses(401, 404, 422, 503))
    async def get_config(key: ConfigKey, runtime: RuntimeDep, _: AdminDep) -> ConfigEntry:
        """The stored value, or the integration's default."""
        value = await runtime.resources.config(name).get_json(key)
        if value is None:
            raise NotFound(f"integration {name!r} has no config {key!r}")
        return ConfigEntry(key=key, value=value)

    @router.put(
        "/config/{key}", response_model=ConfigEntry, responses=error_responses(400, 401, 413, 422, 503)
    )
    async def put_config(
        key: ConfigKey, runtime: RuntimeDep, _: AdminDep, value: dict[str, Any] = Body(...)
    ) -> ConfigEntry:
        """Store a config value (the value itself is the body), validated against the default's
        model when there is one; fields left out keep their defaults."""
        store = runtime.resources.config(name)
        await store.set(key, value)
        return ConfigEntry(key=key, value=await store.get_json(key) or {})

    return router
