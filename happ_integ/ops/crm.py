"""crm.* operations: NetHunt, with its credentials resolved inside the activity."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from happ_integ.ops import models as m
from happ_integ.ops import operation
from happ_integ.ops.resources import Resources
from happ_integ.ops.secrets import SecretResolver


async def _nethunt(res: Resources, arg: m.CrmAuth) -> tuple[Any, SecretResolver]:
    from happ_integ.clients.nethunt import NetHuntApi

    secrets = SecretResolver(res, arg.integration)
    email = await secrets.resolve(arg.email) if arg.email else await secrets.named("NETHUNT_EMAIL")
    api_key = await secrets.resolve(arg.api_key) if arg.api_key else await secrets.named("NETHUNT_API_KEY")
    api = NetHuntApi(res.http, res.settings.nethunt_api_url, email, api_key)
    return api, secrets


def _dump(record: BaseModel | dict[str, Any] | None, secrets: SecretResolver) -> dict[str, Any] | None:
    if record is None:
        return None
    data = record.model_dump(mode="json") if isinstance(record, BaseModel) else record
    return secrets.redact(data)


@operation("crm.search_records", m.CrmSearchRecords, m.CrmRecords)
async def crm_search_records(res: Resources, arg: m.CrmSearchRecords) -> m.CrmRecords:
    api, secrets = await _nethunt(res, arg)
    records = await api.search_records(await secrets.resolve(arg.folder_id), arg.query, limit=arg.limit)
    return m.CrmRecords(records=[r for r in (_dump(rec, secrets) for rec in records) if r is not None])


@operation("crm.get_record", m.CrmGetRecord, m.CrmRecord)
async def crm_get_record(res: Resources, arg: m.CrmGetRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.get_record(await secrets.resolve(arg.folder_id), arg.record_id), secrets)
    )


@operation("crm.update_record", m.CrmUpdateRecord, m.CrmRecord)
async def crm_update_record(res: Resources, arg: m.CrmUpdateRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.update_record(arg.record_id, arg.fields, overwrite=arg.overwrite), secrets)
    )


@operation("crm.create_record", m.CrmCreateRecord, m.CrmRecord)
async def crm_create_record(res: Resources, arg: m.CrmCreateRecord) -> m.CrmRecord:
    api, secrets = await _nethunt(res, arg)
    return m.CrmRecord(
        record=_dump(await api.create_record(await secrets.resolve(arg.folder_id), arg.fields), secrets)
    )
