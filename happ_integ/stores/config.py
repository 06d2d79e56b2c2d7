"""An integration's settings: defaults from code, overrides stored in PostgreSQL.

    config = ConfigStore(pool, "sofa", {"call_handling": CallHandling(), "crm_fields": {"phone": "Phone"}})
    await config.ensure_defaults()                           # at setup: stores missing defaults, never overwrites
    handling = await config.get("call_handling", CallHandling)  # stored fields over the default's
    await config.set("call_handling", {"concurrency_limit": 5})   # validated against CallHandling

A stored value is an object; when it lacks fields (an older or hand-written row), the default's
fields fill them in, so a partial override always works.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar, overload

import asyncpg
from pydantic import BaseModel, ValidationError

from happ_integ.errors import ValidationFailed
from happ_integ.stores.changes import ChangeFeed
from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema

M = TypeVar("M", bound=BaseModel)

CONFIG_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")

_UPSERT = """
INSERT INTO happ_config (integration, key, value) VALUES ($1, $2, $3)
ON CONFLICT (integration, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
"""
_INSERT_MISSING = """
INSERT INTO happ_config (integration, key, value) VALUES ($1, $2, $3)
ON CONFLICT (integration, key) DO NOTHING RETURNING key
"""


def _check_key(key: str) -> str:
    if not isinstance(key, str) or not CONFIG_KEY.match(key):
        raise ValidationFailed(f"invalid config key {key!r}: use letters, digits and _ . : - (at most 128)")
    return key


def _dump(value: BaseModel | Mapping[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else dict(value)


class ConfigStore:
    """One integration's configs; see the module docstring for usage."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        integration: str,
        defaults: Mapping[str, BaseModel | dict[str, Any]] | None = None,
        *,
        changes: ChangeFeed | None = None,
    ) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        self.defaults: Mapping[str, BaseModel | dict[str, Any]] = dict(defaults or {})
        self._changes = changes

    @overload
    async def get(self, key: str) -> Any: ...

    @overload
    async def get(self, key: str, model: type[M]) -> M | None: ...

    async def get(self, key: str, model: type[BaseModel] | None = None) -> Any:
        """The stored value merged over the default; an instance of `model` (or of the default's
        class when the default is a model), a dict otherwise; None when neither exists."""
        stored = await self.get_raw(key)
        default = self.defaults.get(key)
        base = _dump(default)
        if stored is None:
            merged = base
        elif base is not None and isinstance(stored, dict):
            merged = {**base, **stored}
        else:
            merged = stored
        if merged is None:
            return None
        target = model or (type(default) if isinstance(default, BaseModel) else None)
        if target is None:
            return merged
        try:
            return target.model_validate(merged)
        except ValidationError as exc:
            raise ValidationFailed(f"config {key!r} does not fit {target.__name__}: {exc}") from None

    async def get_json(self, key: str) -> dict[str, Any] | None:
        """`get(key)` as plain JSON (what crosses an activity or an HTTP answer), validated the same way."""
        value = await self.get(key)
        return value.model_dump(mode="json") if isinstance(value, BaseModel) else value

    async def get_raw(self, key: str) -> dict[str, Any] | None:
        """Only what is stored for `key` (no default), or None."""
        _check_key(key)
        if self._changes is not None:
            # The integration's whole config, read once and kept until it changes.
            stored = await self._changes.cached("config", self.integration, self._all_stored)
            value = stored.get(key)
            return copy.deepcopy(value) if value is not None else None
        value = await with_core_schema(
            self.pool,
            lambda: self.pool.fetchval(
                "SELECT value FROM happ_config WHERE integration = $1 AND key = $2", self.integration, key
            ),
        )
        return value  # type: ignore[no-any-return]

    async def _all_stored(self) -> dict[str, Any]:
        rows = await with_core_schema(
            self.pool,
            lambda: self.pool.fetch(
                "SELECT key, value FROM happ_config WHERE integration = $1", self.integration
            ),
        )
        return {r["key"]: r["value"] for r in rows}

    async def set(self, key: str, value: BaseModel | Mapping[str, Any]) -> dict[str, Any]:
        """Validate and store `value` for `key`; return what was stored.

        When the default is a model, `value` may be partial: it is validated over the default's
        fields and the complete result is stored.
        """
        _check_key(key)
        data = _dump(value) if isinstance(value, BaseModel | Mapping) else None
        if data is None:
            raise ValidationFailed(f"config {key!r} must be an object, not {type(value).__name__}")
        default = self.defaults.get(key)
        if isinstance(default, BaseModel):
            cls = type(default)
            try:
                data = cls.model_validate({**default.model_dump(mode="json"), **data}).model_dump(mode="json")
            except ValidationError as exc:
                raise ValidationFailed(f"config {key!r} is not a valid {cls.__name__}: {exc}") from None
        try:
            json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(f"config {key!r} is not JSON: {exc}") from None
        await with_core_schema(self.pool, lambda: self.pool.execute(_UPSERT, self.integration, key, data))
        self._changed()
        return data

    def _changed(self) -> None:
        """This process reads its own write at once; the others hear PostgreSQL's notification."""
        if self._changes is not None:
            self._changes.forget("config", self.integration)

    async def ensure_defaults(self) -> list[str]:
        """Store every default that has no stored value yet; return the keys stored now."""

        async def insert_missing() -> list[str]:
            created: list[str] = []
            async with self.pool.acquire() as conn, conn.transaction():
                for key, default in self.defaults.items():
                    if await conn.fetchval(
                        _INSERT_MISSING, self.integration, _check_key(key), _dump(default)
                    ):
                        created.append(key)
            return created

        created = await with_core_schema(self.pool, insert_missing)
        self._changed()
        return created

    async def keys(self) -> list[str]:
        """Every key `get` can answer: the stored ones and the defaults, sorted."""
        rows = await with_core_schema(
            self.pool,
            lambda: self.pool.fetch("SELECT key FROM happ_config WHERE integration = $1", self.integration),
        )
        return sorted({r["key"] for r in rows} | set(self.defaults))
