"""Late resolution of `{{secret:NAME:TAG}}` references, inside the activity that needs the value.

    tags = issue_tags(res, "sofa", ["NETHUNT_API_KEY"])       # creds.get: this run's tags
    value = await SecretResolver(res, "sofa").resolve(text)    # a reference of this run → its value

A reference resolves only in the run it was handed to. Its tag is an HMAC, with a key derived from
HAPP_SECRET_KEY (only workers and the API hold it), over the integration, the secret's name and
the run: in a durable run the workflow id and the run id Temporal gave it, in an inline run a random
id of that run. The tags are in the run's history (the output of `creds.get`), so a caller who read
one there can type the reference into a payload; it is still plain text to every other run,
including a later run under the same workflow id (a reused `Idempotency-Key`), because that run has
another run id. Text a payload carries when a run starts cannot hold that run's tags: they do not
exist before it starts.

One limit follows: a reference is not valid in another run. Do not store one (cache, table) to use
later; call `ctx.creds.get()` in the run that needs it. After a Temporal reset, the references the
run got before the reset point belong to the old run id and stay text.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from temporalio import activity

from happ_integ.errors import SecretMissing
from happ_integ.keys import KeyRing
from happ_integ.logs.redact import Redactor
from happ_integ.ops.resources import Resources
from happ_integ.secrets import SECRET_REFERENCE, TAG_LENGTH

# The run an inline operation belongs to: set by the inline executor around each operation.
_INLINE_RUN: ContextVar[str | None] = ContextVar("happ_inline_run", default=None)
# Operations called outside any run (a script or a test calling an operation itself) share one
# random run of this process: its tags are never seen by anything else.
_PROCESS_RUN = "process:" + secrets.token_hex(16)


def new_inline_run() -> str:
    """A fresh run id for an inline run: `with inline_run(new_inline_run()): ...`."""
    return "inline:" + secrets.token_hex(16)


@contextmanager
def inline_run(run: str) -> Iterator[None]:
    """Operations called inside belong to the inline run `run` (its references, its tags)."""
    token = _INLINE_RUN.set(run)
    try:
        yield
    finally:
        _INLINE_RUN.reset(token)


def current_run() -> str:
    """The run the operation being executed belongs to: Temporal's ids inside an activity (local
    or not), else the inline run, else this process."""
    if activity.in_activity():
        info = activity.info()
        return f"workflow:{info.workflow_namespace}/{info.workflow_id}/{info.workflow_run_id}"
    return _INLINE_RUN.get() or _PROCESS_RUN


class ReferenceTags:
    """Reference tags for one HAPP_SECRET_KEY key ring ("new,old" while rotating: the first key
    issues, every key checks, so a run that got its references before a rotation still resolves
    them)."""

    def __init__(self, secret_key: str) -> None:
        # A key of their own, derived with its own label: nothing else made from HAPP_SECRET_KEY
        # (the secrets' ciphers, the tags of older releases) can stand in for it.
        self._keys = [
            hashlib.sha256(b"happ-secret-reference-of-a-run v2:" + part.encode()).digest()
            for part in KeyRing.parse(secret_key, "HAPP_SECRET_KEY").raw
        ]

    def issue(self, integration: str, name: str, run: str) -> str:
        return self._tag(self._keys[0], integration, name, run)

    def valid(self, integration: str, name: str, tag: str, run: str) -> bool:
        return any(hmac.compare_digest(self._tag(key, integration, name, run), tag) for key in self._keys)

    @staticmethod
    def _tag(key: bytes, integration: str, name: str, run: str) -> str:
        message = "\x00".join((integration, name, run)).encode()
        return hmac.new(key, message, hashlib.sha256).hexdigest()[:TAG_LENGTH]


@functools.lru_cache(maxsize=4)
def _tags_for(secret_key: str) -> ReferenceTags:
    return ReferenceTags(secret_key)


def reference_tags(res: Resources) -> ReferenceTags:
    return _tags_for(res.settings.require_secret_key())


def issue_tags(res: Resources, integration: str, names: Iterable[str]) -> dict[str, str]:
    """The tags of `names` for the current run: what `creds.get` hands the handler."""
    tags, run = reference_tags(res), current_run()
    return {name: tags.issue(integration, name, run) for name in names}


class SecretResolver:
    """Resolves references (`{{secret:NAME:TAG}}` of this run) for one integration into values read
    from its store, and remembers what it revealed, to redact it after."""

    def __init__(self, res: Resources, integration: str) -> None:
        self._res = res
        self._store = res.creds(integration)
        self._integration = integration
        self._run = current_run()
        self._values: dict[str, str] = {}
        # A value an outside service echoes back becomes its name again, never the value.
        self._echo = Redactor(mask_credentials=False)

    async def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return await self._resolve_text(value)
        if isinstance(value, dict):
            return {k: await self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.resolve(v) for v in value]
        return value

    async def named(self, name: str) -> str:
        """A secret by name, for an operation's own defaults (never from caller-supplied text)."""
        if name not in self._values:
            secret = await self._store.reveal(name)
            if not secret:
                raise SecretMissing(
                    f"secret {name} of integration {self._integration!r} is not set "
                    f"(PUT /{self._integration}/secrets)",
                    secret=name,
                )
            self._values[name] = secret
            self._echo.add_secret(secret, "{{secret:" + name + "}}")
        return self._values[name]

    async def _resolve_text(self, text: str) -> str:
        # Only references `creds.get` handed to this very run carry a valid tag: reference text
        # typed into a payload (one copied from another run's history included) or echoed by a
        # CRM stays plain text and never becomes a secret value.
        found = SECRET_REFERENCE.findall(text)
        if not found:
            return text
        tags = reference_tags(self._res)
        valid = {name for name, tag in found if tags.valid(self._integration, name, tag, self._run)}
        for name in valid:
            await self.named(name)
        return SECRET_REFERENCE.sub(
            lambda match: self._values[match.group(1)] if match.group(1) in valid else match.group(0), text
        )

    def redact(self, value: Any) -> Any:
        """Put a name back wherever an outside service echoed a revealed value."""
        return self._echo.scrub_all(value)
