"""sofa: calls the leads of a NetHunt folder. The lookup greets a lead by name; the post-call
step writes the outcome, a call log and the summary back to the lead's record.

Try it against the simulated peers (the simulated NetHunt holds the demo lead +380994829573):

    HAPP_INTEGRATIONS=sofa make dev ARGS=--simulate
    happ call sofa +380994829573
    happ calls sofa

Against the real NetHunt: `happ secrets set sofa NETHUNT_EMAIL` (and NETHUNT_API_KEY,
NETHUNT_FOLDER_ID), the field names with `happ config set sofa crm_fields '{"status": "…"}'`.
"""

from happ_integ import CallFlow, Integration, handlers_from
from integrations.sofa import handlers
from integrations.sofa.config import DEFAULT_CONFIGS
from integrations.sofa.migrations import MIGRATIONS

integration = Integration(
    name="sofa",
    handlers=handlers_from(handlers),
    migrations=MIGRATIONS,
    secrets=["NETHUNT_EMAIL", "NETHUNT_API_KEY", "NETHUNT_FOLDER_ID"],
    default_configs=DEFAULT_CONFIGS,
    call_flow=CallFlow(lookup="crm-lookup", postcall="crm-postcall"),
)
