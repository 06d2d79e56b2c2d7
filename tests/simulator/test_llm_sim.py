"""The model peer: its keyword verdicts (each outcome), the language of its summary, callback_at,
the extracted fields the schema asks for, invalid answers and extra keys on request, auth and
OpenAI's errors."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from happ_integ.calls.analysis import (
    AnalysisConfig,
    answer_model,
    parse_answer,
    read_answer,
    response_schema,
)
from happ_integ.calls.models import OUTCOMES
from simulator.llm import (
    EXTRA_EXTRACTED,
    EXTRA_KEYS,
    SUMMARIES,
    LlmState,
    analyse,
    create_llm_app,
    language_of,
    outcome_of,
    requested_fields,
)

KEY = {"Authorization": "Bearer sim-llm-key"}
CONFIG = AnalysisConfig(extracted_fields={"webinar": "will attend: yes/no", "budget": "their budget"})
MODEL = answer_model(CONFIG)


@pytest.fixture
async def env() -> AsyncIterator[tuple[LlmState, httpx.AsyncClient]]:
    state = LlmState(clock=lambda: datetime(2026, 1, 20, 12, 0, tzinfo=UTC))
    transport = httpx.ASGITransport(app=create_llm_app(state))
    async with httpx.AsyncClient(transport=transport, base_url="http://llm") as http:
        yield state, http


def request(transcript: str, *, schema: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "model": "sim-analyst",
        "messages": [
            # The prompt names every outcome: only the conversation may decide.
            {"role": "system", "content": "Decide: interested, callback, voicemail, wrong_number. Так?"},
            {"role": "user", "content": transcript},
        ],
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {
                "name": "call_analysis",
                "schema": schema or response_schema(MODEL),
                "strict": True,
            },
        },
        **extra,
    }


async def ask(http: httpx.AsyncClient, transcript: str, **kw: Any) -> httpx.Response:
    return await http.post("/v1/chat/completions", json=request(transcript, **kw), headers=KEY)


CASES = [
    ("do_not_call", "user: Не дзвоніть мені більше"),
    ("do_not_call", "user: Больше не звоните сюда"),
    ("do_not_call", "user: Please do not call me again"),
    ("callback", "user: Передзвоніть мені пізніше"),
    ("callback", "user: Перезвоните через час"),
    ("callback", "user: Давайте завтра"),
    ("callback", "user: Please call back on Monday"),
    ("not_interested", "user: Мені не цікаво"),
    ("not_interested", "user: Мне не интересно"),
    ("not_interested", "user: Нам це не потрібно"),
    ("not_interested", "user: No thanks"),
    ("voicemail", "user: Ви зателефонували на автовідповідач"),
    ("voicemail", "user: You have reached the voicemail of"),
    ("voicemail", "user: Залиште повідомлення після сигналу"),
    ("wrong_number", "user: Ви не туди потрапили"),
    ("wrong_number", "user: Ви помилилися номером"),
    ("wrong_number", "user: Sorry, wrong number"),
    ("interested", "user: Це цікаво"),
    ("interested", "user: Так, слухаю"),
    ("interested", "user: Хочу замовити"),
    ("interested", "user: Очень интересно"),
    ("interested", "user: Да, конечно"),
    ("no_conversation", "user: Алло? Алло?"),
    ("no_conversation", "user: Когда это было?"),  # "да" only as a word
    ("no_conversation", ""),
]


@pytest.mark.parametrize(("outcome", "transcript"), CASES)
async def test_each_outcome_from_its_keywords(
    env: tuple[LlmState, httpx.AsyncClient], outcome: str, transcript: str
) -> None:
    _, http = env
    answer = await ask(http, "agent: Добрий день! Вам зручно говорити?\n" + transcript if transcript else "")
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "chat.completion" and body["model"] == "sim-analyst"
    [choice] = body["choices"]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    analysis = read_answer(MODEL, choice["message"]["content"])  # valid for the schema asked for
    assert analysis.outcome == outcome
    assert (analysis.callback_at is not None) is (outcome == "callback")


def test_outcome_precedence_and_every_outcome_is_covered() -> None:
    assert outcome_of("user: так, але не цікаво") == "not_interested"
    assert outcome_of("user: мне интересно") == "interested"  # "мне" is not "не"
    assert outcome_of("user: так, передзвоніть завтра") == "callback"
    assert outcome_of("user: залиште повідомлення, я передзвоню") == "callback"
    assert {outcome for outcome, _ in CASES} == set(OUTCOMES)


async def test_summary_in_the_transcripts_language(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    _, http = env
    uk = json.loads((await ask(http, "user: Так, мені цікаво")).json()["choices"][0]["message"]["content"])
    ru = json.loads((await ask(http, "user: Да, мне интересно")).json()["choices"][0]["message"]["content"])
    assert uk["summary"] == "Клієнт зацікавлений у пропозиції." and language_of(uk["summary"]) == "uk"
    assert ru["summary"] == "Клиент заинтересован в предложении." and language_of(ru["summary"]) == "ru"
    assert uk["next_action"] and ru["next_action"]
    for language, texts in SUMMARIES.items():  # every summary reads as its own language
        assert set(texts) == set(OUTCOMES)
        assert {language_of(summary) for summary, _ in texts.values()} == {language}


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (datetime(2026, 1, 20, 12, 0, tzinfo=UTC), "2026-01-21T10:00:00+02:00"),
        (datetime(2026, 1, 20, 22, 30, tzinfo=UTC), "2026-01-22T10:00:00+02:00"),  # already the 21st in Kyiv
        (datetime(2026, 3, 28, 12, 0, tzinfo=UTC), "2026-03-29T10:00:00+03:00"),  # summer time began at 03:00
    ],
)
def test_callback_is_the_next_day_at_ten_in_kyiv(now: datetime, expected: str) -> None:
    answer = analyse("user: передзвоніть", [], now)
    assert answer["callback_at"] == expected and answer["outcome"] == "callback"
    assert analyse("user: так", [], now)["callback_at"] is None


async def test_extracted_has_every_field_the_schema_asks_for(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    _, http = env
    answer = await ask(http, "user: Так, я прийду на webinar")
    analysis = read_answer(MODEL, answer.json()["choices"][0]["message"]["content"])
    assert analysis.extracted == {"webinar": "yes", "budget": None}
    # A schema that keeps its definitions apart ($ref) is read as well.
    schema = MODEL.model_json_schema()
    assert "$ref" in json.dumps(schema["properties"]["extracted"])
    assert requested_fields(request("", schema=schema)) == ["webinar", "budget"]
    plain = await ask(http, "user: Так", schema={"type": "object", "properties": {"outcome": {}}})
    assert json.loads(plain.json()["choices"][0]["message"]["content"])["extracted"] == {}


async def test_only_the_conversation_decides(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    _, http = env
    body = request("user: Алло?")
    # A retry appends the bad answer and a request to answer again: neither is the transcript.
    body["messages"] += [
        {"role": "assistant", "content": "Так! Передзвоню завтра."},
        {
            "role": "user",
            "content": "That answer does not fit the schema (outcome: Field required). Answer again.",
        },
    ]
    answer = await http.post("/v1/chat/completions", json=body, headers=KEY)
    assert json.loads(answer.json()["choices"][0]["message"]["content"])["outcome"] == "no_conversation"
    parts = request("")
    parts["messages"][1]["content"] = [{"type": "text", "text": "user: Хочу"}]
    answer = await http.post("/v1/chat/completions", json=parts, headers=KEY)
    assert json.loads(answer.json()["choices"][0]["message"]["content"])["outcome"] == "interested"


async def test_invalid_next(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    state, http = env
    state.invalid_next()
    state.invalid_next(how="no_outcome")
    contents = [(await ask(http, "user: Так")).json()["choices"][0]["message"]["content"] for _ in range(3)]
    with pytest.raises(ValueError):
        json.loads(contents[0])
    with pytest.raises(ValueError):
        read_answer(MODEL, contents[0])
    assert "outcome" not in json.loads(contents[1])
    with pytest.raises(ValueError):
        read_answer(MODEL, contents[1])
    assert read_answer(MODEL, contents[2]).outcome == "interested"
    assert state.answers == contents and len(state.requests_to("POST", "/v1/chat/completions")) == 3


async def test_extra_keys_next(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    """Like a model without strict structured outputs: keys the schema forbids, beside and inside
    `extracted`; the fields asked for are all there. The analysis drops the extra ones by name."""
    state, http = env
    state.extra_keys_next()
    contents = [(await ask(http, "user: Так")).json()["choices"][0]["message"]["content"] for _ in range(2)]
    added = json.loads(contents[0])
    assert added["extracted"] == {"webinar": None, "budget": None, **EXTRA_EXTRACTED}
    assert EXTRA_KEYS.items() <= added.items() and added["outcome"] == "interested"
    with pytest.raises(ValueError, match="Extra inputs are not permitted"):
        MODEL.model_validate_json(contents[0])  # the strict schema's own verdict
    answer = parse_answer(MODEL, contents[0])
    assert answer.analysis.outcome == "interested"
    assert answer.analysis.extracted == {"webinar": None, "budget": None}
    assert sorted(answer.dropped) == sorted([*EXTRA_KEYS, *(f"extracted.{k}" for k in EXTRA_EXTRACTED)])
    assert set(json.loads(contents[1])) == {"outcome", "summary", "next_action", "callback_at", "extracted"}
    assert parse_answer(MODEL, contents[1]).dropped == []


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "sim-llm-key"}])
async def test_auth(env: tuple[LlmState, httpx.AsyncClient], headers: dict[str, str]) -> None:
    state, http = env
    answer = await http.post("/v1/chat/completions", json=request("user: Так"), headers=headers)
    assert answer.status_code == 401
    error = answer.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key") and error["message"]
    assert "wrong" not in answer.text  # the key given is never echoed
    assert state.requests[-1].path == "/v1/chat/completions" and state.answers == []
    assert (await http.get("/v1/models", headers=KEY)).json()["data"][0]["id"] == "sim-analyst"


async def test_openai_errors_and_injected_failures(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    state, http = env
    unknown = await http.post("/v1/chat/completions", json=request("x", model="gpt-9"), headers=KEY)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    broken = await http.post("/v1/chat/completions", content=b"{", headers=KEY)
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "invalid_request_error"
    empty = await http.post(
        "/v1/chat/completions", json={"model": "sim-analyst", "messages": []}, headers=KEY
    )
    assert empty.status_code == 400 and empty.json()["error"]["param"] == "messages"
    state.fail_next(
        429, body={"error": {"message": "Rate limit", "type": "requests"}}, headers={"Retry-After": "7"}
    )
    limited = await ask(http, "user: Так")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "7"
    assert (await ask(http, "user: Так")).status_code == 200


async def test_latency(env: tuple[LlmState, httpx.AsyncClient]) -> None:
    state, http = env
    state.latency_seconds = 0.1
    began = time.monotonic()
    assert (await ask(http, "user: Так")).status_code == 200
    assert time.monotonic() - began >= 0.1
