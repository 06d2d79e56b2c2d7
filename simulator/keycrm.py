"""A KeyCRM OpenAPI on loopback: paths under `/v1`, `Authorization: Bearer <key>`, Laravel-style
pages and errors (`{"message": "Unauthenticated."}`, 422 `{"message", "errors"}`).

    state = KeyCrmState(api_key="k")
    pipeline, (new, called, won) = state.add_pipeline("Sales", ["New", "Called", "Won"])
    buyer = state.add_buyer("Іван", "+380994829573")
    card = state.add_card(new, {"full_name": "Іван", "phone": "+380994829573", "client_id": buyer})
    app = create_keycrm_app(state)            # HAPP_KEYCRM_API_URL=http://127.0.0.1:PORT/v1
    state.cards[card]["status_id"] == called  # after the code under test moved it
    ids = seed_demo(KeyCrmState())           # the demo pipeline, buyer and card (see `seed_demo`)

Like the real API, `filter[buyer_phone]` matches the stored phone's digits exactly, `limit` above
50 is a 422, and cards accept only the filters KeyCRM allows (anything else is a 400).

Buyers may have a company and a manager (`include=company,manager`), buyers and cards custom
field values (`include=custom_fields`: the filled ones, as `[{"id", "uuid", "name", "type",
"value"}]`); `PUT /pipelines/cards/{id}` takes `custom_fields: [{"uuid", "value"}]` for the
card fields defined with `add_custom_field("lead", …)` and answers 422 for any other uuid. A
status may be final (`is_final`), like KeyCRM's closing statuses. `state.cards[id]["custom_fields"]`
and `state.buyers[id]["custom_fields"]` hold the values as `{uuid: value}`.

Rate limit, as KeyCRM's (Laravel's throttle): `KeyCrmState(rate_limit=60, rate_window_seconds=60)`
lets each API key make `rate_limit` requests in a window that opens with the key's first request
and lasts `rate_window_seconds`; the requests after that, until the window closes, are answered
429 `{"message": "Too Many Attempts."}` with `Retry-After` (whole seconds until the window
closes, rounded up), `X-RateLimit-Limit`, `X-RateLimit-Remaining: 0` and `X-RateLimit-Reset`
(epoch seconds), and are not counted against the next window. Answers within the limit carry
`X-RateLimit-Limit` and `X-RateLimit-Remaining`. `rate_limit=None` (the default) limits nothing,
so tests that go faster than KeyCRM allows stay quick. Every authenticated request is logged in
`state.hits` (`KeyCrmHit`: when it arrived on `time.monotonic()`, the key, the path, the status
answered and the Retry-After of a 429); `state.refused` counts the 429s.

    state = KeyCrmState(api_key="k", rate_limit=4, rate_window_seconds=8)
    ...
    [(h.at, h.retry_after) for h in state.hits if h.status == 429]
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState, bearer_ok, digits

CARD_FILTERS = ("pipeline_id", "status_id", "source_id", "created_between", "updated_between")
BUYER_FILTERS = ("buyer_id", "buyer_email", "buyer_phone", "created_between", "updated_between")
ORDER_FILTERS = ("order_id", "status_id", "source_id", "buyer_phone", "buyer_email", "created_between")
ORDER_FIELDS = ("status_id", "manager_comment", "buyer_comment", "discount_percent", "discount_amount")
CARD_FIELDS = ("title", "note", "status_id", "source_id", "client_id", "communicate_at")
CUSTOM_FIELD_MODELS = ("order", "lead", "client", "crm_product")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class KeyCrmHit:
    """One authenticated request as the rate limit saw it: `at` (`time.monotonic()` on arrival),
    the API `key`, `method`, `path`, the `status` answered (0 until then) and, for a 429, its
    `retry_after`."""

    at: float
    key: str
    method: str
    path: str
    status: int
    retry_after: int | None = None


@dataclass
class KeyCrmState(SimState):
    """Buyers, orders, pipelines (with statuses), cards, managers, companies and custom field
    definitions in memory, keyed by integer id (custom fields by uuid)."""

    api_key: str = "sim-keycrm-key"
    buyers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    pipelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    managers: dict[int, dict[str, Any]] = field(default_factory=dict)
    companies: dict[int, dict[str, Any]] = field(default_factory=dict)
    custom_fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    rate_limit: int | None = None
    rate_window_seconds: float = 60.0
    hits: list[KeyCrmHit] = field(default_factory=list)
    _next_id: int = field(default=1, repr=False)
    _taken: set[int] = field(default_factory=set, repr=False)
    # Each key's open window: (when it opened on time.monotonic(), requests let through in it).
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict, repr=False)

    @property
    def refused(self) -> int:
        """How many requests the rate limit answered 429."""
        return sum(1 for hit in self.hits if hit.status == 429)

    def clear_requests(self) -> None:
        super().clear_requests()
        self.hits.clear()

    def take_request(self, key: str, now: float) -> tuple[int, int]:
        """Count one request of `key` at `now` against its window: `(remaining, 0)` when it is let
        through, `(0, retry_after)` when it is refused (a refused request does not count)."""
        if self.rate_limit is None:
            return 0, 0
        opened, used = self._windows.get(key, (now, 0))
        if now >= opened + self.rate_window_seconds:
            opened, used = now, 0
        if used >= self.rate_limit:
            return 0, max(1, math.ceil(opened + self.rate_window_seconds - now))
        self._windows[key] = (opened, used + 1)
        return self.rate_limit - used - 1, 0

    def new_id(self, wanted: int | None = None) -> int:
        """The next free id, or `wanted` (a ValueError when some entity already has it)."""
        if wanted is not None:
            if wanted in self._taken:
                raise ValueError(f"id {wanted} is taken")
            self._taken.add(wanted)
            return wanted
        while self._next_id in self._taken:
            self._next_id += 1
        self._taken.add(self._next_id)
        return self._next_id

    def add_manager(self, full_name: str, email: str | None = None, phone: str | None = None) -> int:
        """A KeyCRM user, as `include=manager` shows it."""
        manager_id = self.new_id()
        first, _, last = full_name.partition(" ")
        self.managers[manager_id] = {
            "id": manager_id,
            "first_name": first,
            "last_name": last,
            "full_name": full_name,
            "username": email or f"manager{manager_id}",
            "email": email,
            "phone": phone,
            "role_id": 1,
            "status": "active",
            "created_at": _now(),
            "updated_at": _now(),
        }
        return manager_id

    def add_company(self, name: str, full_name: str | None = None) -> int:
        """A buyer's company, as `include=company` shows it."""
        company_id = self.new_id()
        self.companies[company_id] = {
            "id": company_id,
            "name": name,
            "full_name": full_name or name,
            "address": None,
            "note": None,
            "created_at": _now(),
            "updated_at": _now(),
        }
        return company_id

    def add_custom_field(
        self, model: str, name: str, field_type: str = "text", uuid: str | None = None
    ) -> str:
        """A custom field definition of `model` ("lead" for cards, "client" for buyers); its uuid."""
        if model not in CUSTOM_FIELD_MODELS:
            raise ValueError(f"model must be one of {CUSTOM_FIELD_MODELS}")
        field_id = self.new_id()
        prefix = {"order": "OR", "lead": "LD", "client": "CT", "crm_product": "PR"}[model]
        uuid = uuid or f"{prefix}_{1000 + field_id}"
        if uuid in self.custom_fields:
            raise ValueError(f"custom field {uuid} exists")
        self.custom_fields[uuid] = {
            "id": field_id,
            "uuid": uuid,
            "name": name,
            "model": model,
            "type": field_type,
            "required": False,
            "position": len(self.custom_fields) + 1,
            "is_multiple": False,
            "options": [],
        }
        return uuid

    def add_buyer(
        self,
        full_name: str,
        phone: str | list[str],
        email: str | list[str] | None = None,
        *,
        company_id: int | None = None,
        manager_id: int | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> int:
        buyer_id = self.new_id()
        self.buyers[buyer_id] = {
            "id": buyer_id,
            "full_name": full_name,
            "phone": [phone] if isinstance(phone, str) else list(phone),
            "email": [email] if isinstance(email, str) else list(email or []),
            "note": None,
            "company_id": company_id,
            "manager_id": manager_id,
            "custom_fields": dict(custom_fields or {}),
            "created_at": _now(),
            "updated_at": _now(),
        }
        return buyer_id

    def add_pipeline(
        self,
        title: str,
        statuses: list[str],
        *,
        final: Collection[str] = (),
        pipeline_id: int | None = None,
        status_ids: Sequence[int] | None = None,
    ) -> tuple[int, list[int]]:
        """A pipeline and its statuses, in order; `final` names the closing ones (`is_final`).
        `pipeline_id`/`status_ids` fix the ids (e.g. to match an integration's default config)."""
        if status_ids is not None and len(status_ids) != len(statuses):
            raise ValueError("one status id per status")
        pipeline_id = self.new_id(pipeline_id)
        self.pipelines[pipeline_id] = {"id": pipeline_id, "title": title}
        ids = []
        for position, alias in enumerate(statuses):
            status_id = self.new_id(status_ids[position] if status_ids is not None else None)
            self.statuses[status_id] = {
                "id": status_id,
                "pipeline_id": pipeline_id,
                "name": alias,
                "title": alias,
                "alias": alias.lower().replace(" ", "_"),
                "is_final": alias in final,
            }
            ids.append(status_id)
        return pipeline_id, ids

    def add_card(
        self,
        status_id: int,
        contact: dict[str, Any],
        title: str | None = None,
        *,
        manager_id: int | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> int:
        card_id = self.new_id()
        self.cards[card_id] = {
            "id": card_id,
            "title": title or f"Lead #{card_id}",
            "status_id": status_id,
            "pipeline_id": self.statuses[status_id]["pipeline_id"],
            "source_id": None,
            "manager_id": manager_id,
            "manager_comment": None,
            "note": None,
            "communicate_at": None,
            "is_finished": False,
            "custom_fields": dict(custom_fields or {}),
            "contact": {"id": self.new_id(), "email": None, **contact},
            "created_at": _now(),
            "updated_at": _now(),
        }
        return card_id

    def add_order(self, buyer_id: int, status_id: int = 1, source_id: int = 1, **extra: Any) -> int:
        order_id = self.new_id()
        self.orders[order_id] = {
            "id": order_id,
            "source_id": source_id,
            "status_id": status_id,
            "client_id": buyer_id,
            "manager_comment": None,
            "buyer_comment": None,
            "grand_total": 0,
            "created_at": _now(),
            "updated_at": _now(),
            **extra,
        }
        return order_id

    def _find_or_add_buyer(self, data: dict[str, Any]) -> int:
        phone = digits(str(data.get("phone") or ""))
        for buyer in self.buyers.values():
            if phone and any(digits(p) == phone for p in buyer["phone"]):
                return int(buyer["id"])
        return self.add_buyer(
            str(data.get("full_name") or ""), str(data.get("phone") or ""), data.get("email")
        )


def _msg(status: int, message: str, errors: dict[str, list[str]] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status)


def _filters(request: Request, allowed: tuple[str, ...]) -> dict[str, str] | JSONResponse:
    found = {
        k[7:-1]: v for k, v in request.query_params.items() if k.startswith("filter[") and k.endswith("]")
    }
    if bad := [name for name in found if name not in allowed]:
        return _msg(
            400,
            f"Requested filter(s) `{', '.join(bad)}` are not allowed. Allowed filter(s) are `{', '.join(allowed)}`.",
        )
    return found


def _page(request: Request, items: list[dict[str, Any]]) -> dict[str, Any] | JSONResponse:
    try:
        limit, page = int(request.query_params.get("limit", 15)), int(request.query_params.get("page", 1))
    except ValueError:
        return _msg(422, "The given data was invalid.", {"limit": ["The limit must be an integer."]})
    if not 1 <= limit <= 50:
        return _msg(422, "The given data was invalid.", {"limit": ["The limit must be between 1 and 50."]})
    start = (page - 1) * limit
    base = str(request.url.remove_query_params(["page"]))
    last = max(1, -(-len(items) // limit))
    sep = "&" if "?" in base else "?"
    return {
        "total": len(items),
        "current_page": page,
        "per_page": limit,
        "data": items[start : start + limit],
        "first_page_url": f"{base}{sep}page=1",
        "last_page_url": f"{base}{sep}page={last}",
        "next_page_url": f"{base}{sep}page={page + 1}" if page < last else None,
    }


def create_keycrm_app(state: KeyCrmState | None = None) -> FastAPI:
    """The simulated KeyCRM API; `app.state.sim` is the `KeyCrmState`."""
    state = state or KeyCrmState()
    app = FastAPI(title="KeyCRM simulator")
    app.state.sim = state

    @app.middleware("http")
    async def bearer_and_rate_limit(request: Request, call_next: Any) -> Any:
        if not bearer_ok(request.headers.get("authorization"), state.api_key):
            return _msg(401, "Unauthenticated.")
        # The limit is per API key, so it applies once the key is known (as KeyCRM's throttle).
        key = state.api_key
        now = time.monotonic()
        remaining, retry_after = state.take_request(key, now)
        # A request let through is logged on arrival (its status filled in once answered), so the
        # log's times are when KeyCRM saw each request.
        hit = KeyCrmHit(
            now, key, request.method, request.url.path, 429 if retry_after else 0, retry_after or None
        )
        state.hits.append(hit)
        if retry_after:
            refused = _msg(429, "Too Many Attempts.")
            refused.headers.update(
                {
                    "Retry-After": str(retry_after),
                    "X-RateLimit-Limit": str(state.rate_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": str(math.ceil(time.time() + retry_after)),
                }
            )
            return refused
        response = await call_next(request)
        hit.status = response.status_code
        if state.rate_limit is not None:
            response.headers["X-RateLimit-Limit"] = str(state.rate_limit)
            response.headers["X-RateLimit-Remaining"] = str(remaining)
        return response

    def includes(request: Request) -> set[str]:
        return {part.strip() for part in request.query_params.get("include", "").split(",") if part.strip()}

    def custom_view(values: dict[str, Any]) -> list[dict[str, Any]]:
        """KeyCRM's include=custom_fields: the filled fields only, with their definitions."""
        shown = []
        for uuid, value in values.items():
            if value in (None, "", []):
                continue
            definition = state.custom_fields.get(uuid, {"id": None, "name": uuid, "type": "text"})
            shown.append(
                {
                    "id": definition["id"],
                    "uuid": uuid,
                    "name": definition["name"],
                    "type": definition["type"],
                    "value": value,
                }
            )
        return shown

    def buyer_view(buyer: dict[str, Any] | None, inc: set[str]) -> dict[str, Any] | None:
        if buyer is None:
            return None
        view = {k: v for k, v in buyer.items() if k != "custom_fields"}
        if "company" in inc:
            view["company"] = state.companies.get(buyer.get("company_id") or 0)
        if "manager" in inc:
            view["manager"] = state.managers.get(buyer.get("manager_id") or 0)
        if "custom_fields" in inc:
            view["custom_fields"] = custom_view(buyer.get("custom_fields") or {})
        return view

    def order_view(order: dict[str, Any], inc: set[str]) -> dict[str, Any]:
        view = dict(order)
        if "buyer" in inc:
            view["buyer"] = buyer_view(state.buyers.get(order["client_id"]), set())
        return view

    def card_view(card: dict[str, Any], inc: set[str]) -> dict[str, Any]:
        view = {k: v for k, v in card.items() if k not in ("contact", "custom_fields")}
        view["contact_id"] = card["contact"]["id"]
        if inc & {"contact", "contact.client"}:
            view["contact"] = dict(card["contact"])
            if "contact.client" in inc:
                client = state.buyers.get(card["contact"].get("client_id") or 0)
                view["contact"]["client"] = buyer_view(client, set())
        if "status" in inc:
            view["status"] = state.statuses.get(card["status_id"])
        if "manager" in inc:
            view["manager"] = state.managers.get(card.get("manager_id") or 0)
        if "custom_fields" in inc:
            view["custom_fields"] = custom_view(card.get("custom_fields") or {})
        return view

    @app.get("/v1/buyer")
    async def list_buyers(request: Request) -> Any:
        filters = _filters(request, BUYER_FILTERS)
        if isinstance(filters, JSONResponse):
            return filters
        items = list(state.buyers.values())
        if phone := filters.get("buyer_phone"):
            items = [b for b in items if any(digits(p) == phone for p in b["phone"])]
        if ids := filters.get("buyer_id"):
            items = [b for b in items if str(b["id"]) in ids.split(",")]
        inc = includes(request)
        return _page(request, [view for b in items if (view := buyer_view(b, inc)) is not None])

    @app.get("/v1/buyer/{buyer_id}")
    async def get_buyer(buyer_id: int, request: Request) -> Any:
        return buyer_view(state.buyers.get(buyer_id), includes(request)) or _msg(
            404, "No query results for model [Client]."
        )

    @app.get("/v1/order")
    async def list_orders(request: Request) -> Any:
        filters = _filters(request, ORDER_FILTERS)
        if isinstance(filters, JSONResponse):
            return filters
        items = list(state.orders.values())
        if phone := filters.get("buyer_phone"):
            owners = {b["id"] for b in state.buyers.values() if any(digits(p) == phone for p in b["phone"])}
            items = [o for o in items if o["client_id"] in owners]
        if status := filters.get("status_id"):
            items = [o for o in items if str(o["status_id"]) in status.split(",")]
        return _page(request, [order_view(o, includes(request)) for o in items])

    @app.get("/v1/order/{order_id}")
    async def get_order(order_id: int, request: Request) -> Any:
        order = state.orders.get(order_id)
        return (
            order_view(order, includes(request))
            if order
            else _msg(404, "No query results for model [Order].")
        )

    @app.put("/v1/order/{order_id}")
    async def update_order(order_id: int, request: Request) -> Any:
        order = state.orders.get(order_id)
        if order is None:
            return _msg(404, "No query results for model [Order].")
        body = await request.json()
        order.update({k: v for k, v in body.items() if k in ORDER_FIELDS or k == "custom_fields"})
        order["updated_at"] = _now()
        return order

    @app.post("/v1/order", status_code=201)
    async def create_order(request: Request) -> Any:
        body = await request.json()
        errors = {k: [f"The {k} field is required."] for k in ("source_id", "buyer") if not body.get(k)}
        if errors:
            return _msg(422, "The given data was invalid.", errors)
        extra = {k: v for k, v in body.items() if k not in ("buyer", "source_id", "status_id")}
        buyer_id = state._find_or_add_buyer(body["buyer"])
        return state.orders[state.add_order(buyer_id, body.get("status_id", 1), body["source_id"], **extra)]

    @app.get("/v1/pipelines")
    async def list_pipelines(request: Request) -> Any:
        return _page(request, list(state.pipelines.values()))

    @app.get("/v1/pipelines/{pipeline_id}/statuses")
    async def list_statuses(pipeline_id: int, request: Request) -> Any:
        if pipeline_id not in state.pipelines:
            return _msg(404, "No query results for model [Pipeline].")
        return _page(request, [s for s in state.statuses.values() if s["pipeline_id"] == pipeline_id])

    @app.get("/v1/pipelines/cards")
    async def list_cards(request: Request) -> Any:
        filters = _filters(request, CARD_FILTERS)
        if isinstance(filters, JSONResponse):
            return filters
        items = list(state.cards.values())
        for name in ("pipeline_id", "status_id", "source_id"):
            if value := filters.get(name):
                items = [c for c in items if str(c[name]) in value.split(",")]
        return _page(request, [card_view(c, includes(request)) for c in items])

    @app.get("/v1/pipelines/cards/{card_id}")
    async def get_card(card_id: int, request: Request) -> Any:
        card = state.cards.get(card_id)
        return card_view(card, includes(request)) if card else _msg(404, "No query results for model [Lead].")

    @app.put("/v1/pipelines/cards/{card_id}")
    async def update_card(card_id: int, request: Request) -> Any:
        card = state.cards.get(card_id)
        if card is None:
            return _msg(404, "No query results for model [Lead].")
        body = await request.json()
        if "status_id" in body and body["status_id"] not in state.statuses:
            return _msg(
                422, "The given data was invalid.", {"status_id": ["The selected status id is invalid."]}
            )
        custom = body.get("custom_fields")
        if custom is not None:
            if not isinstance(custom, list) or not all(isinstance(item, dict) for item in custom):
                return _msg(
                    422,
                    "The given data was invalid.",
                    {"custom_fields": ["The custom fields must be an array."]},
                )
            unknown = [
                str(item.get("uuid"))
                for item in custom
                if (state.custom_fields.get(str(item.get("uuid"))) or {}).get("model") != "lead"
            ]
            if unknown:
                return _msg(
                    422,
                    "The given data was invalid.",
                    {"custom_fields": [f"The custom field {uuid} does not exist." for uuid in unknown]},
                )
            card.setdefault("custom_fields", {}).update(
                {str(item["uuid"]): item.get("value") for item in custom}
            )
        card.update({k: v for k, v in body.items() if k in CARD_FIELDS})
        if "status_id" in body:
            card["pipeline_id"] = state.statuses[body["status_id"]]["pipeline_id"]
        if "client_id" in body:
            card["contact"]["client_id"] = body["client_id"]
        card["updated_at"] = _now()
        return {"status": True}

    @app.post("/v1/pipelines/cards", status_code=201)
    async def create_card(request: Request) -> Any:
        body = await request.json()
        if not isinstance(body.get("contact"), dict):
            return _msg(422, "The given data was invalid.", {"contact": ["The contact field is required."]})
        pipeline_id = body.get("pipeline_id") or next(iter(state.pipelines), None)
        first = [s for s in state.statuses.values() if s["pipeline_id"] == pipeline_id]
        if not first:
            return _msg(
                422, "The given data was invalid.", {"pipeline_id": ["The selected pipeline id is invalid."]}
            )
        card_id = state.add_card(first[0]["id"], body["contact"], body.get("title"))
        state.cards[card_id]["manager_comment"] = body.get("manager_comment")
        return card_view(state.cards[card_id], set())

    app.add_middleware(RecordingMiddleware, state=state)
    return app


DEMO_PHONE = "+380994829573"
# The demo pipeline's ids are fixed, so an integration's default config can name its statuses
# (integrations/keycrm's StatusMap defaults are these).
DEMO_PIPELINE_ID = 1
DEMO_STATUSES = {
    "new": (101, "New"),
    "interested": (102, "Interested"),
    "not_interested": (103, "Not interested"),
    "callback": (104, "Call back"),
    "wrong_number": (105, "Wrong number"),
    "voicemail": (106, "Voicemail"),
    "no_conversation": (107, "No conversation"),
    "do_not_call": (108, "Do not call"),
}
DEMO_FINAL = ("Not interested", "Wrong number", "Do not call")


def seed_demo(state: KeyCrmState) -> dict[str, int]:
    """The demo data: a pipeline "Sales" with a status for each call outcome, a buyer "Іван Петренко"
    (+380994829573) with a company and a manager, and an open card for that buyer in "New".

        ids = seed_demo(states.keycrm)
        ids["card"], ids["buyer"], ids["pipeline"], ids["new"], ids["interested"], ids["callback"], …

    The pipeline and status ids are fixed (`DEMO_PIPELINE_ID`, `DEMO_STATUSES`); the others are
    the state's next free ids. Returns every id by name: the statuses by outcome (plus "new"),
    and "pipeline", "buyer", "card", "company", "manager".
    """
    names = list(DEMO_STATUSES)
    pipeline, status_ids = state.add_pipeline(
        "Sales",
        [title for _, title in DEMO_STATUSES.values()],
        final=DEMO_FINAL,
        pipeline_id=DEMO_PIPELINE_ID,
        status_ids=[status_id for status_id, _ in DEMO_STATUSES.values()],
    )
    manager = state.add_manager("Олена Коваль", email="olena@example.com")
    company = state.add_company("ТОВ Компанія")
    buyer = state.add_buyer("Іван Петренко", DEMO_PHONE, company_id=company, manager_id=manager)
    card = state.add_card(
        status_ids[0],
        {"full_name": "Іван Петренко", "phone": DEMO_PHONE, "client_id": buyer},
        title="Іван Петренко: демо",
        manager_id=manager,
    )
    return {
        **dict(zip(names, status_ids, strict=True)),
        "pipeline": pipeline,
        "buyer": buyer,
        "card": card,
        "company": company,
        "manager": manager,
    }
