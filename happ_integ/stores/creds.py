"""The secrets store: an integration's secrets, sealed at rest by the box (`SecretBox`, keys from
HAPP_SECRET_KEY's key ring), each bound to its place.

    box = SecretBox(settings.require_secret_key())      # "new_key,old_key" while rotating
    creds = CredsStore(pool, "sofa", box)
    await creds.ensure_placeholders(["NETHUNT_EMAIL", "NETHUNT_API_KEY"])
    await creds.set_many({"NETHUNT_API_KEY": "…", "NETHUNT_EMAIL": ""})   # "" clears a value
    await creds.status()                                 # {"NETHUNT_API_KEY": True, "NETHUNT_EMAIL": False}
    api_key = await creds.reveal("NETHUNT_API_KEY")

No value ever appears in an exception, a log line or `status()`. Each CredsStore sees its own
integration's rows only. Handlers never see a value from here: `ctx.creds.get()` answers
references (`happ_integ.secrets`), which activities resolve (`happ_integ.ops.secrets`).
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import ClassVar

import asyncpg
from cryptography.exceptions import InvalidTag
from cryptography.fernet import InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

from happ_integ.errors import NonRetryableError, ValidationFailed
from happ_integ.json_limits import check_text
from happ_integ.keys import KeyRing, generate_key
from happ_integ.stores.changes import ChangeFeed
from happ_integ.stores.db import check_integration
from happ_integ.stores.schema import with_core_schema

SECRET_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")

_UPSERT = """
INSERT INTO happ_secrets (integration, name, ciphertext) VALUES ($1, $2, $3)
ON CONFLICT (integration, name) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated_at = now()
"""
_PLACEHOLDER = """
INSERT INTO happ_secrets (integration, name, ciphertext) VALUES ($1, $2, NULL)
ON CONFLICT (integration, name) DO NOTHING RETURNING name
"""


class SecretKeyMismatch(NonRetryableError):
    """A stored secret cannot be decrypted with HAPP_SECRET_KEY: the key changed without rotation."""

    status_code: ClassVar[int] = 500


_VERSION = b"\x01"
_NONCE = 12
_KEY_ID = 8


class SecretBox:
    """The box that seals secret values for the store: AES-256-GCM, each value bound to its
    integration and name; its keys come from HAPP_SECRET_KEY's key ring (rotation by keys).

    box = SecretBox(SecretBox.generate_key())            # HAPP_SECRET_KEY: "new_key,old_key" while rotating
    token = box.encrypt("s3cret", integration="sofa", name="API_KEY")
    box.decrypt(token, integration="sofa", name="API_KEY")   # → "s3cret"
    box.decrypt(token, integration="keycrm", name="API_KEY") # SecretKeyMismatch: bound elsewhere

    The integration and the name are the cipher's associated data, so a ciphertext copied into
    another integration's row or under another secret's name does not decrypt. The first key
    encrypts; every key decrypts (a token names its key by a short id). A token written before
    secrets were bound (Fernet) still decrypts, and `rotate` rewrites it bound, under the first key.
    """

    def __init__(self, key: str | SecretStr) -> None:
        keys = KeyRing.parse(key, "HAPP_SECRET_KEY")
        self._fernet = keys.fernet
        self._aead: dict[bytes, AESGCM] = {}
        self._first_id = b""
        for i, part in enumerate(keys.raw):
            material = HKDF(
                algorithm=hashes.SHA256(), length=32, salt=None, info=b"happ-secret-box v1"
            ).derive(base64.urlsafe_b64decode(part))
            key_id = hashlib.sha256(material).digest()[:_KEY_ID]
            self._aead[key_id] = AESGCM(material)
            if i == 0:
                self._first_id = key_id

    def __repr__(self) -> str:
        return "SecretBox(<redacted>)"

    @staticmethod
    def generate_key() -> str:
        return generate_key()

    @staticmethod
    def _place(integration: str, name: str) -> bytes:
        return f"happ-secret:{integration}:{name}".encode()

    def encrypt(self, plaintext: str, *, integration: str, name: str) -> bytes:
        nonce = os.urandom(_NONCE)
        sealed = self._aead[self._first_id].encrypt(nonce, plaintext.encode(), self._place(integration, name))
        return _VERSION + self._first_id + nonce + sealed

    def decrypt(self, token: bytes, *, integration: str, name: str) -> str:
        token = bytes(token)
        where = f"secret {name} of {integration}"
        if not token.startswith(_VERSION):
            return self._legacy(token, where)
        key_id = token[1 : 1 + _KEY_ID]
        aead = self._aead.get(key_id)
        if aead is None:
            raise SecretKeyMismatch(
                f"cannot decrypt {where}: HAPP_SECRET_KEY does not include the key it was encrypted with "
                "(while rotating, set HAPP_SECRET_KEY=new_key,old_key)"
            )
        nonce, sealed = token[1 + _KEY_ID : 1 + _KEY_ID + _NONCE], token[1 + _KEY_ID + _NONCE :]
        try:
            return aead.decrypt(nonce, sealed, self._place(integration, name)).decode()
        except InvalidTag:
            raise SecretKeyMismatch(
                f"cannot decrypt {where}: it was encrypted for another integration or secret name "
                "(a ciphertext copied from elsewhere), or it was altered"
            ) from None

    def rotate(self, token: bytes, *, integration: str, name: str) -> bytes:
        """`token` (under any key, bound or not) re-encrypted under the first key, bound to its place."""
        return self.encrypt(
            self.decrypt(token, integration=integration, name=name), integration=integration, name=name
        )

    def _legacy(self, token: bytes, where: str) -> str:
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken:
            raise SecretKeyMismatch(
                f"cannot decrypt {where}: HAPP_SECRET_KEY does not match the key it was encrypted with "
                "(while rotating, set HAPP_SECRET_KEY=new_key,old_key)"
            ) from None


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not SECRET_NAME.match(name):
        raise ValidationFailed(f"invalid secret name {name!r}: use A-Z, 0-9 and _, starting with a letter")
    return name


class CredsStore:
    """One integration's secrets store (what `ctx.creds` reads); see the module docstring for usage.

    `on_reveal` is called with every value read, e.g. to let a log redactor mask it.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        integration: str,
        box: SecretBox,
        *,
        on_reveal: Callable[[str], None] | None = None,
        changes: ChangeFeed | None = None,
    ) -> None:
        self.pool = pool
        self.integration = check_integration(integration)
        self.box = box
        self._on_reveal = on_reveal
        self._changes = changes

    async def set_many(self, values: Mapping[str, str]) -> list[str]:
        """Set (or with "" clear) each named secret, all or none; return the names written."""
        rows: list[tuple[str, str, bytes | None]] = []
        for name, value in values.items():
            _check_name(name)
            if not isinstance(value, str):
                raise ValidationFailed(f"secret {name} must be a string, not {type(value).__name__}")
            check_text(value, f"secret {name}")
            sealed = self.box.encrypt(value, integration=self.integration, name=name) if value else None
            rows.append((self.integration, name, sealed))

        async def write() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.executemany(_UPSERT, rows)

        if rows:
            await with_core_schema(self.pool, write, redact=True)
            self._changed()
        return [name for _, name, _ in rows]

    async def status(self) -> dict[str, bool]:
        """Name → whether a value is set; never the values."""
        if self._changes is not None:
            return {name: token is not None for name, token in sorted((await self._rows()).items())}
        rows = await with_core_schema(
            self.pool,
            lambda: self.pool.fetch(
                "SELECT name, ciphertext IS NOT NULL AS is_set FROM happ_secrets"
                " WHERE integration = $1 ORDER BY name",
                self.integration,
            ),
            redact=True,
        )
        return {r["name"]: r["is_set"] for r in rows}

    async def reveal(self, name: str) -> str | None:
        """The plaintext of one secret, or None when it is missing or cleared."""
        _check_name(name)
        if self._changes is not None:
            token = (await self._rows()).get(name)
            return None if token is None else self._open(name, token)
        token = await with_core_schema(
            self.pool,
            lambda: self.pool.fetchval(
                "SELECT ciphertext FROM happ_secrets WHERE integration = $1 AND name = $2",
                self.integration,
                name,
            ),
            redact=True,
        )
        return None if token is None else self._open(name, token)

    async def reveal_some(self, *names: str) -> dict[str, str]:
        """The plaintext of each of `names` that is set, in one read: name → value."""
        for name in names:
            _check_name(name)
        if self._changes is not None:
            stored = await self._rows()
            return {
                name: self._open(name, token) for name in names if (token := stored.get(name)) is not None
            }
        rows = await with_core_schema(
            self.pool,
            lambda: self.pool.fetch(
                "SELECT name, ciphertext FROM happ_secrets"
                " WHERE integration = $1 AND name = ANY($2::text[]) AND ciphertext IS NOT NULL",
                self.integration,
                list(names),
            ),
            redact=True,
        )
        return {r["name"]: self._open(r["name"], r["ciphertext"]) for r in rows}

    async def reveal_all(self) -> dict[str, str]:
        """Every secret that is set, name → plaintext."""
        rows = await with_core_schema(
            self.pool,
            lambda: self.pool.fetch(
                "SELECT name, ciphertext FROM happ_secrets"
                " WHERE integration = $1 AND ciphertext IS NOT NULL ORDER BY name",
                self.integration,
            ),
            redact=True,
        )
        return {r["name"]: self._open(r["name"], r["ciphertext"]) for r in rows}

    async def ensure_placeholders(self, names: Iterable[str]) -> list[str]:
        """Add an unset row for each name that has none; return the names added."""
        checked = [_check_name(name) for name in names]

        async def insert() -> list[str]:
            created: list[str] = []
            async with self.pool.acquire() as conn, conn.transaction():
                for name in checked:
                    if await conn.fetchval(_PLACEHOLDER, self.integration, name):
                        created.append(name)
            return created

        created = await with_core_schema(self.pool, insert, redact=True)
        self._changed()
        return created

    async def rotate_all(self) -> int:
        """Re-encrypt every set secret with the first key of the box; return how many.

        Run after putting a new key first in HAPP_SECRET_KEY; then the old key can be dropped.
        """

        async def rotate() -> int:
            async with self.pool.acquire() as conn, conn.transaction():
                rows = await conn.fetch(
                    "SELECT name, ciphertext FROM happ_secrets"
                    " WHERE integration = $1 AND ciphertext IS NOT NULL FOR UPDATE",
                    self.integration,
                )
                fresh = [
                    (
                        self.integration,
                        r["name"],
                        self.box.rotate(r["ciphertext"], integration=self.integration, name=r["name"]),
                    )
                    for r in rows
                ]
                await conn.executemany(_UPSERT, fresh)
                return len(fresh)

        rotated = await with_core_schema(self.pool, rotate, redact=True)
        self._changed()
        return rotated

    def _changed(self) -> None:
        """This process reads its own write at once; the others hear PostgreSQL's notification."""
        if self._changes is not None:
            self._changes.forget("secrets", self.integration)

    async def _rows(self) -> dict[str, bytes | None]:
        """The integration's secrets, still sealed (None: a placeholder, not set), kept in memory
        until one changes: what is kept is ciphertext, and each value is opened where it is used."""
        assert self._changes is not None

        async def load() -> dict[str, bytes | None]:
            rows = await with_core_schema(
                self.pool,
                lambda: self.pool.fetch(
                    "SELECT name, ciphertext FROM happ_secrets WHERE integration = $1", self.integration
                ),
                redact=True,
            )
            return {r["name"]: r["ciphertext"] for r in rows}

        return await self._changes.cached("secrets", self.integration, load)

    def _open(self, name: str, token: bytes) -> str:
        value = self.box.decrypt(token, integration=self.integration, name=name)
        if self._on_reveal is not None:
            self._on_reveal(value)
        return value
