"""The context's clients: each method is one operation (a handle from `happ_integ.ops`) handed to
the run's `Executor`.

rows = await ctx.db.select("calls", {"status": {"$in": ["initiated", "in_progress"]}}, limit=10)
value = await ctx.cache.cache_aside("crm:1", 3600, lambda: crm.get_record(folder, "1"))
resp = await ctx.http.post(url, json=body, headers={"Authorization": f"Bearer {secrets.TOKEN}"})
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

import happ_integ.ops.models as m
from happ_integ.errors import Forbidden
from happ_integ.ops import crm, http, keycrm, store
from happ_integ.secrets import SecretRef, Secrets

if TYPE_CHECKING:
    from happ_integ.executor import Executor

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class _Client:
    def __init__(self, executor: Executor, integration: str) -> None:
        self._executor = executor
        self._integration = integration


class DbClient(_Client):
    """Tables without prefix: `calls` is `{integration}_calls`. Filters: `$eq $ne $lt $lte $gt $gte $in $like`."""

    async def insert(self, table: str, row: Mapping[str, Any]) -> dict[str, Any]:
        arg = m.DbInsert(integration=self._integration, table=table, row=dict(row))
        return (await self._executor.call(store.db_insert, arg)).row

    async def update(self, table: str, values: Mapping[str, Any], where: Mapping[str, Any]) -> int:
        arg = m.DbUpdate(integration=self._integration, table=table, values=dict(values), where=dict(where))
        return (await self._executor.call(store.db_update, arg)).count

    async def select(
        self,
        table: str,
        where: Mapping[str, Any] | None = None,
        *,
        order_by: str | list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
    ) -> list[dict[str, Any]]:
        arg = m.DbSelect(
            integration=self._integration,
            table=table,
            where=dict(where) if where else None,
            order_by=order_by,
            limit=limit,
            offset=offset,
        )
        return (await self._executor.call(store.db_select, arg)).rows

    async def delete(self, table: str, where: Mapping[str, Any]) -> int:
        arg = m.DbDelete(integration=self._integration, table=table, where=dict(where))
        return (await self._executor.call(store.db_delete, arg)).count

    async def query(self, sql: str, *params: Any) -> m.QueryResult:
        """Raw SQL with `$1…` parameters; `{{calls}}` expands to this integration's table."""
        arg = m.DbQuery(integration=self._integration, sql=sql, params=list(params))
        return await self._executor.call(store.db_query, arg)


class CacheClient(_Client):
    """Keys are per integration; entries expire after `ttl_seconds`."""

    async def get(self, key: str) -> Any:
        result = await self._executor.call(
            store.cache_get, m.CacheGet(integration=self._integration, key=key)
        )
        return result.value if result.found else None

    async def set(self, key: str, value: Any, ttl_seconds: int | None = None) -> None:
        if isinstance(value, BaseModel):
            value = value.model_dump(mode="json")
        arg = m.CacheSet(integration=self._integration, key=key, value=value, ttl_seconds=ttl_seconds)
        await self._executor.call(store.cache_set, arg)

    async def delete(self, key: str) -> None:
        await self._executor.call(store.cache_delete, m.CacheDelete(integration=self._integration, key=key))

    async def cache_aside(self, key: str, ttl_seconds: int | None, fn: Callable[[], Awaitable[T]]) -> T:
        """The cached value, or `await fn()` stored for next time (a `None` result is not cached)."""
        cached = await self.get(key)
        if cached is not None:
            return typing.cast(T, cached)
        value = await fn()
        if value is None:
            return value
        # A hit returns stored JSON, so a miss returns the same JSON shape, not the model instance.
        stored = _jsonable(value)
        await self.set(key, stored, ttl_seconds)
        return typing.cast(T, stored)


class ConfigClient(_Client):
    """Stored per integration, falling back to the integration's `default_configs`."""

    @overload
    async def get(self, key: str, model: type[M]) -> M: ...
    @overload
    async def get(self, key: str, model: None = None) -> dict[str, Any] | None: ...

    async def get(self, key: str, model: type[M] | None = None) -> M | dict[str, Any] | None:
        value = (
            await self._executor.call(store.config_get, m.ConfigGet(integration=self._integration, key=key))
        ).value
        if model is None:
            return value
        return model.model_validate(value or {})


