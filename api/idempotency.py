"""The keys that make a repeated request run once, and whose they are.

    scope = caller_scope(request, definition.auth, settings)   # "anon", or "c" + 16 hex digits
    key = scoped_idempotency_key(scope, "order-42")             # "c1f…@order-42"
    key = scoped_dedup_key(scope, "recordId:s.rec-1")           # "c1f…:recordId:s.rec-1"
    digest = body_digest(payload)                               # the request, to tell a reused key

A key is stored per integration and handler (`happ_dedup`'s columns, the workflow id's prefix)
and starts with the caller's scope: a digest of the credential that authenticated the request,
never the credential itself. Two callers sending the same `Idempotency-Key`, or events with the
same record id, never get each other's answers. The scope contains neither `@` nor `:`, so an
`Idempotency-Key` (after `@`) and a dedup field's key (after `:`, see `Dedup.key_of`) never meet.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json

from fastapi import Request
from pydantic import BaseModel

from api.deps import bearer_token
from happ_integ.errors import ValidationFailed
from happ_integ.handler import Auth, BearerAuth
from happ_integ.keys import KeyRing
from happ_integ.settings import Settings

# How long an Idempotency-Key is remembered when the handler declares no `dedup` of its own.
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
ANONYMOUS = "anon"


def caller_scope(request: Request, auth: Auth, settings: Settings) -> str:
    """Whose request this is, as a short digest. Call it once authentication has passed.

    Bearer: the token presented. ElevenLabs: the signing secret's name (only its holder signs).
    Public routes (`auth="none"`): one scope for everyone. The digest is an HMAC keyed by a key
    derived from HAPP_SECRET_KEY, so it shows in workflow ids without letting anyone test
    guesses of a token against it.
    """
    if auth is None:
        return ANONYMOUS
    if isinstance(auth, BearerAuth):
        credential = f"bearer\0{auth.secret}\0{bearer_token(request) or ''}"
    else:
        credential = f"elevenlabs\0{auth.secret}"
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else ""
    digest = hmac.new(_scope_key(secret_key), credential.encode("utf-8", "surrogatepass"), hashlib.sha256)
    return "c" + digest.hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def _scope_key(secret_key: str) -> bytes:
    # Derived from the key that encrypts now: rotating HAPP_SECRET_KEY starts new scopes, so a
    # key sent both before and after the rotation's deploy runs once more.
    try:
        raw = KeyRing.parse(secret_key, "HAPP_SECRET_KEY").raw[0]
    except ValidationFailed:  # no usable key (the API then cannot read secrets either): still stable
        raw = ""
    return hashlib.sha256(b"happ-integ caller scope\0" + raw.encode()).digest()


def scoped_idempotency_key(scope: str, header: str) -> str:
    return f"{scope}@{header}"


def scoped_dedup_key(scope: str, field_key: str) -> str:
    return f"{scope}:{field_key}"


def body_digest(payload: BaseModel) -> str:
    """The validated payload's digest: the same request sent again (even re-serialized) matches."""
    text = json.dumps(
        payload.model_dump(mode="json", by_alias=True),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
