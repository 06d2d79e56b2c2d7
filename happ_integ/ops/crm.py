"""crm.* operations: NetHunt, with its credentials resolved inside the activity.

The writes (`writes=True`) are made once by a durable run however often their activity is tried.
Creating a comment or a call log twice would leave two of them on the record, so after an attempt
that was cut short their `landed` check looks for the item among the folder's recent ones first.
An update with `overwrite` is checked by reading the record back: when it already holds the new
values, the update is not sent again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel

import happ_integ.ops.models as m
from happ_integ.clients.nethunt import NetHuntApi
from happ_integ.ops.operation import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import SecretResolver


async def _nethunt(res: Resources, arg: m.CrmAuth) -> tuple[NetHuntApi, SecretResolver]:
    secrets = SecretResolver(res, arg.integration)
    email = await secrets.resolve(arg.email) if arg.email else await secrets.named("NETHUNT_EMAIL")
    api_key = await secrets.resolve(arg.api_key) if arg.api_key else await secrets.named("NETHUNT_API_KEY")
    api = NetHuntApi(res.http, res.settings.nethunt_api_url, email, api_key)
    return api, secrets


async def _folder(secrets: SecretResolver, folder_id: str | None) -> str:
    return str(await secrets.resolve(folder_id)) if folder_id else await secrets.named("NETHUNT_FOLDER_ID")


def _dump(record: BaseModel | dict[str, Any] | None, secrets: SecretResolver) -> dict[str, Any] | None:
    if record is None:
        return None
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return secrets.redact(data)


@operation("crm.search_records", m.CrmSearchRecords, m.CrmRecords)
async def search_records(res: Resources, arg: m.CrmSearchRecords) -> m.CrmRecords:
    api, secrets = await _nethunt(res, arg)
    records = await api.search_records(await secrets.resolve(arg.folder_id), arg.query, limit=arg.limit)
    return m.CrmRecords(records=[r for r in (_dump(rec, secrets) for rec in records) if r is not None])


@operation("crm.get_record", m.CrmGetRecord, m.CrmRecord)
async def get_record(res: Resources, arg: m.CrmGetRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.get_record(await secrets.resolve(arg.folder_id), arg.record_id), secrets)
    )


async def _updated_record(res: Resources, arg: m.CrmUpdateRecord, since: datetime) -> m.CrmRecord | None:
    """The record, when a cut-short update already gave it every new value (overwrite only: an
    update that adds to a multi-value field cannot be told from one that did not happen)."""
    if not arg.overwrite:
        return None
    api, secrets = await _nethunt(res, arg)
    record = await api.get_record(await _folder(secrets, arg.folder_id), arg.record_id)
    if record is None:
        return None
    if all(record.fields.get(name) in (value, [value]) for name, value in arg.fields.items()):
        return m.CrmRecord(record=_dump(record, secrets))
    return None


@operation("crm.update_record", m.CrmUpdateRecord, m.CrmRecord, writes=True, landed=_updated_record)
async def update_record(res: Resources, arg: m.CrmUpdateRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.update_record(arg.record_id, arg.fields, overwrite=arg.overwrite), secrets)
    )


@operation("crm.create_record", m.CrmCreateRecord, m.CrmRecord, writes=True)
async def create_record(res: Resources, arg: m.CrmCreateRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.create_record(await secrets.resolve(arg.folder_id), arg.fields), secrets)
    )


# How far before the first attempt began the landed checks look: NetHunt's clock may differ from ours.
_CLOCK_SLACK = timedelta(minutes=1)


def _same_item(item: dict[str, Any], record_id: str, text: str) -> bool:
    return str(item.get("recordId") or "") == record_id and str(item.get("text") or "") == text


Feed = Callable[..., Awaitable[list[dict[str, Any]]]]


async def _created(
    res: Resources, arg: m.CrmCreateComment | m.CrmCreateCallLog, started_at: datetime, feed: Feed
) -> m.CrmItem | None:
    """The item an earlier attempt created (same record, same text, since it began), or None.
    `feed` lists the folder's recent items of that kind (`NetHuntApi.recent_comments` …)."""
    api, secrets = await _nethunt(res, arg)
    items = await feed(api, await _folder(secrets, arg.folder_id), since=started_at - _CLOCK_SLACK)
    for item in items:
        if _same_item(item, arg.record_id, arg.text):
            return m.CrmItem(item=_dump(item, secrets) or {})
    return None


async def _created_comment(res: Resources, arg: m.CrmCreateComment, started_at: datetime) -> m.CrmItem | None:
    return await _created(res, arg, started_at, NetHuntApi.recent_comments)


@operation("crm.create_comment", m.CrmCreateComment, m.CrmItem, writes=True, landed=_created_comment)
async def create_comment(res: Resources, arg: m.CrmCreateComment) -> m.CrmItem:
    api, secrets = await _nethunt(res, arg)
    # Resolved now, though only a retry's landed check reads it: a missing folder fails the first attempt.
    await _folder(secrets, arg.folder_id)
    return m.CrmItem(item=_dump(await api.create_comment(arg.record_id, arg.text), secrets) or {})


async def _created_call_log(
    res: Resources, arg: m.CrmCreateCallLog, started_at: datetime
) -> m.CrmItem | None:
    return await _created(res, arg, started_at, NetHuntApi.recent_call_logs)


@operation("crm.create_call_log", m.CrmCreateCallLog, m.CrmItem, writes=True, landed=_created_call_log)
async def create_call_log(res: Resources, arg: m.CrmCreateCallLog) -> m.CrmItem:
    api, secrets = await _nethunt(res, arg)
    await _folder(secrets, arg.folder_id)
    answer = await api.create_call_log(
        arg.record_id, arg.text, time=arg.time, duration_minutes=arg.duration_minutes
    )
    return m.CrmItem(item=_dump(answer, secrets) or {})
