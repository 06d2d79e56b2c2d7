"""A NetHunt integration API on loopback: same paths under `/api/v1/zapier`, Basic auth, JSON.

    state = NetHuntState(email="me@example.com", api_key="k")
    folder = state.add_folder("Leads")
    rid = state.add_record(folder, {"Name": "Іван", "Phone": ["+380994829573"], "Status": "New"})
    app = create_nethunt_app(state)      # HAPP_NETHUNT_API_URL=http://127.0.0.1:PORT/api/v1/zapier
    state.records[rid].fields["Status"]  # after the code under test updated it
    state.comments                       # [{"recordId": rid, "text": "…", …}]

Search understands `"Field Name":value`, `Field:value`, `Field:(a OR b)` and plain words (all
terms must match; phone-like values compare by digits). Update applies `fieldActions` with the
`overwrite` query flag as each action's default: overwrite replaces; otherwise `add` extends a
list field, fills an empty field and leaves a filled single-value field alone; `remove` removes.
"""

from __future__ import annotations

import base64
import hmac
import itertools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState, digits

BASE = "/api/v1/zapier"
_TERM = re.compile(r'(?:(?P<field>"[^"]+"|[^\s:"()]+)\s*:\s*)?(?P<value>\([^)]*\)|"[^"]*"|[^\s()]+)')


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class SimRecord:
    id: str
    folder_id: str
    fields: dict[str, Any]
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)

    def view(self) -> dict[str, Any]:
        return {
            "recordId": self.id,
            "createdAt": self.created_at,
            "updatedAt": self.updated_at,
            "recordUrl": f"https://nethunt.com/service#{self.folder_id}/{self.id}",
            "fields": dict(self.fields),
        }


