"""A KeyCRM OpenAPI on loopback: paths under `/v1`, `Authorization: Bearer <key>`, Laravel-style
pages and errors (`{"message": "Unauthenticated."}`, 422 `{"message", "errors"}`).

    state = KeyCrmState(api_key="k")
    pipeline, (new, called, won) = state.add_pipeline("Sales", ["New", "Called", "Won"])
    buyer = state.add_buyer("Іван", "+380994829573")
    card = state.add_card(new, {"full_name": "Іван", "phone": "+380994829573", "client_id": buyer})
    app = create_keycrm_app(state)            # HAPP_KEYCRM_API_URL=http://127.0.0.1:PORT/v1
    state.cards[card]["status_id"] == called  # after the code under test moved it

Like the real API, `filter[buyer_phone]` matches the stored phone's digits exactly, `limit` above
50 is a 422, and cards accept only the filters KeyCRM allows (anything else is a 400).
"""

from __future__ import annotations

import itertools
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
CARD_FIELDS = ("title", "note", "status_id", "source_id", "client_id", "communicate_at", "custom_fields")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class KeyCrmState(SimState):
    """Buyers, orders, pipelines (with statuses) and cards in memory, keyed by integer id."""

    api_key: str = "sim-keycrm-key"
    buyers: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: dict[int, dict[str, Any]] = field(default_factory=dict)
    pipelines: dict[int, dict[str, Any]] = field(default_factory=dict)
    statuses: dict[int, dict[str, Any]] = field(default_factory=dict)
    cards: dict[int, dict[str, Any]] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def add_buyer(self, full_name: str, phone: str | list[str], email: str | list[str] | None = None) -> int:
        buyer_id = next(self._ids)
        self.buyers[buyer_id] = {
            "id": buyer_id,
            "full_name": full_name,
            "phone": [phone] if isinstance(phone, str) else list(phone),
            "email": [email] if isinstance(email, str) else list(email or []),
            "note": None,
            "created_at": _now(),
            "updated_at": _now(),
        }
        return buyer_id

    def add_pipeline(self, title: str, statuses: list[str]) -> tuple[int, list[int]]:
        pipeline_id = next(self._ids)
        self.pipelines[pipeline_id] = {"id": pipeline_id, "title": title}
        ids = []
        for alias in statuses:
            status_id = next(self._ids)
            self.statuses[status_id] = {"id": status_id, "pipeline_id": pipeline_id, "name": alias}
            ids.append(status_id)
        return pipeline_id, ids

    def add_card(self, status_id: int, contact: dict[str, Any], title: str | None = None) -> int:
        card_id = next(self._ids)
        self.cards[card_id] = {
            "id": card_id,
            "title": title or f"Lead #{card_id}",
            "status_id": status_id,
            "pipeline_id": self.statuses[status_id]["pipeline_id"],
            "source_id": None,
            "manager_comment": None,
            "note": None,
            "communicate_at": None,
            "contact": {"id": next(self._ids), "email": None, **contact},
            "created_at": _now(),
            "updated_at": _now(),
        }
        return card_id

    def add_order(self, buyer_id: int, status_id: int = 1, source_id: int = 1, **extra: Any) -> int:
        order_id = next(self._ids)
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
    async def bearer(request: Request, call_next: Any) -> Any:
        if not bearer_ok(request.headers.get("authorization"), state.api_key):
            return _msg(401, "Unauthenticated.")
        return await call_next(request)

    def includes(request: Request) -> set[str]:
        return {part.strip() for part in request.query_params.get("include", "").split(",") if part.strip()}

    def order_view(order: dict[str, Any], inc: set[str]) -> dict[str, Any]:
        view = dict(order)
        if "buyer" in inc:
            view["buyer"] = state.buyers.get(order["client_id"])
        return view

    def card_view(card: dict[str, Any], inc: set[str]) -> dict[str, Any]:
        view = {k: v for k, v in card.items() if k != "contact"}
        view["contact_id"] = card["contact"]["id"]
        if inc & {"contact", "contact.client"}:
            view["contact"] = dict(card["contact"])
            if "contact.client" in inc:
                view["contact"]["client"] = state.buyers.get(card["contact"].get("client_id") or 0)
        if "status" in inc:
            view["status"] = state.statuses.get(card["status_id"])
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
        return _page(request, items)

    @app.get("/v1/buyer/{buyer_id}")
    async def get_buyer(buyer_id: int) -> Any:
        return state.buyers.get(buyer_id) or _msg(404, "No query results for model [Client].")

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
