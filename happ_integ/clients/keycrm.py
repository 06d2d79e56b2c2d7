"""KeyCRM through its OpenAPI (https://openapi.keycrm.app/v1, `Authorization: Bearer <key>`).

    async with httpx.AsyncClient() as http:
        keycrm = KeyCrmApi(http, settings.keycrm_api_url, api_key)
        buyers = await keycrm.find_buyer_by_phone("+380994829573")
        cards = await keycrm.find_cards_by_phone("+380994829573", pipeline_id=1)
        await keycrm.update_card_status(cards[0].id, status_id=7, note="Call: interested")

Facts this follows (KeyCRM OpenAPI, as generated in the public `plakidan/key-crm` SDK docs):
lists are pages `{total, current_page, per_page, data, next_page_url, …}` with `limit` ≤ 50 and
`page`; filters are `filter[name]=value`; a buyer's `phone`/`email` are lists; cards are
`/pipelines/cards` and can be filtered only by `pipeline_id, status_id, source_id,
created_between, updated_between` (KeyCRM answers 400 to `filter[contact.phone]`), so finding a
card by phone reads pages with `include=contact` and matches here; `PUT /pipelines/cards/{id}`
takes `{status_id, note, title, source_id, client_id, communicate_at, custom_fields}` and answers
`{"status": true}`; `PUT /order/{id}` takes `{status_id, manager_comment, buyer_comment, …}`.
`filter[buyer_phone]` matches exactly, so phones are sent as digits only (`380994829573`).
Custom fields come back (filled ones only, with `include=custom_fields`) as
`[{"id", "uuid", "name", "type", "value"}]` and are written as `[{"uuid", "value"}]`; a buyer's
`company` and `manager` come with `include=company,manager`, a card's `manager` with `include=manager`.

KeyCRM allows about 60 requests a minute per API key and answers more with 429 and `Retry-After`
(seconds). `pace` (e.g. `Pacer.turn` from `happ_integ.stores.pacing`) is awaited before every
request this client sends. On a 429, `hold_off` (e.g. `Pacer.hold_off`) is awaited with the
Retry-After (`DEFAULT_RETRY_AFTER` when KeyCRM sent none), so no request with that key leaves any
process before it has passed; then, with a `pace`, the request is sent again on its next turn (a
429 means KeyCRM did not act on it, so a write is not doubled), at most `MAX_SENDS` times in all.
The last 429 is raised as a retryable `UpstreamError` with `details["retry_after"]`.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from happ_integ.clients._http import DEFAULT_TIMEOUT, JsonApi, Timeout
from happ_integ.errors import NotFound, UpstreamError

MAX_LIMIT = 50
# Sends of one request when KeyCRM answers 429 (with a `pace` to wait for the next turn): two more
# after the first, each after the hold-off, keep a paced request within an activity's minute even
# when every wait is the pacer's longest (20 s).
MAX_SENDS = 3
# The hold-off after a 429 without a (numeric) Retry-After: KeyCRM's window is a minute.
DEFAULT_RETRY_AFTER = 60.0


def phone_digits(phone: str) -> str:
    """KeyCRM's phone filter form: `phone_digits("+380 (99) 482-95-73")` → `"380994829573"`."""
    return re.sub(r"\D", "", phone)


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


def custom_field_values(custom_fields: Any) -> dict[str, Any]:
    """KeyCRM's `custom_fields` list as `{uuid: value}`: `[{"uuid": "LD_1", "value": "x"}]` → `{"LD_1": "x"}`."""
    if isinstance(custom_fields, Mapping):
        return dict(custom_fields)
    values: dict[str, Any] = {}
    for item in custom_fields or []:
        if isinstance(item, Mapping) and item.get("uuid"):
            values[str(item["uuid"])] = item.get("value")
    return values


