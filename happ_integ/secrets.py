"""Secrets as references: handler code holds names, activities resolve the values.

secrets = await ctx.creds.get()
if not secrets.NETHUNT_API_KEY: ...                      # is it set?
headers = {"Authorization": f"Bearer {secrets.API_TOKEN}"}  # "{{secret:API_TOKEN:TAG}}", resolved late

A reference resolves only inside the run whose `creds.get` handed it out (its tag is bound to that
run, see `happ_integ.ops.secrets`): get the secrets in the run that uses them, never store them.

One word for each part, here and in every module that handles secrets:
- a *secret*: a named value an integration needs (`NETHUNT_API_KEY`), set with
  `PUT /{integration}/secrets`; a *placeholder* secret is one `setup` created for a declared name,
  with no value yet;
- the *store* (`CredsStore`, which `ctx.creds` reads): an integration's secrets, encrypted at rest;
- the *box* (`SecretBox`): seals a value for the store and opens it again;
- the *key ring* (`KeyRing`, parsed from `HAPP_SECRET_KEY`): the keys the box and the tags come from;
- a *reference* (`SecretRef`, text `{{secret:NAME:TAG}}`): what handler code holds instead of a
  value; `ctx.creds.get()` answers `Secrets`, this integration's references by name;
- *resolving* (`SecretResolver` in `happ_integ.ops.secrets`): an activity turning a reference of
  its own run into the value, just before it is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

# `{{secret:NAME:TAG}}`: the tag comes from `creds.get` and proves that this run's handler placed
# the reference, not a caller who typed it in (or copied it from another run's history).
TAG_LENGTH = 16  # hex digits, as the pattern below says
SECRET_REFERENCE = re.compile(r"\{\{secret:([A-Z][A-Z0-9_]{0,63}):([0-9a-f]{16})\}\}")


class SecretRef:
    """A reference to a secret, by name. `str()` is its text, `{{secret:NAME:TAG}}`, which activities
    resolve; the value never passes here."""

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
        # An undeclared name is "unset"; its reference has no tag and never resolves.
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
