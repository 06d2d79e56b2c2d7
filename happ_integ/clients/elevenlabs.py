"""ElevenLabs Conversational AI: read back a conversation the voice agent held.

    async with httpx.AsyncClient() as http:
        elevenlabs = ElevenLabsApi(http, settings.elevenlabs_api_url, api_key)
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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from happ_integ.clients._http import DEFAULT_TIMEOUT, JsonApi, Timeout
from happ_integ.errors import UpstreamError, ValidationFailed

STATUSES = ("initiated", "in-progress", "processing", "done", "failed")


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


def _fields(exc: ValidationError) -> str:
    """`"status, transcript.0"`: where validation failed, without the offending values."""
    locations = (".".join(str(part) for part in err["loc"]) or "(body)" for err in exc.errors())
    return ", ".join(dict.fromkeys(locations))
