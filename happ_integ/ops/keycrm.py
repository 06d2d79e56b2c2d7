"""keycrm.* operations: KeyCRM, with its API key resolved inside the activity and every request paced.

    buyers = (await find_buyers.impl(res, KeyCrmFindBuyers(integration="x", phone=…))).buyers

KeyCRM allows about 60 requests a minute per API key. Every request these operations send first
takes a turn from a `Pacer` shared by every worker process through PostgreSQL, keyed by a digest
of the API key (`happ_integ.stores.pacing`); `REQUESTS_PER_MINUTE` is the budget unless the
caller names its own (`per_minute`). A 429 answer holds the key off in that shared pacing for
KeyCRM's Retry-After (`Pacer.hold_off`), so no worker sends with that key before it has passed,
and the request is sent again on its next turn after it (`happ_integ.clients.keycrm`). A 429 that
persists, or a turn further away than the pacer waits, is a retryable error whose
`details["retry_after"]` a durable run takes as its retry delay.

`keycrm.update_card` is a write (`writes=True`): a durable run makes it once however often its
activity is tried. After an attempt that was cut short, its `landed` check reads the card back
and, when it already has the requested status, note and custom field values, does not send the
update again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

import happ_integ.ops.models as m
from happ_integ.clients.keycrm import KeyCrmApi, KeyCrmCard
from happ_integ.errors import ValidationFailed
from happ_integ.ops.operation import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import SecretResolver
from happ_integ.stores.pacing import Pacer, pacing_key

SECRET = "KEYCRM_API_KEY"
# KeyCRM's documented limit per API key; read at call time, so a test may raise it.
REQUESTS_PER_MINUTE = 60


async def _keycrm(res: Resources, arg: m.KeyCrmAuth) -> tuple[KeyCrmApi, SecretResolver]:
    secrets = SecretResolver(res, arg.integration)
    api_key = str(await secrets.resolve(arg.api_key)) if arg.api_key else await secrets.named(SECRET)
    pacer = Pacer(res.pool, pacing_key("keycrm", api_key), arg.per_minute or REQUESTS_PER_MINUTE)
    api = KeyCrmApi(res.http, res.settings.keycrm_api_url, api_key, pace=pacer.turn, hold_off=pacer.hold_off)
    return api, secrets


def _dump(item: BaseModel | None, secrets: SecretResolver) -> dict[str, Any] | None:
    if item is None:
        return None
    data: dict[str, Any] = secrets.redact(item.model_dump(mode="json", exclude_unset=True))
    return data


def _with_contact(include: str) -> str:
    """Cards are matched to a buyer by their contact's client_id: the include must bring the contact."""
    parts = [part.strip() for part in include.split(",") if part.strip()]
    if not {"contact", "contact.client"} & set(parts):
        parts.insert(0, "contact.client")
    return ",".join(parts)


@operation("keycrm.find_buyers", m.KeyCrmFindBuyers, m.KeyCrmBuyers)
async def find_buyers(res: Resources, arg: m.KeyCrmFindBuyers) -> m.KeyCrmBuyers:
    api, secrets = await _keycrm(res, arg)
    buyers = await api.find_buyer_by_phone(arg.phone, limit=arg.limit, include=arg.include)
    return m.KeyCrmBuyers(buyers=[d for d in (_dump(b, secrets) for b in buyers) if d is not None])


@operation("keycrm.find_cards", m.KeyCrmFindCards, m.KeyCrmCards)
async def find_cards(res: Resources, arg: m.KeyCrmFindCards) -> m.KeyCrmCards:
    api, secrets = await _keycrm(res, arg)
    cards = await api.find_cards_by_client(
        arg.client_id,
        pipeline_id=arg.pipeline_id,
        max_pages=arg.max_pages,
        include=_with_contact(arg.include),
    )
    return m.KeyCrmCards(cards=[d for d in (_dump(c, secrets) for c in cards) if d is not None])


@operation("keycrm.get_card", m.KeyCrmGetCard, m.KeyCrmCardRead)
async def get_card(res: Resources, arg: m.KeyCrmGetCard) -> m.KeyCrmCardRead:
    api, secrets = await _keycrm(res, arg)
    return m.KeyCrmCardRead(card=_dump(await api.get_card(arg.card_id, include=arg.include), secrets))


def _card_fields(arg: m.KeyCrmUpdateCard) -> dict[str, Any]:
    """The `PUT /pipelines/cards/{id}` body: only what the caller asked to change."""
    fields: dict[str, Any] = {}
    if arg.status_id is not None:
        fields["status_id"] = arg.status_id
    if arg.note is not None:
        fields["note"] = arg.note
    if arg.custom_fields:
        fields["custom_fields"] = [
            {"uuid": uuid, "value": value} for uuid, value in arg.custom_fields.items()
        ]
    return fields


_EMPTY: tuple[Any, ...] = (None, "", [])


def _same_text(found: Any, wanted: Any) -> bool:
    return (
        str(found if found is not None else "").strip() == str(wanted if wanted is not None else "").strip()
    )


def _same_value(found: Any, wanted: Any) -> bool:
    """A custom field's value as KeyCRM shows it against the one written: KeyCRM lists only filled
    fields, answers a select's value as a list and may answer a number as text."""
    if wanted in _EMPTY:
        return found in _EMPTY
    if isinstance(found, list) and not isinstance(wanted, list):
        return len(found) == 1 and _same_text(found[0], wanted)
    if isinstance(found, list) and isinstance(wanted, list):
        return [str(v) for v in found] == [str(v) for v in wanted]
    return _same_text(found, wanted)


def _has_update(card: KeyCrmCard, arg: m.KeyCrmUpdateCard) -> bool:
    """Whether `card` already holds every value `arg` writes (the note as `note` or `manager_comment`)."""
    if arg.status_id is not None and card.status_id != arg.status_id:
        return False
    if arg.note is not None and not (
        _same_text(card.note, arg.note) or _same_text(card.manager_comment, arg.note)
    ):
        return False
    values = card.custom_values()
    return all(_same_value(values.get(uuid), value) for uuid, value in arg.custom_fields.items())


async def _updated_card(res: Resources, arg: m.KeyCrmUpdateCard, since: datetime) -> m.KeyCrmUpdated | None:
    """The card, when a cut-short update already gave it every requested value; else None."""
    api, secrets = await _keycrm(res, arg)
    card = await api.get_card(arg.card_id, include="status,custom_fields")
    if card is None or not _has_update(card, arg):
        return None
    return m.KeyCrmUpdated(card_id=arg.card_id, status=True, card=_dump(card, secrets))


@operation("keycrm.update_card", m.KeyCrmUpdateCard, m.KeyCrmUpdated, writes=True, landed=_updated_card)
async def update_card(res: Resources, arg: m.KeyCrmUpdateCard) -> m.KeyCrmUpdated:
    fields = _card_fields(arg)
    if not fields:
        raise ValidationFailed("keycrm.update_card: give a status_id, a note or custom fields to write")
    api, _ = await _keycrm(res, arg)
    return m.KeyCrmUpdated(card_id=arg.card_id, status=await api.update_card(arg.card_id, fields))
