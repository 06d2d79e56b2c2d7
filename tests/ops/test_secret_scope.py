"""A secret reference resolves in the run `creds.get` handed it to, and nowhere else: not in
another run of the same workflow id, not in another inline run, not outside any run; a rotation
of HAPP_SECRET_KEY keeps the references a run already holds."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.testing import ActivityEnvironment

from happ_integ.keys import generate_key
from happ_integ.ops import Resources
from happ_integ.ops.resources import close_resources, open_resources
from happ_integ.ops.secrets import SecretResolver, inline_run, issue_tags, new_inline_run
from happ_integ.settings import Settings

INTEGRATION = "refscope"
VALUE = "tok-" + generate_key()[:20]
KEY = generate_key()


def reference(tags: dict[str, str]) -> str:
    return "Bearer {{secret:TOKEN:" + tags["TOKEN"] + "}}"


@pytest.fixture(scope="module")
async def res(pg_url: str) -> AsyncIterator[Resources]:
    resources = await open_resources(Settings(DATABASE_URL=pg_url, HAPP_SECRET_KEY=KEY), {})
    await resources.creds(INTEGRATION).set_many({"TOKEN": VALUE})
    yield resources
    await close_resources(resources)


def in_run(workflow_id: str, run_id: str) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, workflow_id=workflow_id, workflow_run_id=run_id)
    return env


async def resolve(res: Resources, text: str) -> Any:
    return await SecretResolver(res, INTEGRATION).resolve({"headers": {"Authorization": text}})


async def test_a_reference_resolves_in_its_own_durable_run_only(res: Resources) -> None:
    async def issue() -> dict[str, str]:
        return issue_tags(res, INTEGRATION, ["TOKEN"])

    text = reference(await in_run("refscope:handler:x:k1", "run-1").run(issue))
    own = await in_run("refscope:handler:x:k1", "run-1").run(resolve, res, text)
    assert own == {"headers": {"Authorization": f"Bearer {VALUE}"}}
    # The same workflow id started again (a reused Idempotency-Key) is another run; so is any other.
    for workflow_id, run_id in [("refscope:handler:x:k1", "run-2"), ("refscope:handler:y:k1", "run-1")]:
        other = await in_run(workflow_id, run_id).run(resolve, res, text)
        assert other == {"headers": {"Authorization": text}}
    assert await resolve(res, text) == {"headers": {"Authorization": text}}  # outside any run


async def test_inline_runs_do_not_share_references(res: Resources) -> None:
    first, second = new_inline_run(), new_inline_run()
    with inline_run(first):
        text = reference(issue_tags(res, INTEGRATION, ["TOKEN"]))
        assert await resolve(res, text) == {"headers": {"Authorization": f"Bearer {VALUE}"}}
    with inline_run(second):
        assert await resolve(res, text) == {"headers": {"Authorization": text}}
    assert await in_run("wf", "run").run(resolve, res, text) == {"headers": {"Authorization": text}}


async def test_a_rotated_key_keeps_the_references_a_run_holds(res: Resources) -> None:
    run = new_inline_run()
    with inline_run(run):
        text = reference(issue_tags(res, INTEGRATION, ["TOKEN"]))
    newer = generate_key()
    for keys, resolves in [(f"{newer},{KEY}", True), (newer, False)]:
        rotated = dataclasses.replace(res, settings=Settings(DATABASE_URL="unused", HAPP_SECRET_KEY=keys))
        # The stored secret still decrypts with the box the resources were opened with.
        with inline_run(run):
            answer = await resolve(rotated, text)
        assert answer == {"headers": {"Authorization": f"Bearer {VALUE}" if resolves else text}}
