"""`analysis.analyze` against the simulated OpenAI-compatible model over real HTTP, with the
transcript in PostgreSQL: a valid answer, a bad answer asked again, two bad answers and no model
configured (both: ElevenLabs' own analysis), and no transcript or model answer in its result."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from activities.analysis import AnalysisActivities, AnalysisRequest
from happ_integ.calls.models import PostcallInfo
from happ_integ.embedded.process import free_port
from happ_integ.integration import discover_integrations
from happ_integ.keys import generate_key
from happ_integ.ops import Resources
from happ_integ.runtime import close_resources, open_resources
from happ_integ.settings import Settings
from happ_integ.setup import prepare_integration
from simulator.llm import LlmState, create_llm_app
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

    async def analyze(self, *, with_model: bool = True, document: bool = True) -> Any:
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
        request = AnalysisRequest(integration="sofa", call_id="c_analysis", info=info)
        return await ActivityEnvironment().run(AnalysisActivities(resources).analyze, request)


@pytest.fixture(scope="module")
async def analyst(pg_url: str) -> AsyncIterator[Analyst]:
    llm = LlmState()
    server, task = await serve(create_llm_app(llm), free_port())
    settings = Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=generate_key())
    integrations = discover_integrations(["sofa"])
    resources = await open_resources(settings, integrations)
    await prepare_integration(resources, integrations["sofa"])
    conversation = f"conv-{uuid.uuid4().hex[:8]}"
    document = await resources.calls("sofa").store_document(
        "transcript", key=conversation, body={"conversation_id": conversation, "transcript": TRANSCRIPT}
    )
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
