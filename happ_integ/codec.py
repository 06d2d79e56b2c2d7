"""Optional encryption of every Temporal payload, so history at rest holds no readable data.

    converter = data_converter(settings.payload_key)      # pydantic JSON, then Fernet when a key is set

Set `HAPP_PAYLOAD_KEY` (Fernet keys, comma-separated to rotate) on every API and worker process.
The Web UI shows encrypted payloads as such; the gateway's `/codec` endpoint decodes them for an
operator signed in with the admin token.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from cryptography.fernet import InvalidToken
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

from happ_integ.keys import FernetKeys

ENCODING = b"binary/encrypted"


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: str) -> None:
        parsed = FernetKeys.parse(keys, "HAPP_PAYLOAD_KEY")
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
