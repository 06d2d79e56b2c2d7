"""Encryption of every Temporal payload, so history at rest holds no readable data (no phone number,
no CRM variable, no transcript summary).

    converter = data_converter(settings.payload_key)      # pydantic JSON, then Fernet when a key is set
    require_payload_encryption(settings, "happ api")       # at start: no key, no start (unless `off`)

Set `HAPP_PAYLOAD_KEY` (Fernet keys, comma-separated to rotate) on every API and worker process
and every `happ` command that talks to Temporal; `happ dev` generates one into its data folder.
Without it `happ api`, `happ worker` and those commands refuse to start, unless
`HAPP_PAYLOAD_ENCRYPTION=off` says out loud to run without (a warning at start). The Web UI shows
encrypted payloads as such; the gateway's `/codec` endpoint decodes them for an operator signed in
with the admin token. Payloads written before encryption was turned on stay readable: `decode`
passes anything not encrypted through as it is.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from happ_integ.keys import KeyRing

if TYPE_CHECKING:
    from happ_integ.settings import Settings

ENCODING = b"binary/encrypted"
log = logging.getLogger("happ.codec")


class PayloadEncryptionRequired(RuntimeError):
    """A process that talks to Temporal was started without HAPP_PAYLOAD_KEY."""


def require_payload_encryption(settings: Settings, process: str) -> None:
    """Refuse to start `process` without a payload key, unless HAPP_PAYLOAD_ENCRYPTION=off (a warning).

    Every API, worker and `happ` command must encrypt: one client without the key would write
    phone numbers into history in clear, and one worker without it cannot read encrypted runs.
    """
    if settings.payload_key is not None:
        KeyRing.parse(settings.payload_key, "HAPP_PAYLOAD_KEY")  # a malformed key fails now, not mid-call
        return
    if settings.payload_encryption == "off":
        log.warning(
            "%s: payload encryption is off (HAPP_PAYLOAD_ENCRYPTION=off): Temporal history keeps phone "
            "numbers, CRM data and summaries readable to anyone who can read it",
            process,
        )
        return
    raise PayloadEncryptionRequired(
        f"{process}: HAPP_PAYLOAD_KEY is not set, so Temporal history would keep phone numbers and CRM "
        "data readable. Set the same HAPP_PAYLOAD_KEY on every API, worker and happ command (generate "
        "one: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'), "
        "or set HAPP_PAYLOAD_ENCRYPTION=off to run without encryption"
    )


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: str) -> None:
        parsed = KeyRing.parse(keys, "HAPP_PAYLOAD_KEY")
        self._fernet = parsed.fernet
        # Which key encrypted a payload, without revealing the key: helps during rotation.
        self._key_id = parsed.key_id.encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [
            Payload(
                metadata={"encoding": ENCODING, "encryption-key-id": self._key_id},
                data=self._fernet.encrypt(p.SerializeToString()),
            )
            for p in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        decoded = []
        for p in payloads:
            if p.metadata.get("encoding") != ENCODING:
                decoded.append(p)
                continue
            try:
                decoded.append(Payload.FromString(self._fernet.decrypt(p.data)))
            except InvalidToken:
                raise ValueError(
                    "cannot decrypt a payload: HAPP_PAYLOAD_KEY does not include the key that "
                    f"encrypted it (key id {p.metadata.get('encryption-key-id', b'?').decode()})"
                ) from None
        return decoded


def data_converter(payload_key: str | None) -> DataConverter:
    if not payload_key:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=EncryptionCodec(payload_key))
