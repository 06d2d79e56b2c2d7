"""Secrets as references: handler code holds names, activities resolve the values.

secrets = await ctx.creds.get()
if not secrets.NETHUNT_API_KEY: ...                      # is it set?
headers = {"Authorization": f"Bearer {secrets.API_TOKEN}"}  # "{{secret:API_TOKEN:TAG}}", resolved late

A reference resolves only inside the run whose `creds.get` handed it out (its tag is bound to that
run, see `happ_integ.ops.secrets`): get the secrets in the run that uses them, never store them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

# `{{secret:NAME:TAG}}`: the tag comes from `creds.get` and proves that this run's handler placed
# the reference, not a caller who typed it in (or copied it from another run's history).
TAG_LENGTH = 16  # hex digits, as the pattern below says
SECRET_PLACEHOLDER = re.compile(r"\{\{secret:([A-Z][A-Z0-9_]{0,63}):([0-9a-f]{16})\}\}")


class SecretRef:
    """A secret by name. `str()` is a placeholder that activities resolve; the value never passes here."""

    __slots__ = ("is_set", "name", "tag")

    def __init__(self, name: str, is_set: bool, tag: str = "") -> None:
        self.name = name
        self.is_set = is_set
        self.tag = tag

    def __str__(self) -> str:
        return "{{secret:" + self.name + ":" + self.tag + "}}"

    def __format__(self, spec: str) -> str:
        return str(self)

    def __bool__(self) -> bool:
        return self.is_set

    def __repr__(self) -> str:
        return f"SecretRef({self.name}, set={self.is_set})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretRef) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class Secrets(Mapping[str, SecretRef]):
    """This integration's secrets as references: `secrets.NETHUNT_API_KEY`, `secrets["X"]`."""

    def __init__(self, status: Mapping[str, bool], tags: Mapping[str, str] | None = None) -> None:
        tags = tags or {}
        self._refs = {name: SecretRef(name, is_set, tags.get(name, "")) for name, is_set in status.items()}

    def __getitem__(self, name: str) -> SecretRef:
        # An undeclared name is "unset"; its placeholder has no tag and never resolves.
        return self._refs.get(name) or SecretRef(name, False)

    def __getattr__(self, name: str) -> SecretRef:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def missing(self, *names: str) -> list[str]:
        return [name for name in names if not self[name]]

    def __repr__(self) -> str:
        states = ", ".join(f"{name}={'set' if ref else 'unset'}" for name, ref in self._refs.items())
        return f"Secrets({states})"
