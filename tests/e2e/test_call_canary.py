"""No secret value leaves its activity: after whole simulated calls of sofa and keycrm — answered,
short and retried, a CRM that fails then refuses, a voice assistant that refuses — every secret (a
canary) is searched for in the decoded Temporal histories, the workers' and the gateway's logs,
the API's answers, the OpenAPI documents and the errors the calls ended with."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from simulator.app import SimulatorStates
from simulator.calls import Play
from tests.e2e.call_stack import ADMIN, HOOK_TOKEN, CallStack, phone, start_call_stack
from tests.e2e.history_text import history_text

pytestmark = pytest.mark.timeout(300)


def canaries() -> dict[str, str]:
    return {
        name: f"canary-{name.lower()}-{uuid.uuid4().hex}"
        for name in ("NETHUNT", "KEYCRM", "VOICE", "SIGNING", "ELEVENLABS")
    }


def with_canaries(values: dict[str, str]) -> Any:
    def prepare(sims: SimulatorStates) -> None:
        sims.nethunt.api_key = values["NETHUNT"]
        sims.keycrm.api_key = values["KEYCRM"]
        sims.voice.token = values["VOICE"]
        sims.voice.webhook_secret = values["SIGNING"]
        sims.elevenlabs.api_key = values["ELEVENLABS"]

    return prepare


async def everything_said(stack: CallStack, call_ids: list[str]) -> list[str]:
    texts = [
        stack.worker_output(),
        repr(list(stack.capture)),
        json.dumps(stack.sims.voice.deliveries, default=repr),
    ]
    admin = {"Authorization": f"Bearer {ADMIN}"}
    for call_id in call_ids:
        texts.append((await stack.http.get(f"/{stack.integration}/calls/{call_id}", headers=admin)).text)
        handle = (await _client(stack)).get_workflow_handle(f"{stack.integration}:call:{call_id}")
        texts.append(history_text(await handle.fetch_history()))
        for child in ("crm-lookup", "crm-postcall"):
            child_handle = (await _client(stack)).get_workflow_handle(
                f"{stack.integration}:handler:{child}:{call_id}"
            )
            try:
                texts.append(history_text(await child_handle.fetch_history()))
            except Exception:
                pass  # a call that never got that far has no such child
    texts.append((await stack.http.get(f"/{stack.integration}/calls", headers=admin)).text)
    texts.append((await stack.http.get(f"/{stack.integration}/secrets", headers=admin)).text)
    texts.append((await stack.http.get(f"/{stack.integration}/openapi.json")).text)
    return texts


async def _client(stack: CallStack) -> Any:
    from happ_integ.temporal import connect_settings

    if not hasattr(stack, "_canary_client"):
        stack._canary_client = await connect_settings(stack.settings)  # type: ignore[attr-defined]
    return stack._canary_client  # type: ignore[attr-defined]


@pytest.mark.parametrize("integration", ["sofa", "keycrm"])
async def test_no_secret_in_any_trace_of_whole_calls(pg_url: str, tmp_path: Path, integration: str) -> None:
    values = canaries()
    stack = await start_call_stack(
        pg_url,
        tmp_path / "logs",
        Play.answered(40, talk_seconds=0.2),
        integration=integration,
        handling={"retry_delays_seconds": [1], "max_attempts": 2},
        llm=True,
        prepare=with_canaries(values),
    )
    try:
        stack.start_worker()
        good, unknown, failing, refused = phone(901), phone(902), phone(903), phone(904)
        stack.add_leads([good, failing])
        call_ids = await stack.originate([good, unknown])
        await stack.until_all(call_ids, {"completed"}, seconds=120)
        # The CRM fails, then refuses our key: the call ends failed, its error recorded.
        crm = stack.sims.nethunt if integration == "sofa" else stack.sims.keycrm
        crm.fail_next(500, times=3)
        crm.fail_next(401, times=50, body={"message": "Invalid credentials"})
        call_ids += await stack.originate([failing])
        await stack.until_all(call_ids[-1:], {"completed", "failed"}, seconds=180)
        crm._failures.clear()
        # The voice assistant refuses the call outright (a 4xx): failed, no retry.
        stack.sims.voice.fail_next(400, times=1, body={"detail": "bad request"})
        call_ids += await stack.originate([refused])
        await stack.until_all(call_ids[-1:], {"failed"}, seconds=60)
        # The secrets really were used: each peer received its own.
        assert any(
            r.header("authorization") == f"Bearer {values['VOICE']}" for r in stack.sims.voice.requests
        )
        texts = await everything_said(stack, call_ids)
        assert any(phone(901) in t for t in texts), "the decoded payloads are what is searched"
        for name, canary in values.items():
            leaked = [t[max(0, t.find(canary) - 80) : t.find(canary) + 40] for t in texts if canary in t]
            assert not leaked, f"the {name} secret leaked: {leaked[:2]}"
        # Nor may the gateway's own token, sent by the caller, come back.
        assert all(HOOK_TOKEN not in t for t in texts)
    finally:
        await stack.close()