class KeyCrmBuyer(_Model):
    """A buyer (client): `buyer.id`, `buyer.full_name`, `buyer.phone` (a list)."""

    id: int
    full_name: str | None = None
    phone: list[str] = Field(default_factory=list)
    email: list[str] = Field(default_factory=list)
    note: str | None = None
    company_id: int | None = None
    manager_id: int | None = None
    company: dict[str, Any] | None = None  # with include=company
    manager: dict[str, Any] | None = None  # with include=manager
    custom_fields: list[dict[str, Any]] = Field(default_factory=list)  # with include=custom_fields
    created_at: str | None = None
    updated_at: str | None = None

    @field_validator("custom_fields", mode="before")
    @classmethod
    def _no_fields(cls, value: Any) -> Any:
        return [] if value is None else value

    def custom_values(self) -> dict[str, Any]:
        """`{uuid: value}` of the custom fields KeyCRM sent."""
        return custom_field_values(self.custom_fields)

    @field_validator("phone", "email", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        if value is None:
            return []
        return [value] if isinstance(value, str) else value


class KeyCrmOrder(_Model):
    """An order: `order.id`, `order.status_id`, `order.manager_comment`, `order.buyer` (with `include=buyer`)."""

    id: int
    source_id: int | None = None
    status_id: int | None = None
    manager_comment: str | None = None
    buyer_comment: str | None = None
    grand_total: float | None = None
    buyer: dict[str, Any] | None = None
    created_at: str | None = None
    updated_at: str | None = None


class KeyCrmContact(_Model):
    """A card's contact person: `contact.phone` is one string; `contact.client_id` links the buyer."""

    id: int | None = None
    full_name: str | None = None
    phone: str | None = None
    email: str | None = None
    client_id: int | None = None
    client: dict[str, Any] | None = None


class KeyCrmCard(_Model):
    """A pipeline card (lead): `card.id`, `card.status_id`, `card.contact.phone` (with `include=contact`)."""

    id: int
    title: str | None = None
    status_id: int | None = None
    pipeline_id: int | None = None
    source_id: int | None = None
    contact_id: int | None = None
    manager_id: int | None = None
    manager_comment: str | None = None
    note: str | None = None
    communicate_at: str | None = None
    is_finished: bool | int | str | None = None
    contact: KeyCrmContact | None = None
    status: dict[str, Any] | None = None  # with include=status: {"id", "title", "is_final", …}
    manager: dict[str, Any] | None = None  # with include=manager
    custom_fields: list[dict[str, Any]] = Field(default_factory=list)  # with include=custom_fields
    created_at: str | None = None
    updated_at: str | None = None

    @field_validator("custom_fields", mode="before")
    @classmethod
    def _no_fields(cls, value: Any) -> Any:
        return [] if value is None else value

    def custom_values(self) -> dict[str, Any]:
        """`{uuid: value}` of the custom fields KeyCRM sent."""
        return custom_field_values(self.custom_fields)

    def phones(self) -> list[str]:
        """Every phone known for this card: the contact's and its linked client's."""
        found = [self.contact.phone] if self.contact and self.contact.phone else []
        client_phones = (self.contact.client or {}).get("phone") if self.contact else None
        if isinstance(client_phones, str):
            found.append(client_phones)
        elif isinstance(client_phones, list):
            found.extend(p for p in client_phones if isinstance(p, str))
        return found


class KeyCrmApi:
    """Thin typed client; 404 → `NotFound`, 422 → `UpstreamRejected`, 5xx/429/timeouts → `UpstreamError`.

    keycrm = KeyCrmApi(http, "https://openapi.keycrm.app/v1", api_key, timeout=10,
                       pace=pacer.turn, hold_off=pacer.hold_off)
    order = await keycrm.get_order(42)
    """

    service = "KeyCRM"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str,
        *,
        timeout: Timeout = DEFAULT_TIMEOUT,
        pace: Callable[[], Awaitable[object]] | None = None,
        hold_off: Callable[[float], Awaitable[object]] | None = None,
    ) -> None:
        self._pace = pace
        self._hold_off = hold_off
        self._api = JsonApi(
            http,
            base_url,
            service=self.service,
            headers={"Authorization": f"Bearer {api_key}"},
            secrets=[api_key],
            timeout=timeout,
        )

    async def _request(
        self, method: str, path: str, *, params: dict[str, str | int] | None = None, json: Any = None
    ) -> Any:
        sends = 0
        while True:
            if self._pace is not None:
                await self._pace()
            sends += 1
            try:
                return await self._api.request(method, path, params=params, json=json)
            except UpstreamError as exc:
                if exc.details.get("status") != 429 or self._hold_off is None:
                    raise
                retry_after = exc.details.get("retry_after")
                if not isinstance(retry_after, int | float) or retry_after < 0:
                    retry_after = exc.details["retry_after"] = DEFAULT_RETRY_AFTER
                # Every process sharing the key's pacing waits past it, not only this request.
                await self._hold_off(float(retry_after))
                if self._pace is None or sends >= MAX_SENDS:
                    raise

    async def _page(self, path: str, params: dict[str, str | int]) -> tuple[list[dict[str, Any]], bool]:
        data = await self._request("GET", path, params=params)
        data = data if isinstance(data, dict) else {}
        items = [item for item in data.get("data") or [] if isinstance(item, dict)]
        return items, bool(data.get("next_page_url"))

    async def _get_or_none(self, path: str, params: dict[str, str | int] | None = None) -> Any:
        try:
            return await self._request("GET", path, params=params)
        except NotFound:
            return None

    # buyers -------------------------------------------------------------------------------------
    async def find_buyer_by_phone(
        self, phone: str, *, limit: int = 15, include: str = ""
    ) -> list[KeyCrmBuyer]:
        """`GET /buyer?filter[buyer_phone]=<digits>`: buyers whose phone equals `phone`; `include`
        e.g. "company,manager,custom_fields"."""
        params: dict[str, str | int] = {
            "filter[buyer_phone]": phone_digits(phone),
            "limit": min(limit, MAX_LIMIT),
        }
        if include:
            params["include"] = include
        items, _ = await self._page("/buyer", params)
        return [KeyCrmBuyer.model_validate(item) for item in items]

    async def get_buyer(self, buyer_id: int, *, include: str = "") -> KeyCrmBuyer | None:
        """`GET /buyer/{id}`; None when there is no such buyer."""
        data = await self._get_or_none(f"/buyer/{buyer_id}", {"include": include} if include else None)
        return KeyCrmBuyer.model_validate(data) if data else None

    # orders -------------------------------------------------------------------------------------
    async def get_order(self, order_id: int, *, include: str = "buyer") -> KeyCrmOrder | None:
        """`GET /order/{id}?include=buyer`; None when there is no such order."""
        data = await self._get_or_none(f"/order/{order_id}", {"include": include} if include else None)
        return KeyCrmOrder.model_validate(data) if data else None

    async def find_orders_by_phone(self, phone: str, *, limit: int = 15) -> list[KeyCrmOrder]:
        """`GET /order?filter[buyer_phone]=<digits>&include=buyer`."""
        items, _ = await self._page(
            "/order",
            {"filter[buyer_phone]": phone_digits(phone), "include": "buyer", "limit": min(limit, MAX_LIMIT)},
        )
        return [KeyCrmOrder.model_validate(item) for item in items]

    async def update_order(self, order_id: int, fields: dict[str, Any]) -> KeyCrmOrder:
        """`PUT /order/{id}` with e.g. `{"status_id": 3, "manager_comment": "…"}`; returns the order."""
        data = await self._request("PUT", f"/order/{order_id}", json=fields)
        return KeyCrmOrder.model_validate(
            data if isinstance(data, dict) and "id" in data else {"id": order_id}
        )

    async def create_order(self, payload: dict[str, Any]) -> KeyCrmOrder:
        """`POST /order`; KeyCRM requires `source_id` and `buyer` (`{"full_name", "phone", "email"}`)."""
        return KeyCrmOrder.model_validate(await self._request("POST", "/order", json=payload))

    # pipelines and cards ------------------------------------------------------------------------
    async def list_pipelines(self) -> list[dict[str, Any]]:
        """`GET /pipelines`: `[{"id": 1, "title": "Sales", …}]`."""
        items, _ = await self._page("/pipelines", {"limit": MAX_LIMIT})
        return items

    async def list_pipeline_statuses(self, pipeline_id: int) -> list[dict[str, Any]]:
        """`GET /pipelines/{id}/statuses`: `[{"id": 7, "name": "Called", …}]`."""
        items, _ = await self._page(f"/pipelines/{pipeline_id}/statuses", {"limit": MAX_LIMIT})
        return items

    async def list_cards(
        self,
        *,
        pipeline_id: int | None = None,
        status_id: int | None = None,
        include: str = "contact.client,status",
        limit: int = MAX_LIMIT,
        page: int = 1,
    ) -> tuple[list[KeyCrmCard], bool]:
        """One page of `GET /pipelines/cards`; returns `(cards, has_next_page)`."""
        params: dict[str, str | int] = {"limit": min(limit, MAX_LIMIT), "page": page}
        if include:
            params["include"] = include
        if pipeline_id is not None:
            params["filter[pipeline_id]"] = pipeline_id
        if status_id is not None:
            params["filter[status_id]"] = status_id
        items, more = await self._page("/pipelines/cards", params)
        return [KeyCrmCard.model_validate(item) for item in items], more

    async def _scan_cards(
        self,
        match: Callable[[KeyCrmCard], bool],
        pipeline_id: int | None,
        status_id: int | None,
        max_pages: int,
        include: str = "contact.client,status",
    ) -> list[KeyCrmCard]:
        found: list[KeyCrmCard] = []
        for page in range(1, max_pages + 1):
            cards, more = await self.list_cards(
                pipeline_id=pipeline_id, status_id=status_id, include=include, page=page
            )
            found.extend(card for card in cards if match(card))
            if not more:
                break
        return found

    async def find_cards_by_phone(
        self, phone: str, *, pipeline_id: int | None = None, status_id: int | None = None, max_pages: int = 10
    ) -> list[KeyCrmCard]:
        """Cards whose contact (or its client) has this phone, reading at most `max_pages` pages of 50.
        KeyCRM cannot filter cards by phone, so narrow the scan with `pipeline_id`/`status_id`."""
        wanted = phone_digits(phone)

        def match(card: KeyCrmCard) -> bool:
            return bool(wanted) and any(phone_digits(p) == wanted for p in card.phones())

        return await self._scan_cards(match, pipeline_id, status_id, max_pages)

    async def find_cards_by_client(
        self,
        client_id: int,
        *,
        pipeline_id: int | None = None,
        status_id: int | None = None,
        max_pages: int = 10,
        include: str = "contact.client,status",
    ) -> list[KeyCrmCard]:
        """Cards linked to buyer `client_id` (see `find_buyer_by_phone`), scanned like `find_cards_by_phone`;
        `include` must name `contact` or `contact.client` (the link is the contact's `client_id`)."""

        def match(card: KeyCrmCard) -> bool:
            return card.contact is not None and card.contact.client_id == client_id

        return await self._scan_cards(match, pipeline_id, status_id, max_pages, include)

    async def get_card(self, card_id: int, *, include: str = "contact.client,status") -> KeyCrmCard | None:
        """`GET /pipelines/cards/{id}`; None when there is no such card."""
        data = await self._get_or_none(
            f"/pipelines/cards/{card_id}", {"include": include} if include else None
        )
        return KeyCrmCard.model_validate(data) if data else None

    async def create_card(self, payload: dict[str, Any]) -> KeyCrmCard:
        """`POST /pipelines/cards`, e.g. `{"pipeline_id": 1, "title": "…", "contact": {"full_name", "phone"}}`."""
        return KeyCrmCard.model_validate(await self._request("POST", "/pipelines/cards", json=payload))

    async def update_card(self, card_id: int, fields: dict[str, Any]) -> bool:
        """`PUT /pipelines/cards/{id}` with KeyCRM's fields (`status_id`, `note`, `communicate_at`, …)."""
        data = await self._request("PUT", f"/pipelines/cards/{card_id}", json=fields)
        return bool(data.get("status", True)) if isinstance(data, dict) else True

    async def update_card_status(
        self,
        card_id: int,
        status_id: int | None = None,
        *,
        note: str | None = None,
        communicate_at: str | None = None,
    ) -> bool:
        """The post-call update: move the card to `status_id` (another pipeline's status moves the card
        there) and/or set its `note` and next contact time `communicate_at` ("2026-01-21 14:00:00")."""
        fields: dict[str, Any] = {}
        if status_id is not None:
            fields["status_id"] = status_id
        if note is not None:
            fields["note"] = note
        if communicate_at is not None:
            fields["communicate_at"] = communicate_at
        return await self.update_card(card_id, fields)
