"""SecretBox and CredsStore against a real PostgreSQL: encryption at rest, isolation, keys."""

from __future__ import annotations

import asyncpg
import pytest
from cryptography.fernet import Fernet

from happ_integ.errors import ValidationFailed
from happ_integ.stores.creds import CredsStore, SecretBox, SecretKeyMismatch

PLAINTEXT = "nh-api-key-5f2c9a"


HERE = {"integration": "sofa", "name": "API_KEY"}


def test_box_round_trip_and_rotation() -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    token = SecretBox(old).encrypt(PLAINTEXT, **HERE)
    assert PLAINTEXT.encode() not in token
    rotating = SecretBox(f"{new}, {old}")
    assert rotating.decrypt(token, **HERE) == PLAINTEXT
    rotated = rotating.rotate(token, **HERE)
    assert SecretBox(new).decrypt(rotated, **HERE) == PLAINTEXT
    with pytest.raises(SecretKeyMismatch, match="does not include the key") as err:
        SecretBox(new).decrypt(token, **HERE)
    assert PLAINTEXT not in str(err.value)
    with pytest.raises(ValidationFailed, match="HAPP_SECRET_KEY"):
        SecretBox("not-a-key")
    assert old not in repr(SecretBox(old))


def test_a_ciphertext_only_decrypts_where_it_was_written() -> None:
    box = SecretBox(SecretBox.generate_key())
    token = box.encrypt(PLAINTEXT, **HERE)
    for elsewhere in (
        {"integration": "keycrm", "name": "API_KEY"},
        {"integration": "sofa", "name": "OTHER_KEY"},
    ):
        with pytest.raises(SecretKeyMismatch, match="another integration or secret name") as err:
            box.decrypt(token, **elsewhere)
        assert PLAINTEXT not in str(err.value)
    tampered = token[:-1] + bytes([token[-1] ^ 1])
    with pytest.raises(SecretKeyMismatch):
        box.decrypt(tampered, **HERE)


def test_a_token_from_before_the_binding_still_decrypts_and_rotates_into_a_bound_one() -> None:
    key = SecretBox.generate_key()
    legacy = Fernet(key.encode()).encrypt(PLAINTEXT.encode())
    box = SecretBox(key)
    assert box.decrypt(legacy, **HERE) == PLAINTEXT
    bound = box.rotate(legacy, **HERE)
    assert box.decrypt(bound, **HERE) == PLAINTEXT
    with pytest.raises(SecretKeyMismatch):
        box.decrypt(bound, integration="keycrm", name="API_KEY")


async def test_a_row_copied_to_another_integration_does_not_decrypt(pool: asyncpg.Pool, name: str) -> None:
    box = SecretBox(SecretBox.generate_key())
    await CredsStore(pool, name, box).set_many({"API_KEY": PLAINTEXT})
    other = f"{name}_b"
    await pool.execute(
        "INSERT INTO happ_secrets (integration, name, ciphertext)"
        " SELECT $2, name, ciphertext FROM happ_secrets WHERE integration = $1",
        name,
        other,
    )
    await pool.execute(
        "INSERT INTO happ_secrets (integration, name, ciphertext)"
        " SELECT integration, 'OTHER_KEY', ciphertext FROM happ_secrets WHERE integration = $1 AND name = 'API_KEY'",
        name,
    )
    assert await CredsStore(pool, name, box).reveal("API_KEY") == PLAINTEXT
    with pytest.raises(SecretKeyMismatch):
        await CredsStore(pool, other, box).reveal("API_KEY")
    with pytest.raises(SecretKeyMismatch):
        await CredsStore(pool, name, box).reveal("OTHER_KEY")


