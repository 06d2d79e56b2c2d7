"""What the gateway answers besides success, as OpenAPI sees it: one error body, one 422 body.

    router.add_api_route(..., responses=error_responses(401, 422, 503))

Every error the gateway sends (`api.errors`) has the `ErrorBody` shape; a refused input has the
`ValidationErrorBody` shape, with one entry per field.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    success: Literal[False] = False
    error: str = Field(description="What went wrong, in a sentence")
    dependency: str | None = Field(default=None, description="PostgreSQL or Temporal, when one is down")
    workflow_id: str | None = Field(default=None, description="The durable run this error belongs to")
    trace_id: str | None = Field(default=None, description="Find the request's log lines by this id")


class FieldError(BaseModel):
    field: str = Field(description="Dotted path of the offending field, e.g. `items.0.qty`")
    loc: list[str | int]
    message: str
    type: str


class ValidationErrorBody(ErrorBody):
    detail: list[FieldError] = Field(default_factory=list)


class Accepted(BaseModel):
    """A durable run that is still going when the request stops waiting for it."""

    success: Literal[True] = True
    accepted: Literal[True] = True
    workflow_id: str


_RETRY_AFTER = {
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}
}
_DESCRIPTIONS = {
    400: "The request could not be read",
    401: "Missing or wrong credentials",
    403: "Not allowed",
    404: "No such thing",
    405: "Method not allowed (see the Allow header)",
    409: "Conflicts with the current state (e.g. the first delivery with this key is still running)",
    413: "The body is larger than HAPP_MAX_BODY_BYTES",
    422: "Invalid input: the field path and message for each problem",
    429: "Rate limit reached",
    500: "The handler failed; the error names the cause",
    502: "An outside service (CRM, voice assistant) failed or refused the request",
    503: "PostgreSQL or Temporal is unavailable, or a secret this needs is not set",
    504: "The handler did not finish in time",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for these error statuses, with their real body and headers."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        entry: dict[str, Any] = {
            "description": _DESCRIPTIONS[code],
            "model": ValidationErrorBody if code == 422 else ErrorBody,
        }
        if code in (429, 503):
            entry["headers"] = _RETRY_AFTER
        responses[code] = entry
    return responses
