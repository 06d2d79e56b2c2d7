"""keycrm: calls the buyers of a KeyCRM pipeline. The lookup finds the buyer by phone and its open
card, and greets the buyer by name; the post-call step moves the card to the status the call's
outcome maps to and writes the call's summary into the card's note (or a custom field).

Try it against the simulated peers (the simulated KeyCRM holds the demo buyer +380994829573):

    HAPP_INTEGRATIONS=keycrm make dev ARGS=--simulate
    happ call keycrm +380994829573
    happ calls keycrm

Against the real KeyCRM: `happ secrets set keycrm KEYCRM_API_KEY`, the pipeline's status ids
with `happ config set keycrm status_map '{"interested": 12, …}'`.
"""

from happ_integ import CallFlow, Integration, handlers_from
from integrations.keycrm import handlers
from integrations.keycrm.config import DEFAULT_CONFIGS
from integrations.keycrm.migrations import MIGRATIONS

integration = Integration(
    name="keycrm",
    handlers=handlers_from(handlers),
    migrations=MIGRATIONS,
    secrets=["KEYCRM_API_KEY"],
    default_configs=DEFAULT_CONFIGS,
    call_flow=CallFlow(lookup="crm-lookup", postcall="crm-postcall"),
)
