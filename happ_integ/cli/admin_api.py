"""The gateway's admin routes, for the commands that go through the API (calls, call-status, cancel,
secrets set/list, config get/set), with `Authorization: Bearer $HAPP_ADMIN_TOKEN`.

    api = AdminApi(settings, "sofa")           # checks the API is there and serves sofa
    page = api.call("GET", "/calls", params={"limit": 10})

Every failure is a `CliError` naming the fix: the URL and `happ api` / `make dev` when nothing
answers there, HAPP_ADMIN_TOKEN when the token is missing or refused, the integrations the API
serves when it does not serve this one.
"""

from __future__ import annotations

from typing import Any

import httpx

from happ_integ.cli.common import CliError, CliSettings

TIMEOUT_SECONDS = 30.0


class AdminApi:
    def __init__(self, settings: CliSettings, integration: str, api_url: str | None = None) -> None:
        self.base = settings.api_base(api_url)
        self.integration = integration
        if settings.admin_token is None:
            raise CliError(
                "HAPP_ADMIN_TOKEN is not set: export the admin token the API runs with "
                "(`happ dev` prints it and keeps it in .happ/dev-secrets.json)"
            )
        self._token = settings.admin_token.get_secret_value()
        self._http = httpx.Client(base_url=self.base, timeout=TIMEOUT_SECONDS, follow_redirects=False)
        try:
            served = self._served()
        except CliError:
            self._http.close()
            raise
        if integration not in served:
            self._http.close()
            raise CliError(
                f"the API at {self.base} serves no integration {integration!r}: "
                f"it serves {', '.join(served) or 'none'}"
            )

    def _unreachable(self, exc: Exception) -> CliError:
        return CliError(
            f"cannot reach the API at {self.base} ({type(exc).__name__}): start it with `happ api` "
            "or `make dev`, or point HAPP_API_URL (--api-url) at it"
        )

    def _served(self) -> list[str]:
        try:
            response = self._http.get("/")
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        try:
            integrations = response.json()["integrations"]
            return sorted(integrations)
        except (ValueError, KeyError, TypeError):
            raise CliError(
                f"{self.base} answered {response.status_code} but is not the happ API: "
                "point HAPP_API_URL (--api-url) at the gateway (`happ api`)"
            ) from None

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        missing_route: str | None = None,
        not_found_hint: str = "",
    ) -> Any:
        """The JSON answer of `METHOD /{integration}{path}`; a refusal raises a CliError."""
        url = f"/{self.integration}{path}"
        try:
            response = self._http.request(
                method,
                url,
                json=json,
                params={k: v for k, v in (params or {}).items() if v is not None},
                headers={"Authorization": f"Bearer {self._token}"},
            )
        except httpx.TransportError as exc:
            raise self._unreachable(exc) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.is_success and body is not None:
            return body
        message = body.get("error") if isinstance(body, dict) else None
        message = str(message or response.reason_phrase or f"HTTP {response.status_code}")
        if response.status_code == 401:
            if "HAPP_ADMIN_TOKEN is not set" in message:
                raise CliError(
                    f"the API at {self.base} has its admin routes off: restart it with HAPP_ADMIN_TOKEN set"
                )
            raise CliError(
                f"the API at {self.base} refused the admin token ({message}): set HAPP_ADMIN_TOKEN to "
                "the admin token the API runs with"
            )
        if response.status_code == 404 and message.startswith("no route "):
            raise CliError(missing_route or f"the API at {self.base} has no route {method} {url}")
        if response.status_code == 404 and not_found_hint:
            raise CliError(f"{message}: {not_found_hint}")
        if response.status_code == 503:
            dependency = body.get("dependency") if isinstance(body, dict) else None
            raise CliError(
                f"the API at {self.base} answered 503 ({message})"
                + (f": {dependency} is down, start it and try again" if dependency else ": try again")
            )
        raise CliError(f"the API refused {method} {url} ({response.status_code}): {message}")

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> AdminApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
