"""LlmApi against the model simulator: the request OpenAI's structured outputs expect, the reply
model, and answers that carry no content."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from happ_integ.calls.analysis import AnalysisConfig, answer_model, read_answer, response_schema
from happ_integ.clients.llm import LlmApi, LlmReply
from happ_integ.errors import UpstreamError
from simulator.llm import LlmState, create_llm_app

BASE = "http://llm.test/v1"
KEY = "sk-llm-0123456789"
MESSAGES = [
    {"role": "system", "content": "Analyse the call."},
    {"role": "user", "content": "agent: Добрий день!\nuser: Передзвоніть завтра, будь ласка."},
]


@pytest.fixture
async def env() -> AsyncIterator[tuple[LlmState, httpx.AsyncClient]]:
    state = LlmState(api_key=KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_llm_app(state))) as http:
        yield state, http


async def test_chat_json_sends_a_strict_json_schema_request(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    state, http = env
    schema = response_schema(answer_model(AnalysisConfig(extracted_fields={"webinar": "will attend"})))
    reply = await LlmApi(http, BASE + "/", KEY, state.model).chat_json(
        MESSAGES, schema_name="call_analysis", schema=schema, temperature=0.2
    )
    sent = state.requests[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.header("authorization") == f"Bearer {KEY}"
    assert sent.json == {
        "model": "sim-analyst",
        "messages": MESSAGES,
        "temperature": 0.2,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "call_analysis", "schema": schema, "strict": True},
        },
    }
    assert isinstance(reply, LlmReply) and reply.model == "sim-analyst" and reply.finish_reason == "stop"
    assert reply.usage["total_tokens"] == reply.usage["prompt_tokens"] + reply.usage["completion_tokens"]
    # The answer fits the schema the analysis activity asks for, extracted fields included.
    analysis = read_answer(
        answer_model(AnalysisConfig(extracted_fields={"webinar": "will attend"})), reply.content
    )
    assert analysis.outcome == "callback" and analysis.callback_at is not None
    assert analysis.extracted == {"webinar": None}
    assert json.loads(reply.content)["summary"] == "Клієнт просить передзвонити завтра."


async def test_no_key_sends_no_authorization() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"choices": [{"message": {"content": "{}"}}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        reply = await LlmApi(http, "http://ollama.test/v1", None, "llama").chat_json(
            MESSAGES, schema_name="x", schema={}
        )
    assert (
        "authorization" not in seen[0].headers
        and str(seen[0].url) == "http://ollama.test/v1/chat/completions"
    )
    assert reply == LlmReply(content="{}")


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ({"choices": []}, "without a choice"),
        ({"object": "chat.completion"}, "without a choice"),
        ([1, 2], "without a choice"),
        ({"choices": ["text"]}, "without a choice"),
        ({"choices": [{"message": {"content": None}, "finish_reason": "length"}]}, "finish_reason length"),
        ({"choices": [{"message": {"content": "  "}}]}, "without content"),
        ({"choices": [{"message": {"content": None, "refusal": "I can't +380994829573"}}]}, "refused"),
    ],
)
async def test_answers_without_content_are_upstream_errors(body: Any, match: str) -> None:
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=body))
    ) as http:
        with pytest.raises(UpstreamError, match=match) as caught:
            await LlmApi(http, BASE, KEY, "m").chat_json(MESSAGES, schema_name="x", schema={})
    assert caught.value.retryable and caught.value.details["service"] == "LLM"
    assert "380994829573" not in str(caught.value)  # the model's words are never quoted