class CredsClient(_Client):
    """This integration's secrets, as references resolved only inside the activities that use them."""

    async def get(self, integration: str | None = None) -> Secrets:
        if integration not in (None, self._integration):
            raise Forbidden(f"integration {self._integration!r} may not read the secrets of {integration!r}")
        status = await self._executor.call(store.creds_get, m.CredsGet(integration=self._integration))
        return Secrets(status.names, status.tags)


class HttpClient(_Client):
    """Outside HTTP calls as `http.request` operations; a reference (`{{secret:NAME:TAG}}`) in url, headers or body is resolved late.

    Only this run's own references resolve (from `ctx.creds.get()` in the same run). Requests go to
    public addresses only, unless HAPP_HTTP_ALLOW_PRIVATE / HAPP_HTTP_ALLOWED_NETWORKS allow more;
    an answer over HAPP_HTTP_MAX_RESPONSE_BYTES (5 MiB) fails; `timeout_seconds` is 1 to 120 and
    bounds the whole request; redirects are returned, not followed (`happ_integ.ops.http`).
    """

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: str | None = None,
        timeout_seconds: float = 30.0,
    ) -> m.HttpResponse:
        arg = m.HttpRequest(
            integration=self._integration,
            method=method.upper(),  # type: ignore[arg-type]
            url=str(url),
            headers={k: str(v) for k, v in (headers or {}).items()},
            params={k: str(v) for k, v in (params or {}).items()},
            json_body=_jsonable(json),
            content=content,
            timeout_seconds=timeout_seconds,
        )
        return await self._executor.call(http.request, arg)

    async def get(self, url: str, **kwargs: Any) -> m.HttpResponse:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> m.HttpResponse:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> m.HttpResponse:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> m.HttpResponse:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> m.HttpResponse:
        return await self.request("DELETE", url, **kwargs)


