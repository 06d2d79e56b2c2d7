"""Example handlers of each kind (inline, durable, event-only, scheduled): `make dev` serves them under /example.

A demo, so `dev_only`: `happ api` and `happ worker` load it only when HAPP_INTEGRATIONS names it.
Every route takes the integration's WEBHOOK_TOKEN (`Authorization: Bearer …`), the default of
`define_handler`; set it with `PUT /example/secrets {"WEBHOOK_TOKEN": "…"}`
(`make dev ARGS=--simulate` sets `sim-webhook-token`).
"""

from happ_integ import Integration, Scheduled, handlers_from
from integrations.example import handlers
from integrations.example.config import DEFAULT_CONFIGS
from integrations.example.migrations import MIGRATIONS

integration = Integration(
    name="example",
    handlers=handlers_from(handlers),
    migrations=MIGRATIONS,
    secrets=[
        "WEBHOOK_TOKEN",
        "SAAS_AUTH_TOKEN",
        "SAAS_ASSISTANT_ID",
        "NETHUNT_EMAIL",
        "NETHUNT_API_KEY",
        "NETHUNT_FOLDER_ID",
    ],
    default_configs=DEFAULT_CONFIGS,
    scheduled=[Scheduled(cron="0 * * * *", handler="retry", payload={})],
    dev_only=True,
)
