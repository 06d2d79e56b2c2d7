"""NetHunt CRM through its integration ("Zapier") API.

    async with httpx.AsyncClient() as http:
        nethunt = NetHuntApi(http, settings.nethunt_api_url, email, api_key)
        records = await nethunt.search_records(folder_id, '"Phone":+380994829573', limit=1)
        await nethunt.update_record(records[0].id, {"Status": "Called"}, overwrite=True)
        await nethunt.create_comment(records[0].id, "Call summary: ...")

Facts this follows (https://nethunt.com/integration-api): base `https://nethunt.com/api/v1/zapier`;
HTTP Basic auth with the user's e-mail as user name and the API key as password; JSON bodies;
records are `{"recordId", "createdAt", "updatedAt", "recordUrl", "fields": {name: value}}` where
multi-value fields (phones, e-mails) are lists; `overwrite` of update-record is a query parameter and
the body is `{"fieldActions": {name: {"add": value, "remove": value, "overwrite": bool}}}`.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx
from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from happ_integ.clients._http import DEFAULT_TIMEOUT, JsonApi, Timeout
from happ_integ.errors import NotFound, UpstreamError


class NetHuntFolder(BaseModel):
    """`{"id": "596f…", "name": "Leads"}` from `list_folders()`."""

    model_config = ConfigDict(extra="allow")

    id: str
    name: str = ""


class NetHuntRecord(BaseModel):
    """A record: `record.id`, `record.fields["Name"]`, `record.first("Phone")` (first of a multi-value field).

    Reads NetHunt's `recordId` (or `id`), `createdAt`, `updatedAt`, `recordUrl`; other keys are kept.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: str = Field(validation_alias=AliasChoices("recordId", "id"))
    fields: dict[str, Any] = Field(default_factory=dict)
    created_at: str | None = Field(default=None, validation_alias=AliasChoices("createdAt", "created_at"))
    updated_at: str | None = Field(default=None, validation_alias=AliasChoices("updatedAt", "updated_at"))
    record_url: str | None = Field(default=None, validation_alias=AliasChoices("recordUrl", "record_url"))

    def first(self, name: str, default: Any = None) -> Any:
        """The field's value, or its first item when NetHunt returns a list: `record.first("Phone")`."""
        value = self.fields.get(name, default)
        if isinstance(value, list):
            return value[0] if value else default
        return value


def basic_auth(email: str, api_key: str) -> str:
    """The Authorization header value: `basic_auth("me@x.com", "key")` → `"Basic bWVA…"`."""
    return "Basic " + base64.b64encode(f"{email}:{api_key}".encode()).decode("ascii")


def field_actions(fields: dict[str, Any], overwrite: bool | None = None) -> dict[str, dict[str, Any]]:
    """Plain values as NetHunt field actions: `field_actions({"Status": "Won"})` → `{"Status": {"add": "Won"}}`."""
    actions: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        action: dict[str, Any] = {"add": value}
        if overwrite is not None:
            action["overwrite"] = overwrite
        actions[name] = action
    return actions


