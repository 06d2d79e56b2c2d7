"""NetHunt CRM through its integration ("Zapier") API.

    async with httpx.AsyncClient() as http:
        nethunt = NetHuntApi(http, settings.nethunt_api_url, email, api_key)
        records = await nethunt.search_records(folder_id, '"Phone":+380994829573', limit=1)
        await nethunt.update_record(records[0].id, {"Status": "Called"}, overwrite=True)
        await nethunt.create_comment(records[0].id, "Call summary: ...")
        await nethunt.create_call_log(records[0].id, "Outbound AI call", time=started, duration_minutes=1.5)
        fresh = await nethunt.recent_call_logs(folder_id, since=last_poll)   # newest first

Facts this follows (https://nethunt.com/integration-api): base `https://nethunt.com/api/v1/zapier`;
HTTP Basic auth with the user's e-mail as user name and the API key as password; JSON bodies;
records are `{"recordId", "createdAt", "updatedAt", "recordUrl", "fields": {name: value}}` where
multi-value fields (phones, e-mails) are lists; `overwrite` of update-record is a query parameter and
the body is `{"fieldActions": {name: {"add": value, "remove": value, "overwrite": bool}}}`;
create-call-log takes `{"text", "time" (ISO-8601), "duration" (minutes)}`; the polling triggers
`new-comment/{folderId}` and `new-call-log/{folderId}` list a folder's items newest first and take
`since` (ISO-8601) and `limit` query parameters.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
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

    async def create_call_log(
        self,
        record_id: str,
        text: str,
        *,
        time: datetime | str | None = None,
        duration_minutes: float | None = None,
    ) -> dict[str, Any]:
        """`POST /actions/create-call-log/{recordId}` with `{"text", "time", "duration"}`; returns
        NetHunt's answer as is. `time` (when the call happened; NetHunt uses "now" without it) is sent
        as ISO-8601, a naive datetime taken as UTC; `duration_minutes` is NetHunt's `duration`, in
        minutes (`seconds / 60`). An unknown record raises `NotFound`."""
        body: dict[str, Any] = {"text": text}
        if time is not None:
            body["time"] = iso_time(time)
        if duration_minutes is not None:
            body["duration"] = duration_minutes
        data = await self._api.request("POST", f"/actions/create-call-log/{record_id}", json=body)
        return data if isinstance(data, dict) else {"result": data}

    async def recent_comments(
        self, folder_id: str, *, since: datetime | str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """`GET /triggers/new-comment/{folderId}?since=…&limit=…`: the folder's comments, newest first
        (`{"recordId", "commentId", "text", "createdAt"}`). An unknown folder raises `NotFound`."""
        return await self._poll(f"/triggers/new-comment/{folder_id}", since, limit)

    async def recent_call_logs(
        self, folder_id: str, *, since: datetime | str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """`GET /triggers/new-call-log/{folderId}?since=…&limit=…`: the folder's call logs, newest first
        (`{"recordId", "callLogId", "text", "time", "duration", "createdAt"}`). Unknown folder → `NotFound`."""
        return await self._poll(f"/triggers/new-call-log/{folder_id}", since, limit)

    async def _poll(self, path: str, since: datetime | str | None, limit: int) -> list[dict[str, Any]]:
        params: dict[str, str | int] = {"limit": limit}
        if since is not None:
            params["since"] = iso_time(since)
        return _objects(await self._api.request("GET", path, params=params))


def iso_time(value: datetime | str) -> str:
    """NetHunt's ISO-8601 form: `iso_time(datetime(2025, 3, 1, 10, tzinfo=UTC))` → `"2025-03-01T10:00:00.000Z"`.

    A naive datetime is taken as UTC (not the worker's local zone, which would shift it silently);
    a string is sent as given, so NetHunt itself judges a malformed one.
    """
    if isinstance(value, str):
        return value
    moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _as_list(data: Any) -> list[Any]:
    if data is None:
        return []
    if isinstance(data, list):
        return data
    raise UpstreamError("NetHunt answered with an object where a list was expected", service="NetHunt")


def _objects(data: Any) -> list[dict[str, Any]]:
    items = _as_list(data)
    if not all(isinstance(item, dict) for item in items):
        raise UpstreamError("NetHunt answered with a list of something other than objects", service="NetHunt")
    return items


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