async def test_set_status_reveal(pool: asyncpg.Pool, name: str) -> None:
    creds = CredsStore(pool, name, SecretBox(SecretBox.generate_key()))
    assert await creds.ensure_placeholders(["NETHUNT_EMAIL", "NETHUNT_API_KEY"]) == [
        "NETHUNT_EMAIL",
        "NETHUNT_API_KEY",
    ]
    assert await creds.ensure_placeholders(["NETHUNT_EMAIL", "NETHUNT_FOLDER_ID"]) == ["NETHUNT_FOLDER_ID"]
    assert await creds.set_many({"NETHUNT_API_KEY": PLAINTEXT, "NETHUNT_EMAIL": "a@b.c"}) == [
        "NETHUNT_API_KEY",
        "NETHUNT_EMAIL",
    ]
    assert await creds.status() == {
        "NETHUNT_API_KEY": True,
        "NETHUNT_EMAIL": True,
        "NETHUNT_FOLDER_ID": False,
    }
    assert await creds.reveal("NETHUNT_API_KEY") == PLAINTEXT
    assert await creds.reveal("NETHUNT_FOLDER_ID") is None
    assert await creds.reveal("UNKNOWN") is None
    await creds.set_many({"NETHUNT_EMAIL": ""})
    assert await creds.reveal_all() == {"NETHUNT_API_KEY": PLAINTEXT}
    assert (await creds.status())["NETHUNT_EMAIL"] is False
    assert await creds.ensure_placeholders(["NETHUNT_API_KEY"]) == []
    assert await creds.reveal("NETHUNT_API_KEY") == PLAINTEXT  # a placeholder never clears a value


async def test_encrypted_at_rest(pool: asyncpg.Pool, name: str) -> None:
    await CredsStore(pool, name, SecretBox(SecretBox.generate_key())).set_many({"API_KEY": PLAINTEXT})
    raw = await pool.fetchval("SELECT ciphertext FROM happ_secrets WHERE integration = $1", name)
    assert isinstance(raw, bytes) and PLAINTEXT.encode() not in raw
    dump = await pool.fetchval(
        "SELECT string_agg(t::text, '') FROM happ_secrets t WHERE integration = $1", name
    )
    assert PLAINTEXT not in dump


async def test_invalid_names_are_refused_and_nothing_is_written(pool: asyncpg.Pool, name: str) -> None:
    creds = CredsStore(pool, name, SecretBox(SecretBox.generate_key()))
    for bad in ("lower", "1ABC", "A-B", "A" * 65, ""):
        with pytest.raises(ValidationFailed, match="invalid secret name") as err:
            await creds.set_many({"GOOD": PLAINTEXT, bad: PLAINTEXT})
        assert PLAINTEXT not in str(err.value)
    with pytest.raises(ValidationFailed) as err:
        await creds.set_many({"GOOD": 12345})  # type: ignore[dict-item]
    assert "12345" not in str(err.value)
    assert await creds.status() == {}


async def test_integrations_are_isolated(pool: asyncpg.Pool, name: str) -> None:
    box = SecretBox(SecretBox.generate_key())
    await CredsStore(pool, name, box).set_many({"API_KEY": PLAINTEXT})
    other = CredsStore(pool, f"{name}b", box)
    assert await other.status() == {}
    assert await other.reveal("API_KEY") is None
    assert await other.reveal_all() == {}


async def test_wrong_key_and_rotation(pool: asyncpg.Pool, name: str) -> None:
    old, new = SecretBox.generate_key(), SecretBox.generate_key()
    await CredsStore(pool, name, SecretBox(old)).set_many({"API_KEY": PLAINTEXT})
    with pytest.raises(SecretKeyMismatch, match="HAPP_SECRET_KEY does not include the key") as err:
        await CredsStore(pool, name, SecretBox(new)).reveal("API_KEY")
    assert PLAINTEXT not in str(err.value) and old not in str(err.value) and new not in str(err.value)
    rotating = CredsStore(pool, name, SecretBox(f"{new},{old}"))
    assert await rotating.reveal("API_KEY") == PLAINTEXT
    assert await rotating.rotate_all() == 1
    assert await CredsStore(pool, name, SecretBox(new)).reveal_all() == {"API_KEY": PLAINTEXT}


async def test_on_reveal_sees_each_value(pool: asyncpg.Pool, name: str) -> None:
    seen: list[str] = []
    creds = CredsStore(pool, name, SecretBox(SecretBox.generate_key()), on_reveal=seen.append)
    await creds.set_many({"A": "one", "B": "two"})
    await creds.reveal_all()
    assert seen == ["one", "two"]
