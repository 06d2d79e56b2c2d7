"""An OpenAI-compatible chat model on loopback that analyses call transcripts, deterministically.

    state = LlmState(api_key="k")
    app = create_llm_app(state)          # HAPP_LLM_BASE_URL=http://127.0.0.1:PORT/v1, HAPP_LLM_MODEL=sim-analyst
    # POST /v1/chat/completions with `Authorization: Bearer k`
    state.invalid_next(2)                # the next two answers do not fit the schema
    state.extra_keys_next(2)             # the next two add keys the schema does not ask for
    state.answers[-1]                    # the content it answered last
    len(state.requests_to("POST", "/v1/chat/completions"))

The answer's `choices[0].message.content` is a JSON string with `CallAnalysis`' fields (outcome,
summary, next_action, callback_at, extracted), read from the user messages before the first
assistant one (the transcript; a retry's "answer again" comes after). The outcome is the first
keyword group found (`OUTCOME_KEYWORDS`, in order), else "no_conversation"; `callback_at` is the
next day 10:00 Europe/Kyiv for a callback; `summary` is Ukrainian when the transcript has і/ї/є/ґ,
else Russian; `extracted` has every property the request's schema asks for under
`properties.extracted.properties`: "yes" when the transcript names it, else null. After
`extra_keys_next`, an answer also carries `EXTRA_KEYS` beside its fields and `EXTRA_EXTRACTED`
inside `extracted`, keys the schema forbids, as a model without strict structured outputs adds.
Errors look like OpenAI's, `{"error": {"message", "type", "param", "code"}}`: a wrong key 401,
a model other than `state.model` 404, a malformed request 400. `latency_seconds` delays every answer.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from simulator import RecordingMiddleware, SimState, bearer_ok

Invalid = Literal["not_json", "no_outcome"]
KYIV = ZoneInfo("Europe/Kyiv")

# Stems match inside words ("передзвоніть"); short words and "не …" only from a word's start
# ("да" is not in "когда", "не интересно" not in "мне интересно").
OUTCOME_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # First: "не дзвоніть мені більше" must not read as a callback ("дзвон") or plain refusal.
    ("do_not_call", (r"\bне дзвоніть", r"\bне телефонуйте", r"\bне звоните", r"\bdo not call\b")),
    ("callback", (r"передзвон", r"перезвон", r"\bзавтра", r"\bcall back\b")),
    ("not_interested", (r"\bне цікаво", r"\bне интересно", r"\bне потрібно", r"\bno thanks\b")),
    ("voicemail", (r"автовідповідач", r"\bvoicemail", r"залиште повідомлення")),
    ("wrong_number", (r"\bне туди", r"помилилися", r"\bwrong number\b")),
    ("interested", (r"цікаво", r"\bтак\b", r"\bхочу\b", r"интересно", r"\bда\b")),
)
SUMMARIES = {
    "uk": {
        "interested": ("Клієнт зацікавлений у пропозиції.", "Надіслати клієнту пропозицію."),
        "not_interested": ("Клієнт відмовився: пропозиція йому не цікава.", None),
        "callback": ("Клієнт просить передзвонити завтра.", "Передзвонити у призначений час."),
        "wrong_number": ("Номер помилковий: це не клієнт.", "Виправити номер у CRM."),
        "voicemail": ("Дзвінок потрапив на автовідповідач.", "Зателефонувати пізніше."),
        "no_conversation": ("Розмови не відбулося.", None),
        "do_not_call": ("Клієнт просить більше не телефонувати.", "Не телефонувати цьому клієнту."),
    },
    "ru": {
        "interested": ("Клиент заинтересован в предложении.", "Отправить клиенту предложение."),
        "not_interested": ("Клиент отказался: предложение ему не интересно.", None),
        "callback": ("Клиент просит перезвонить завтра.", "Перезвонить в назначенное время."),
        "wrong_number": ("Номер ошибочный: это не клиент.", "Исправить номер в CRM."),
        "voicemail": ("Звонок попал на автоответчик.", "Позвонить позже."),
        "no_conversation": ("Разговора не было.", None),
        "do_not_call": ("Клиент просит больше не звонить.", "Не звонить этому клиенту."),
    },
}


# What a model without strict structured outputs adds on its own: a field inside `extracted` and
# one beside the answer's. The schema forbids both (`additionalProperties: false`).
EXTRA_KEYS: dict[str, Any] = {"confidence": 0.87}
EXTRA_EXTRACTED: dict[str, Any] = {"sentiment": "positive"}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class LlmState(SimState):
    """The key and model the peer accepts, the answers it gave, and invalid-answer injection.

    `clock` (an aware datetime) decides `callback_at`, so a test can pin "tomorrow".
    """

    api_key: str = "sim-llm-key"
    model: str = "sim-analyst"
    latency_seconds: float = 0
    clock: Callable[[], datetime] = _now
    answers: list[str] = field(default_factory=list)
    _invalid: deque[Invalid] = field(default_factory=deque, repr=False)
    _extra_keys: int = field(default=0, repr=False)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def invalid_next(self, times: int = 1, how: Invalid = "not_json") -> None:
        """The next `times` answers do not fit the schema: prose (`"not_json"`) or JSON without
        `outcome` (`"no_outcome"`). They are still well-formed chat completions (HTTP 200)."""
        self._invalid.extend([how] * times)

    def take_invalid(self) -> Invalid | None:
        return self._invalid.popleft() if self._invalid else None

    def extra_keys_next(self, times: int = 1) -> None:
        """The next `times` answers add keys the schema does not ask for (`EXTRA_EXTRACTED` inside
        `extracted`, `EXTRA_KEYS` beside the fields), as a model without strict structured outputs
        does; otherwise they are the usual answer. Combines with `invalid_next`."""
        self._extra_keys += times

    def take_extra_keys(self) -> bool:
        if self._extra_keys <= 0:
            return False
        self._extra_keys -= 1
        return True


def outcome_of(transcript: str) -> str:
    """`outcome_of("user: Передзвоніть завтра")` → `"callback"`; nothing matched → `"no_conversation"`."""
    text = transcript.casefold()
    for outcome, patterns in OUTCOME_KEYWORDS:
        if any(re.search(pattern, text) for pattern in patterns):
            return outcome
    return "no_conversation"


def language_of(transcript: str) -> Literal["uk", "ru"]:
    return "uk" if re.search(r"[іїєґ]", transcript.casefold()) else "ru"


def analyse(transcript: str, fields: list[str], now: datetime) -> dict[str, Any]:
    """The answer's content for `transcript`, before it is written as JSON."""
    outcome = outcome_of(transcript)
    summary, next_action = SUMMARIES[language_of(transcript)][outcome]
    callback_at = None
    if outcome == "callback":
        tomorrow = now.astimezone(KYIV).date() + timedelta(days=1)
        callback_at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, tzinfo=KYIV).isoformat()
    text = transcript.casefold()
    return {
        "outcome": outcome,
        "summary": summary,
        "next_action": next_action,
        "callback_at": callback_at,
        "extracted": {name: "yes" if name.casefold() in text else None for name in fields},
    }


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": "…"}]
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def transcript_of(messages: list[Any]) -> str:
    """The user messages before the first assistant message: the conversation to analyse."""
    lines: list[str] = []
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "assistant":
            break
        if role == "user":
            lines.append(_text(message.get("content")))
    return "\n".join(lines)


