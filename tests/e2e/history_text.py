"""A history as searchable text: every payload decoded, since `to_json()` keeps them base64, and
decrypted with the test stacks' payload key, since `fetch_history()` returns them as stored.

    history_text(await handle.fetch_history())          # what an operator's decoded view shows
    history_text(history, decrypt=False)                # what the server keeps at rest

A payload that is encrypted under another key fails loudly: a search for a secret in text that
could not be read would pass for the wrong reason.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowHistory

from happ_integ.codec import ENCODING
from happ_integ.keys import KeyRing, generate_key

# The payload key of the test stacks that encrypt (tests/e2e/call_stack.py, the CLI's stack).
PAYLOAD_KEY = generate_key()
_KEYS = KeyRing.parse(PAYLOAD_KEY, "HAPP_PAYLOAD_KEY")


def _decrypted(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload a client with the key sees, in the same JSON shape."""
    from google.protobuf import json_format

    raw = _KEYS.fernet.decrypt(base64.b64decode(payload["data"]))  # InvalidToken: another key
    return json.loads(json_format.MessageToJson(Payload.FromString(raw)))


def _is_encrypted(node: dict[str, Any]) -> bool:
    encoding = (node.get("metadata") or {}).get("encoding")
    return isinstance(encoding, str) and base64.b64decode(encoding) == ENCODING and "data" in node


def history_text(history: WorkflowHistory, *, decrypt: bool = True) -> str:
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if decrypt and _is_encrypted(node):
                node = _decrypted(node)
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    try:
                        parts.append(base64.b64decode(value, validate=True).decode("utf-8", "replace"))
                    except (binascii.Error, ValueError):
                        parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, str):
            parts.append(node)

    walk(json.loads(history.to_json()))
    return "\n".join(parts)
