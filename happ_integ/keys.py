"""The key ring: the one parser of the key settings (`HAPP_SECRET_KEY`, `HAPP_PAYLOAD_KEY`).

    keys = KeyRing.parse(settings.require_secret_key(), "HAPP_SECRET_KEY")   # "new,old" rotates
    keys.fernet.encrypt(b"…")       # MultiFernet: the first key encrypts, every key decrypts
    keys.raw[0]                     # the key that encrypts now, e.g. to derive other keys from

A value is one key, or several separated by commas while rotating (newest first); each key is
written in Fernet's format. What is made from the ring: the payload codec's Fernet
(`HAPP_PAYLOAD_KEY`); from `HAPP_SECRET_KEY`, the box's AES-GCM keys (`happ_integ.stores.creds`),
the reference tags (`happ_integ.ops.secrets`), the query roles' passwords and the callers'
idempotency scopes, each derived with a label of its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.fernet import Fernet, MultiFernet
from pydantic import SecretStr

from happ_integ.errors import ValidationFailed


@dataclass(frozen=True)
class KeyRing:
    """One key setting, parsed: `raw` the keys newest first, `fernet` the MultiFernet over them."""

    raw: tuple[str, ...]
    fernet: MultiFernet

    @classmethod
    def parse(cls, value: str | SecretStr | None, setting: str) -> KeyRing:
        text = value.get_secret_value() if isinstance(value, SecretStr) else (value or "")
        parts = tuple(part.strip() for part in text.split(",") if part.strip())
        if not parts:
            raise ValidationFailed(f"{setting} is empty")
        try:
            fernets = [Fernet(part.encode()) for part in parts]
        except (ValueError, TypeError):
            raise ValidationFailed(
                f"{setting} is not a Fernet key (or a comma-separated list of them): "
                "generate one with `python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'`"
            ) from None
        return cls(parts, MultiFernet(fernets))

    @property
    def key_id(self) -> str:
        """Names the encrypting key without revealing it (helps while rotating)."""
        return hashlib.sha256(self.raw[0].encode()).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"KeyRing(<{len(self.raw)} key(s)>)"


def generate_key() -> str:
    return Fernet.generate_key().decode()
