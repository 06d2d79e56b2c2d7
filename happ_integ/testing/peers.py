"""The simulated peers as an env sees them: the demo data they are seeded with, and the settings
that point a process at them.

    DEMO.phone, DEMO.nethunt_record, DEMO.keycrm["card"]
    settings = Settings(**peer_settings("http://127.0.0.1:3002"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simulator.app import DEMO_PHONE, PREFIXES, SimulatorStates
from simulator.keycrm import KeyCrmState, seed_demo


@dataclass(frozen=True)
class Demo:
    """The simulated peers' demo data: one contact, +380994829573 ("Іван Петренко"), in each CRM.

        DEMO.phone, DEMO.nethunt_record, DEMO.keycrm["card"], DEMO.keycrm["callback"]

    `nethunt_record` is its NetHunt record id (folder "leads"); `keycrm` the KeyCRM ids by name:
    "card", "buyer", "pipeline", "company", "manager", and the pipeline's status ids by call
    outcome ("interested", "callback", …) plus "new", the card's status.
    """

    phone: str
    nethunt_record: str
    keycrm: Mapping[str, int]

    @classmethod
    def of(cls, sims: SimulatorStates) -> Demo:
        """The demo data of peers seeded by `SimulatorStates.demo()`, as every env's are."""
        [record] = [r.id for r in sims.nethunt.records.values() if DEMO_PHONE in r.fields.get("Phone", [])]
        # A fresh state seeded again gets the same ids (fixed ones, or the first free ones).
        return cls(phone=DEMO_PHONE, nethunt_record=record, keycrm=seed_demo(KeyCrmState()))


# Every env's peers are seeded alike, so the ids are known before any env starts.
DEMO = Demo.of(SimulatorStates.demo())


def peer_settings(base_url: str) -> dict[str, Any]:
    """The settings that point a process at the simulated peers served at `base_url`."""
    return {
        "HAPP_NETHUNT_API_URL": base_url + PREFIXES["nethunt"],
        "HAPP_KEYCRM_API_URL": base_url + PREFIXES["keycrm"],
        "HAPP_SAAS_API_URL": base_url + PREFIXES["voice"],
        "HAPP_ELEVENLABS_API_URL": base_url + PREFIXES["elevenlabs"],
        "HAPP_LLM_BASE_URL": base_url + PREFIXES["llm"],
        "HAPP_LLM_MODEL": "sim-analyst",
        "HAPP_LLM_API_KEY": "sim-llm-key",
        # ctx.http may reach the peers on 127.0.0.1, as `happ dev --simulate` allows.
        "HAPP_HTTP_ALLOWED_NETWORKS": "127.0.0.1",
    }
