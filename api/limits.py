"""Request body limit as plain ASGI middleware: 413 before a large body is read into memory.

    app.add_middleware(BodySizeLimit, max_bytes=1 << 20, larger=((CAMPAIGN_UPLOADS, 16 << 20),))

`larger` gives paths matching a pattern a limit of their own (a campaign's recipients).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


# A campaign created or appended to: `POST /{integration}/campaigns`, `…/campaigns/{id}/recipients`.
CAMPAIGN_UPLOADS = re.compile(r"/[^/]+/campaigns(/[^/]+/recipients|/preflight)?")
# A do-not-call list imported as CSV: `POST /suppressions/import`.
SUPPRESSION_IMPORTS = re.compile(r"/suppressions/import")


class BodySizeLimit:
    def __init__(
        self, app: ASGIApp, max_bytes: int, larger: Sequence[tuple[re.Pattern[str], int]] = ()
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = tuple(larger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = next(
            (n for pattern, n in self.larger if pattern.fullmatch(scope.get("path", ""))), self.max_bytes
        )
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._reject(send, limit)
            return
        seen = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Once the limit is hit, whatever the app answers (FastAPI turns the error into a 400)
            # is dropped: the caller gets the 413 below.
            if not exceeded:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except BodyTooLarge:
            pass
        if exceeded:
            await self._reject(send, limit)

    async def _reject(self, send: Send, limit: int) -> None:
        body = json.dumps({"success": False, "error": f"request body is larger than {limit} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