def requested_fields(body: dict[str, Any]) -> list[str]:
    """The property names under `response_format.json_schema.schema.properties.extracted.properties`
    (a `$ref` into `$defs` is followed)."""
    fmt = body.get("response_format")
    wrapper = fmt.get("json_schema") if isinstance(fmt, dict) else None
    schema = wrapper.get("schema") if isinstance(wrapper, dict) else None
    if not isinstance(schema, dict):
        return []
    found = schema.get("$defs")
    definitions: dict[str, Any] = found if isinstance(found, dict) else {}

    def resolve(node: Any, depth: int = 0) -> dict[str, Any]:
        if not isinstance(node, dict) or depth > 8:  # a $ref cycle ends here
            return {}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return resolve(definitions.get(ref.removeprefix("#/$defs/")), depth + 1)
        return node

    properties_of_schema = resolve(schema).get("properties")
    top = properties_of_schema if isinstance(properties_of_schema, dict) else {}
    extracted = resolve(top.get("extracted"))
    properties = extracted.get("properties")
    return list(properties) if isinstance(properties, dict) else []


def _error(status: int, message: str, kind: str, code: str | None, param: str | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


def _content(state: LlmState, body: dict[str, Any], messages: list[Any]) -> str:
    transcript = transcript_of(messages)
    answer = analyse(transcript, requested_fields(body), state.clock())
    invalid = state.take_invalid()
    if state.take_extra_keys():
        answer = {**answer, **EXTRA_KEYS, "extracted": {**answer["extracted"], **EXTRA_EXTRACTED}}
    if invalid == "not_json":
        return f"Звісно! Ось аналіз дзвінка: {answer['summary']}"
    if invalid == "no_outcome":
        answer.pop("outcome")
    return json.dumps(answer, ensure_ascii=False)


def create_llm_app(state: LlmState | None = None) -> FastAPI:
    """The simulated model API; `app.state.sim` is the `LlmState`."""
    state = state or LlmState()
    app = FastAPI(title="OpenAI-compatible model simulator")
    app.state.sim = state

    @app.middleware("http")
    async def api_key(request: Request, call_next: Any) -> Any:
        # OpenAI echoes part of a wrong key; this peer echoes none, so no test can pass on a masked echo.
        if not bearer_ok(request.headers.get("authorization"), state.api_key):
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return await call_next(request)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        model = {"id": state.model, "object": "model", "created": 0, "owned_by": "happ-simulator"}
        return {"object": "list", "data": [model]}

    @app.post("/v1/chat/completions")
    async def chat_completions(request: Request) -> Any:
        try:
            body = json.loads(await request.body() or b"null")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(
                400, "We could not parse the JSON body of your request.", "invalid_request_error", None
            )
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return _error(400, "'messages' is a required property", "invalid_request_error", None, "messages")
        if body.get("model") != state.model:
            message = f"The model `{body.get('model')}` does not exist or you do not have access to it."
            return _error(404, message, "invalid_request_error", "model_not_found")
        if state.latency_seconds > 0:
            await asyncio.sleep(state.latency_seconds)
        content = _content(state, body, messages)
        state.answers.append(content)
        prompt_tokens = sum(len(_text(m.get("content"))) for m in messages if isinstance(m, dict)) // 4 + 1
        completion_tokens = len(content) // 4 + 1
        return {
            "id": f"chatcmpl-sim{next(state._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": state.model,
            "system_fingerprint": "fp_happ_sim",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content, "refusal": None},
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    app.add_middleware(RecordingMiddleware, state=state)
    return app
