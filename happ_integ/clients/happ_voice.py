"""The Voice Assistant SaaS ("HappVoice") that dials over SIP and hosts the ElevenLabs agent.

    async with httpx.AsyncClient() as http:
        voice = HappVoiceApi(http, settings.saas_api_url, token)
        result = await voice.originate("sip-1", "+380994829573", assistant_id=17, call_id="c-42",
                                       dynamic_variables={"client_name": "Іван"})
        result.provider_call_id        # the SaaS's own id of the call

The request is the one the original system sent — `POST {base}/{sip_id}/originate/` with
`Authorization: Bearer <token>` and `{"phone_number": …, "assistant_id": …}` — plus, when given,
our `call_id` as a top-level field and in `dynamic_variables` and `metadata`, so that call events
and the agent's webhooks can name the call this framework knows it by. The top-level field is the
one that exists only to name our call (the SaaS prefers it); the copies in the other two keep
working with a SaaS that reads only those.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, Field

from happ_integ.clients._http import DEFAULT_TIMEOUT, JsonApi, Timeout

_CALL_ID_KEYS = ("callId", "call_id", "id", "uuid", "session_id", "sessionId")


class VoiceOriginateAnswer(BaseModel):
    """What the voice assistant answered to originate: `provider_call_id` (None if the SaaS sent
    none) and the `raw` body. (`api.call_models.OriginateResult` is our own call-originate
    webhook's answer to its caller.)"""

    provider_call_id: str | None = None
    raw: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any) -> VoiceOriginateAnswer:
        raw: dict[str, Any] = body if isinstance(body, dict) else {"result": body}
        nested = raw.get("data")
        for source in (raw, nested if isinstance(nested, dict) else {}):
            for key in _CALL_ID_KEYS:
                value = source.get(key)
                if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
                    return cls(provider_call_id=str(value), raw=raw)
        return cls(raw=raw)


class HappVoiceApi:
    """Thin client of the SaaS API; 401 → `Unauthorized`, 5xx/timeouts → `UpstreamError`, 4xx → `UpstreamRejected`.

    voice = HappVoiceApi(http, "https://va.example.com/api", "token", timeout=20)
    """

    service = "HappVoice"

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, token: str, *, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> None:
        self._api = JsonApi(
            http,
            base_url,
            service=self.service,
            headers={"Authorization": f"Bearer {token}"},
            secrets=[token],
            timeout=timeout,
        )

    async def originate(
        self,
        sip_id: str,
        phone_number: str,
        assistant_id: str | int | None,
        dynamic_variables: dict[str, Any] | None = None,
        *,
        call_id: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> VoiceOriginateAnswer:
        """Start an outbound call. `assistant_id=None` leaves the field out (the SIP line's default);
        `call_id` is sent top-level and added to `dynamic_variables` and `metadata` (unless they name one)."""
        body: dict[str, Any] = {"phone_number": phone_number}
        if assistant_id is not None:
            body["assistant_id"] = assistant_id
        variables = dict(dynamic_variables or {})
        meta = dict(metadata or {})
        if call_id is not None:
            body["call_id"] = call_id
            variables.setdefault("call_id", call_id)
            meta.setdefault("call_id", call_id)
        if variables:
            body["dynamic_variables"] = variables
        if meta:
            body["metadata"] = meta
        data = await self._api.request("POST", f"/{sip_id}/originate/", json=body)
        return VoiceOriginateAnswer.from_body(data)