class NetHuntApi:
    """Thin typed client; errors are mapped by `happ_integ.clients._http` (404 → `NotFound`, 5xx → `UpstreamError`).

    nethunt = NetHuntApi(http, "https://nethunt.com/api/v1/zapier", "me@x.com", "api-key", timeout=10)
    folders = await nethunt.list_folders()
    """

    service = "NetHunt"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        email: str,
        api_key: str,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
    ) -> None:
        token = basic_auth(email, api_key)
        self._api = JsonApi(
            http,
            base_url,
            service=self.service,
            headers={"Authorization": token},
            secrets=[api_key, token.removeprefix("Basic ")],
            timeout=timeout,
        )

    async def auth_test(self) -> Any:
        """`GET /triggers/auth-test`: raises `Unauthorized` when the e-mail/API key pair is wrong."""
        return await self._api.request("GET", "/triggers/auth-test")

    async def list_folders(self) -> list[NetHuntFolder]:
        """`GET /triggers/readable-folder`: every folder the user can read."""
        data = await self._api.request("GET", "/triggers/readable-folder")
        return [NetHuntFolder.model_validate(item) for item in _as_list(data)]

    async def search_records(self, folder_id: str, query: str, limit: int = 10) -> list[NetHuntRecord]:
        """`GET /searches/find-record/{folderId}?query=…&limit=…`; `query` uses NetHunt's search syntax,
        e.g. `'"Phone":+380994829573'` or plain text. An unknown folder raises `NotFound`."""
        data = await self._api.request(
            "GET", f"/searches/find-record/{folder_id}", params={"query": query, "limit": limit}
        )
        return [NetHuntRecord.model_validate(item) for item in _as_list(data)]

    async def get_record(self, folder_id: str, record_id: str) -> NetHuntRecord | None:
        """`GET /searches/find-record/{folderId}?recordId=…`; None when there is no such record."""
        try:
            data = await self._api.request(
                "GET", f"/searches/find-record/{folder_id}", params={"recordId": record_id, "limit": 1}
            )
        except NotFound:
            return None
        items = _as_list(data)
        return NetHuntRecord.model_validate(items[0]) if items else None

    async def create_record(
        self, folder_id: str, fields: dict[str, Any], *, time_zone: str | None = None
    ) -> NetHuntRecord:
        """`POST /actions/create-record/{folderId}` with `{"fields": …, "timeZone": …}` (time zone optional)."""
        body: dict[str, Any] = {"fields": fields}
        if time_zone:
            body["timeZone"] = time_zone
        data = await self._api.request("POST", f"/actions/create-record/{folder_id}", json=body)
        return _record(data, fallback_fields=fields)

    async def update_record(
        self, record_id: str, fields: dict[str, Any], overwrite: bool = False
    ) -> NetHuntRecord:
        """Set plain field values: `POST /actions/update-record/{recordId}?overwrite=…` with
        `{"fieldActions": {name: {"add": value}}}`. With `overwrite=False` NetHunt adds to a field
        instead of replacing it; pass `overwrite=True` to replace single values such as a status."""
        return await self.apply_field_actions(record_id, field_actions(fields), overwrite=overwrite)

    async def apply_field_actions(
        self, record_id: str, actions: dict[str, dict[str, Any]], overwrite: bool = False
    ) -> NetHuntRecord:
        """Raw field actions (`{"Tags": {"add": ["hot"], "remove": ["cold"]}}`) for multi-value fields."""
        data = await self._api.request(
            "POST",
            f"/actions/update-record/{record_id}",
            params={"overwrite": overwrite},
            json={"fieldActions": actions},
        )
        return _record(data, fallback_id=record_id)

    async def create_comment(self, record_id: str, text: str) -> dict[str, Any]:
        """`POST /actions/create-comment/{recordId}` with `{"text": …}`; returns NetHunt's answer as is."""
        data = await self._api.request("POST", f"/actions/create-comment/{record_id}", json={"text": text})
        return data if isinstance(data, dict) else {"result": data}


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    raise UpstreamError("NetHunt answered with an object where a list was expected", service="NetHunt")


def _record(
    data: Any, *, fallback_id: str | None = None, fallback_fields: dict[str, Any] | None = None
) -> NetHuntRecord:
    """A record from a create/update answer, which may be a list of one or carry only the id."""
    if isinstance(data, list):
        data = data[0] if data else None
    item: dict[str, Any] = dict(data) if isinstance(data, dict) else {}
    if "recordId" not in item and "id" not in item:
        if fallback_id is None:
            raise UpstreamError("NetHunt answered without a record id", service="NetHunt")
        item["recordId"] = fallback_id
    if "fields" not in item and fallback_fields is not None:
        item["fields"] = fallback_fields
    return NetHuntRecord.model_validate(item)
