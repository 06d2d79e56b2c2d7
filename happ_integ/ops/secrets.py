"""Late resolution of `{{secret:NAME}}` placeholders, inside the activity that needs the value."""

from __future__ import annotations

from typing import Any

from happ_integ.errors import SecretMissing
from happ_integ.ops.resources import Resources
from happ_integ.secrets import SECRET_PLACEHOLDER


class SecretResolver:
    """Resolves placeholders for one integration and remembers what it revealed, to redact it after."""

    def __init__(self, res: Resources, integration: str) -> None:
        self._store = res.creds(integration)
        self._integration = integration
        self._values: dict[str, str] = {}

    async def resolve(self, value: Any) -> Any:
        if isinstance(value, str):
            return await self._resolve_text(value)
        if isinstance(value, dict):
            return {k: await self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [await self.resolve(v) for v in value]
        return value

    async def _resolve_text(self, text: str) -> str:
        names = SECRET_PLACEHOLDER.findall(text)
        for name in names:
            if name not in self._values:
                secret = await self._store.reveal(name)
                if not secret:
                    raise SecretMissing(
                        f"secret {name} of integration {self._integration!r} is not set "
                        f"(PUT /{self._integration}/secrets)",
                        secret=name,
                    )
                self._values[name] = secret
        return SECRET_PLACEHOLDER.sub(lambda match: self._values[match.group(1)], text)

    def redact(self, value: Any) -> Any:
        """Put the placeholders back wherever an outside service echoed a revealed value."""
        if isinstance(value, str):
            for name, secret in self._values.items():
                if len(secret) >= 4:
                    value = value.replace(secret, "{{secret:" + name + "}}")
            return value
        if isinstance(value, dict):
            return {k: self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value
