"""`analysis.analyze` against the simulated OpenAI-compatible model over real HTTP, with the
transcript in PostgreSQL: a valid answer, a bad answer asked again, two bad answers and no model
configured (both: ElevenLabs' own analysis), keys the schema does not ask for dropped (not a bad
answer), and no transcript or model answer in its result."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.analysis import AnalysisActivities
from happ_integ.calls.contracts import AnalysisRequest
from happ_integ.calls.models import PostcallInfo
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.keys import generate_key
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.provision import prepare_integration
from happ_integ.settings import Settings
from simulator.llm import EXTRA_EXTRACTED, EXTRA_KEYS, SUMMARIES, LlmState, create_llm_app
from tests.e2e.conftest import serve

TRANSCRIPT = [
    {"role": "agent", "message": "Добрий день! Зручно говорити?", "time_in_call_secs": 0},
    {"role": "user", "message": "Передзвоніть мені завтра, будь ласка.", "time_in_call_secs": 3},
]
ELEVENLABS = PostcallInfo(
    conversation_id="conv-a",
    duration_seconds=30,
    call_successful="failure",
    transcript_summary="ElevenLabs: the client was busy",
    data_collection_results={"webinar": "no"},
)


@dataclass
class Analyst:
    llm: LlmState
    resources: Resources
    base: str
    document_id: str

    async def analyze(
        self, *, with_model: bool = True, document: bool = True, integration: str = "sofa"
    ) -> Any:
        settings: dict[str, Any] = {"DATABASE_URL": "unused", "HAPP_SECRET_KEY": generate_key()}
        if with_model:
            settings |= {
                "HAPP_LLM_BASE_URL": self.base,
                "HAPP_LLM_MODEL": self.llm.model,
                "HAPP_LLM_API_KEY": self.llm.api_key,
            }
        resources = Resources(
            self.resources.pool,
            Settings(**settings),
            self.resources.http,
            self.resources.box,
            self.resources.integrations,
        )
        info = ELEVENLABS.model_copy(update={"document_id": self.document_id if document else None})
        request = AnalysisRequest(integration=integration, call_id="c_analysis", info=info)
        return await ActivityEnvironment().run(AnalysisActivities(resources).analyze, request)


@pytest.fixture(scope="module")
async def analyst(pg_url: str) -> AsyncIterator[Analyst]:
    llm = LlmState()
    server, task = await serve(create_llm_app(llm), free_port())
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=generate_key())
    # sofa asks for one extracted field; keycrm, with no `analysis` config, asks for none.
    integrations = discover_integrations(["sofa", "keycrm"])
    resources = await open_resources(settings, integrations)
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    body = {"conversation_id": conversation, "transcript": TRANSCRIPT}
    for name in ("sofa", "keycrm"):
        await prepare_integration(resources, integrations[name])
        # The same id in each: a document's id is its kind and the conversation's.
        document = await resources.calls(name).store_document("transcript", key=conversation, body=body)
    await resources.config("sofa").set(
        "analysis", {"extracted_fields": {"webinar": "will they attend the webinar"}}
    )
    yield Analyst(llm, resources, f"http://127.0.0.1:{server.config.port}/v1", document)
    await close_resources(resources)
    server.should_exit = True
    await task


async def test_a_valid_answer_is_the_analysis(analyst: Analyst) -> None:
    asked = len(analyst.llm.requests)
    analysis = await analyst.analyze()
    assert analysis.source == "llm" and analysis.outcome == "callback"
    assert analysis.callback_at is not None and analysis.callback_at.utcoffset() is not None
    assert set(analysis.extracted) == {"webinar"}
    assert len(analyst.llm.requests) == asked + 1
    request = analyst.llm.requests[-1].json
    assert request["response_format"]["type"] == "json_schema"
    schema = request["response_format"]["json_schema"]["schema"]
    assert (
        schema["properties"]["outcome"]["enum"][0] == "interested"
        and "webinar" in schema["properties"]["extracted"]["properties"]
    )
    assert any(
        "Передзвоніть мені завтра" in m["content"] for m in request["messages"]
    )  # read from PostgreSQL


async def test_an_invalid_answer_is_asked_for_again_with_what_was_wrong(analyst: Analyst) -> None:
    analyst.llm.invalid_next(1, "no_outcome")
    asked = len(analyst.llm.requests)
    analysis = await analyst.analyze()
    assert analysis.source == "llm" and analysis.outcome == "callback"
    assert len(analyst.llm.requests) == asked + 2
    retry = analyst.llm.requests[-1].json["messages"]
    assert retry[-1]["role"] == "user" and "outcome" in retry[-1]["content"]


async def test_two_invalid_answers_fall_back_to_elevenlabs(analyst: Analyst) -> None:
    analyst.llm.invalid_next(2, "not_json")
    analysis = await analyst.analyze()
    assert analysis.source == "elevenlabs" and analysis.outcome == "not_interested"
    assert analysis.summary == "ElevenLabs: the client was busy" and analysis.extracted == {"webinar": "no"}


async def test_no_model_configured_means_elevenlabs_analysis_without_asking(analyst: Analyst) -> None:
    asked = len(analyst.llm.requests)
    analysis = await analyst.analyze(with_model=False)
    assert analysis.source == "elevenlabs" and len(analyst.llm.requests) == asked


async def test_a_model_that_is_down_is_an_error_the_workflow_falls_back_on(analyst: Analyst) -> None:
    analyst.llm.fail_next(503, times=1)
    with pytest.raises(Exception, match="503"):
        await analyst.analyze()


async def test_the_result_holds_neither_the_transcript_nor_the_raw_answer(analyst: Analyst) -> None:
    analysis = await analyst.analyze()
    text = analysis.model_dump_json()
    assert "Передзвоніть мені завтра" not in text and "choices" not in text


async def test_keys_the_schema_does_not_ask_for_are_dropped_not_a_bad_answer(
    analyst: Analyst, caplog: pytest.LogCaptureFixture
) -> None:
    """A model without strict structured outputs adds a key inside `extracted` (and one beside) to
    every answer. With no extracted field configured, that answer is still the analysis: asked once,
    its outcome and summary kept, the keys dropped and named in the log without their values."""
    analyst.llm.extra_keys_next(2)
    asked = len(analyst.llm.requests)
    with caplog.at_level(logging.INFO):
        analysis = await analyst.analyze(integration="keycrm")  # no `analysis` config: no fields
    answered = json.loads(analyst.llm.answers[-1])
    assert answered["extracted"] == EXTRA_EXTRACTED and EXTRA_KEYS.items() <= answered.items()
    assert analysis.source == "llm" and analysis.outcome == "callback"
    assert analysis.summary == SUMMARIES["uk"]["callback"][0] and analysis.extracted == {}
    assert len(analyst.llm.requests) == asked + 1  # not asked again
    log = caplog.text
    assert "extracted.sentiment" in log and "confidence" in log
    assert all(str(value) not in log for value in [*EXTRA_EXTRACTED.values(), *EXTRA_KEYS.values()])


async def test_an_extra_key_beside_configured_fields_keeps_them(analyst: Analyst) -> None:
    analyst.llm.extra_keys_next(1)
    asked = len(analyst.llm.requests)
    analysis = await analyst.analyze()
    assert analysis.source == "llm" and analysis.outcome == "callback"
    assert analysis.extracted == {"webinar": None}  # what was asked for, nothing else
    assert len(analyst.llm.requests) == asked + 1


async def test_a_missing_field_beside_an_extra_key_is_asked_again_for_that_field(analyst: Analyst) -> None:
    analyst.llm.extra_keys_next(1)
    analyst.llm.invalid_next(1, "no_outcome")
    asked = len(analyst.llm.requests)
    analysis = await analyst.analyze(integration="keycrm")
    assert analysis.source == "llm" and analysis.outcome == "callback"
    assert len(analyst.llm.requests) == asked + 2
    retry = analyst.llm.requests[-1].json["messages"][-1]["content"]
    assert "outcome" in retry and "sentiment" not in retry  # the field that is missing, not the extra key
