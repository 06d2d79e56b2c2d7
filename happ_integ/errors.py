"""Errors of happ-integ. Catch at any level of the tree:

    HappError
    ├── HandlerDefinitionError        a define_handler/Integration mistake, raised at import time
    ├── HandlerFailed                 handler code raised something else; the message names it (HTTP 500)
    ├── RetryableError                transient: Temporal retries the activity, a sender retries the webhook
    │   ├── HandlerTimedOut           an inline handler ran past its timeout_seconds (HTTP 504)
    │   ├── DependencyUnavailable     PostgreSQL or Temporal unreachable (HTTP 503, names which)
    │   └── UpstreamError             an outside API timed out or answered 5xx/429 (HTTP 502)
    └── NonRetryableError             retrying cannot help
        ├── ValidationFailed          bad input: a field, a filter, an identifier (HTTP 422)
        ├── NotFound                  (HTTP 404)
        ├── Conflict                  (HTTP 409)
        ├── Unauthorized              (HTTP 401)
        ├── Forbidden                 (HTTP 403)
        ├── SecretMissing             a secret the handler needs is not set (HTTP 503 for the caller)
        └── UpstreamRejected          an outside API answered 4xx (HTTP 502)

They are mapped only at the edges: `ApplicationError(non_retryable=...)` in activities,
an HTTP status in the gateway.
"""

from __future__ import annotations

from typing import Any, ClassVar


class HappError(Exception):
    status_code: ClassVar[int] = 500
    retryable: ClassVar[bool] = False

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class HandlerDefinitionError(HappError, ValueError):
    """A handler or integration is declared wrongly; the message names the fix."""


class HandlerFailed(HappError):
    """Handler code raised an exception that is not a HappError: `"RuntimeError: kaboom"`."""

    status_code = 500


class RetryableError(HappError):
    retryable = True
    status_code = 503


class HandlerTimedOut(RetryableError):
    status_code = 504


class DependencyUnavailable(RetryableError):
    status_code = 503

    def __init__(self, dependency: str, message: str | None = None) -> None:
        super().__init__(message or f"{dependency} is unavailable", dependency=dependency)
        self.dependency = dependency


class UpstreamError(RetryableError):
    status_code = 502


class NonRetryableError(HappError):
    status_code = 400


class ValidationFailed(NonRetryableError):
    status_code = 422


class NotFound(NonRetryableError):
    status_code = 404


class Conflict(NonRetryableError):
    status_code = 409


class WorkflowFinished(Conflict):
    """The run a signal or update was for has already finished (a late or repeated webhook)."""


class Unauthorized(NonRetryableError):
    status_code = 401


class Forbidden(NonRetryableError):
    status_code = 403


class SecretMissing(NonRetryableError):
    status_code = 503


class UpstreamRejected(NonRetryableError):
    status_code = 502
