"""Limits on the JSON the product accepts, checked before anything is stored or started.

    check_json(payload, "body")        # ValidationFailed naming what is wrong, else nothing

- nesting at most `MAX_JSON_DEPTH` levels: Temporal's payload converter, and PostgreSQL's JSON
  functions, stop far earlier than Python's parser, so a deeper document accepted at the gateway
  would become a run that can never decode its own input;
- no NUL character (PostgreSQL text cannot hold one) and no unpaired surrogate (`"\\ud800"` is
  valid JSON but not text: it cannot be encoded as UTF-8, so no database, log or peer can take it).
"""

from __future__ import annotations

from typing import Any

from happ_integ.errors import ValidationFailed

MAX_JSON_DEPTH = 64


def check_text(text: str, where: str = "a string") -> None:
    if "\x00" in text:
        raise ValidationFailed(f"{where} contains a NUL character")
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationFailed(
                f"{where} contains an unpaired surrogate (not valid Unicode text)"
            ) from None


def check_json(value: Any, where: str = "body", max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse a decoded JSON value nested deeper than `max_depth`, or holding text that is not text."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            check_text(item, f"a string in the {where}")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise ValidationFailed(f"the {where} is nested deeper than {max_depth} levels")
            if isinstance(item, dict):
                for key, child in item.items():
                    check_text(str(key), f"a key in the {where}")
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