def _jsonable(value: Any) -> Any:
    if isinstance(value, SecretRef):
        return str(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class NetHuntClient(_Client):
    """NetHunt CRM through `crm.*` operations. Credentials default to the NETHUNT_* secrets."""

    def __init__(
        self,
        executor: Executor,
        integration: str,
        email: SecretRef | str | None = None,
        api_key: SecretRef | None = None,
    ) -> None:
        super().__init__(executor, integration)
        if api_key is not None and not isinstance(api_key, SecretRef):
            raise TypeError(
                "pass the NetHunt API key as a secret reference (`secrets.NETHUNT_API_KEY`), never a value"
            )
        self._auth = {"email": str(email) if email else None, "api_key": str(api_key) if api_key else None}

    async def search_records(self, folder_id: Any, query: str, limit: int = 10) -> list[dict[str, Any]]:
        arg = m.CrmSearchRecords(
            integration=self._integration, folder_id=str(folder_id), query=query, limit=limit, **self._auth
        )
        return (await self._executor.call(crm.search_records, arg)).records

    async def get_record(self, folder_id: Any, record_id: str) -> dict[str, Any] | None:
        arg = m.CrmGetRecord(
            integration=self._integration, folder_id=str(folder_id), record_id=record_id, **self._auth
        )
        return (await self._executor.call(crm.get_record, arg)).record

    async def update_record(
        self, record_id: str, fields: Mapping[str, Any], overwrite: bool = False
    ) -> dict[str, Any] | None:
        arg = m.CrmUpdateRecord(
            integration=self._integration,
            record_id=record_id,
            fields=dict(fields),
            overwrite=overwrite,
            **self._auth,
        )
        return (await self._executor.call(crm.update_record, arg)).record

    async def create_record(self, folder_id: Any, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        arg = m.CrmCreateRecord(
            integration=self._integration, folder_id=str(folder_id), fields=dict(fields), **self._auth
        )
        return (await self._executor.call(crm.create_record, arg)).record

    async def create_comment(self, record_id: str, text: str, *, folder_id: Any = None) -> dict[str, Any]:
        """A comment on the record; NetHunt's answer. `folder_id` (default: the NETHUNT_FOLDER_ID
        secret) is the record's folder, where a durable retry looks whether the comment exists."""
        arg = m.CrmCreateComment(
            integration=self._integration,
            record_id=record_id,
            text=text,
            folder_id=str(folder_id) if folder_id else None,
            **self._auth,
        )
        return (await self._executor.call(crm.create_comment, arg)).item

    async def create_call_log(
        self,
        record_id: str,
        text: str,
        *,
        time: datetime | str | None = None,
        duration_minutes: float | None = None,
        folder_id: Any = None,
    ) -> dict[str, Any]:
        """A call log on the record: when the call happened (`time`, a naive datetime taken as UTC;
        None: now) and how long it lasted, in minutes. NetHunt's answer; `folder_id` as for comments."""
        from happ_integ.clients.nethunt import iso_time

        arg = m.CrmCreateCallLog(
            integration=self._integration,
            record_id=record_id,
            text=text,
            time=iso_time(time) if time is not None else None,
            duration_minutes=duration_minutes,
            folder_id=str(folder_id) if folder_id else None,
            **self._auth,
        )
        return (await self._executor.call(crm.create_call_log, arg)).item


class KeyCrmClient(_Client):
    """KeyCRM through `keycrm.*` operations. The API key defaults to the KEYCRM_API_KEY secret;
    every request takes a turn of that key's budget (`per_minute`, default 60), shared by all workers.

        keycrm = ctx.keycrm()
        [buyer, *_] = await keycrm.find_buyers("+380994829573")
        cards = await keycrm.find_cards(buyer["id"], pipeline_id=1)
        await keycrm.update_card(cards[0]["id"], status_id=7, note="Interested")
    """

    def __init__(
        self,
        executor: Executor,
        integration: str,
        api_key: SecretRef | None = None,
        *,
        per_minute: int | None = None,
    ) -> None:
        super().__init__(executor, integration)
        if api_key is not None and not isinstance(api_key, SecretRef):
            raise TypeError(
                "pass the KeyCRM API key as a secret reference (`secrets.KEYCRM_API_KEY`), never a value"
            )
        self._auth: dict[str, Any] = {"api_key": str(api_key) if api_key else None, "per_minute": per_minute}

    async def find_buyers(self, phone: str, *, limit: int = 15) -> list[dict[str, Any]]:
        """Buyers whose phone is `phone` (any format: KeyCRM is asked for its digits), with their
        `company`, `manager` and `custom_fields` (`[{"uuid", "name", "value", …}]`, filled ones only)."""
        arg = m.KeyCrmFindBuyers(integration=self._integration, phone=phone, limit=limit, **self._auth)
        return (await self._executor.call(keycrm.find_buyers, arg)).buyers

    async def find_cards(
        self, client_id: int, *, pipeline_id: int | None = None, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """Pipeline cards of buyer `client_id` (optionally in one pipeline), with `contact`, `status`
        (its `is_final`), `manager` and `custom_fields`. KeyCRM cannot filter cards by buyer: this
        reads up to `max_pages` pages of 50, so name the pipeline when you can."""
        arg = m.KeyCrmFindCards(
            integration=self._integration,
            client_id=client_id,
            pipeline_id=pipeline_id,
            max_pages=max_pages,
            **self._auth,
        )
        return (await self._executor.call(keycrm.find_cards, arg)).cards

    async def get_card(self, card_id: int) -> dict[str, Any] | None:
        """The card, or None when KeyCRM has no such card."""
        arg = m.KeyCrmGetCard(integration=self._integration, card_id=card_id, **self._auth)
        return (await self._executor.call(keycrm.get_card, arg)).card

    async def update_card(
        self,
        card_id: int,
        *,
        status_id: int | None = None,
        note: str | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Move the card to `status_id` (a status of another pipeline moves it there), set its `note`
        and custom fields (`{uuid: value}`); made once by a durable run however often it is tried.
        Answers `{"card_id", "status": KeyCRM's answer, "card": None, or the card as a retry found it}`."""
        arg = m.KeyCrmUpdateCard(
            integration=self._integration,
            card_id=card_id,
            status_id=status_id,
            note=note,
            custom_fields=dict(custom_fields or {}),
            **self._auth,
        )
        return (await self._executor.call(keycrm.update_card, arg)).model_dump(mode="json")
