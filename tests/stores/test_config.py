"""ConfigStore against a real PostgreSQL: defaults, stored values, partial merge, validation."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel, Field

from happ_integ.errors import ValidationFailed
from happ_integ.stores.config import ConfigStore


class SampleConfig(BaseModel):
    """A config model of the test's own, stored under `call_handling`."""

    concurrency_limit: int = Field(default=3, ge=1)
    short_call_seconds: int = 5
    retry_delays_seconds: list[int] = [600, 1800, 3600]


DEFAULTS: dict[str, BaseModel | dict[str, Any]] = {
    "call_handling": SampleConfig(),
    "crm_fields": {"phone": "Phone", "name": "Name"},
}


def store(pool: asyncpg.Pool, name: str) -> ConfigStore:
    return ConfigStore(pool, name, DEFAULTS)


async def test_default_when_nothing_is_stored(pool: asyncpg.Pool, name: str) -> None:
    config = store(pool, name)
    assert await config.get("call_handling", SampleConfig) == SampleConfig()
    assert await config.get("call_handling") == SampleConfig()  # the default's class without a model
    assert await config.get("crm_fields") == {"phone": "Phone", "name": "Name"}
    assert await config.get("nothing") is None
    assert await config.get("nothing", SampleConfig) is None
    assert await config.get_raw("call_handling") is None


async def test_stored_value_wins(pool: asyncpg.Pool, name: str) -> None:
    config = store(pool, name)
    stored = await config.set("call_handling", SampleConfig(concurrency_limit=7))
    assert stored["concurrency_limit"] == 7
    got = await config.get("call_handling", SampleConfig)
    assert got is not None and got.concurrency_limit == 7
    await config.set("crm_fields", {"phone": "Телефон"})
    assert await config.get("crm_fields") == {"phone": "Телефон", "name": "Name"}
    assert await config.get_raw("crm_fields") == {"phone": "Телефон"}


async def test_partial_stored_config_is_merged_over_the_default(pool: asyncpg.Pool, name: str) -> None:
    await pool.execute(
        "INSERT INTO happ_config (integration, key, value) VALUES ($1, 'call_handling', $2)",
        name,
        {"short_call_seconds": 9},
    )
    got = await store(pool, name).get("call_handling", SampleConfig)
    assert got == SampleConfig(short_call_seconds=9)


async def test_partial_set_is_validated_and_completed(pool: asyncpg.Pool, name: str) -> None:
    config = store(pool, name)
    stored = await config.set("call_handling", {"concurrency_limit": 5})
    assert stored == {
        "concurrency_limit": 5,
        "short_call_seconds": 5,
        "retry_delays_seconds": [600, 1800, 3600],
    }
    with pytest.raises(ValidationFailed, match="concurrency_limit"):
        await config.set("call_handling", {"concurrency_limit": 0})
    with pytest.raises(ValidationFailed, match="must be an object"):
        await config.set("call_handling", [1, 2])  # type: ignore[arg-type]
    got = await config.get("call_handling", SampleConfig)
    assert got is not None and got.concurrency_limit == 5


async def test_a_bad_stored_value_is_a_clear_error(pool: asyncpg.Pool, name: str) -> None:
    await pool.execute(
        "INSERT INTO happ_config (integration, key, value) VALUES ($1, 'call_handling', $2)",
        name,
        {"concurrency_limit": "many"},
    )
    with pytest.raises(ValidationFailed, match="does not fit SampleConfig"):
        await store(pool, name).get("call_handling", SampleConfig)


async def test_ensure_defaults_never_overwrites(pool: asyncpg.Pool, name: str) -> None:
    config = store(pool, name)
    await config.set("crm_fields", {"phone": "Mine"})
    assert await config.ensure_defaults() == ["call_handling"]
    assert await config.ensure_defaults() == []
    assert await config.get_raw("crm_fields") == {"phone": "Mine"}
    assert await config.get_raw("call_handling") == SampleConfig().model_dump(mode="json")
    await config.set("extra", {"x": 1})
    assert await config.keys() == ["call_handling", "crm_fields", "extra"]
    assert await ConfigStore(pool, f"{name}b").keys() == []
