"""ElevenLabs Conversational AI: have the agent dial a number, read back a conversation it held.

    async with httpx.AsyncClient() as http:
        elevenlabs = ElevenLabsApi(http, settings.elevenlabs_api_url, api_key)
        started = await elevenlabs.outbound_call("sip", agent_id="agent_…", agent_phone_number_id="phnum_…",
                                                 to_number="+380994829573", dynamic_variables={"call_id": "c-42"})
        started.conversation_id, started.call_sid
        conversation = await elevenlabs.get_conversation("conv_01jx…")
        if conversation.done:
            conversation.transcript_summary, conversation.duration_seconds
            conversation.data_collection_results["callback_time"]["value"]

    # the post_call_transcription webhook's `data` is the same object, so one model reads both:
    conversation = Conversation.from_webhook_data(payload["data"])

Facts this follows (https://elevenlabs.io/docs/api-reference/conversations/get): base
`https://api.elevenlabs.io`; the key goes in the `xi-api-key` header; `GET
/v1/convai/conversations/{conversation_id}` answers `{"conversation_id", "agent_id", "status",
"transcript": [{"role", "message", "time_in_call_secs"}], "metadata": {"call_duration_secs", …},
"analysis": {"call_successful", "transcript_summary", "data_collection_results"} | null,
"conversation_initiation_client_data": {"dynamic_variables": {…}}}` with `status` one of
"initiated", "in-progress", "processing", "done", "failed". An unknown id is 404 (`NotFound`),
a wrong key 401 (`Unauthorized`); the mapping is `happ_integ.clients._http`'s.

Outbound calls (https://elevenlabs.io/docs/api-reference/sip-trunk/outbound-call and
…/twilio/outbound-call): `POST /v1/convai/sip-trunk/outbound-call` or `POST
/v1/convai/twilio/outbound-call` with `{"agent_id", "agent_phone_number_id", "to_number",
"conversation_initiation_client_data": {"dynamic_variables": {…}}}` answer `{"success",
"message", "conversation_id", "sipCallId" | "callSid"}`. A call ElevenLabs could not start is a
2xx with `"success": false` and its reason in `message` (`UpstreamRejected` here); missing fields
are a 422. The dynamic variables come back in the post-call webhook, so `call_id` names our call.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from happ_integ.clients._http import DEFAULT_TIMEOUT, JsonApi, Timeout, redact
from happ_integ.errors import UpstreamError, UpstreamRejected, ValidationFailed

STATUSES = ("initiated", "in-progress", "processing", "done", "failed")
OUTBOUND_PATHS = {"sip": "/v1/convai/sip-trunk/outbound-call", "twilio": "/v1/convai/twilio/outbound-call"}
# Twilio's answer names the call `callSid`; the SIP trunk's has been seen as both spellings.
_CALL_SID_KEYS = {"sip": ("sipCallId", "sip_call_id"), "twilio": ("callSid", "call_sid")}


class OutboundCallResult(BaseModel):
    """What an outbound-call request answered: `conversation_id` (what the webhooks and
    `get_conversation` name) and `call_sid` (the SIP call id or Twilio's CallSid), both None when
    ElevenLabs sent none."""

    success: bool
    message: str | None = None
    conversation_id: str | None = None
    call_sid: str | None = None

    @classmethod
    def from_body(cls, body: Any, via: Literal["sip", "twilio"]) -> OutboundCallResult:
        raw: dict[str, Any] = body if isinstance(body, dict) else {}
        sid = next((raw[k] for k in _CALL_SID_KEYS[via] if _id(raw.get(k))), None)
        message = raw.get("message")
        return cls(
            success=raw.get("success") is True,
            message=message if isinstance(message, str) else None,
            conversation_id=str(raw["conversation_id"]) if _id(raw.get("conversation_id")) else None,
            call_sid=str(sid) if sid is not None else None,
        )


def _id(value: Any) -> bool:
    return isinstance(value, str | int) and not isinstance(value, bool) and str(value) != ""


class Conversation(BaseModel):
    """One conversation: `conv.done`, `conv.duration_seconds`, `conv.dynamic_variables`,
    `conv.call_successful` ("success" / "failure" / "unknown"), `conv.transcript_summary`,
    `conv.data_collection_results`. Keys this model does not name (`has_audio`, …) are kept."""

    model_config = ConfigDict(extra="allow")

    conversation_id: str
    agent_id: str | None = None
    status: str
    transcript: list[dict[str, Any]] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    analysis: dict[str, Any] | None = None
    conversation_initiation_client_data: dict[str, Any] | None = None

    # A live conversation may carry `null` here; empty is what it means, and it keeps callers simple.
    @field_validator("transcript", mode="before")
    @classmethod
    def _null_transcript(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("metadata", mode="before")
    @classmethod
    def _null_metadata(cls, value: Any) -> Any:
        return {} if value is None else value

    @classmethod
    def from_webhook_data(cls, data: dict[str, Any]) -> Conversation:
        """The `data` object of a `post_call_transcription` webhook; `ValidationFailed` names the bad
        fields (never their values, which are a caller's words and phone numbers)."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ValidationFailed(
                f"ElevenLabs webhook data is not a conversation: {_fields(exc)}", fields=_fields(exc)
            ) from None

    @property
    def done(self) -> bool:
        """True once ElevenLabs finished the analysis (`status == "done"`)."""
        return self.status == "done"

    @property
    def duration_seconds(self) -> float:
        """`metadata.call_duration_secs` as a float; 0 while the call has none (live or never answered)."""
        value = self.metadata.get("call_duration_secs")
        if isinstance(value, bool):
            return 0.0
        try:
            return float(value) if value is not None else 0.0
        except (TypeError, ValueError):
            return 0.0

    @property
    def dynamic_variables(self) -> dict[str, Any]:
        """The variables the call ran with (`conversation_initiation_client_data.dynamic_variables`)."""
        value = (self.conversation_initiation_client_data or {}).get("dynamic_variables")
        return value if isinstance(value, dict) else {}

    @property
    def call_successful(self) -> str | None:
        """The analysis verdict ("success", "failure", "unknown"), None before the analysis exists."""
        value = (self.analysis or {}).get("call_successful")
        return value if isinstance(value, str) and value else None

    @property
    def transcript_summary(self) -> str | None:
        value = (self.analysis or {}).get("transcript_summary")
        return value if isinstance(value, str) and value else None

    @property
    def data_collection_results(self) -> dict[str, Any]:
        """`{id: {"data_collection_id", "value", "rationale", …}}` from the analysis, or {}."""
        value = (self.analysis or {}).get("data_collection_results")
        return value if isinstance(value, dict) else {}


class ElevenLabsApi:
    """Thin typed client; 404 → `NotFound`, 401 → `Unauthorized`, 5xx/429/timeouts → `UpstreamError`.

    elevenlabs = ElevenLabsApi(http, "https://api.elevenlabs.io", "xi-key", timeout=10)
    """

    service = "ElevenLabs"

    def __init__(
        self, http: httpx.AsyncClient, base_url: str, api_key: str, *, timeout: Timeout = DEFAULT_TIMEOUT
    ) -> None:
        self._secrets = [api_key]
        self._api = JsonApi(
            http,
            base_url,
            service=self.service,
            headers={"xi-api-key": api_key},
            secrets=[api_key],
            timeout=timeout,
        )

    async def get_conversation(self, conversation_id: str) -> Conversation:
        """`GET /v1/convai/conversations/{conversation_id}`; an unknown id raises `NotFound`."""
        if not conversation_id.strip():
            # An empty id would reach the list endpoint `/v1/convai/conversations/` and read as garbage.
            raise ValidationFailed("conversation_id is required", service=self.service)
        # Quoted: the id often comes from a webhook, and a "/" or "?" in it must not change the path.
        path = f"/v1/convai/conversations/{quote(conversation_id, safe='')}"
        data = await self._api.request("GET", path)
        try:
            return Conversation.model_validate(data)
        except ValidationError as exc:
            # The peer answered 2xx with something else: likely a proxy or an API change; retry may help.
            raise UpstreamError(
                f"ElevenLabs answered GET {path} with a body that is not a conversation: {_fields(exc)}",
                service=self.service,
            ) from None

    async def outbound_call(
        self,
        via: Literal["sip", "twilio"],
        *,
        agent_id: str,
        agent_phone_number_id: str,
        to_number: str,
        dynamic_variables: dict[str, Any],
    ) -> OutboundCallResult:
        """Have agent `agent_id` dial `to_number` from phone number `agent_phone_number_id`, over a
        SIP trunk (`via="sip"`) or Twilio. `dynamic_variables` fill the agent's prompt and come back
        in the post-call webhook. A call ElevenLabs refused to start raises `UpstreamRejected`."""
        path = OUTBOUND_PATHS.get(via)
        if path is None:
            raise ValidationFailed(f"via must be 'sip' or 'twilio', not {via!r}", service=self.service)
        body = {
            "agent_id": agent_id,
            "agent_phone_number_id": agent_phone_number_id,
            "to_number": to_number,
            "conversation_initiation_client_data": {"dynamic_variables": dynamic_variables},
        }
        result = OutboundCallResult.from_body(await self._api.request("POST", path, json=body), via)
        if not result.success:
            # Their message may quote the number dialled or echo a header: both are masked.
            text = redact(result.message or "", self._secrets)[:300]
            raise UpstreamRejected(
                f"ElevenLabs did not start the call (POST {path})" + (f": {text}" if text else ""),
                service=self.service,
                method="POST",
                path=path,
                conversation_id=result.conversation_id,
            )
        return result


def _fields(exc: ValidationError) -> str:
    """`"status, transcript.0"`: where validation failed, without the offending values."""
    locations = (".".join(str(part) for part in err["loc"]) or "(body)" for err in exc.errors())
    return ", ".join(dict.fromkeys(locations))
