"""Late resolution of `{{secret:NAME:TAG}}` references, inside the activity that needs the value."""

from __future__ import annotations

from typing import Any

from happ_integ.errors import SecretMissing
from happ_integ.logs.redact import Redactor
from happ_integ.ops.resources import Resources
from happ_integ.secrets import SECRET_PLACEHOLDER


class SecretResolver:
    """Resolves references for one integration and remembers what it revealed, to redact it after."""

    def __init__(self, res: Resources, integration: str) -> None:
        self._store = res.creds(integration)
        self._box = res.box
        self._integration = integration
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
        # Only references handed out by `creds.get` carry a valid tag: a placeholder typed into a
        # payload (or echoed by a CRM) stays plain text and never becomes a secret value.
        valid = {
            name
            for name, tag in SECRET_PLACEHOLDER.findall(text)
            if self._box.tag_matches(self._integration, name, tag)
        }
        for name in valid:
            await self.named(name)
        return SECRET_PLACEHOLDER.sub(
            lambda match: self._values[match.group(1)] if match.group(1) in valid else match.group(0), text
        )

    def redact(self, value: Any) -> Any:
        """Put a name back wherever an outside service echoed a revealed value."""
        return self._echo.scrub_all(value)
