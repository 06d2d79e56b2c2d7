"""Inputs and results of the context operations: what crosses an activity boundary.

One model per operation keeps each activity's signature a single, extensible argument. Secret
values never appear here: a credential travels as a reference (`{{secret:NAME:TAG}}`, see
`happ_integ.secrets`) and is resolved inside the activity that uses it.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

# db.query's result is the store's own model: one `QueryResult` for `Db.query` and `ctx.db.query`.
from happ_integ.stores.db import QueryResult as QueryResult


class Scoped(BaseModel):
    integration: str


# db.*
class DbInsert(Scoped):
    table: str
    row: dict[str, Any]


class DbUpdate(Scoped):
    table: str
    values: dict[str, Any]
    where: dict[str, Any]


class DbSelect(Scoped):
    table: str
    where: dict[str, Any] | None = None
    order_by: str | list[str] | None = None
    limit: int | None = None
    offset: int | None = None


class DbDelete(Scoped):
    table: str
    where: dict[str, Any]


class DbQuery(Scoped):
    sql: str
    params: list[Any] = Field(default_factory=list)


class Count(BaseModel):
    count: int


class Rows(BaseModel):
    rows: list[dict[str, Any]]


class Row(BaseModel):
    row: dict[str, Any]


# cache.*
class CacheGet(Scoped):
    key: str


class CacheSet(Scoped):
    key: str
    value: Any
    ttl_seconds: int | None = None


class CacheDelete(Scoped):
    key: str


class CacheValue(BaseModel):
    found: bool
    value: Any = None


# config.* / creds.*
class ConfigGet(Scoped):
    key: str


class ConfigValue(BaseModel):
    value: dict[str, Any] | None


class CredsGet(Scoped):
    pass


class SecretStatus(BaseModel):
    """Which secrets are set, and the tags of their references: never values."""

    names: dict[str, bool]
    tags: dict[str, str] = Field(default_factory=dict)


# http.request
class HttpRequest(Scoped):
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    params: dict[str, str] = Field(default_factory=dict)
    json_body: Any = None
    content: str | None = None
    timeout_seconds: float = 30.0


class HttpResponse(BaseModel):
    status_code: int
    headers: dict[str, str] = Field(default_factory=dict)
    text: str = ""
    json_body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    # httpx's name for the decoded body, so `response.json()` reads as it does with httpx.
    def json(self) -> Any:  # type: ignore[override]
        return self.json_body


# crm.* (NetHunt); email/api_key are secret references (None: the NETHUNT_* secrets), resolved in the activity
class CrmAuth(Scoped):
    email: str | None = None
    api_key: str | None = None


class CrmSearchRecords(CrmAuth):
    folder_id: str
    query: str
    limit: int = 10


class CrmGetRecord(CrmAuth):
    folder_id: str
    record_id: str


class CrmUpdateRecord(CrmAuth):
    record_id: str
    fields: dict[str, Any]
    overwrite: bool = False
    folder_id: str | None = None  # the record's folder (default: NETHUNT_FOLDER_ID), for the landed check


class CrmCreateRecord(CrmAuth):
    folder_id: str
    fields: dict[str, Any]


class CrmCreateComment(CrmAuth):
    record_id: str
    text: str
    # The record's folder, where a retry looks for the comment; None: the NETHUNT_FOLDER_ID secret.
    folder_id: str | None = None


class CrmCreateCallLog(CrmAuth):
    record_id: str
    text: str
    time: str | None = Field(default=None, description="ISO-8601; None: NetHunt takes now")
    duration_minutes: float | None = None
    # The record's folder, where a retry looks for the call log; None: the NETHUNT_FOLDER_ID secret.
    folder_id: str | None = None


class CrmItem(BaseModel):
    """What NetHunt answered to a create-comment or create-call-log, as it answered it."""

    item: dict[str, Any]


class CrmRecord(BaseModel):
    record: dict[str, Any] | None


class CrmRecords(BaseModel):
    records: list[dict[str, Any]]


class Empty(BaseModel):
    pass


# keycrm.* (KeyCRM); api_key is a secret reference (None: the KEYCRM_API_KEY secret), resolved in the
# activity. `per_minute` is the API key's request budget (None: happ_integ.ops.keycrm.REQUESTS_PER_MINUTE),
# shared by every process through PostgreSQL.
class KeyCrmAuth(Scoped):
    api_key: str | None = None
    per_minute: int | None = Field(default=None, ge=1, le=6000)


class KeyCrmFindBuyers(KeyCrmAuth):
    phone: str
    include: str = "company,manager,custom_fields"
    limit: int = Field(default=15, ge=1, le=50)


class KeyCrmFindCards(KeyCrmAuth):
    client_id: int
    pipeline_id: int | None = None
    include: str = "contact.client,status,manager,custom_fields"
    max_pages: int = Field(default=10, ge=1, le=100)


class KeyCrmGetCard(KeyCrmAuth):
    card_id: int
    include: str = "contact.client,status,manager,custom_fields"


class KeyCrmUpdateCard(KeyCrmAuth):
    card_id: int
    status_id: int | None = None
    note: str | None = None
    custom_fields: dict[str, Any] = Field(default_factory=dict, description="custom field uuid → value")


class KeyCrmBuyers(BaseModel):
    buyers: list[dict[str, Any]]


class KeyCrmCards(BaseModel):
    cards: list[dict[str, Any]]


class KeyCrmCardRead(BaseModel):
    """What keycrm.get_card read: the card (`happ_integ.clients.keycrm.KeyCrmCard`, dumped to JSON),
    or None when KeyCRM has no such card."""

    card: dict[str, Any] | None


class KeyCrmUpdated(BaseModel):
    """What keycrm.update_card answered: KeyCRM's `status` (its answer is `{"status": true}`), and the
    card as it was read back when a retry found the update already made (else None)."""

    card_id: int
    status: bool = True
    card: dict[str, Any] | None = None
