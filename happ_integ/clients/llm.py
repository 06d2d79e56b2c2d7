"""An OpenAI-compatible chat model that answers in JSON fitting a schema (structured outputs).

    async with httpx.AsyncClient() as http:
        llm = LlmApi(http, settings.llm_base_url, api_key, settings.llm_model)   # base URL ends in /v1
        reply = await llm.chat_json(
            [{"role": "system", "content": prompt}, {"role": "user", "content": transcript}],
            schema_name="call_analysis",
            schema=response_schema(model),
        )
        reply.content            # the JSON text the model wrote; validating it is the caller's job
        reply.finish_reason, reply.usage["total_tokens"]

Facts this follows (https://platform.openai.com/docs/api-reference/chat/create, and every server
that copies it: vLLM, Ollama, LiteLLM, OpenRouter …): `POST {base}/chat/completions` with
`Authorization: Bearer <key>` (none for a local server that wants none) and `{"model", "messages",
"temperature", "response_format": {"type": "json_schema", "json_schema": {"name", "schema",
"strict": true}}}`; the answer is `{"id", "model", "choices": [{"index", "message": {"role",
"content", "refusal"}, "finish_reason"}], "usage": {"prompt_tokens", "completion_tokens",
"total_tokens"}}`. Errors are `{"error": {"message", "type", "code"}}`: a wrong key 401
(`Unauthorized`), an unknown model 404 (`NotFound`), rate limits 429 (`UpstreamError` with
`retry_after`); the mapping is `happ_integ.clients._http`'s.
"""

from __future__ import annotations

from typing import Any

import httpx
from pydantic import BaseModel, Field

from happ_integ.clients._http import JsonApi, Timeout
from happ_integ.errors import UpstreamError

# A model writing a few hundred tokens of JSON takes seconds, far longer than a CRM lookup.
LLM_TIMEOUT = httpx.Timeout(60.0, connect=5.0)


class LlmReply(BaseModel):
    """One answer: `content` (the message text), the `model` that wrote it, why it stopped
    (`finish_reason`: "stop", "length" when cut short …) and the token `usage`."""

    content: str
    model: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)


class LlmApi:
    """Thin client; 401 → `Unauthorized`, 404 → `NotFound`, 5xx/429/timeouts → `UpstreamError`.

    llm = LlmApi(http, "https://api.openai.com/v1", "sk-…", "gpt-4o-mini", timeout=30)
    """

    service = "LLM"

    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        api_key: str | None,
        model: str,
        *,
        timeout: Timeout = LLM_TIMEOUT,
    ) -> None:
        self.model = model
        self._api = JsonApi(
            http,
            base_url,
            service=self.service,
            headers={"Authorization": f"Bearer {api_key}"} if api_key else None,
            secrets=[api_key] if api_key else (),
            timeout=timeout,
        )

    async def chat_json(
        self,
        messages: list[dict[str, str]],
        *,
        schema_name: str,
        schema: dict[str, Any],
        temperature: float = 0,
    ) -> LlmReply:
        """`POST /chat/completions` asking for JSON that fits `schema` (strict); returns the first
        choice. An answer without a choice or without text (a refusal) raises `UpstreamError`."""
        body = {
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": schema_name, "schema": schema, "strict": True},
            },
        }
        data = await self._api.request("POST", "/chat/completions", json=body)
        return _reply(data)


def _reply(data: Any) -> LlmReply:
    # Whatever is missing is named, never quoted: the text may hold the caller's words.
    data = data if isinstance(data, dict) else {}
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else None
    if choice is None:
        raise UpstreamError("LLM answered POST /chat/completions without a choice", service=LlmApi.service)
    message = choice.get("message")
    content = message.get("content") if isinstance(message, dict) else None
    finish_reason = choice.get("finish_reason")
    finish = finish_reason if isinstance(finish_reason, str) else None
    if not isinstance(content, str) or not content.strip():
        refused = isinstance(message, dict) and bool(message.get("refusal"))
        raise UpstreamError(
            "LLM answered POST /chat/completions without content"
            + (" (the model refused)" if refused else f" (finish_reason {finish})"),
            service=LlmApi.service,
            finish_reason=finish,
            refused=refused,
        )
    model = data.get("model")
    usage = data.get("usage")
    return LlmReply(
        content=content,
        model=model if isinstance(model, str) else None,
        finish_reason=finish,
        usage=usage if isinstance(usage, dict) else {},
    )