@dataclass
class NetHuntState(SimState):
    """Folders, records and comments in memory, plus the credentials the simulator accepts."""

    email: str = "sim@example.com"
    api_key: str = "sim-nethunt-key"
    folders: dict[str, str] = field(default_factory=dict)
    records: dict[str, SimRecord] = field(default_factory=dict)
    comments: list[dict[str, Any]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def _new_id(self, kind: str) -> str:
        return f"{next(self._ids):024x}" if kind == "record" else f"f{next(self._ids):023x}"

    def add_folder(self, name: str, folder_id: str | None = None) -> str:
        folder_id = folder_id or self._new_id("folder")
        self.folders[folder_id] = name
        return folder_id

    def add_record(self, folder_id: str, fields: dict[str, Any], record_id: str | None = None) -> str:
        record = SimRecord(record_id or self._new_id("record"), folder_id, dict(fields))
        self.records[record.id] = record
        return record.id

    def search(self, folder_id: str, query: str) -> list[SimRecord]:
        terms = [(m["field"], m["value"]) for m in _TERM.finditer(query) if m["value"].upper() != "AND"]
        return [
            r
            for r in self.records.values()
            if r.folder_id == folder_id and all(_matches(r, f, v) for f, v in terms)
        ]


def _strings(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items if item is not None and item != ""]


def _value_matches(wanted: str, actual: str) -> bool:
    if wanted.lower() in actual.lower():
        return True
    w, a = digits(wanted), digits(actual)
    short, long = sorted((w, a), key=len)
    return len(short) >= 7 and len(w) >= 0.7 * len(wanted.strip("+ ")) and long.endswith(short)


def _matches(record: SimRecord, field_name: str | None, raw: str) -> bool:
    if raw.startswith("("):
        wanted = [alt.strip().strip('"') for alt in re.split(r"\s+OR\s+", raw[1:-1]) if alt.strip()]
    else:
        wanted = [raw.strip('"')]
    if field_name is None:
        values = [s for v in record.fields.values() for s in _strings(v)]
    else:
        name = field_name.strip('"').lower()
        values = [s for k, v in record.fields.items() if k.lower() == name for s in _strings(v)]
    return any(_value_matches(w, v) for w in wanted for v in values)


def _apply(fields: dict[str, Any], name: str, action: dict[str, Any], default_overwrite: bool) -> None:
    overwrite = bool(action.get("overwrite", default_overwrite))
    current = fields.get(name)
    if "add" in action:
        add = action["add"]
        if overwrite or current in (None, "", []):
            fields[name] = add
        elif isinstance(current, list):
            fields[name] = current + (add if isinstance(add, list) else [add])
    if "remove" in action:
        remove = action["remove"] if isinstance(action["remove"], list) else [action["remove"]]
        current = fields.get(name)
        if isinstance(current, list):
            fields[name] = [item for item in current if item not in remove]
        elif current in remove:
            fields[name] = None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _authorized(state: NetHuntState, header: str | None) -> bool:
    if not header or not header.startswith("Basic "):
        return False
    try:
        email, _, key = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    ok_email = hmac.compare_digest(email.encode(), state.email.encode())
    return ok_email & hmac.compare_digest(key.encode(), state.api_key.encode())


def create_nethunt_app(state: NetHuntState | None = None) -> FastAPI:
    """The simulated NetHunt API; `app.state.sim` is the `NetHuntState`."""
    state = state or NetHuntState()
    app = FastAPI(title="NetHunt simulator")
    app.state.sim = state

    @app.middleware("http")
    async def basic_auth(request: Request, call_next: Any) -> Any:
        if not _authorized(state, request.headers.get("authorization")):
            return _error(401, "Invalid credentials")
        return await call_next(request)

    def folder_or_404(folder_id: str) -> JSONResponse | None:
        return None if folder_id in state.folders else _error(404, f"Folder {folder_id} not found")

    @app.get(f"{BASE}/triggers/auth-test")
    async def auth_test() -> list[dict[str, Any]]:
        return [{"user": {"emailAddress": state.email, "personalName": "Simulated User"}}]

    @app.get(f"{BASE}/triggers/readable-folder")
    @app.get(f"{BASE}/triggers/writable-folder")
    async def folders() -> list[dict[str, str]]:
        return [{"id": fid, "name": name} for fid, name in state.folders.items()]

    @app.get(f"{BASE}/searches/find-record/{{folder_id}}")
    async def find_record(folder_id: str, request: Request) -> Any:
        if missing := folder_or_404(folder_id):
            return missing
        params = request.query_params
        limit = int(params.get("limit") or 1)
        if record_id := params.get("recordId"):
            record = state.records.get(record_id)
            found = [record] if record and record.folder_id == folder_id else []
        elif query := params.get("query"):
            found = state.search(folder_id, query)
        else:
            return _error(400, "Either recordId or query is required")
        return [r.view() for r in found[:limit]]

    @app.post(f"{BASE}/actions/create-record/{{folder_id}}")
    async def create_record(folder_id: str, request: Request) -> Any:
        if missing := folder_or_404(folder_id):
            return missing
        body = await request.json()
        if not isinstance(body, dict) or not isinstance(body.get("fields"), dict):
            return _error(400, "fields must be an object")
        return state.records[state.add_record(folder_id, body["fields"])].view()

    @app.post(f"{BASE}/actions/update-record/{{record_id}}")
    async def update_record(record_id: str, request: Request) -> Any:
        record = state.records.get(record_id)
        if record is None:
            return _error(404, f"Record {record_id} not found")
        body = await request.json()
        actions = body.get("fieldActions") if isinstance(body, dict) else None
        if not isinstance(actions, dict):
            return _error(400, "fieldActions must be an object")
        default_overwrite = request.query_params.get("overwrite", "false").lower() == "true"
        for name, action in actions.items():
            _apply(
                record.fields,
                name,
                action if isinstance(action, dict) else {"add": action},
                default_overwrite,
            )
        record.updated_at = _now()
        return record.view()

    @app.post(f"{BASE}/actions/create-comment/{{record_id}}")
    async def create_comment(record_id: str, request: Request) -> Any:
        if record_id not in state.records:
            return _error(404, f"Record {record_id} not found")
        body = await request.json()
        if not isinstance(body, dict) or not str(body.get("text") or "").strip():
            return _error(400, "text is required")
        comment = {"commentId": f"c{len(state.comments) + 1}", "recordId": record_id, "text": body["text"]}
        state.comments.append({**comment, "createdAt": _now()})
        return state.comments[-1]

    app.add_middleware(RecordingMiddleware, state=state)
    return app
