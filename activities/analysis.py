"""`analysis.analyze`: what an answered call came to, from the transcript, by an OpenAI-compatible model.

    analysis = await workflow.execute_activity_method(AnalysisActivities.analyze, AnalysisRequest(...), ...)

The transcript is read from PostgreSQL here, by its document id: neither it nor the model's raw
answer goes into history, only the validated `CallAnalysis`. An answer that does not fit the
schema is asked for once more, with what was wrong; a second bad answer, or no model configured
(`HAPP_LLM_BASE_URL` unset), gives ElevenLabs' own analysis in the same shape. Keys the schema does
not ask for are dropped and their names (never their values) logged: they do not make an answer bad.
The outcome `do_not_call` also puts the number on the integration's do-not-call list.
"""

from __future__ import annotations

from pydantic import ValidationError
from temporalio import activity

from happ_integ.calls.analysis import (
    AnalysisConfig,
    CallAnalysis,
    answer_model,
    from_elevenlabs,
    parse_answer,
    response_schema,
    transcript_text,
)
from happ_integ.calls.contracts import AnalysisRequest
from happ_integ.clients.llm import LlmApi
from happ_integ.durable import activity_failures
from happ_integ.logs.redact import mask_phones
from happ_integ.ops import Resources


class AnalysisActivities:
    def __init__(self, resources: Resources) -> None:
        self._res = resources

    @activity.defn(name="analysis.analyze")
    async def analyze(self, req: AnalysisRequest) -> CallAnalysis:
        analysis = await self._analyze(req)
        if analysis.outcome == "do_not_call":
            await self._suppress(req)
        return analysis

    async def _suppress(self, req: AnalysisRequest) -> None:
        """The callee asked not to be called again: the number goes on the integration's
        do-not-call list (source `analysis`, the call as evidence). The call itself completes; its
        other calls and campaign recipients end `suppressed` when their turn comes."""
        with activity_failures():
            row = await self._res.calls(req.integration).get(req.call_id)
            if row is None:
                return
            await self._res.suppressions().add(
                row["phone"],
                req.integration,
                reason="asked not to be called again (call analysis)",
                source="analysis",
                evidence=req.call_id,
            )

    async def _analyze(self, req: AnalysisRequest) -> CallAnalysis:
        with activity_failures():
            settings = self._res.settings
            if not settings.llm_base_url or not settings.llm_model:
                return from_elevenlabs(req.info)
            config = (
                await self._res.config(req.integration).get("analysis", AnalysisConfig) or AnalysisConfig()
            )
            document = (
                await self._res.calls(req.integration).document(req.info.document_id)
                if req.info.document_id
                else None
            )
            transcript = transcript_text(document)
            if not transcript:
                return from_elevenlabs(req.info)
            model = answer_model(config)
            key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
            llm = LlmApi(self._res.http, settings.llm_base_url, key, settings.llm_model)
            messages = [
                {"role": "system", "content": _instructions(config)},
                {"role": "user", "content": transcript},
            ]
            schema = response_schema(model)
            for _ in range(2):
                reply = await llm.chat_json(messages, schema_name="call_analysis", schema=schema)
                try:
                    answer = parse_answer(model, reply.content)
                except (ValidationError, ValueError) as exc:
                    messages += [
                        {"role": "assistant", "content": reply.content},
                        {
                            "role": "user",
                            "content": f"That answer does not fit the schema ({_problem(exc)}). Answer again.",
                        },
                    ]
                    continue
                if answer.dropped:
                    # Names only: a value could be anything the call said.
                    activity.logger.info(
                        "the analysis model's answer had keys the schema does not ask for; dropped: %s",
                        ", ".join(mask_phones(name[:64]) for name in answer.dropped[:20]),
                    )
                return answer.analysis
            activity.logger.warning(
                "the analysis model answered out of schema twice: using ElevenLabs' analysis"
            )
            return from_elevenlabs(req.info)


def _instructions(config: AnalysisConfig) -> str:
    if not config.extracted_fields:
        return config.prompt
    fields = "\n".join(f"- {name}: {description}" for name, description in config.extracted_fields.items())
    return f"{config.prompt}\n\nFields for `extracted`:\n{fields}"


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'answer'}: {first['msg']}"
    return str(exc)[:300]
