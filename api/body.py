"""How the gateway reads a JSON body: `json.loads`, then the limits of `happ_integ.json_limits`.

    router = APIRouter(route_class=GuardedRoute)

Every FastAPI route built on `GuardedRoute` parses its body here, so a document nested too
deeply, text with a NUL or an unpaired surrogate, or bytes that are not UTF-8 are a 422 naming
the problem, before any handler, store or workflow sees them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from happ_integ.errors import ValidationFailed
from happ_integ.json_limits import MAX_JSON_DEPTH, check_json


def parse_json(body: bytes) -> Any:
    """The decoded body, or `json.JSONDecodeError` (FastAPI's 422) saying what is wrong with it."""
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise json.JSONDecodeError(exc.msg, "", exc.pos) from None
    except UnicodeDecodeError as exc:
        raise json.JSONDecodeError("the body is not UTF-8", "", exc.start) from None
    except RecursionError:
        raise json.JSONDecodeError(f"the body is nested deeper than {MAX_JSON_DEPTH} levels", "", 0) from None
    try:
        check_json(value)
    except ValidationFailed as exc:
        raise json.JSONDecodeError(exc.message, "", 0) from None
    return value


class GuardedRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class GuardedRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            return await handle(GuardedRequest(request.scope, request.receive))

        return guarded
